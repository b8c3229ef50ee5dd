// What the store adapter's files share and nothing else sees: the column
// family table, the system family's tags, error classification and the
// private state behind store, write_batch and change.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include "cdr/store/store.h"

namespace cdr::store::detail {

enum cf : std::size_t {
  cf_default,
  cf_metadata,
  cf_identifiers,
  cf_usage,
  cf_subject,
  cf_ids,
  cf_held,
  cf_system,
  cf_count
};
inline constexpr std::array<const char*, cf_count> cf_names{"default",       "metadata", "identifiers", "usage",
                                                            "subject_index", "ids",      "held",        "system"};
using handles = std::array<rocksdb::ColumnFamilyHandle*, cf_count>;

constexpr std::size_t cf_of(family f) {
  switch (f) {
    case family::metadata: return cf_metadata;
    case family::identifiers: return cf_identifiers;
    case family::usage: return cf_usage;
    case family::subject_index: return cf_subject;
    case family::held: return cf_held;
  }
  return cf_held;
}
std::optional<family> family_of(std::size_t c);
// Whether a file's keys [smallest, largest] meet the range.
inline bool overlaps(std::string_view smallest, std::string_view largest, const key_range& r) {
  return largest >= std::string_view(r.begin) && (r.end.empty() || smallest < std::string_view(r.end));
}
std::optional<family> family_named(std::string_view cf_name);
// Whether the range is exactly one key (point_range, cdr/core/key_layout.h).
inline bool is_point(const key_range& r) {
  return r.end.size() == r.begin.size() + 1 && r.end.back() == '\0' && r.end.starts_with(r.begin);
}

// Keys of the system family: one tag byte, then the rest.
inline constexpr std::string_view format_key = "format_version";
inline constexpr char offset_tag = 'o';  // + topic + '\0' + partition (be64) -> next offset (be64)
inline constexpr char count_tag = 'c';   // + partition prefix -> record count (be64, merge-added)
inline constexpr char state_tag = 's';   // + partition prefix -> state bits
inline constexpr char entry_tag = 'q';   // + saved-state key (cdr/store/saved_state.h) -> its encoding

std::string tagged(char tag, std::string_view rest);
std::string offset_key(std::string_view topic, std::int32_t kafka_partition);
std::uint8_t state_bits(partition_state s);
partition_state state_of_bits(std::uint8_t b);

// Classifies a RocksDB failure and throws it as a store_error.
[[noreturn]] void raise(const rocksdb::Status& s, std::string_view what);
// Turns RocksDB's per-thread perf context off on the calling thread (once).
void without_perf_context();

// An id index entry: partition prefix + digest (be64), then this marker
// when the record is held (change::hold_id): a held entry outlives a
// dropped partition.
inline constexpr std::size_t id_entry_size = partition_prefix_size + 8;
inline constexpr char held_id_marker = 'h';

// Prefixes of dropped partitions, shared with the id index's compaction
// filter: an id whose partition was dropped leaves the index with the next
// compaction of its file, at no per-record cost to the sweep.
class dropped_set {
 public:
  bool contains(std::string_view prefix) const;
  void add(std::string prefix);

 private:
  mutable std::shared_mutex mutex_;
  std::set<std::string, std::less<>> prefixes_;
};

// The keys a purge pass drops, per column family, sorted: a compaction of
// a family sees every version of a key in its input; one of these goes
// unless it is the key's current value that an exact erasure re-sealed
// (`keep`). Installed for the pass's own compactions (and any background
// compaction that starts meanwhile: those keys are deleted already, so
// dropping them changes no read); none outside a pass.
struct purge_keys {
  struct key {
    std::string name;
    std::optional<std::string> keep;
    friend bool operator<(const key& a, const key& b) { return a.name < b.name; }
  };
  std::array<std::vector<key>, cf_count> by_family;
  // Whether this version of the key in family `cf` goes.
  bool drops(std::size_t cf, std::string_view name, std::string_view value) const;
};
class purge_slot {
 public:
  std::shared_ptr<const purge_keys> get() const;
  void set(std::shared_ptr<const purge_keys> keys);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const purge_keys> keys_;
};

// The options every column family and the database open with, and the
// objects they point to (options.cc, where each setting says why).
struct tuning {
  std::unique_ptr<rocksdb::Env> env;  // set when the store's file system is not the default one
  rocksdb::DBOptions db;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  std::shared_ptr<rocksdb::Statistics> stats;
  std::unique_ptr<rocksdb::CompactionFilter> ids_filter;
};
tuning make_tuning(const storage_config& config, std::shared_ptr<dropped_set> dropped,
                   const std::shared_ptr<purge_slot>& purging);

}  // namespace cdr::store::detail

