#include "system_time.h"

namespace cdr::service {

instant system_time::now() const { return std::chrono::floor<microseconds>(std::chrono::system_clock::now()); }

mono_time system_time::monotonic() const { return std::chrono::steady_clock::now(); }

void system_time::block(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, mono_time deadline) const {
  cv.wait_until(lock, deadline);
}

}  // namespace cdr::service
