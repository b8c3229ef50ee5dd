// Demo traffic: generated events produced to the embedded broker at a steady
// rate, so a newcomer sees records flow (config/demo.toml).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "cdr/core/config.h"
#include "cdr/core/time_source.h"

namespace cdr::service {

class demo_traffic {
 public:
  demo_traffic(const daemon_config& config, std::string bootstrap, const time_source& time);
  ~demo_traffic();
  demo_traffic(const demo_traffic&) = delete;
  demo_traffic& operator=(const demo_traffic&) = delete;

  std::uint64_t produced() const { return produced_; }

 private:
  void run();

  const daemon_config& config_;
  std::string bootstrap_;
  const time_source& time_;
  alarm alarm_;
  bool stop_ = false;  // guarded by alarm_
  std::atomic<std::uint64_t> produced_{0};
  std::thread thread_;
};

}  // namespace cdr::service
