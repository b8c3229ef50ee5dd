// The fleet's control log (docs/operations.md, "The fleet"): actions that
// must hold on every member (hold add and release, subject erasure) are
// published to kafka.topics.control and applied by every member, in the
// topic's order, each exactly once: its offset is saved in the same store
// batch as its effect (fleet_port::apply_control). An admin command on any
// member publishes and waits until its own member has applied it; a sweep
// first applies everything the topic held when it started.
//
// Every message is verified before it is decoded: a forged, altered,
// replayed or junk one is refused (counted, logged, audited) and never
// blocks. An authentic message this build cannot decode does block, until
// an operator skips it. Heartbeats and queries are handed to `notice`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "../fleet_port.h"
#include "cdr/core/time_source.h"
#include "cdr/crypto/aead.h"
#include "cdr/metrics/snapshots.h"
#include "common.h"

namespace cdr::service {

class control_log {
 public:
  // What to do with a heartbeat or query read in order; false: a replay
  // (refused).
  using notice_fn = std::function<bool(const control_message&, const log_record&)>;
  // Reads the saved position and the topic's bounds: a position beyond its
  // end means a new topic, applied from its start. Throws fleet_refused
  // when the topic's recent messages are all signed under keys this member
  // does not hold. `seal_key`: seals and opens an erasure's identifier.
  control_log(const time_source& time, std::string member, signed_topic control, fleet_port& keeper, refusals& refused,
              std::string_view seal_key, std::chrono::milliseconds timeout, notice_fn notice);
  ~control_log();
  control_log(const control_log&) = delete;
  control_log& operator=(const control_log&) = delete;

  // Applies from the saved position on, until stop().
  void start();
  void stop();
  // The topic's end when this member started (queries before it are old).
  std::int64_t end_at_start() const { return end_at_start_; }

  // Publishes the action (member, request id and time filled in) and waits
  // until this member has applied it: what the apply returned, or an error
  // message for the requester. Throws fleet_unavailable when it cannot be
  // published or is not applied here within the timeout.
  std::variant<nlohmann::json, std::string> act(control_message m);
  // Returns once every message the topic held when called is applied here;
  // throws fleet_unavailable otherwise (the end cannot be read, or applying
  // is stuck or slower than the timeout).
  void catch_up();
  // An identifier as an erasure message carries it.
  std::string seal(std::string_view normalized);
  // An operator's way past an authentic message this build cannot apply:
  // skips it when applying is stuck at `offset`, audited with `uid`.
  // Returns what was skipped, or why nothing was.
  std::variant<nlohmann::json, std::string> skip(std::uint64_t offset, std::uint32_t uid);

  // For status and metrics: the next offset to apply and why applying is
  // stuck (empty when it is not).
  std::uint64_t position() const;
  std::string blocked() const;
  const std::string& topic() const { return control_.topic; }

 private:
  void run();
  void check_key(std::int64_t low, std::int64_t high);
  // Applies one message; false while it cannot (stuck: retried).
  bool apply(const log_record& r);
  // The position moves past `offset` (applied or skipped): applying is no
  // longer stuck, and whoever waits is woken.
  void advance(std::uint64_t offset);
  // A message refused (forged, junk, replayed): counted and logged now,
  // audited with the position past it by flush_refused().
  void refuse(const log_record& r, control_rejection why, std::string_view member);
  void flush_refused();
  void set_blocked(std::string why);

  const time_source& time_;
  const std::string member_;
  const signed_topic control_;
  fleet_port& keeper_;
  refusals& refused_;
  const std::chrono::milliseconds timeout_;
  const notice_fn notice_;
  std::mutex seal_mutex_;
  crypto::aead seal_;  // guarded by seal_mutex_
  std::unique_ptr<log_cursor> cursor_;
  std::int64_t end_at_start_ = 0;

  // Wakes act() and catch_up() when a message is applied, run() at stop.
  alarm alarm_;
  mutable std::mutex mutex_;
  std::uint64_t next_ = 0;         // the next offset to apply, guarded by mutex_
  std::set<std::string> waiting_;  // requests act() waits for, guarded by mutex_
  std::map<std::string, std::variant<nlohmann::json, std::string>> results_;  // theirs, guarded by mutex_
  std::string blocked_;                                                       // guarded by mutex_
  std::optional<std::uint64_t> blocked_at_;  // an authentic message that does not decode, guarded by mutex_
  std::optional<std::pair<std::uint64_t, std::uint32_t>> skip_;  // offset and uid to skip, guarded by mutex_
  // The run of refusals not yet audited (the control thread's own).
  struct refused_run {
    std::uint64_t first = 0, last = 0, count = 0;
    std::map<std::string, std::uint64_t> reasons;
    std::set<std::string> claimed;  // the members the messages named (at most a few)
  };
  std::optional<refused_run> refused_run_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cdr::service
