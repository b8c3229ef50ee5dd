// The daemon's time sources: the only code in the service that reads the
// system's clocks or blocks on them (everything else asks a time_source).
#pragma once

#include "cdr/core/time_source.h"

namespace cdr::service {

// Real wall and monotonic time.
class system_time : public time_source {
 public:
  instant now() const override;
  mono_time monotonic() const override;
  bool simulated() const override { return false; }

 protected:
  void block(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, mono_time deadline) const override;
};

// --fake-clock: wall time is simulated and moves only by `debug advance-clock`
// (a deliberate move); monotonic time and waiting stay real, so batches,
// schedules and retries run as they do in production.
class simulated_wall_time final : public system_time {
 public:
  explicit simulated_wall_time(instant start) : wall_(start) {}
  instant now() const override { return wall_.now(); }
  bool simulated() const override { return true; }
  void advance(microseconds by) { wall_.advance(by); }
  void set(instant to) { wall_.set(to); }

 private:
  manual_clock wall_;
};

}  // namespace cdr::service
