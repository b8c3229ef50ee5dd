// The fleet's members as heartbeats on the control topic show them
// (docs/operations.md, "The fleet"). Each member announces itself every
// interval; a member is live while its last heartbeat is younger than
// three intervals. A member is gone only when its own signed leaving
// heartbeat says so: until then it is known (kept in the store across
// restarts) and, when not heard, silent.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../fleet_port.h"
#include "cdr/core/time_source.h"
#include "cdr/metrics/snapshots.h"
#include "common.h"

namespace cdr::service {

class fleet_membership {
 public:
  // `control`: where heartbeats go. Members known from the store start silent.
  fleet_membership(const time_source& time, std::string member, std::chrono::milliseconds interval,
                   signed_topic control, fleet_port& keeper, std::chrono::milliseconds leave_timeout);
  ~fleet_membership();
  fleet_membership(const fleet_membership&) = delete;
  fleet_membership& operator=(const fleet_membership&) = delete;

  // Sends heartbeats until stop() or leave().
  void start();
  void stop();

  // A heartbeat read from the control topic, `age` old by its timestamp.
  // False: a replay (of an ended run, or not past the last one heard).
  bool note(const control_message& heartbeat, std::chrono::milliseconds age);
  // Every member known (this one included, always live), by name.
  std::vector<fleet_member> members() const;
  // Leaves the fleet (after a drain): one last heartbeat says so, and no
  // more follow; the other members stop expecting this one.
  void leave();
  bool left() const { return left_; }

  const std::string& member() const { return member_; }
  std::chrono::milliseconds interval() const { return interval_; }
  void figures(metrics::retention_snapshot& out) const;
  nlohmann::json report() const;

 private:
  void send(bool leaving);

  const time_source& time_;
  const std::string member_;
  const std::chrono::milliseconds interval_;
  const signed_topic control_;
  fleet_port& keeper_;
  const std::chrono::milliseconds leave_timeout_;
  const std::string incarnation_;  // random per start: heartbeats' run

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
  mutable std::mutex mutex_;
  std::map<std::string, known_member> members_;  // by name, guarded by mutex_

  std::mutex send_mutex_;
  std::uint64_t seq_ = 0;          // guarded by send_mutex_
  std::atomic<bool> left_{false};  // written under send_mutex_
  alarm alarm_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cdr::service
