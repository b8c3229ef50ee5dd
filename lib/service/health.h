// What the probes ask (`/healthz`, `/readyz` on the metrics port) and what
// systemd is told during a long start (EXTEND_TIMEOUT_USEC, STATUS=).
//
// Alive: while starting, the start-up made progress (a new step, or a
// step's progress) within `start_stall`; once serving, the main loop ticked
// within `loop_stall` (it ticks every second; admin commands run on their
// own workers, so two long commands never make a healthy daemon look
// dead). Ready: from the end of the start (READY=1) until the stop begins.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "cdr/core/time_source.h"

namespace cdr::service {

class health {
 public:
  struct limits {
    microseconds start_stall = std::chrono::minutes(10);
    microseconds loop_stall = std::chrono::seconds(30);
  };
  enum class phase { starting, serving, stopping };

  health(const time_source& time, limits l);

  // A start-up step begins ("opening the store", "re-indexing identifiers").
  void step(std::string what);
  // Progress within the step: `done` of `total` `unit` (total 0: unknown).
  void advance(std::uint64_t done, std::uint64_t total, const std::string& unit);
  void serving();
  void stopping();
  void tick();  // the main loop is alive

  struct verdict {
    bool ok = false;
    nlohmann::json body;  // {"status": "ok"|"failing", "phase", "step"|..., "seconds_since_progress"}
  };
  verdict alive() const;
  verdict ready() const;
  // While starting: whether the start progressed within start_stall, and
  // what it is doing ("re-indexing identifiers: 120000 of 5400000 values").
  bool progressing() const;
  std::string line() const;

 private:
  double since(mono_time t) const;
  std::string step_line() const;  // "step: progress" (mutex_ held)
  const time_source& time_;
  const limits limits_;
  mutable std::mutex mutex_;
  phase phase_ = phase::starting;
  std::string step_ = "starting";
  std::string detail_;
  mono_time progressed_;
  mono_time ticked_;
};

}  // namespace cdr::service
