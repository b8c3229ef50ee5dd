// The clock guard (docs/architecture.md, "Time"): what a wall-clock jump
// may not do.
//
// - A backward jump: the last sweep's instant (the mark, persisted with
//   the sweep) is a floor for lateness at ingest, so events of partitions a
//   sweep closed stay late, instead of being refused and re-read forever.
// - A forward jump: before a sweep, the wall clock's advance since the
//   last sweep (or the start) is compared with the monotonic clock's; more
//   than `limit` apart and destructive sweeps pause until an operator
//   confirms the clock (`clock confirm`) or it comes back. A daemon down for
//   longer than the limit counts as a jump too: nothing tells the two apart.
//   A simulated clock's deliberate moves (--fake-clock, `debug
//   advance-clock`) are accepted. Until then ingest, too, judges lateness
//   at the last trusted instant, not at the jumped clock.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

// A sweep refused while the wall clock is suspect.
class clock_jumped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class clock_guard {
 public:
  clock_guard(retention_context& ctx, microseconds limit);

  // The instant lateness (and the future) is decided at ingest: never
  // before the last sweep's, and while a forward jump is unconfirmed, the
  // last trusted instant (the reference plus the monotonic time since).
  instant late_now() const;
  // Throws clock_jumped when destructive work must wait for the clock.
  void check(instant now) const;
  // Persists `now` as the mark, with the sweep that acts at it.
  void record_sweep(store::change& c, instant now);
  // Takes the current wall clock as right (an operator's confirmation, a
  // simulated clock's deliberate move). Returns the jump it accepted.
  microseconds accept();
  void set_limit(microseconds limit) { limit_us_ = limit.count(); }

  // How far the wall clock moved beyond the monotonic clock since the
  // reference (negative: backwards); what status and metrics show.
  microseconds jump() const;
  bool suspect() const { return jump() > microseconds(limit_us_.load()); }
  nlohmann::json status() const;

 private:
  retention_context& ctx_;
  std::atomic<std::int64_t> limit_us_;
  std::atomic<std::int64_t> mark_us_{0};  // the last sweep's instant (0: none)
  mutable std::mutex mutex_;
  instant ref_wall_{};    // guarded by mutex_: the wall clock ...
  mono_time ref_mono_{};  // ... and the monotonic clock at the last sweep, start or confirmation
};

}  // namespace cdr::service
