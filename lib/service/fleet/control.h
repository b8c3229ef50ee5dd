// The fleet's control topic (docs/operations.md, "The fleet"): actions that
// must hold on every member (hold add and release, subject erasure) are
// published to kafka.topics.control and applied by every member, in the
// topic's order, each exactly once: its offset is saved in the same store
// batch as its effect (retention::apply_control). An admin command on any
// member publishes and waits until its own member has applied it; a sweep
// first applies everything the topic held when it started.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "../retention/retention.h"
#include "cdr/core/config.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time_source.h"
#include "cdr/crypto/aead.h"
#include "cdr/kafka/client.h"

namespace cdr::service {

// The fleet cannot be reached or is behind: the command or sweep is not
// done (admin error "unavailable").
class fleet_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This member's name: kafka.group_instance_id, or "<client_id>@<host name>".
std::string member_name(const kafka_config& k);

class control_channel {
 public:
  // `subject_key`: the fleet's shared subject key; an erasure's identifier
  // travels sealed under a key derived from it.
  control_channel(const daemon_config& config, const std::string& bootstrap, const time_source& time,
                  std::string_view subject_key, retention& keeper);
  ~control_channel();
  control_channel(const control_channel&) = delete;
  control_channel& operator=(const control_channel&) = delete;

  // Reads the saved position (and the topic's bounds: a position beyond its
  // end means a new topic, applied from its start). start() applies from there.
  void start();
  void stop();

  // Publishes the action (member, request id and time filled in) and waits
  // until this member has applied it: what the apply returned, or an error
  // message for the requester. Throws fleet_unavailable when it cannot be
  // published or is not applied here within kafka.control_timeout.
  std::variant<nlohmann::json, std::string> act(control_message m);
  // Returns once every message the topic held when called is applied here;
  // throws fleet_unavailable otherwise (the end cannot be read, or applying
  // is stuck or slower than kafka.control_timeout).
  void catch_up();
  // An identifier as an erasure message carries it.
  std::string seal(std::string_view normalized);

  const std::string& member() const { return member_; }
  // For status: the member, the position applied, why applying is stuck.
  nlohmann::json report() const;
  // For metrics: the next offset to apply, and whether applying is stuck.
  std::pair<std::uint64_t, bool> figures() const;

 private:
  void run();
  // Applies one message; false while it cannot (stuck: retried).
  bool apply(const kafka::message& m);
  void set_blocked(std::string why);

  const daemon_config& config_;
  const time_source& time_;
  retention& keeper_;
  std::string member_;
  std::string topic_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<kafka::reader> reader_;
  std::unique_ptr<kafka::producer> producer_;
  std::mutex seal_mutex_;
  crypto::aead seal_;

  // Wakes act() and catch_up() when a message is applied, run() at stop.
  alarm alarm_;
  mutable std::mutex mutex_;
  std::uint64_t next_ = 0;         // the next offset to apply, guarded by mutex_
  std::set<std::string> waiting_;  // requests act() waits for, guarded by mutex_
  std::map<std::string, std::variant<nlohmann::json, std::string>> results_;  // theirs, guarded by mutex_
  std::map<std::uint64_t, std::optional<std::string>> delivered_;             // ticket -> error, guarded by mutex_
  std::uint64_t tickets_ = 0;                                                 // guarded by mutex_
  std::string blocked_;                                                       // guarded by mutex_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cdr::service
