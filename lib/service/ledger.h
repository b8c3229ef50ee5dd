// The erasure ledger (docs/operations.md, "Erasure ledger"): every subject
// erasure, appended and fsynced before its first commit, to a JSON-lines
// file beside the key store (erasures.jsonl), outside storage.path and its
// checkpoints. A store restored from a checkpoint or a backup rolls back;
// the ledger does not, and at start-up every erasure it holds that the
// store does not show as done is applied again (retention::recover).
//
// The ledger has integrity of its own, as the audit trail has: each line
// carries its sequence number, the previous line's hash and its own, an
// HMAC-SHA-256 under a key derived from the master key. Its entry count
// and head are recorded in the key store (sealed under the master key)
// after each append and before the erasure is acknowledged, where a
// restored data directory cannot roll them back. A ledger that is missing,
// not a regular file, shorter than recorded, or whose chain does not
// verify stops the start (start_refused, exit 2) with a message naming the
// file and the remedy. A last line is cut only when it does not verify and
// was never acknowledged (beyond the recorded count); its bytes are kept
// aside in erasures.jsonl.cut-line<N>-<random hex>.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <utility>

#include "cdr/core/saved_state.h"
#include "cdr/crypto/keystore.h"

namespace cdr::service {

class erasure_ledger {
 public:
  // Checks the file against the key store's record (re-chaining a ledger of
  // a build before the chain once, cutting an unacknowledged partial last
  // line); throws start_refused naming what is wrong.
  erasure_ledger(std::string path, crypto::keystore& keys);

  // The ledger's path for this key store path: beside it.
  static std::string beside(const std::string& keystore_path);

  // Appends, fsyncs and records the new count and head in the key store.
  void append(const ledger_entry& e);
  // Each entry in order, one line at a time.
  void for_each(const std::function<void(ledger_entry&&)>& fn) const;
  // Every (key name, index hash) pair its entries name (reindex.h).
  std::set<std::pair<std::string, std::string>> index_hashes() const;
  const std::string& path() const { return path_; }
  std::size_t entries() const { return entries_; }

  // The key store record's name and its value for a count and a head.
  static constexpr std::string_view record_name = "erasure_ledger";
  static std::string record_value(std::size_t entries, std::string_view head_hex);

 private:
  // The line for `e` after the current head (the head not moved).
  std::string chained(const ledger_entry& e) const;
  std::string hash_of(const nlohmann::json& line) const;
  [[noreturn]] void refuse(const std::string& why) const;

  std::string path_;
  crypto::keystore& keys_;
  std::string chain_key_;
  std::size_t entries_ = 0;
  std::string head_ = std::string(64, '0');  // hex hash of the last line
};

}  // namespace cdr::service
