// One subject, one identity across builds (docs/operations.md, "Re-indexing
// identifiers"): at start-up, before anything reads or writes the subject
// index, the store is brought to the identifier form the configuration asks
// for (cdr/core/identity.h).
//
// A store that records no form was written by a build before forms: its
// form is "digits". When the recorded form differs from the configured one,
// every sealed identifiers value (live partitions, then the held family) is
// opened and, where a value's old and new forms differ, its subject-index
// entry is moved to the new form's hash. Each batch of records commits its
// index changes and the position reached in one synced write, so a crash
// resumes where it stopped and a record is never left under both forms or
// neither. Holds and erasure records name subjects by keyed hashes made
// under the form of their time: the forms a store was written under stay
// recorded, and matching tries each of them (identity::forms_of).
//
// The erasure ledger names subjects by index hashes under the form of the
// erasure's time. An index entry under the old form that a ledger entry
// names is kept beside the new one, so that an erasure re-applied after a
// restore (retention::recover, which runs after this) still finds the
// record; erasing it removes the entries of every form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "cdr/core/identity.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"
#include "vault.h"

namespace cdr::service {

struct reindex_report {
  std::string from;  // the form found; empty: a new store
  std::string to;
  std::uint64_t records = 0;  // identifiers values read
  std::uint64_t moved = 0;    // index entries moved to the new form
  std::uint64_t kept = 0;     // old entries kept for the erasure ledger
  std::uint64_t unreadable = 0;
  bool resumed = false;  // a re-index stopped by a crash was taken up again
};

// Brings the store to `form`; returns the identity to run with (the form
// and the earlier ones) and what was done. Throws std::runtime_error when
// the recorded form does not decode (the daemon must not start: holds and
// erasures could stop matching). `batch`: records per synced write.
// `ledgered`: reads the erasure ledger's index hashes, (key name, hash)
// pairs; called only when there is something to re-index. `progressed`:
// told the records read so far after each batch (the start-up's health).
using ledger_indexes = std::set<std::pair<std::string, std::string>>;
std::pair<identity, reindex_report> bring_to_form(store::store& s, store::saved_state& state, vault& keys,
                                                  const phone_parser& parser, const std::string& form,
                                                  const std::function<ledger_indexes()>& ledgered = {},
                                                  std::size_t batch = 1000,
                                                  const std::function<void(std::uint64_t)>& progressed = {});

}  // namespace cdr::service
