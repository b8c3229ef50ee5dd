#include "failpoint.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include <spdlog/spdlog.h>

namespace cdr::service {
namespace {

std::mutex test_mutex;
std::string test_armed;  // guarded by test_mutex

bool armed_by_environment(std::string_view name) {
  static const char* armed = std::getenv("CDR_RETENTION_FAILPOINT");
  return armed != nullptr && name == armed;
}

bool armed_in_process(std::string_view name) {
  std::lock_guard lock(test_mutex);
  return !test_armed.empty() && name == test_armed;
}

}  // namespace

bool failpoint_armed(std::string_view name) { return armed_by_environment(name) || armed_in_process(name); }

void failpoint(std::string_view name) {
  if (armed_in_process(name)) throw simulated_crash(name);
  if (armed_by_environment(name)) {
    spdlog::critical("failpoint {} reached: exiting without cleanup (CDR_RETENTION_FAILPOINT)", name);
    spdlog::default_logger()->flush();
    std::_Exit(86);
  }
}

// One flag serves: only one point is armed.
bool failpoint_once(std::string_view name) {
  static std::atomic<bool> passed{false};
  if (!failpoint_armed(name) || passed.exchange(true)) return false;
  spdlog::warn("failpoint {} reached: failing once (CDR_RETENTION_FAILPOINT)", name);
  return true;
}

void arm_failpoint(std::string name) {
  std::lock_guard lock(test_mutex);
  test_armed = std::move(name);
}

}  // namespace cdr::service
