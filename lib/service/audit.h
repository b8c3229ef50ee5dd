// The audit trail: an append-only, hash-chained JSON-lines file of every
// retention action, hold and subject request (docs/operations.md, "Audit").
//
// An entry first becomes durable in the store, in the same atomic change as
// the action it describes (so a crash cannot separate them), then drain()
// appends it to the file with its sequence number, the SHA-256 of the
// previous line and its own hash, fsyncs, and records the chain's head in
// the store. verify() recomputes the chain and compares it with the head:
// an altered, removed or reordered line, or a truncated file, is detected.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/time.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"

namespace cdr::service {

class audit_trail {
 public:
  // Appends entries a crash left in the store. An entry (or the head) that
  // does not decode is never skipped: nothing is appended until it is
  // repaired (the saved state reports it).
  audit_trail(store::store& s, store::saved_state& state, std::string path);

  // Adds an entry to a change; it is appended by the next drain() after
  // the change is applied. `op` ties it to the deletion event of the same
  // action.
  void stage(store::change& c, std::uint64_t op, nlohmann::json entry, instant at);
  void drain();

  struct verdict {
    bool ok = true;
    std::uint64_t entries = 0;
    std::string problem;     // empty when ok
    std::uint64_t line = 0;  // the first bad line (1-based), 0 when ok
  };
  verdict verify() const;
  // Entries (as written) at or after `since`.
  std::vector<nlohmann::json> read(std::optional<instant> since) const;
  const std::string& path() const { return path_; }

 private:
  // Appends text to the file and syncs it.
  void append(const std::string& text) const;

  store::store& store_;
  store::saved_state& state_;
  std::string path_;
  std::mutex mutex_;
};

}  // namespace cdr::service
