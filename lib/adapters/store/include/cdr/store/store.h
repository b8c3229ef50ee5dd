// RocksDB adapter: the only code that knows RocksDB.
//
// Column families (docs/architecture.md, "Key layout"):
//   metadata       prefix(cdr)   + id -> allow-listed CDR members, as sent
//   identifiers    prefix(kind)  + id -> the other members as sent, sealed
//                  (AES-256-GCM) under the partition's data key
//   usage          prefix(usage) + id -> allow-listed usage members, as sent
//                  (its other members are sealed in identifiers, like a CDR's)
//   subject_index  prefix(kind)  + HMAC(partition's index key, identifier) + id -> ""
//   ids            kind + id -> partition prefix + content digest (idempotency)
//   held           records a legal hold keeps past their deadline, behind a
//                  one-byte tag (cdr::held_tag)
//   system         format version, consumer offsets, partition counts,
//                  partition states, and the saved state (holds, journals,
//                  audit and event outboxes; cdr/store/saved_state.h)
// Record column families cut compaction output at partition-prefix
// boundaries, so below level 0 a partition's data lives in whole files of its
// own (a flush's level-0 file spans the partitions its memtable held).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cdr/core/config.h"
#include "cdr/core/key_layout.h"
#include "cdr/core/retention.h"

namespace cdr::store {

// 1: pre-release, identifiers in plain text (refused at open).
// 2: identifier values sealed under per-partition data keys.
inline constexpr std::uint32_t format_version = 2;

// A failed store operation, classified so the caller can pause and retry
// (stall, no_space) or stop (fatal).
class store_error : public std::runtime_error {
 public:
  // stale: the batch writes into a partition a sweep has closed since it
  // was built; build it again with the current time.
  enum class kind : std::uint8_t { stall, no_space, stale, fatal };
  store_error(kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}
  kind which() const { return kind_; }

 private:
  kind kind_;
};

// The column families a retention change or a scan can name (cdr::family).
using family = cdr::family;

struct id_entry {
  partition where;
  std::uint64_t digest = 0;
  bool held = false;  // a legal hold keeps the record in the held family
};

// One id looked up: its entry, none, or one that does not decode.
struct id_lookup {
  std::optional<id_entry> entry;
  bool corrupt = false;
};

struct stored_record {
  partition where;
  std::string id;
  std::string metadata;                    // the allow-listed members (CDR metadata, usage metadata)
  std::optional<std::string> identifiers;  // the other members, sealed; absent: none sent, or stripped
  bool identifiers_held = false;           // read from the held family
};

class store;
class saved_state;

// Everything one consumed batch changes, committed atomically by the store
// it was made for.
class write_batch {
 public:
  explicit write_batch(const store& s);
  ~write_batch();
  write_batch(const write_batch&) = delete;
  write_batch& operator=(const write_batch&) = delete;

  // identifiers (sealed) empty: the record carries none (or they were
  // stripped). A usage record's metadata is its allow-listed members.
  void put_cdr(const partition& p, std::string_view id, std::string_view metadata, std::string_view identifiers,
               std::uint64_t digest);
  void put_usage(const partition& p, std::string_view id, std::string_view metadata, std::string_view identifiers,
                 std::uint64_t digest);
  void put_subject(const partition& p, std::string_view hash, std::string_view id);
  // A late record a legal hold keeps: written to the held family (with its
  // id-index entry). metadata empty: only identifiers are held (the
  // metadata went to its partition with put_cdr).
  void put_held(const partition& p, std::string_view id, std::string_view metadata, std::string_view identifiers,
                const std::vector<std::string>& subject_hashes);
  // held: the record lives in the held family (see change::hold_id).
  void put_id(record_kind kind, std::string_view id, const partition& p, std::uint64_t digest, bool held = false);
  // The next offset to consume of a topic partition.
  void set_offset(std::string_view topic, std::int32_t kafka_partition, std::int64_t next);

  std::size_t records() const { return records_; }
  // Bytes the batch writes (about what it adds to the WAL).
  std::size_t bytes() const;
  void clear();

