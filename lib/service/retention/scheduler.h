// When sweeps run: one at start-up, then every sweep.interval plus a random
// jitter of up to sweep.jitter. A sweep that fails is retried sooner: after
// a minute, then twice as long each time, never later than the interval.
// Runs on a thread of its own, on the injected time source's monotonic
// clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include "cdr/core/time_source.h"

namespace cdr::service {

class sweep_scheduler {
 public:
  // Runs one sweep; false when it failed.
  using sweep_fn = std::function<bool(std::string_view trigger)>;

  static constexpr microseconds first_retry = std::chrono::minutes(1);

  sweep_scheduler(const time_source& time, microseconds interval, microseconds jitter, std::uint64_t seed,
                  sweep_fn sweep);
  ~sweep_scheduler();

  void start();
  void stop();
  // A new sweep.interval / sweep.jitter (configuration reload): the next
  // sweep is planned again from the last one.
  void set_schedule(microseconds interval, microseconds jitter);
  microseconds interval() const { return microseconds(interval_us_.load()); }
  // How many sweeps the loop has run (counted once the next is planned),
  // and when the next is due.
  std::uint64_t sweeps_run() const { return runs_.load(); }
  mono_time next_due() const { return mono_time{std::chrono::microseconds{next_us_.load()}}; }

 private:
  void loop();
  // The regular delay: the interval plus a jitter drawn now.
  microseconds delay();
  void plan(mono_time at) { next_us_ = std::chrono::duration_cast<microseconds>(at.time_since_epoch()).count(); }

  const time_source& time_;
  sweep_fn sweep_;
  std::mt19937_64 rng_;
  std::atomic<std::int64_t> interval_us_;
  std::atomic<std::int64_t> jitter_us_;
  std::atomic<std::int64_t> next_us_{0};
  std::atomic<std::uint64_t> runs_{0};
  alarm alarm_;
  bool stopping_ = false;    // guarded by alarm_
  bool reschedule_ = false;  // guarded by alarm_
  std::thread thread_;
};

// Runs a function on a thread of its own when the deadline set last comes,
// on the time source's monotonic clock (the erasure purge pass).
class deadline_timer {
 public:
  deadline_timer(const time_source& time, std::function<void()> fn);
  ~deadline_timer();
  deadline_timer(const deadline_timer&) = delete;
  deadline_timer& operator=(const deadline_timer&) = delete;

  void start();
  void stop();
  // Runs fn at `at` (once), replacing any earlier deadline; none: cancels.
  void set(std::optional<mono_time> at);

 private:
  void loop();

  const time_source& time_;
  std::function<void()> fn_;
  alarm alarm_;
  std::optional<mono_time> due_;  // guarded by alarm_
  bool changed_ = false;          // guarded by alarm_
  bool stopping_ = false;         // guarded by alarm_
  std::thread thread_;
};

}  // namespace cdr::service
