#include "cdr/core/time_source.h"

namespace cdr {

alarm::alarm(const time_source& time) : time_(time) { time_.attach(*this); }

alarm::~alarm() { time_.detach(*this); }

bool alarm::wait_until(mono_time deadline, const std::function<bool()>& ready) {
  std::unique_lock lock(mutex_);
  while (!ready()) {
    if (time_.monotonic() >= deadline) return false;
    time_.block(lock, cv_, deadline);
  }
  return true;
}

void alarm::notify(const std::function<void()>& change) {
  {
    std::lock_guard lock(mutex_);
    if (change) change();
  }
  cv_.notify_all();
}

void alarm::poke() {
  // Taking the lock orders this after a waiter's check of the time: it is
  // either still checking (and sees the new time) or blocked (and woken).
  { std::lock_guard lock(mutex_); }
  cv_.notify_all();
}

void sleep_for(const time_source& time, microseconds d) {
  alarm a(time);
  a.wait_for(d, [] { return false; });
}

double seconds_since(const time_source& time, mono_time start) {
  return std::chrono::duration<double>(time.monotonic() - start).count();
}

manual_time::manual_time(instant wall_start) : wall_us_(wall_start.time_since_epoch().count()) {}

void manual_time::advance(microseconds by) {
  if (by.count() <= 0) return;
  wall_us_.fetch_add(by.count());
  mono_us_.fetch_add(by.count());
  wake_all();
}

void manual_time::advance_to(mono_time to) { advance(std::chrono::duration_cast<microseconds>(to - monotonic())); }

void manual_time::set_wall(instant to) {
  wall_us_.store(to.time_since_epoch().count());
  wake_all();
}

void manual_time::attach(alarm& a) const {
  std::lock_guard lock(alarms_mutex_);
  alarms_.insert(&a);
}

void manual_time::detach(alarm& a) const {
  std::lock_guard lock(alarms_mutex_);
  alarms_.erase(&a);
}

void manual_time::block(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, mono_time) const {
  cv.wait(lock);  // until notified, or time moves (wake_all)
}

void manual_time::wake_all() const {
  std::lock_guard lock(alarms_mutex_);
  for (auto* a : alarms_) a->poke();
}

}  // namespace cdr
