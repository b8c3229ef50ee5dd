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
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "../fleet_port.h"
#include "cdr/admin/server.h"
#include "cdr/core/config.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time_source.h"
#include "cdr/crypto/aead.h"
#include "cdr/kafka/client.h"
#include "cdr/metrics/snapshots.h"
#include "cdr/service/daemon.h"
#include "fleet_key.h"

namespace cdr::service {

// The fleet cannot be reached or is behind: the command or sweep is not
// done (admin error "unavailable").
class fleet_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This member cannot join the fleet as configured (a fleet key the other
// members do not share): the start is refused (exit 2).
class fleet_refused : public start_refused {
 public:
  using start_refused::start_refused;
};

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

// A member as this one knows it from the heartbeats.
struct fleet_member {
  std::string name;
  bool live = false;
  std::int64_t records = 0;
  std::optional<instant> next_deadline;
  double silent_seconds = 0;  // since its last heartbeat
  bool heard = false;         // a heartbeat since this start (else known from the store only)
};

class control_channel {
 public:
  // `subject_key`: the fleet's shared subject key; an erasure's identifier
  // travels sealed under a key derived from it. `key`: what signs and
  // verifies every message (fleet_key.h). Throws fleet_refused when the
  // control topic's recent messages are all signed under keys this member
  // does not hold.
  control_channel(const daemon_config& config, const std::string& bootstrap, const time_source& time,
                  std::string_view subject_key, fleet_key key, fleet_port& keeper);
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
  // An identifier as an erasure message carries it, and as a query does
  // (sealed for a different purpose: neither opens as the other).
  std::string seal(std::string_view normalized);
  std::string seal_query(std::string_view normalized);

  // Runs a fleet-wide query on this member (the admin command's reply;
  // `identifier`: an export's, opened). Until set, queries get an error.
  using answer_fn =
      std::function<admin::reply(const control_message& query, const std::optional<std::string>& identifier)>;
  void set_answerer(answer_fn f);
  // Asks every live member (this one included) to run `command` and gathers
  // their replies until all have answered or kafka.control_timeout passed.
  // `on_item` gets each streamed item as it arrives. Throws
  // fleet_unavailable when the query cannot be published.
  fleet_answers gather(const std::string& command, nlohmann::json args, std::string sealed_identifier,
                       const std::function<void(const std::string& member, nlohmann::json item)>& on_item);
  // The members this one knows of (itself included), by name.
  std::vector<fleet_member> members() const;

  const std::string& member() const { return member_; }
  // Leaves the fleet (after a drain): one last heartbeat says so, and no
  // more follow; the other members stop expecting this one.
  void leave();
  // An operator's way past an authentic message this build cannot apply:
  // skips it when applying is stuck at `offset`, audited with `uid`.
  // Returns what was skipped, or why nothing was.
  std::variant<nlohmann::json, std::string> skip(std::uint64_t offset, std::uint32_t uid);
  // For status: the member, the position applied, why applying is stuck.
  nlohmann::json report() const;
  // For metrics: the next offset to apply, whether applying is stuck, and
  // the members known, live and silent.
  void figures(metrics::retention_snapshot& out) const;

  // Heartbeats: every `heartbeat_interval()`; a member is live while its
  // last one is younger than three intervals.
  std::chrono::milliseconds heartbeat_interval() const { return heartbeat_; }

 private:
  void run();
  void answer_queries();
  // Refuses start-up when the topic's recent messages are signed under
  // other keys only (this member's key differs from the fleet's).
  void check_key(std::int64_t low, std::int64_t high);
  // Applies one message; false while it cannot (stuck: retried).
  bool apply(const kafka::message& m);
  // The position moves past `offset` (applied or skipped): applying is no
  // longer stuck, and whoever waits is woken.
  void advance(std::uint64_t offset);
  // A message refused (forged, junk, replayed): counted and logged now,
  // audited with the position past it by flush_refused().
  void refuse(const kafka::message& m, control_rejection why, std::string_view member);
  void flush_refused();
  // A query or heartbeat: noted, nothing to save. False: a replay.
  bool note(const control_message& m, const kafka::message& raw);
  void send_heartbeat(bool leaving);
  void answer(const control_message& query);
  void set_blocked(std::string why);
  // Queues `value` under `key` on `topic` and waits for its delivery;
  // throws fleet_unavailable when it is not delivered.
  void publish(const std::string& topic, const std::string& key, std::string_view value, std::string_view what);

  const daemon_config& config_;
  const time_source& time_;
  const fleet_key key_;
  const std::string incarnation_;    // random per start: heartbeats' run
  std::uint64_t heartbeat_seq_ = 0;  // guarded by heartbeat_mutex_
  fleet_port& keeper_;
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
  std::optional<std::uint64_t> blocked_at_;  // an authentic message that does not decode, guarded by mutex_
  std::optional<std::pair<std::uint64_t, std::uint32_t>> skip_;  // offset and uid to skip, guarded by mutex_
  // Refusals by reason since start, and the run not yet audited.
  std::map<control_rejection, std::uint64_t> refused_;  // guarded by mutex_
  struct refused_run {
    std::uint64_t first = 0, last = 0, count = 0;
    std::map<std::string, std::uint64_t> reasons;
    std::set<std::string> claimed;  // the members the messages named (at most a few)
  };
  std::optional<refused_run> refused_run_;  // the control thread's own
  struct known_member {
    mono_time last_seen{};
    bool heard = false;  // a heartbeat since this start (else: known from the store)
    bool leaving = false;
    std::int64_t records = 0;
    std::optional<instant> next_deadline;
    std::string incarnation;  // of the last heartbeat accepted, and its number
    std::uint64_t seq = 0;
    std::set<std::string> retired;  // earlier runs: their heartbeats are replays
  };
  std::map<std::string, known_member> members_;  // by name, guarded by mutex_
  std::deque<control_message> queries_;          // to answer, guarded by mutex_

  std::string replies_topic_;
  std::chrono::milliseconds heartbeat_;
  std::int64_t answer_from_ = 0;  // queries before this offset were asked before this start
  answer_fn answer_;              // guarded by mutex_
  const std::string bootstrap_;
  std::atomic<bool> stop_{false};
  std::mutex heartbeat_mutex_;
  std::atomic<bool> left_{false};  // written under heartbeat_mutex_
  std::thread thread_;
  std::thread answering_;
};

}  // namespace cdr::service
