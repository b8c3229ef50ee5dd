// Power-loss simulation for the store (with the daemon's
// CDR_RETENTION_SYNC_LEDGER, lib/adapters/store/sync_ledger.h): after the
// daemon was killed with SIGKILL, cuts what RocksDB wrote to what it had
// made durable, as a power failure would leave it.
#pragma once

#include <cstdint>
#include <string>

namespace cdr::test {

struct power_loss {
  std::size_t files_removed = 0;    // created, never made durable
  std::size_t files_truncated = 0;  // cut to their last synced size
  std::uint64_t bytes_dropped = 0;
};

// Applies the ledger at `ledger_path`, then empties it (what survives is
// durable from then on).
power_loss apply_power_loss(const std::string& ledger_path);

}  // namespace cdr::test
