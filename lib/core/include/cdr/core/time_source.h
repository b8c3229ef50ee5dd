// Time, injected: wall time (deadlines), monotonic time (schedules,
// back-off, batch linger, durations) and waiting. The service never reads a
// clock or sleeps on its own; it asks a time_source, so tests can run it on
// manual_time, where nothing moves until the test says so and moving time
// wakes every waiter whose deadline has come.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

#include "cdr/core/time.h"

namespace cdr {

using mono_time = std::chrono::steady_clock::time_point;

class alarm;

class time_source : public clock {
 public:
  // Monotonic time: never jumps, unrelated to the wall clock.
  virtual mono_time monotonic() const = 0;

 protected:
  friend class alarm;
  // An alarm exists / goes away (manual sources wake them when time moves).
  virtual void attach(alarm&) const {}
  virtual void detach(alarm&) const {}
  // Blocks on `cv` (its lock held) until it is notified or, on a real
  // source, until `deadline`.
  virtual void block(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, mono_time deadline) const = 0;
};

// Where a thread waits for a condition or a monotonic deadline, whichever
// comes first. The condition is evaluated under the alarm's lock; notify()
// changes what it reads under the same lock and wakes the waiters, so no
// wake-up is ever lost. Thread safe.
class alarm {
 public:
  explicit alarm(const time_source& time);
  ~alarm();
  alarm(const alarm&) = delete;
  alarm& operator=(const alarm&) = delete;

  // True when `ready()` holds; false when `deadline` came first.
  bool wait_until(mono_time deadline, const std::function<bool()>& ready);
  bool wait_for(microseconds d, const std::function<bool()>& ready) { return wait_until(time_.monotonic() + d, ready); }
  // Runs `change` under the alarm's lock, then wakes every waiter.
  void notify(const std::function<void()>& change = {});

 private:
  friend class manual_time;
  void poke();  // wakes the waiters to look at the time again

  const time_source& time_;
  std::mutex mutex_;
  std::condition_variable cv_;
};

// Waits `d` of the source's monotonic time.
void sleep_for(const time_source& time, microseconds d);

// Seconds of monotonic time since `start`, for reported durations.
double seconds_since(const time_source& time, mono_time start);

// A source whose clocks move only when told to: advance() moves wall and
// monotonic time together and wakes every alarm, so whatever is due runs.
// For in-process tests of schedules, retries and back-off.
class manual_time final : public time_source {
 public:
  explicit manual_time(instant wall_start);
  instant now() const override { return instant{microseconds{wall_us_.load()}}; }
  mono_time monotonic() const override { return mono_time{std::chrono::microseconds{mono_us_.load()}}; }
  bool simulated() const override { return true; }

  // Moves both clocks forward by `by`.
  void advance(microseconds by);
  // Moves both clocks to monotonic time `to` (never back).
  void advance_to(mono_time to);
  // Sets the wall clock alone: a jump, as NTP or a restored VM makes one.
  void set_wall(instant to);

 protected:
  void attach(alarm& a) const override;
  void detach(alarm& a) const override;
  void block(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, mono_time deadline) const override;

 private:
  void wake_all() const;

  std::atomic<std::int64_t> wall_us_;
  std::atomic<std::int64_t> mono_us_{0};
  mutable std::mutex alarms_mutex_;
  mutable std::set<alarm*> alarms_;
};

}  // namespace cdr
