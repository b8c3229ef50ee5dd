// The configuration in effect, and SIGHUP reloads (docs/configuration.md,
// "Reload"): the file is parsed again with the original --set overrides;
// reloadable keys are reported as applied (their owners apply them), the
// others as needing a restart; an invalid file changes nothing.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/config.h"
#include "cdr/service/daemon.h"

namespace cdr::service {

class config_reloader {
 public:
  config_reloader(const daemon_options& options, const daemon_config& config, std::string digest);

  // What `config` shows: start-up values plus reloaded keys.
  nlohmann::json effective() const;
  // path, digest, restart_needed_for (for status).
  nlohmann::json status() const;
  // Re-reads the file. The new configuration, whose reloadable keys the
  // caller applies; nullopt when it is invalid (logged).
  std::optional<daemon_config> reload();

 private:
  const daemon_options& options_;
  std::string digest_;
  mutable std::mutex mutex_;  // admin commands run on worker threads
  nlohmann::json effective_;
  std::vector<std::string> restart_needed_;
};

}  // namespace cdr::service