 private:
  friend class store;
  void put_record(std::size_t family_index, const partition& p, std::string_view id, std::string_view metadata,
                  std::string_view identifiers, std::uint64_t digest);
  struct impl;
  std::unique_ptr<impl> impl_;
  std::size_t records_ = 0;
};

namespace detail {
struct purge_keys;
}

// A retention change (sweep action, hold, erasure, journal), applied
// atomically and synced by store::apply.
class change {
 public:
  explicit change(const store& s);
  ~change();
  change(const change&) = delete;
  change& operator=(const change&) = delete;

  void put(family f, std::string_view key, std::string_view value);
  void remove(family f, std::string_view key);
  void remove_range(family f, const key_range& r);
  // Marks a record's id index entry as held: the compaction that forgets
  // the ids of a dropped partition keeps it, so the held copy stays
  // readable (and deduplicated) by id. Reads the entry; false (nothing
  // written) when it is absent, marked already, or does not decode.
  bool hold_id(record_kind kind, std::string_view id);
  // Removes a record's id index entry (a held copy of a dropped partition
  // released for good).
  void remove_id(record_kind kind, std::string_view id);
  // Marks what sweeps have done to a partition; a dropped partition's
  // record count is removed.
  void set_state(const partition& p, partition_state s);
  bool empty() const;

 private:
  friend class store;
  friend class saved_state;
  // Saved-state entries in the system family; only saved_state writes them.
  void put_entry(std::string_view key, std::string_view value);
  void remove_entry(std::string_view key);
  struct impl;
  std::unique_ptr<impl> impl_;
};

// A key that should be gone from the files on disk but is not.
struct residue {
  family where = family::identifiers;
  std::string file;  // SST or WAL file name
  std::string key;
  bool compacting = false;  // its file is input of a running compaction
};

// One physical removal of many ranges: ranges of whole partitions are
// kept as ranges, point ranges (erased keys) as points. run() makes every
// range added gone from the files on disk: whole files inside a range are
// deleted, the WAL is flushed when it still holds a removed key; then the
// points (and what remains of the ranges) are installed as a compaction
// filter and the files that hold a version of one are rewritten, each once,
// in their own level, at the lowest CPU priority.
// Called as files are read or rewritten: how many of how many, and their
// bytes so far (progress for `status`).
using file_progress = std::function<void(std::size_t done, std::size_t total, std::uint64_t bytes)>;

class purge_pass {
 public:
  explicit purge_pass(store& s) : store_(s) {}
  void add(const removal& r);
  bool empty() const { return added_ == 0; }
  std::size_t ranges() const { return added_; }
  void run();
  // The size of the SST files run() rewrote (compacted to drop points and
  // residues), before it did; whole files it deleted are not counted.
  std::uint64_t bytes_rewritten() const { return bytes_rewritten_; }
  // Told after each compaction run() makes.
  void set_progress(file_progress fn) { progress_ = std::move(fn); }

 private:
  struct point {
    family where;
    std::string key;
    bool older_versions = false;
  };
  // The files of one level that hold a version to drop.
  struct holders {
    std::vector<std::string> names;
    std::uint64_t bytes = 0;
    bool busy = false;  // another is input of a running compaction (not in names)
    std::string first;  // the keys they hold: [first, last)
    std::string last;
  };
  std::shared_ptr<const detail::purge_keys> drop_list() const;
  std::map<int, holders> holding_files(family f, const detail::purge_keys& keys) const;
  // Rewrites the files of family f that hold a version to drop, each once;
  // returns their bytes.
  std::uint64_t rewrite_holders(family f, const detail::purge_keys& keys);

  store& store_;
  file_progress progress_;
  std::uint64_t bytes_rewritten_ = 0;
  std::vector<removal> whole_;
  // The points folded into one span per family and partition: what the
  // WAL is searched for.
  std::map<std::pair<family, std::string>, key_range> spans_;
  std::vector<point> points_;  // the point ranges, one by one
  std::size_t added_ = 0;
};

class store {
 public:
  friend class write_batch;
  friend class purge_pass;
  friend class change;
  friend class saved_state;
  // Opens (creating if needed) the store; throws store_error on failure,
  // including a format version this build does not understand.
  explicit store(const storage_config& config);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Writes the batch atomically (WAL on, not synced). Throws store_error.
  // While RocksDB delays writes the call waits; while it stops them it fails
  // fast with kind::stall, so the caller can pause consumption.
  void commit(write_batch& batch);
  // Makes every batch committed so far durable (syncs the WAL): ingest
  // calls it in groups before it commits their offsets to Kafka.
  void sync_wal();

