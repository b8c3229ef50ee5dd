// Fleet-wide reads (docs/operations.md, "The fleet"): a query published on
// the control topic is answered by every live member on the replies topic,
// in signed parts; gather() collects the answers of one query.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../fleet_port.h"
#include "cdr/admin/server.h"
#include "cdr/core/time_source.h"
#include "cdr/crypto/aead.h"
#include "common.h"
#include "membership.h"

namespace cdr::service {

// A fleet-wide read as gathered from the members' replies.
struct fleet_answers {
  std::map<std::string, nlohmann::json> results;  // member -> its result
  std::map<std::string, std::string> errors;      // member -> why it has none
  // Live members (heard from within the liveness window) that did not
  // answer in time, and known members not heard from lately (down, or
  // removed without a drain).
  std::vector<std::string> missing;
  std::vector<std::string> silent;
  // The per-member breakdown and both lists, as a reply shows them.
  nlohmann::json report() const;
};

class fleet_queries {
 public:
  // `answer_from`: queries before this control-topic offset were asked
  // before this start (nobody reads their answers). `seal_key`: opens a
  // query's identifier.
  fleet_queries(const time_source& time, signed_topic control, signed_topic replies, fleet_membership& members,
                fleet_port& keeper, refusals& refused, std::string_view seal_key, std::int64_t answer_from,
                std::chrono::milliseconds timeout);
  ~fleet_queries();
  fleet_queries(const fleet_queries&) = delete;
  fleet_queries& operator=(const fleet_queries&) = delete;

  // Answers queries (note()) until stop().
  void start();
  void stop();

  // Runs a query on this member (the admin command's reply; `identifier`:
  // an export's, opened). Until set, queries get an error.
  using answer_fn =
      std::function<admin::reply(const control_message& query, const std::optional<std::string>& identifier)>;
  void set_answerer(answer_fn f);
  // A query read from the control topic: answered unless it was asked
  // before this start, is older than an asker waits, or this member left.
  void note(const control_message& query, const log_record& r);

  // An identifier as a query carries it (sealed for queries only).
  std::string seal(std::string_view normalized);
  // Asks every live member (this one included) to run `command` and gathers
  // their replies until all have answered or the timeout passed. `on_item`
  // gets each streamed item as it arrives. Throws fleet_unavailable when
  // the query cannot be published.
  fleet_answers gather(const std::string& command, nlohmann::json args, std::string sealed_identifier,
                       const std::function<void(const std::string& member, nlohmann::json item)>& on_item);

 private:
  void answer(const control_message& query);
  // A reply that does not verify: counted, logged, audited; never used.
  void refuse(const log_record& r, const std::string& request, control_rejection why);

  const time_source& time_;
  const signed_topic control_;
  const signed_topic replies_;
  fleet_membership& members_;
  fleet_port& keeper_;
  refusals& refused_;
  const std::int64_t answer_from_;
  const std::chrono::milliseconds timeout_;
  std::mutex seal_mutex_;
  crypto::aead seal_;  // guarded by seal_mutex_

  alarm alarm_;
  std::mutex mutex_;
  std::deque<control_message> waiting_;  // to answer, guarded by mutex_
  answer_fn answer_;                     // guarded by mutex_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cdr::service
