// The audit trail: an append-only, hash-chained JSON-lines file of every
// retention action, hold and subject request (docs/operations.md, "Audit").
//
// An entry first becomes durable in the store, in the same atomic change as
// the action it describes (so a crash cannot separate them), then drain()
// appends it to the file with its sequence number, the hash of the
// previous line and its own, fsyncs, and records the chain's head (sequence,
// hash, and the file's size after it) in the store.
//
// The chain is keyed: each line's hash is an HMAC-SHA-256 under a key
// derived from the master key (outside storage.path), so a copy of the data
// directory alone cannot forge a consistent trail. verify() recomputes it:
// an altered, removed or reordered line, or a truncated file, is detected.
// A partial last line (a short write: a full disk, a kill mid-write) is cut
// off before the next append, and the repair is an entry of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/time.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"

namespace cdr::service {

struct audit_keying {
  std::string key;  // the chain's HMAC key
  // A trail chained with plain SHA-256 (by builds before the keyed chain) is
  // re-keyed once, if it verifies; the daemon allows it only until its key
  // store records that the trail is keyed.
  bool migrate_legacy = false;
};

class audit_trail {
 public:
  // Re-keys a legacy trail (if allowed), repairs a partial tail, and
  // appends entries a crash left in the store. An entry (or the head) that
  // does not decode is never skipped: nothing is appended until it is
  // repaired (the saved state reports it).
  audit_trail(store::store& s, store::saved_state& state, const clock& time, std::string path, audit_keying keying);

  // Adds an entry to a change; it is appended by the next drain() after
  // the change is applied. `op` ties it to the deletion event of the same
  // action.
  void stage(store::change& c, std::uint64_t op, nlohmann::json entry, instant at);
  // An entry drain() appended: its operation, sequence number and hash.
  struct appended {
    std::uint64_t op = 0;
    std::uint64_t seq = 0;
    std::string hash;
  };
  std::vector<appended> drain();

  struct verdict {
    bool ok = true;
    std::uint64_t entries = 0;
    std::string problem;     // empty when ok
    std::uint64_t line = 0;  // the first bad line (1-based), 0 when ok
  };
  verdict verify() const;
  // Calls fn with each entry (as written) at or after `since`, one line at
  // a time; returns how many. A line that does not parse is never skipped:
  // fn gets {"line": N, "unreadable": why, "text": the line} in its place.
  std::size_t for_each(std::optional<instant> since, const std::function<void(nlohmann::json)>& fn) const;
  const std::string& path() const { return path_; }

 private:
  // What lies beyond the head in the file: complete lines that continue the
  // chain (appended before a crash moved the head) and a cut for the rest.
  struct tail {
    audit_head head;
    std::uint64_t appended_op = 0;
    std::optional<std::uint64_t> cut_at;  // truncate the file here
    std::uint64_t cut_bytes = 0;
  };
  tail read_tail(audit_head head) const;
  // Re-keys a legacy trail; the entry that records it, if it did.
  std::optional<nlohmann::json> migrate(audit_head& head);
  std::string hash_of(nlohmann::json line) const;
  // Appends a line chained after h, advancing h.
  std::string chained(audit_head& h, std::uint64_t op, instant at, nlohmann::json entry) const;
  void append(const std::string& text) const;

  store::store& store_;
  store::saved_state& state_;
  const clock& time_;
  std::string path_;
  audit_keying keying_;
  bool migration_checked_ = false;  // guarded by mutex_
  std::mutex mutex_;
};

}  // namespace cdr::service
