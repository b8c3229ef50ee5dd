// The wiring layer: builds the adapters from the configuration, starts them
// in order, runs the main loop and stops them in reverse order.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cdr/core/config.h"
#include "cdr/core/time.h"

namespace cdr::service {

struct daemon_options {
  std::string config_path;
  // The --set overrides, applied again when SIGHUP re-reads the file.
  std::vector<std::string> overrides;
  // Set by --fake-clock: the daemon runs on a simulated clock from here.
  std::optional<instant> fake_clock;
};

std::string_view version();
std::string_view revision();

class daemon {
 public:
  daemon(daemon_config config, daemon_options options);
  ~daemon();
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  // Starts every component, serves until SIGTERM or SIGINT, then stops them.
  // Returns the process exit code. Throws std::runtime_error when a
  // component cannot start.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace cdr::service
