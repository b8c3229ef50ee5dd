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
// new_keystore: its identifiers would silently become unreadable.
std::unique_ptr<crypto::keystore> open_keystore(const storage_config& c, bool new_keystore);

// Records which key store the store is sealed under; a store written under
// another key store is refused (unless new_keystore).
void bind_keystore(store::store& s, store::saved_state& state, const crypto::keystore& keys, bool new_keystore);

}  // namespace cdr::service
