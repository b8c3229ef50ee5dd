// What the fleet's parts (control_log.h, membership.h, queries.h) share.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/fleet_auth.h"
#include "cdr/core/time.h"
#include "cdr/service/daemon.h"
#include "fleet_key.h"
#include "log.h"

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

// A member as this one knows it from the heartbeats.
struct fleet_member {
  std::string name;
  bool live = false;
  std::int64_t records = 0;
  std::optional<instant> next_deadline;
  double silent_seconds = 0;  // since its last heartbeat
  bool heard = false;         // a heartbeat since this start (else known from the store only)
};

// Messages refused since start, by reason (control and replies topics).
class refusals {
 public:
  void count(control_rejection why);
  std::map<control_rejection, std::uint64_t> counts() const;

 private:
  mutable std::mutex mutex_;
  std::map<control_rejection, std::uint64_t> counts_;  // guarded by mutex_
};

// One topic the fleet writes and reads, every message signed.
struct signed_topic {
  fleet_log& log;
  const fleet_key& key;
  std::string topic;

  // Signs and appends `body` under `key`, waiting until it is stored;
  // throws fleet_unavailable naming `what` when it is not. An empty body
  // (a tombstone) carries nothing to sign.
  void publish(std::string_view message_key, std::string_view body, std::string_view what,
               std::chrono::milliseconds timeout) const;
  // Signs and posts `body` without waiting (a heartbeat: a lost one is
  // followed by the next).
  void post(std::string_view message_key, std::string_view body) const;
  // The body when `r` is authentic here; why it is refused otherwise.
  std::variant<std::string, control_rejection> verify(const log_record& r) const;
};

// The member a message claims to come from (for the log and the audit
// entry; never believed).
std::string claimed_member(std::string_view value);

}  // namespace cdr::service
