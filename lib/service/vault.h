// Identifier protection (docs/architecture.md, "Keys"): identifier values
// sealed under their partition's data key, subject-index hashes keyed by
// it, and the destruction of keys that protect nothing any more
// (crypto-shredding). One per daemon, shared by ingest and retention.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cdr/core/key_layout.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"
#include "cdr/crypto/keystore.h"

namespace cdr::service {

// A partition's key has generations: each seals at most
// `max_seals_per_key` values (reserved in the key store in blocks before
// use, so a crash never lets one pass its limit), then the partition goes on
// under the next. A value sealed under generation 0 is the AEAD's sealed
// form; under generation g > 0 it is 0x02 | g (4 bytes, big endian) | the
// sealed form. Subject-index hashes always use generation 0's index key, so
// a subject's hash does not change with the generation. Destroying a
// partition's key destroys every generation.
class vault {
 public:
  vault(crypto::keystore& keys, std::uint64_t max_seals_per_key) : keys_(keys), max_seals_(max_seals_per_key) {}

  // Writers hold a lease from sealing a batch until it is committed; key
  // destruction takes the guard exclusively, so it decides on committed
  // data only and never removes a key a batch in flight is sealed under.
  std::shared_lock<std::shared_mutex> lease() const { return std::shared_lock(guard_); }
  std::unique_lock<std::shared_mutex> exclusive() const { return std::unique_lock(guard_); }
  // Grows with every destruction: a batch sealed under an older epoch and
  // not committed yet must be built again.
  std::uint64_t epoch() const { return epoch_.load(); }

  // Seals `plaintext` under the key of (scope, p), created if missing, into
  // `sealed`, and puts the keyed hash of each normalised identifier under
  // the same key's index key into `hashes` (both replaced). False when that
  // key was destroyed: a partition key never comes back (a held key is
  // created anew).
  bool seal_indexed(key_scope scope, const partition& p, std::string_view associated_data, std::string_view plaintext,
                    const std::vector<std::string>& normalized, std::string& sealed, std::vector<std::string>& hashes);
  // Keyed hash of a normalised identifier under (scope, p)'s index key;
  // nullopt when that key does not exist.
  std::optional<std::string> index_hash(key_scope scope, const partition& p, std::string_view normalized);

  enum class open_status { ok, key_destroyed, unreadable };
  struct opened {
    open_status status = open_status::ok;
    std::string plaintext;
  };
  // unreadable (tampered, truncated, moved to another key) is counted.
  opened open(key_scope scope, const partition& p, std::string_view associated_data, std::string_view sealed);

  // The keys that exist, by scope and partition.
  std::vector<std::pair<key_scope, partition>> live() const;
  // Destroys the keys (call with exclusive() held); returns their names.
  std::vector<std::string> destroy(const std::vector<std::pair<key_scope, partition>>& which);
  bool destroyed(key_scope scope, const partition& p) const;
  // How many generations of each key exist (keys with none are absent).
  std::map<std::pair<key_scope, partition>, std::uint32_t> live_generations() const;
  // The same for one key (0: none).
  std::uint32_t generations(key_scope scope, const partition& p) const;

  std::uint64_t decrypt_failures() const { return decrypt_failures_.load(); }
  const crypto::keystore& keys() const { return keys_; }
  crypto::keystore& keys() { return keys_; }

 private:
  struct entry {
    explicit entry(const crypto::data_key& first) : index(first.index) {}
    crypto::keyed_hasher index;                                      // generation 0's
    std::uint32_t generation = 0;                                    // the one sealing now
    std::uint64_t left = 0;                                          // seals reserved under it and not used yet
    std::map<std::uint32_t, std::unique_ptr<crypto::aead>> ciphers;  // loaded on use
  };
  // nullptr when the key does not exist (and was not created).
  entry* find(key_scope scope, const partition& p, bool create);
  // The cipher of one generation; nullptr when that generation does not exist.
  crypto::aead* cipher(key_scope scope, const partition& p, entry& e, std::uint32_t generation);
  // Reserves seals under the current generation, moving to the next when it
  // is spent; false when the key was destroyed meanwhile.
  bool reserve(key_scope scope, const partition& p, entry& e);
  // Every generation's name of each (scope, p) in `which`, as the key store has them.
  std::vector<std::string> generation_names(const std::vector<std::pair<key_scope, partition>>& which) const;

  crypto::keystore& keys_;
  const std::uint64_t max_seals_;
  mutable std::shared_mutex guard_;
  std::mutex mutex_;  // the cache and the contexts in it
  std::map<std::pair<key_scope, partition>, std::unique_ptr<entry>> cache_;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<std::uint64_t> decrypt_failures_{0};
};

}  // namespace cdr::service
