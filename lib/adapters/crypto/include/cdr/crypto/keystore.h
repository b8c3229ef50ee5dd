// The key store: the data keys identifiers are encrypted under, each wrapped
// (AES-256-GCM) by a master key read from a file, in one small file of its
// own outside the RocksDB data directory and outside every checkpoint.
//
// File format (JSON, docs/operations.md "Key store"):
//   {"format": 1, "id": hex(16 random bytes),
//    "check": hex(sealed marker),               -- opens only under the right master key
//    "keys": {name: hex(sealed 64-byte key pair), ...},
//    "reserved": {name: n, ...},                 -- seals reserved under each key (absent: 0)
//    "destroyed": [name, ...], "destroyed_total": n,
//    "markers": [name, ...], "records": {name: hex(sealed value), ...}}
// Every change is written to a temporary file, synced, renamed over the old
// one and the directory synced; the old file's blocks are then overwritten
// with zeros, so a destroyed key's wrapped bytes are not left behind in it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cdr::crypto {

// A missing or wrong master key, an unreadable or corrupt key store file,
// or a failed write. The message names files, never key bytes.
// For the power-loss simulation in tests only (cdr/store/durability.h):
// told of each step that makes a key store file durable. The service sets
// them when that simulation is armed; unset, nothing is told.
struct durability_hooks {
  std::function<void(const std::string& path)> created;
  std::function<void(const std::string& path, std::uint64_t size)> synced;
  std::function<std::string(const std::string& path)> set_aside;  // before a rename onto it
  std::function<void(const std::string& from, const std::string& to, const std::string& shadow)> renaming;
  std::function<void(const std::string& dir)> dir_synced;
};
void set_durability_hooks(durability_hooks hooks);

class keystore_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One data key: a 256-bit AES-256-GCM key for values and a 256-bit
// HMAC-SHA-256 key for the subject index, both random.
struct data_key {
  std::string cipher;
  std::string index;
  data_key() = default;
  data_key(const data_key&) = default;
  data_key& operator=(const data_key&) = default;
  ~data_key();
};

// Reads a master key file (at least 32 bytes). Throws keystore_error.
std::string load_master_key(const std::string& path);

class keystore {
 public:
  // Opens the key store at path with the master key (the file's bytes).
  // A missing file is created (empty) only when create is true. Throws
  // keystore_error when the master key does not open it.
  keystore(std::string path, std::string master_key, bool create);
  ~keystore();
  keystore(const keystore&) = delete;
  keystore& operator=(const keystore&) = delete;

  static bool exists(const std::string& path);

  const std::string& path() const { return path_; }
  // Random id of this key store, recorded by the store it protects.
  const std::string& id() const { return id_; }

  std::optional<data_key> get(std::string_view name) const;
  // The key, created (and written) if absent. nullopt when the name was
  // destroyed and reuse is false: a destroyed key never comes back.
  std::optional<data_key> get_or_create(std::string_view name, bool reuse);
  // Removes the keys (those present) and rewrites the file; returns the
  // names actually destroyed.
  std::vector<std::string> destroy(const std::vector<std::string>& names);

  // Reserves up to `want` more seals under the key `name` without its
  // total passing `limit`, and writes the reservation before returning it:
  // a crash loses the unused part of a reservation, never lets a key seal
  // past its limit. Returns the number granted, 0 when the key has reached
  // its limit. Throws keystore_error when the key does not exist.
  std::uint64_t reserve(std::string_view name, std::uint64_t want, std::uint64_t limit);
  std::uint64_t reserved(std::string_view name) const;

  std::vector<std::string> names() const;
  bool destroyed(std::string_view name) const;
  std::size_t live() const;
  std::uint64_t destroyed_total() const;

  // Wraps every key under a new master key and rewrites the file (master
  // key rotation; the data is not re-encrypted).
  void rewrap(std::string new_master_key);

  // Facts about the installation kept beside the keys, outside the data
  // directory, so a copy or loss of the data directory cannot change them
  // (e.g. "store_bound": a store was created under this key store).
  bool has_marker(std::string_view name) const;
  void add_marker(std::string_view name);  // rewrites the file
  // Small values kept beside the keys, sealed under the master key so that
  // neither an edit of the file nor a copy of an older one from another
  // installation passes (e.g. the erasure ledger's entry count and head).
  // nullopt: never set.
  std::optional<std::string> record(std::string_view name) const;
  void set_record(std::string_view name, std::string_view value);  // rewrites the file
  // A secret derived from the master key for `purpose`: kept nowhere,
  // recomputed at start, and different after a master key rotation.
  std::string derive(std::string_view purpose) const;
  // A secret for `purpose` that outlives master key rotations (the audit
  // trail's and the erasure ledger's chain keys: a rotation must not break
  // their chains). Kept as a record, sealed under the master key; the first
  // call sets it to derive(purpose), so a chain keyed before it existed
  // still verifies.
  std::string stable_secret(std::string_view purpose);

 private:
  struct entry;
  // The key of that name (mutex_ held); nullptr when there is none.
  entry* find_locked(std::string_view name) const;
  void write_locked();
  std::string path_;
  std::string kek_;
  std::string id_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<entry>> keys_;
  std::vector<std::string> destroyed_;
  std::uint64_t destroyed_total_ = 0;
  std::vector<std::string> markers_;
  std::map<std::string, std::string, std::less<>> records_;  // name -> value (opened)
};

}  // namespace cdr::crypto
