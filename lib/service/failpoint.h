// Fault injection for tests, armed by the environment variable
// CDR_RETENTION_FAILPOINT naming one point. Unset in production.
// failpoint(): the process exits at once with status 86, as a kill -9 there
// would leave it (tests/integration/crypto_shredding_test.cc).
// failpoint_once(): true the first time the point is passed, so the caller
// takes its failure path once (tests/integration/ingest_test.cc).
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <string_view>

namespace cdr::service {

inline bool failpoint_armed(std::string_view name) {
  static const char* armed = std::getenv("CDR_RETENTION_FAILPOINT");
  return armed != nullptr && name == armed;
}

inline void failpoint(std::string_view name) {
  if (failpoint_armed(name)) {
    spdlog::critical("failpoint {} reached: exiting without cleanup (CDR_RETENTION_FAILPOINT)", name);
    spdlog::default_logger()->flush();
    std::_Exit(86);
  }
}

// One flag serves: only one point is armed.
inline bool failpoint_once(std::string_view name) {
  static std::atomic<bool> passed{false};
  if (!failpoint_armed(name) || passed.exchange(true)) return false;
  spdlog::warn("failpoint {} reached: failing once (CDR_RETENTION_FAILPOINT)", name);
  return true;
}

}  // namespace cdr::service