  // Throws store_error (fatal) when the id's entry does not decode.
  std::optional<id_entry> find_id(record_kind kind, std::string_view id) const;
  // The same for many ids at once (one batched lookup); an entry that does
  // not decode is reported, not thrown.
  std::vector<id_lookup> find_ids(const std::vector<std::pair<record_kind, std::string_view>>& ids) const;
  // Stored entries found not to decode since the store was opened (id index
  // entries; counted where they are met, never fatal to ingest).
  std::uint64_t corrupt_entries() const;
  std::optional<std::int64_t> offset(std::string_view topic, std::int32_t kafka_partition) const;
  std::optional<stored_record> get(record_kind kind, std::string_view id) const;
  // The record of partition p with this id, wherever it is kept (its
  // partition, or the held family); nullopt when gone.
  std::optional<stored_record> get_at(const partition& p, std::string_view id) const;
  // Calls fn for every stored record of a kind, in key order.
  void for_each_record(
      record_kind kind,
      const std::function<void(const partition&, std::string_view id, bool has_identifiers)>& fn) const;
  // Records per partition, as kept by the batches.
  std::map<partition, std::int64_t> counts() const;
  // Calls fn with each record id of partition p that has a subject-index
  // entry of this hash (held: the held family's subject entries of p), in
  // id order, starting after `after` if given, until fn returns false.
  void for_each_subject_id(const partition& p, std::string_view hash, bool held,
                           const std::optional<std::string>& after,
                           const std::function<bool(std::string_view id)>& fn) const;

  // --- Retention (sweeps, holds, erasure, verification) ---
  void apply(change& c);
  std::map<partition, partition_state> states() const;
  std::optional<std::string> value(family f, std::string_view key) const;
  // Calls fn(key, value) for the keys in [r.begin, r.end) (an empty end:
  // to the last key) until fn returns false.
  void scan(family f, const key_range& r,
            const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Makes removed ranges physically gone (a purge_pass of them), then
  // checks: returns what is still on disk (empty when purged).
  std::vector<residue> purge(const std::vector<removal>& ranges);
  // Reads the keys of every live SST file overlapping the ranges, and every
  // live WAL record, and reports those that fall in a range.
  struct disk_check {
    std::vector<residue> residues;
    std::size_t sst_files_read = 0;
    std::size_t wal_files = 0;
  };
  disk_check check_on_disk(const std::vector<removal>& ranges, const file_progress& on_file = {}) const;
  // The same for the SST files only; first_only: at most one key per file
  // and range (enough to tell whether anything is left).
  disk_check check_files(const std::vector<removal>& ranges, bool first_only = false,
                         const file_progress& on_file = {}) const;
  // The live SST files overlapping the ranges: how many, and their size.
  struct file_total {
    std::size_t files = 0;
    std::uint64_t bytes = 0;
  };
  file_total files_overlapping(const std::vector<removal>& ranges) const;
  std::uint64_t file_bytes(const std::vector<removal>& ranges) const { return files_overlapping(ranges).bytes; }

  // A consistent copy of the store in `dir` (which must not exist), made of
  // hard links where the file system allows; memtables are flushed first,
  // so the copy needs no WAL replay.
  void checkpoint(const std::string& dir);

  // Flushes every memtable and waits until no compaction is pending or
  // running (benchmarks and checkpoints start from a settled store).
  // compact: first compacts everything out of level 0, as months are long
  // before their deadlines.
  void settle(bool compact = false);

  struct family_size {
    std::string name;
    std::uint64_t bytes = 0;  // live SST files plus memtables
  };
  std::vector<family_size> sizes() const;
  bool write_stopped() const;
  std::uint64_t stall_micros() const;

 private:
  // Saved-state entries (cdr/store/saved_state.h); key order. for_each_entry
  // streams them until fn returns false.
  std::vector<std::pair<std::string, std::string>> entries(std::string_view prefix) const;
  void for_each_entry(std::string_view prefix,
                      const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  std::optional<std::string> entry(std::string_view key) const;

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace cdr::store
