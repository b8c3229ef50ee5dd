#include "health.h"

#include <fmt/format.h>

namespace cdr::service {

namespace {

const char* name(health::phase p) {
  switch (p) {
    case health::phase::starting: return "starting";
    case health::phase::serving: return "serving";
    case health::phase::stopping: return "stopping";
  }
  return "unknown";
}

}  // namespace

health::health(const time_source& time, limits l)
    : time_(time), limits_(l), progressed_(time.monotonic()), ticked_(time.monotonic()) {}

double health::since(mono_time t) const { return std::chrono::duration<double>(time_.monotonic() - t).count(); }

void health::step(std::string what) {
  std::lock_guard lock(mutex_);
  step_ = std::move(what);
  detail_.clear();
  progressed_ = time_.monotonic();
}

void health::advance(std::uint64_t done, std::uint64_t total, const std::string& unit) {
  std::lock_guard lock(mutex_);
  detail_ = total > 0 ? fmt::format("{} of {} {}", done, total, unit) : fmt::format("{} {}", done, unit);
  progressed_ = time_.monotonic();
}

void health::serving() {
  std::lock_guard lock(mutex_);
  phase_ = phase::serving;
  ticked_ = time_.monotonic();
}

void health::stopping() {
  std::lock_guard lock(mutex_);
  phase_ = phase::stopping;
}

void health::tick() {
  std::lock_guard lock(mutex_);
  ticked_ = time_.monotonic();
}

bool health::progressing() const {
  std::lock_guard lock(mutex_);
  return phase_ != phase::starting || time_.monotonic() - progressed_ <= limits_.start_stall;
}

std::string health::step_line() const { return detail_.empty() ? step_ : step_ + ": " + detail_; }

std::string health::line() const {
  std::lock_guard lock(mutex_);
  return step_line();
}

health::verdict health::alive() const {
  std::lock_guard lock(mutex_);
  verdict v;
  v.body = {{"phase", name(phase_)}};
  if (phase_ == phase::starting) {
    const auto s = since(progressed_);
    v.ok = time_.monotonic() - progressed_ <= limits_.start_stall;
    v.body["step"] = step_line();
    v.body["seconds_since_progress"] = s;
    if (!v.ok) v.body["reason"] = fmt::format("the start made no progress for {:.0f} s", s);
  } else {
    // A stopping daemon is alive while its loop runs: the stop has its own
    // deadline (TimeoutStopSec, terminationGracePeriodSeconds).
    const auto s = since(ticked_);
    v.ok = time_.monotonic() - ticked_ <= limits_.loop_stall;
    v.body["seconds_since_loop_tick"] = s;
    if (!v.ok) v.body["reason"] = fmt::format("the main loop has not run for {:.0f} s", s);
  }
  v.body["status"] = v.ok ? "ok" : "failing";
  return v;
}

health::verdict health::ready() const {
  std::lock_guard lock(mutex_);
  verdict v;
  v.ok = phase_ == phase::serving;
  v.body = {{"status", v.ok ? "ok" : "failing"}, {"phase", name(phase_)}};
  if (phase_ == phase::starting) v.body["step"] = step_line();
  return v;
}

}  // namespace cdr::service
