// Power-loss simulation (with the daemon's CDR_RETENTION_SYNC_LEDGER,
// cdr/store/durability.h): after the daemon was killed with SIGKILL (its
// page cache survives, as a power failure's would not), cuts its files to
// what a real disk could hold after losing power:
// - a file created (or renamed into place) whose directory was not synced
//   since is gone; a rename or delete not followed by a sync of its
//   directory is undone (the file a rename replaced, or a delete removed,
//   comes back from the copy the ledger kept aside);
// - a file's bytes past its last sync are torn at a random point: anything
//   from none to all of them survives.
// Every durable file is covered: RocksDB's, the key store, the audit trail,
// the erasure ledger, checkpoints.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace cdr::test {

struct power_loss {
  std::size_t files_removed = 0;    // created, never made durable
  std::size_t files_truncated = 0;  // torn within their unsynced bytes
  std::size_t undone = 0;           // renames and deletes lost
  std::uint64_t bytes_dropped = 0;
};

// How much of a file's unsynced tail reaches the disk: a random part of it,
// or none (the worst case, for a check that must not depend on luck).
enum class tear { random, all };

// Applies the ledger at `ledger_path` (tails torn with `rng`), then empties
// it (what survives is durable from then on).
power_loss apply_power_loss(const std::string& ledger_path, std::mt19937_64& rng, tear how = tear::random);

}  // namespace cdr::test
