// Crash injection for tests: when the environment variable
// CDR_RETENTION_FAILPOINT names a point the daemon passes, the process
// exits at once with status 86, as a kill -9 there would leave it
// (tests/integration/crypto_test.cc). Unset in production.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string_view>

namespace cdr::service {

inline void failpoint(std::string_view name) {
  static const char* armed = std::getenv("CDR_RETENTION_FAILPOINT");
  if (armed != nullptr && name == armed) {
    spdlog::critical("failpoint {} reached: exiting without cleanup (CDR_RETENTION_FAILPOINT)", name);
    spdlog::default_logger()->flush();
    std::_Exit(86);
  }
}

}  // namespace cdr::service
