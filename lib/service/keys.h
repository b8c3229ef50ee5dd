// The key files and the key store, opened before anything is written
// (docs/architecture.md, "Keys").
#pragma once

#include <memory>

#include "cdr/core/config.h"
#include "cdr/crypto/keystore.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"

namespace cdr::service {

// Opens the key store (creating it, and its directory, for a new store). A
// missing key store next to an existing store is refused unless
// new_keystore: its identifiers would silently become unreadable. A key
// store that a store was created under, while that store is missing or
// empty, is refused unless new_store: holds, records, offsets and the
// audit trail would silently start over.
std::unique_ptr<crypto::keystore> open_keystore(const storage_config& c, bool new_keystore, bool new_store);

// The key store's markers: a store was created under it; the audit trail
// is chained under the key derived from its master key.
inline constexpr std::string_view store_bound_marker = "store_bound";
inline constexpr std::string_view audit_keyed_marker = "audit_keyed";

// Records which key store the store is sealed under; a store written under
// another key store is refused (unless new_keystore).
void bind_keystore(store::store& s, store::saved_state& state, crypto::keystore& keys, bool new_keystore);

}  // namespace cdr::service
