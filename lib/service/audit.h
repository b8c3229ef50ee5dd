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
#include "cdr/store/store.h"

namespace cdr::service {

class audit_trail {
 public:
  // Appends entries a crash left in the store.
  audit_trail(store::store& s, std::string path);

  // Adds an entry to a change; it is appended by the next drain() after
  // the change is applied. `op` ties it to the deletion event of the same
  // action.
  void stage(store::change& c, std::uint64_t op, nlohmann::json entry, instant at);
  void drain();

  struct verdict {
    bool ok = true;
    std::uint64_t entries = 0;
    std::string problem;  // empty when ok
    std::uint64_t line = 0;  // the first bad line (1-based), 0 when ok
  };
  verdict verify() const;
  // Entries (as written) at or after `since`.
  std::vector<nlohmann::json> read(std::optional<instant> since) const;
  const std::string& path() const { return path_; }

 private:
  store::store& store_;
  std::string path_;
  std::mutex mutex_;
};

}  // namespace cdr::service
