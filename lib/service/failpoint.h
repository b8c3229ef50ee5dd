// Fault injection for tests. A point is armed by the environment variable
// CDR_RETENTION_FAILPOINT naming it (unset in production), or in-process by
// arm_failpoint() (unit tests).
//
// failpoint(): with the environment variable, the process exits at once with
// status 86, as a kill -9 there would leave it
// (tests/integration/crypto_shredding_test.cc); armed in-process, it throws
// simulated_crash, and the test drops what it built as a crash would.
// failpoint_once(): true the first time the point is passed, so the caller
// takes its failure path once (tests/integration/ingest_test.cc).
//
// The points: before_key_destruction, after_logical_step (a sweep's ranges
// are removed and journalled, the physical step has not run),
// refuse_batch_as_stale (once), after_reindex_batch (a re-index batch and
// its position are committed; reindex.h).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace cdr::service {

class simulated_crash : public std::runtime_error {
 public:
  explicit simulated_crash(std::string_view point)
      : std::runtime_error("simulated crash at failpoint " + std::string(point)) {}
};

bool failpoint_armed(std::string_view name);
void failpoint(std::string_view name);
bool failpoint_once(std::string_view name);

// In-process arming for unit tests; an empty name disarms.
void arm_failpoint(std::string name);

}  // namespace cdr::service