namespace cdr::store {

// The current value of each key of an older_versions removal (nullopt: the
// key is gone, so every version of it is a residue).
using current_values = std::map<std::pair<family, std::string>, std::optional<std::string>>;

struct store::impl {
  std::unique_ptr<rocksdb::Env> env;  // outlives db (declared first)
  std::unique_ptr<rocksdb::DB> db;
  detail::handles cf{};
  std::shared_ptr<rocksdb::Statistics> stats;
  std::shared_ptr<detail::dropped_set> dropped = std::make_shared<detail::dropped_set>();
  std::shared_ptr<detail::purge_slot> purging = std::make_shared<detail::purge_slot>();
  std::unique_ptr<rocksdb::CompactionFilter> ids_filter;
  std::string path;

  mutable std::atomic<std::uint64_t> corrupt{0};  // entries met that do not decode

  // A write failed for lack of space: RocksDB then refuses writes until
  // Resume() succeeds, which it does once space is back.
  bool needs_resume = false;
  store_error::kind resume_kind = store_error::kind::fatal;

  // Serialises batch commits with retention changes, so no batch built
  // before a sweep closed a partition can write into it afterwards.
  std::mutex write_mutex;
  std::map<partition, partition_state> states;  // guarded by write_mutex

  rocksdb::ColumnFamilyHandle* h(family f) const { return cf[detail::cf_of(f)]; }
  rocksdb::ColumnFamilyHandle* system() const { return cf[detail::cf_system]; }

  // Writes a batch (write_mutex held by the caller); resumes after a
  // full disk first.
  void write(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch, std::string_view what);
  // Flushes the memtables of every column family (waits for it).
  void flush_all(std::string_view what);
  // DeleteFilesInRange for each range: drops the SST files wholly inside it
  // (not those a compaction is reading); the first failure, if any.
  rocksdb::Status delete_files(const std::vector<removal>& ranges) const;
  // Adds the live WAL records that put a key into one of the ranges;
  // returns the number of live WAL files (disk_check.cc).
  std::size_t wal_residues(const std::vector<removal>& ranges, std::vector<residue>& out) const;
  // The current value of each key of an older_versions range (nullopt: gone).
  current_values current(const std::vector<removal>& ranges) const;
  std::optional<std::string> current(family f, const std::string& key) const;

  // Open, step by step (store.cc).
  void open(const storage_config& config);
  void load_states();
  void check_format(const storage_config& config);

  ~impl();
};

struct write_batch::impl {
  const detail::handles* cf = nullptr;
  rocksdb::ColumnFamilyHandle* h(std::size_t i) const { return (*cf)[i]; }
  rocksdb::WriteBatch batch;
  std::map<partition, std::int64_t> counts;
  // Subject-index keys are random within a partition; written sorted at
  // commit, they reach the memtable in order and its insert hint works.
  std::vector<std::string> subjects;
  bool subjects_written = false;
  // Partitions the batch writes identifiers (or subject entries) into.
  std::set<partition> identifier_partitions;
  std::string key;
  std::string value;
};

struct change::impl {
  const store::impl* s = nullptr;
  rocksdb::WriteBatch batch;
  std::map<partition, partition_state> states;
  std::vector<removal> ranges;  // removed as ranges
};

}  // namespace cdr::store
