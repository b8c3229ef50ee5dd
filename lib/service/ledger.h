// The erasure ledger (docs/operations.md, "Erasure ledger"): every subject
// erasure, appended and fsynced before its first commit, to a JSON-lines
// file beside the key store (erasures.jsonl), outside storage.path and its
// checkpoints. A store restored from a checkpoint or a backup rolls back;
// the ledger does not, and at start-up every erasure it holds that the
// store does not show as done is applied again (retention::recover).
//
// A line that does not decode stops the daemon from starting (an erasure
// must never be forgotten in silence); a partial last line (a crash during
// the append, before the erasure was acknowledged or committed) is cut off.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <utility>

#include "cdr/core/saved_state.h"

namespace cdr::service {

class erasure_ledger {
 public:
  // Checks the file (cutting a partial last line); throws
  // std::runtime_error naming the first line that does not decode.
  explicit erasure_ledger(std::string path);

  // The ledger's path for this key store path: beside it.
  static std::string beside(const std::string& keystore_path);

  void append(const ledger_entry& e);
  // Each entry in order, one line at a time.
  void for_each(const std::function<void(ledger_entry&&)>& fn) const;
  // Every (key name, index hash) pair its entries name (reindex.h).
  std::set<std::pair<std::string, std::string>> index_hashes() const;
  const std::string& path() const { return path_; }
  std::size_t entries() const { return entries_; }

 private:
  std::string path_;
  std::size_t entries_ = 0;
};

}  // namespace cdr::service
