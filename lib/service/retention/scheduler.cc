#include "scheduler.h"

#include <algorithm>
#include <utility>

namespace cdr::service {

sweep_scheduler::sweep_scheduler(const time_source& time, microseconds interval, microseconds jitter,
                                 std::uint64_t seed, sweep_fn sweep)
    : time_(time),
      sweep_(std::move(sweep)),
      rng_(seed),
      interval_us_(interval.count()),
      jitter_us_(jitter.count()),
      alarm_(time) {}

sweep_scheduler::~sweep_scheduler() { stop(); }

void sweep_scheduler::start() {
  if (thread_.joinable()) return;
  plan(time_.monotonic());  // the first sweep runs at once
  thread_ = std::thread([this] { loop(); });
}

void sweep_scheduler::stop() {
  alarm_.notify([this] { stopping_ = true; });
  if (thread_.joinable()) thread_.join();
}

void sweep_scheduler::set_schedule(microseconds interval, microseconds jitter) {
  alarm_.notify([&] {
    interval_us_ = interval.count();
    jitter_us_ = jitter.count();
    reschedule_ = true;
  });
}

microseconds sweep_scheduler::delay() {
  const auto j = jitter_us_.load();
  return microseconds(interval_us_.load() + (j > 0 ? std::uniform_int_distribution<std::int64_t>(0, j)(rng_) : 0));
}

void sweep_scheduler::loop() {
  std::string_view trigger = "startup";
  auto last = time_.monotonic();
  microseconds retry = first_retry;
  for (;;) {
    bool stop = false;
    bool replan = false;
    alarm_.wait_until(next_due(), [&] {
      stop = stopping_;
      replan = std::exchange(reschedule_, false);
      return stop || replan;
    });
    if (stop) return;
    if (replan) {
      plan(last + delay());
      continue;
    }
    const bool ok = sweep_(trigger);
    trigger = "schedule";
    last = time_.monotonic();
    if (ok) {
      retry = first_retry;
      plan(last + delay());
    } else {
      plan(last + std::min(retry, microseconds(interval_us_.load())));
      retry = std::min(retry * 2, microseconds(interval_us_.load()));
    }
    ++runs_;  // after the next one is planned
  }
}

deadline_timer::deadline_timer(const time_source& time, std::function<void()> fn)
    : time_(time), fn_(std::move(fn)), alarm_(time) {}

deadline_timer::~deadline_timer() { stop(); }

void deadline_timer::start() {
  if (thread_.joinable()) return;
  alarm_.notify([this] { stopping_ = false; });
  thread_ = std::thread([this] { loop(); });
}

void deadline_timer::stop() {
  alarm_.notify([this] { stopping_ = true; });
  if (thread_.joinable()) thread_.join();
}

void deadline_timer::set(std::optional<mono_time> at) {
  alarm_.notify([&] {
    due_ = at;
    changed_ = true;
  });
}

void deadline_timer::loop() {
  for (;;) {
    std::optional<mono_time> due;
    bool stop = false;
    alarm_.notify([&] { due = due_; });
    // Without a deadline, wait until one is set (checked again daily).
    const auto until = due.value_or(time_.monotonic() + std::chrono::hours(24));
    const bool woken = alarm_.wait_until(until, [&] {
      stop = stopping_;
      return stop || std::exchange(changed_, false);
    });
    if (stop) return;
    if (woken || !due || time_.monotonic() < *due) continue;
    alarm_.notify([&] {
      if (due_ == due) due_.reset();
    });
    fn_();
  }
}

}  // namespace cdr::service
