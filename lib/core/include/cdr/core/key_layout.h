// Storage key layout (docs/architecture.md, "Key layout").
//
// Every record key starts with a 7-byte partition prefix
//
//   kind (1 byte) | month index (4 bytes, big-endian) | class (2 bytes, big-endian)
//
// so byte order = (kind, month, class) order and each partition is one
// contiguous key range [prefix, next prefix). A sweep deletes that range and
// cuts SST files at prefix boundaries; its cost does not depend on how many
// records the partition holds.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cdr/core/month.h"
#include "cdr/core/policy.h"

namespace cdr {

inline constexpr std::size_t partition_prefix_size = 7;
inline constexpr std::size_t subject_hash_size = 32;  // HMAC-SHA-256

// Unsigned 64-bit integers as 8 big-endian bytes (byte order = numeric
// order), used for stored counts, offsets, digests and sequence keys.
void append_be64(std::string& out, std::uint64_t v);
std::string be64(std::uint64_t v);
// Reads the first 8 bytes (fewer if s is shorter).
std::uint64_t read_be64(std::string_view s);

struct partition {
  record_kind kind = record_kind::cdr;
  cdr::month month = month::of(1970, 1);
  retention_class cls = 0;

  auto operator<=>(const partition&) const = default;
  std::string to_string() const;  // e.g. "cdr/2025-03/0"
};

void append_partition_prefix(std::string& out, const partition& p);
std::string partition_prefix(const partition& p);

// Key of a record in the metadata, identifiers or usage column family;
// assign_record_key writes it into a reused buffer, replacing its content.
std::string record_key(const partition& p, std::string_view id);
void assign_record_key(std::string& out, const partition& p, std::string_view id);
// Key of a subject-index entry: prefix | keyed hash (32 bytes) | record id.
std::string subject_key(const partition& p, std::string_view hash, std::string_view id);

// The partition a key belongs to; nullopt for keys shorter than a prefix or
// with an unknown kind byte.
std::optional<partition> decode_partition(std::string_view key);
// The record id of a record key (what follows the prefix).
std::string_view record_id_of(std::string_view key);

// The id index (the `ids` family): kind byte + record id, so a record is
// found by its id without knowing its month.
std::string id_index_key(record_kind kind, std::string_view id);

// [begin, end) covering exactly one partition.
struct key_range {
  std::string begin;
  std::string end;
  friend bool operator==(const key_range&, const key_range&) = default;
};
key_range partition_range(const partition& p);
// [key, key + "\0"): exactly one key.
key_range point_range(std::string_view key);
// Every key that starts with `prefix`.
key_range prefix_range(std::string_view prefix);

// The column families records and their index live in
// (docs/architecture.md, "Key layout"). Retention rules name the families an
// action clears (families_cleared, cdr/core/retention.h); the store maps them
// to RocksDB's.
enum class family : std::uint8_t { metadata, identifiers, usage, subject_index, held };
std::string_view name(family f);
std::optional<family> family_from_name(std::string_view text);

// A key range of one family: what a retention change removes and what
// verification checks is gone from disk.
struct removal {
  cdr::family family = family::identifiers;
  key_range range;
  // Only the versions other than the key's current value must be gone (a
  // point range an exact erasure re-sealed without the erased subject's
  // values: the rest of the record's identifiers stay).
  bool older_versions = false;
  friend bool operator==(const removal&, const removal&) = default;
};

// The held column family (records a legal hold keeps past their deadline,
// the Korea annex's "separate database") reuses the keys above behind a
// one-byte tag, so each tag is a range of its own ordered by partition.
enum class held_tag : char {
  record = 'm',       // + record key -> CDR metadata or usage event
  identifiers = 'i',  // + record key -> CDR identifiers
  subject = 's',      // + subject key -> ""
};
std::string held_key(held_tag tag, std::string_view key);
// Every key of one tag in the held family.
key_range held_range(held_tag tag);

// Names of the data keys in the key store (docs/architecture.md, "Keys"):
// one per partition of CDRs. `partition` encrypts the partition's
// identifier values and keys its subject index, and is destroyed when the
// partition is stripped; `held` does the same for the copies legal holds
// keep of it, and is destroyed once none is left.
enum class key_scope : char { partition = 'p', held = 'h' };
// A data key's name in the key store: "p/cdr/2025-03/0" for its first
// generation, "p/cdr/2025-03/0#2" for its third (a key seals at most
// storage.max_seals_per_key values; then its partition continues under the
// next generation).
std::string key_name(key_scope scope, const partition& p, std::uint32_t generation = 0);
struct key_ref {
  key_scope scope;
  partition p;
  std::uint32_t generation = 0;
};
std::optional<key_ref> parse_key_name(std::string_view name);

}  // namespace cdr
