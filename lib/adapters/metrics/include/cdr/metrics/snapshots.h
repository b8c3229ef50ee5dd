// Plain figures the service hands the metrics adapter at scrape time. No
// prometheus-cpp type appears here: the collectors in collectors.cc turn
// them into metric families (names and help: docs/metrics.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cdr::metrics {

// The daemon itself.
struct daemon_snapshot {
  bool clock_simulated = false;
  double clock_seconds = 0;  // the daemon's notion of now, Unix time
  std::uint32_t admin_connections = 0;
};

struct lag_sample {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t messages = 0;
};

// The store and the consumer's view of Kafka.
struct store_snapshot {
  std::map<std::string, double> records_by_kind;  // "cdr", "usage"
  std::vector<std::pair<std::string, std::uint64_t>> bytes_by_family;
  bool write_stopped = false;
  std::uint64_t stall_micros = 0;
  std::vector<lag_sample> lag;
  std::uint64_t corrupt_entries = 0;  // stored entries met that do not decode
};

// Retention, keys and saved state.
struct retention_snapshot {
  // Partitions (and their records) past a deadline that still hold what
  // the action removes.
  std::size_t overdue_partitions = 0;
  std::int64_t overdue_records = 0;
  // The earliest deadline any stored partition still has to meet (Unix
  // seconds; 0: none), and the records whose action falls due within 30
  // days, by action (every action, zeros included).
  double next_deadline_seconds = 0;
  std::map<std::string, std::int64_t> records_due_30d;
  // The forecast per month of action (`plan`): records due by (month
  // "YYYY-MM", action) for this month and the next 12, those already due
  // counted in this month: at most 13 x 3 series.
  std::map<std::pair<std::string, std::string>, std::int64_t> records_due_by_month;
  // The audit chain's last verification (Unix seconds; 0: never) and its
  // outcome.
  double audit_verified_at_seconds = 0;
  bool audit_chain_ok = true;
  std::size_t holds_active = 0;
  std::int64_t records_held = 0;
  std::size_t events_pending = 0;
  std::size_t keys_live = 0;
  std::uint64_t keys_destroyed = 0;
  std::uint64_t decrypt_failures = 0;
  double clock_jump_seconds = 0;     // the wall clock beyond the monotonic since the last sweep
  bool sweeps_paused_clock = false;  // paused until the clock is confirmed
  // Erased subjects whose keys wait for the erasure purge pass, those past
  // their deadline (plus its grace), and the oldest's age.
  std::size_t erasures_pending_purge = 0;
  std::size_t erasures_purge_overdue = 0;
  double erasure_purge_oldest_age_seconds = 0;
  // The next purge pass's forecast (0 while none is pending): how long it
  // takes, what it rewrites, and how far past the earliest deadline it ends.
  double erasure_purge_forecast_seconds = 0;
  double erasure_purge_forecast_bytes = 0;
  double erasure_purge_forecast_late_seconds = 0;
  // Unreadable saved-state entries by kind (every kind, zeros included).
  std::map<std::string, std::size_t> saved_state_unreadable;
  // The fleet's control topic (none: the daemon acts alone): the next
  // offset this member applies, and whether applying is stuck.
  std::optional<std::uint64_t> control_position;
  bool control_blocked = false;
  // Control and replies messages refused, by reason (every reason, zeros
  // included).
  std::map<std::string, std::uint64_t> control_rejected;
  // The fleet as this member knows it from the heartbeats: members live and
  // silent, and silent ones whose records are past a deadline (nobody
  // sweeps them: a volume removed without a drain, or a member down).
  std::size_t fleet_members_live = 0;
  std::size_t fleet_members_silent = 0;
  std::size_t fleet_silent_members_past_deadline = 0;
};

}  // namespace cdr::metrics
