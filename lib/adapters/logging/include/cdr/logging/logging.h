// spdlog adapter: the only place that configures sinks and formats.
#pragma once

#include <atomic>
#include <chrono>
#include <string_view>

#include <spdlog/spdlog.h>

#include "cdr/core/config.h"

namespace cdr::logging {

// Installs the default logger on stderr: human text on a terminal (or with
// format = text), JSON lines otherwise (or with format = json).
void setup(const log_config& config);
// Changes the level of the installed logger (configuration reload).
void set_level(const std::string& level);

// Lets one message through per interval and counts the ones it held back,
// so a flood of bad input cannot flood the log. Thread safe.
class rate_limiter {
 public:
  explicit rate_limiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // True if a message may be logged now; *suppressed gets the number held
  // back since the last one that passed.
  bool allow(std::uint64_t* suppressed);

 private:
  std::chrono::steady_clock::duration interval_;
  std::atomic<std::int64_t> next_{0};
  std::atomic<std::uint64_t> held_{0};
};

}  // namespace cdr::logging
