#include "cdr/store/store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/sst_partitioner.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include "cdr/store/insert_hint.h"
#include "cdr/store/statistics.h"

namespace cdr::store {
namespace {

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
constexpr std::array<const char*, cf_count> cf_names{"default",       "metadata", "identifiers", "usage",
                                                     "subject_index", "ids",      "held",        "system"};

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
std::optional<family> family_of(std::size_t c) {
  switch (c) {
    case cf_metadata: return family::metadata;
    case cf_identifiers: return family::identifiers;
    case cf_usage: return family::usage;
    case cf_subject: return family::subject_index;
    case cf_held: return family::held;
    default: return std::nullopt;
  }
}

constexpr std::string_view key_format = "format_version";
constexpr char offset_tag = 'o';
constexpr char count_tag = 'c';
constexpr char state_tag = 's';
constexpr char entry_tag = 'q';

std::string tagged(char tag, std::string_view rest) {
  std::string k(1, tag);
  k.append(rest);
  return k;
}
std::uint8_t state_bits(partition_state s) {
  return static_cast<std::uint8_t>((s.stripped ? 1 : 0) | (s.dropped ? 2 : 0));
}
partition_state state_of_bits(std::uint8_t b) { return {(b & 1) != 0, (b & 2) != 0}; }

std::string offset_key(std::string_view topic, std::int32_t p) {
  std::string k(1, offset_tag);
  k.append(topic);
  k.push_back('\0');
  append_be64(k, static_cast<std::uint32_t>(p));
  return k;
}

std::string id_key(record_kind kind, std::string_view id) {
  std::string k(1, static_cast<char>(kind));
  k.append(id);
  return k;
}

// Partition counts are int64 deltas added by merge: one merge per partition
// per batch, so counting costs nothing per record.
class add_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger*) const override {
    std::uint64_t sum = existing != nullptr && existing->size() == 8 ? read_be64({existing->data(), 8}) : 0;
    if (value.size() == 8) sum += read_be64({value.data(), 8});
    new_value->clear();
    append_be64(*new_value, sum);
    return true;
  }
  const char* Name() const override { return "cdr.add_int64"; }
};

// Prefixes of dropped partitions, shared with the id index's compaction
// filter: an id whose partition was dropped leaves the index with the next
// compaction of its file, at no per-record cost to the sweep.
class dropped_set {
 public:
  bool contains(std::string_view prefix) const {
    std::shared_lock lock(mutex_);
    return prefixes_.count(std::string(prefix)) != 0;
  }
  void add(std::string prefix) {
    std::unique_lock lock(mutex_);
    prefixes_.insert(std::move(prefix));
  }

 private:
  mutable std::shared_mutex mutex_;
  std::set<std::string, std::less<>> prefixes_;
};

class dropped_ids_filter final : public rocksdb::CompactionFilter {
 public:
  explicit dropped_ids_filter(std::shared_ptr<dropped_set> dropped) : dropped_(std::move(dropped)) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
    return value.size() >= partition_prefix_size &&
           dropped_->contains(std::string_view(value.data(), partition_prefix_size));
  }
  const char* Name() const override { return "cdr.dropped_ids"; }

 private:
  std::shared_ptr<dropped_set> dropped_;
};

[[noreturn]] void raise(const rocksdb::Status& s, std::string_view what) {
  auto k = store_error::kind::fatal;
  if (s.IsIncomplete() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) k = store_error::kind::stall;
  if (s.IsNoSpace()) k = store_error::kind::no_space;
  throw store_error(k, fmt::format("{}: {}", what, s.ToString()));
}

// RocksDB's per-thread perf context is counted on by default (a thread-local
// access per step of every write and lookup); nothing here reads it.
void without_perf_context() {
  thread_local const bool off = (rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable), true);
  (void)off;
}
}  // namespace

struct store::impl {
  std::unique_ptr<rocksdb::DB> db;
  // A write failed for lack of space: RocksDB then refuses writes until
  // Resume() succeeds, which it does once space is back.
  bool needs_resume = false;
  store_error::kind resume_kind = store_error::kind::fatal;
  std::array<rocksdb::ColumnFamilyHandle*, cf_count> cf{};

  std::shared_ptr<rocksdb::Statistics> stats;
  std::shared_ptr<dropped_set> dropped = std::make_shared<dropped_set>();
  std::unique_ptr<dropped_ids_filter> ids_filter;
  std::string path;

  // Serialises batch commits with retention changes, so no batch built
  // before a sweep closed a partition can write into it afterwards.
  std::mutex write_mutex;
  std::map<partition, partition_state> states;  // guarded by write_mutex

  rocksdb::ColumnFamilyHandle* h(family f) const { return cf[cf_of(f)]; }

  // Flushes the memtables of every column family (waits for it).
  void flush_all(std::string_view what) {
    std::vector<rocksdb::ColumnFamilyHandle*> all(cf.begin(), cf.end());
    if (const auto s = db->Flush(rocksdb::FlushOptions(), all); !s.ok()) raise(s, what);
  }

  // DeleteFilesInRange for each range: drops the SST files wholly inside
  // it (not those a compaction is reading); the first failure, if any.
  rocksdb::Status delete_files(const std::vector<std::pair<family, key_range>>& ranges) const {
    rocksdb::Status first;
    for (const auto& [f, r] : ranges) {
      const rocksdb::Slice b(r.begin);
      const rocksdb::Slice e(r.end);
      auto s = rocksdb::DeleteFilesInRange(db.get(), h(f), &b, r.end.empty() ? nullptr : &e);
      if (!s.ok() && first.ok()) first = std::move(s);
    }
    return first;
  }

  // Adds the live WAL records that put a key into one of the ranges; returns
  // the number of live WAL files.
  std::size_t wal_residues(const std::vector<std::pair<family, key_range>>& ranges, std::vector<residue>& out) const;

  // Writes a batch; after a failure for lack of space RocksDB refuses writes
  // until Resume() succeeds, which it does once space is back.
  void write(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch, std::string_view what) {
    without_perf_context();
    if (needs_resume) {
      // Busy: RocksDB is already recovering on its own; the write below tells
      // whether it has. Any other failure keeps the reason of the first error.
      const auto r = db->Resume();
      if (!r.ok() && !r.IsBusy()) {
        throw store_error(resume_kind, fmt::format("the store cannot resume writing yet: {}", r.ToString()));
      }
      if (r.ok()) needs_resume = false;
    }
    const auto s = db->Write(wo, batch);
    if (s.ok()) return;
    if (s.IsNoSpace() || s.IsIOError()) {
      if (!needs_resume) resume_kind = s.IsNoSpace() ? store_error::kind::no_space : store_error::kind::fatal;
      needs_resume = true;
      if (resume_kind == store_error::kind::no_space) {
        throw store_error(store_error::kind::no_space, fmt::format("{}: {}", what, s.ToString()));
      }
    }
    raise(s, what);
  }

  ~impl() {
    for (auto* h : cf) {
      if (h != nullptr && db) db->DestroyColumnFamilyHandle(h);
    }
    if (db) db->Close();
  }
};

struct write_batch::impl {
  const std::array<rocksdb::ColumnFamilyHandle*, cf_count>* cf = nullptr;
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

write_batch::write_batch(const store& s) : impl_(std::make_unique<impl>()) { impl_->cf = &s.impl_->cf; }
write_batch::~write_batch() = default;

void write_batch::clear() {
  impl_->batch.Clear();
  impl_->counts.clear();
  impl_->subjects.clear();
  impl_->subjects_written = false;
  impl_->identifier_partitions.clear();
  records_ = 0;
}

void write_batch::put_cdr(const partition& p, std::string_view id, std::string_view metadata,
                          std::string_view identifiers, std::uint64_t digest) {
  auto& b = impl_->batch;
  auto& k = impl_->key;
  assign_record_key(k, p, id);
  // Column families are addressed by id here and resolved at commit.
  b.Put(impl_->h(cf_metadata), k, rocksdb::Slice(metadata.data(), metadata.size()));
  if (!identifiers.empty()) {
    b.Put(impl_->h(cf_identifiers), k, rocksdb::Slice(identifiers.data(), identifiers.size()));
    impl_->identifier_partitions.insert(p);
  }
  auto& v = impl_->value;
  v.assign(k.data(), partition_prefix_size);
  append_be64(v, digest);
  b.Put(impl_->h(cf_ids), id_key(record_kind::cdr, id), v);
  ++impl_->counts[p];
  ++records_;
}

void write_batch::put_usage(const partition& p, std::string_view id, std::string_view body, std::uint64_t digest) {
  auto& k = impl_->key;
  assign_record_key(k, p, id);
  impl_->batch.Put(impl_->h(cf_usage), k, rocksdb::Slice(body.data(), body.size()));
  auto& v = impl_->value;
  v.assign(k.data(), partition_prefix_size);
  append_be64(v, digest);
  impl_->batch.Put(impl_->h(cf_ids), id_key(record_kind::usage, id), v);
  ++impl_->counts[p];
  ++records_;
}

void write_batch::put_subject(const partition& p, std::string_view hash, std::string_view id) {
  impl_->subjects.push_back(subject_key(p, hash, id));
  impl_->identifier_partitions.insert(p);
}

void write_batch::put_held(const partition& p, std::string_view id, std::string_view metadata,
                           std::string_view identifiers, const std::vector<std::string>& subject_hashes) {
  auto& b = impl_->batch;
  const auto key = record_key(p, id);
  if (!metadata.empty()) b.Put(impl_->h(cf_held), held_key(held_tag::record, key), metadata);
  if (!identifiers.empty()) b.Put(impl_->h(cf_held), held_key(held_tag::identifiers, key), identifiers);
  for (const auto& hash : subject_hashes) {
    b.Put(impl_->h(cf_held), held_key(held_tag::subject, subject_key(p, hash, id)), "");
  }
  ++records_;
}

void write_batch::put_id(record_kind kind, std::string_view id, const partition& p, std::uint64_t digest) {
  auto& v = impl_->value;
  v = partition_prefix(p);
  append_be64(v, digest);
  impl_->batch.Put(impl_->h(cf_ids), id_key(kind, id), v);
}

void write_batch::set_offset(std::string_view topic, std::int32_t kafka_partition, std::int64_t next) {
  std::string v;
  append_be64(v, static_cast<std::uint64_t>(next));
  impl_->batch.Put(impl_->h(cf_system), offset_key(topic, kafka_partition), v);
}

namespace {

class record_insert_hint final : public rocksdb::SliceTransform {
 public:
  explicit record_insert_hint(std::size_t size) : size_(size) {}
  const char* Name() const override { return "cdr.RecordInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return {key.data(), size_}; }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > size_; }

 private:
  std::size_t size_;
};

}  // namespace

std::shared_ptr<const rocksdb::SliceTransform> new_record_insert_hint(std::size_t prefix_size) {
  return std::make_shared<record_insert_hint>(prefix_size);
}

store::store(const storage_config& config) : impl_(std::make_unique<impl>()) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  // Bounds the live WAL: the system family's few bytes per batch would
  // otherwise keep old WAL files alive, and a purge reads the live WAL.
  db_options.max_total_wal_size = 64 << 20;
  impl_->stats = rocksdb::CreateDBStatistics();
  impl_->stats->set_stats_level(statistics_level);
  db_options.statistics = impl_->stats;
  // Memory stays bounded: memtables are charged to the block cache.
  // Index and filter blocks get the cache's high-priority half, so data
  // blocks cannot push them out.
  auto cache = rocksdb::NewLRUCache(config.block_cache_bytes, -1, false, 0.5);
  db_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(config.block_cache_bytes / 2, cache);

  const auto compression =
      config.compression == compression_kind::lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (std::size_t i = 0; i < cf_count; ++i) {
    rocksdb::ColumnFamilyOptions o;
    o.compression = compression;
    o.bottommost_compression = compression;
    o.write_buffer_size = 32 << 20;
    o.max_write_buffer_number = 3;
    o.level_compaction_dynamic_level_bytes = true;
    // Small files: an L0 file overlapping a partition's tail rewrites one
    // of them, and an erasure's purge rewrites only the few holding its keys.
    o.target_file_size_base = 8 << 20;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    // Filters and indexes are partitioned (a lookup reads one small
    // partition, not a whole file's filter), cached with high priority, and
    // their top levels pinned: memory stays bounded by the cache while
    // id lookups at ingest stay off the disk.
    t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.partition_filters = true;
    t.metadata_block_size = 4096;
    t.cache_index_and_filter_blocks = true;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.pin_top_level_index_and_filter = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.format_version = 5;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    if (i == cf_metadata || i == cf_identifiers || i == cf_usage || i == cf_subject) {
      // Each (kind, month, class) partition gets SST files of its own, and
      // a memtable insert hint of its own (ids arrive in creation order).
      o.sst_partitioner_factory = rocksdb::NewSstPartitionerFixedPrefixFactory(partition_prefix_size);
      o.memtable_insert_with_hint_prefix_extractor = new_record_insert_hint(partition_prefix_size);
      // A flush writes one L0 file per partition it touches, and the
      // record families are not read at ingest: compacting after every
      // flush or two rewrote each partition's tail again and again.
      o.level0_file_num_compaction_trigger = 16;
      o.level0_slowdown_writes_trigger = 48;
      o.level0_stop_writes_trigger = 72;
    }
    if (i == cf_ids) {
      // Ids arrive in creation order (ULIDs) per kind: insert with a hint.
      o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
      // Ingest looks every id of a batch up here, and nearly all are new: a
      // whole-key bloom filter answers them without searching the memtables.
      o.memtable_prefix_bloom_size_ratio = 0.05;
      o.memtable_whole_key_filtering = true;
      impl_->ids_filter = std::make_unique<dropped_ids_filter>(impl_->dropped);
      o.compaction_filter = impl_->ids_filter.get();
    }
    if (i == cf_system) o.merge_operator = std::make_shared<add_operator>();
    families.emplace_back(cf_names[i], o);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  const auto s = rocksdb::DB::Open(db_options, config.path, families, &handles, &db);
  if (!s.ok() && s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    throw store_error(store_error::kind::fatal,
                      fmt::format("the store at {} is in use by another process (a running cdr-retentiond?): {}",
                                  config.path, s.ToString()));
  }
  if (!s.ok()) raise(s, fmt::format("cannot open the store at {}", config.path));
  impl_->db.reset(db);
  impl_->path = config.path;
  for (std::size_t i = 0; i < cf_count; ++i) impl_->cf[i] = handles[i];
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), impl_->cf[cf_system]));
    const std::string start(1, state_tag);
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      const auto p = decode_partition(it->key().ToStringView().substr(1));
      if (!p || it->value().size() != 1) continue;
      const auto st = state_of_bits(static_cast<std::uint8_t>(it->value()[0]));
      impl_->states[*p] = st;
      if (st.dropped) impl_->dropped->add(partition_prefix(*p));
    }
    if (!it->status().ok()) raise(it->status(), "cannot read partition states");
  }

  std::string version;
  const auto vs = db->Get(rocksdb::ReadOptions(), impl_->cf[cf_system], key_format, &version);
  if (vs.IsNotFound()) {
    std::string v;
    append_be64(v, format_version);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    const auto ws = db->Put(wo, impl_->cf[cf_system], key_format, v);
    if (!ws.ok()) raise(ws, "cannot write the store's format version");
  } else if (!vs.ok()) {
    raise(vs, "cannot read the store's format version");
  } else if (version.size() == 8 && read_be64(version) == 1) {
    throw store_error(
        store_error::kind::fatal,
        fmt::format("the store at {} has on-disk format 1, written by a pre-release build that kept identifiers in "
                    "plain text; this build reads format {} (identifiers encrypted under keys a strip destroys) and "
                    "does not convert it in place, because the plain-text copies would stay in the old files. "
                    "Move the directory aside and start with an empty storage.path: the daemon re-reads the "
                    "topics from the consumer group's offsets (reset them to the earliest to re-ingest), then "
                    "delete the old directory (docs/operations.md, \"Upgrade\")",
                    config.path, format_version));
  } else if (version.size() != 8 || read_be64(version) != format_version) {
    throw store_error(store_error::kind::fatal,
                      fmt::format("the store at {} has on-disk format {} but this build reads format {}; "
                                  "use the matching cdr-retentiond version",
                                  config.path, version.size() == 8 ? read_be64(version) : 0, format_version));
  }
}

store::~store() = default;

void store::commit(write_batch& batch) {
  std::lock_guard lock(impl_->write_mutex);
  for (const auto& [p, n] : batch.impl_->counts) {
    if (auto it = impl_->states.find(p); it != impl_->states.end() && it->second.dropped) {
      throw store_error(store_error::kind::stale, fmt::format("partition {} was dropped by a sweep", p.to_string()));
    }
  }
  for (const auto& p : batch.impl_->identifier_partitions) {
    if (auto it = impl_->states.find(p); it != impl_->states.end() && (it->second.stripped || it->second.dropped)) {
      throw store_error(store_error::kind::stale, fmt::format("partition {} was stripped by a sweep", p.to_string()));
    }
  }
  auto& resolved = batch.impl_->batch;
  if (!batch.impl_->subjects_written) {
    auto& subjects = batch.impl_->subjects;
    std::sort(subjects.begin(), subjects.end());
    for (const auto& k : subjects) resolved.Put(impl_->cf[cf_subject], k, "");
    batch.impl_->subjects_written = true;
  }
  // The count merges are added for this attempt only: a failed write rolls
  // them back, so a retried batch does not count twice.
  resolved.SetSavePoint();
  for (const auto& [p, n] : batch.impl_->counts) {
    std::string k(1, count_tag);
    append_partition_prefix(k, p);
    std::string v;
    append_be64(v, static_cast<std::uint64_t>(n));
    resolved.Merge(impl_->cf[cf_system], k, v);
  }
  // While RocksDB only slows writes down, the write waits (that throttles the
  // consumer); while it stops them, fail fast so the consumer pauses and
  // keeps serving its group instead of blocking for an unknown time.
  rocksdb::WriteOptions wo;
  wo.no_slowdown = write_stopped();
  try {
    impl_->write(wo, &resolved, "cannot write a batch");
  } catch (...) {
    resolved.RollbackToSavePoint();
    throw;
  }
  resolved.PopSavePoint();
}

namespace {
std::optional<id_entry> decode_id_entry(std::string_view v);
}  // namespace

std::optional<id_entry> store::find_id(record_kind kind, std::string_view id) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_ids], id_key(kind, id), &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) raise(s, "cannot read the id index");
  return decode_id_entry(v);
}

namespace {
std::optional<id_entry> decode_id_entry(std::string_view v) {
  const auto p = decode_partition(v);
  if (!p || v.size() != partition_prefix_size + 8) {
    throw store_error(store_error::kind::fatal, "corrupt id index entry");
  }
  return id_entry{*p, read_be64(v.substr(partition_prefix_size))};
}
}  // namespace

std::vector<std::optional<id_entry>> store::find_ids(
    const std::vector<std::pair<record_kind, std::string_view>>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& [kind, id] : ids) keys.push_back(id_key(kind, id));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  without_perf_context();
  // Ingest asks in key order; RocksDB then skips sorting the keys itself.
  const bool sorted = std::is_sorted(keys.begin(), keys.end());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf[cf_ids], slices.size(), slices.data(), values.data(),
                      statuses.data(), sorted);
  std::vector<std::optional<id_entry>> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) raise(statuses[i], "cannot read the id index");
    out[i] = decode_id_entry(values[i].ToStringView());
  }
  return out;
}

std::optional<std::int64_t> store::offset(std::string_view topic, std::int32_t kafka_partition) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_system], offset_key(topic, kafka_partition), &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok() || v.size() != 8) raise(s, "cannot read a stored offset");
  return static_cast<std::int64_t>(read_be64(v));
}

std::optional<stored_record> store::get(record_kind kind, std::string_view id) const {
  const auto entry = find_id(kind, id);
  if (!entry) return std::nullopt;
  const auto key = record_key(entry->where, id);
  stored_record r{entry->where, std::string(id), {}, std::nullopt};
  // A record lives in its partition's family until a sweep removes it, and
  // in the held family when a legal hold kept it.
  auto metadata = value(kind == record_kind::cdr ? family::metadata : family::usage, key);
  if (!metadata) metadata = value(family::held, held_key(held_tag::record, key));
  if (!metadata) return std::nullopt;  // its partition was dropped
  r.metadata = std::move(*metadata);
  if (kind == record_kind::cdr) {
    r.identifiers = value(family::identifiers, key);
    if (!r.identifiers) {
      r.identifiers = value(family::held, held_key(held_tag::identifiers, key));
      r.identifiers_held = r.identifiers.has_value();
    }
  }
  return r;
}

void store::for_each_record(record_kind kind,
                            const std::function<void(const partition&, std::string_view, bool)>& fn) const {
  const auto main_cf = kind == record_kind::cdr ? cf_metadata : cf_usage;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[main_cf]));
  std::string ignored;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto key = it->key();
    const auto p = decode_partition(key.ToStringView());
    if (!p) continue;
    bool has_identifiers = false;
    if (kind == record_kind::cdr) {
      const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_identifiers], key, &ignored);
      if (!s.ok() && !s.IsNotFound()) raise(s, "cannot read identifiers");
      has_identifiers = s.ok();
    }
    fn(*p, record_id_of(key.ToStringView()), has_identifiers);
  }
  if (!it->status().ok()) raise(it->status(), "cannot iterate records");
}

std::map<partition, std::int64_t> store::counts() const {
  std::map<partition, std::int64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[cf_system]));
  const std::string start(1, count_tag);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    const auto key = it->key().ToStringView().substr(1);
    if (auto p = decode_partition(key); p && it->value().size() == 8) {
      out[*p] = static_cast<std::int64_t>(read_be64(it->value().ToStringView()));
    }
  }
  if (!it->status().ok()) raise(it->status(), "cannot read partition counts");
  return out;
}

std::vector<std::string> store::subject_ids(const partition& p, std::string_view hash, bool held) const {
  std::string prefix = partition_prefix(p);
  prefix.append(hash);
  if (held) prefix = held_key(held_tag::subject, prefix);
  std::vector<std::string> out;
  scan(held ? family::held : family::subject_index, prefix_range(prefix), [&](std::string_view key, std::string_view) {
    out.emplace_back(key.substr(prefix.size()));
    return true;
  });
  return out;
}

// --- Retention ---

std::string_view name(family f) {
  switch (f) {
    case family::metadata: return "metadata";
    case family::identifiers: return "identifiers";
    case family::usage: return "usage";
    case family::subject_index: return "subject_index";
    case family::held: return "held";
  }
  return "?";
}

std::optional<family> family_from_name(std::string_view text) {
  for (auto f : {family::metadata, family::identifiers, family::usage, family::subject_index, family::held}) {
    if (name(f) == text) return f;
  }
  return std::nullopt;
}

struct change::impl {
  const store::impl* s = nullptr;
  rocksdb::WriteBatch batch;
  std::map<partition, partition_state> states;
  std::vector<std::pair<family, key_range>> ranges;  // removed as ranges
};

change::change(const store& s) : impl_(std::make_unique<impl>()) { impl_->s = s.impl_.get(); }
change::~change() = default;

void change::put(family f, std::string_view key, std::string_view value) {
  impl_->batch.Put(impl_->s->h(f), key, value);
}
void change::remove(family f, std::string_view key) { impl_->batch.Delete(impl_->s->h(f), key); }
void change::remove_range(family f, const key_range& r) {
  if (f != family::held && r.begin.size() > partition_prefix_size) {
    // It would take a memtable insert hint (see insert_hint.h).
    throw std::logic_error("a range removal in a record family must start at a partition prefix");
  }
  impl_->batch.DeleteRange(impl_->s->h(f), r.begin, r.end);
  impl_->ranges.emplace_back(f, r);
}
void change::set_state(const partition& p, partition_state st) {
  const auto prefix = partition_prefix(p);
  impl_->batch.Put(impl_->s->cf[cf_system], tagged(state_tag, prefix),
                   std::string(1, static_cast<char>(state_bits(st))));
  if (st.dropped) impl_->batch.Delete(impl_->s->cf[cf_system], tagged(count_tag, prefix));
  impl_->states[p] = st;
}
void change::put_entry(std::string_view key, std::string_view value) {
  impl_->batch.Put(impl_->s->cf[cf_system], tagged(entry_tag, key), value);
}
void change::remove_entry(std::string_view key) {
  impl_->batch.Delete(impl_->s->cf[cf_system], tagged(entry_tag, key));
}
bool change::empty() const { return impl_->batch.Count() == 0; }

void store::apply(change& c) {
  // A range deletion must not share a memtable with other keys: flushed
  // together, they make an L0 file spanning from the removed partition to
  // the current month, and compacting that file rewrites every month in
  // between. So the families it goes into are flushed first while ingest
  // goes on (again while a flush took long, so little is left), then once
  // more, briefly, with ingest held, and again right after the deletion.
  // The partition's whole files are deleted once ingest runs again.
  std::vector<rocksdb::ColumnFamilyHandle*> ranged;
  for (const auto& [f, r] : c.impl_->ranges) {
    if (std::find(ranged.begin(), ranged.end(), impl_->h(f)) == ranged.end()) ranged.push_back(impl_->h(f));
  }
  rocksdb::FlushOptions fo;
  fo.allow_write_stall = true;
  const auto flush = [&] {
    if (const auto s = impl_->db->Flush(fo, ranged); !s.ok()) raise(s, "cannot flush before a range removal");
  };
  for (int i = 0; i < 4 && !ranged.empty(); ++i) {
    const auto started = std::chrono::steady_clock::now();
    flush();
    if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(20)) break;
  }
  {
    std::lock_guard lock(impl_->write_mutex);  // no ingest write in here
    if (!ranged.empty()) flush();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    impl_->write(wo, &c.impl_->batch, "cannot write a retention change");
    for (const auto& [p, st] : c.impl_->states) {
      impl_->states[p] = st;
      if (st.dropped) impl_->dropped->add(partition_prefix(p));
    }
    if (!ranged.empty()) impl_->db->Flush(fo, ranged).PermitUncheckedError();
  }
  // Best effort: the change is durable; purge() deletes and checks again.
  if (!ranged.empty()) impl_->delete_files(c.impl_->ranges).PermitUncheckedError();
}

std::map<partition, partition_state> store::states() const {
  std::lock_guard lock(impl_->write_mutex);
  return impl_->states;
}

std::vector<std::pair<std::string, std::string>> store::entries(std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  const auto start = tagged(entry_tag, prefix);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[cf_system]));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    out.emplace_back(it->key().ToString().substr(1), it->value().ToString());
  }
  if (!it->status().ok()) raise(it->status(), "cannot read the service's entries");
  return out;
}

std::optional<std::string> store::entry(std::string_view key) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_system], tagged(entry_tag, key), &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) raise(s, "cannot read an entry");
  return v;
}

std::optional<std::string> store::value(family f, std::string_view key) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->h(f), key, &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) raise(s, "cannot read a value");
  return v;
}

void store::scan(family f, const key_range& r,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(r.end);
  if (!r.end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->h(f)));
  for (it->Seek(r.begin); it->Valid(); it->Next()) {
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) raise(it->status(), "cannot scan a key range");
}

namespace {

bool in_range(std::string_view key, const key_range& r) {
  return key >= std::string_view(r.begin) && (r.end.empty() || key < std::string_view(r.end));
}
bool overlaps(std::string_view smallest, std::string_view largest, const key_range& r) {
  return largest >= std::string_view(r.begin) && (r.end.empty() || smallest < std::string_view(r.end));
}

// Looks for WAL records that put a key into one of the ranges.
class wal_scanner final : public rocksdb::WriteBatch::Handler {
 public:
  wal_scanner(const std::vector<std::pair<family, key_range>>& ranges, std::vector<residue>& out)
      : ranges_(ranges), out_(out) {}
  rocksdb::Status PutCF(std::uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    check(cf, key);
    return rocksdb::Status::OK();
  }
  rocksdb::Status MergeCF(std::uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    check(cf, key);
    return rocksdb::Status::OK();
  }
  // Deletions carry keys but no values; they are what a purge writes.
  rocksdb::Status DeleteCF(std::uint32_t, const rocksdb::Slice&) override { return rocksdb::Status::OK(); }
  rocksdb::Status SingleDeleteCF(std::uint32_t, const rocksdb::Slice&) override { return rocksdb::Status::OK(); }
  rocksdb::Status DeleteRangeCF(std::uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();
  }
  std::string file;

 private:
  void check(std::uint32_t cf, const rocksdb::Slice& key) {
    const auto f = family_of(cf);
    if (!f) return;
    for (const auto& [rf, r] : ranges_) {
      if (rf == *f && in_range(key.ToStringView(), r)) {
        out_.push_back({*f, file, key.ToString()});
        return;
      }
    }
  }
  const std::vector<std::pair<family, key_range>>& ranges_;
  std::vector<residue>& out_;
};

}  // namespace

std::size_t store::impl::wal_residues(const std::vector<std::pair<family, key_range>>& ranges,
                                      std::vector<residue>& out) const {
  rocksdb::VectorLogPtr wals;
  if (const auto s = db->GetSortedWalFiles(wals); !s.ok()) raise(s, "cannot list WAL files");
  if (wals.empty()) return 0;
  std::unique_ptr<rocksdb::TransactionLogIterator> it;
  if (const auto s = db->GetUpdatesSince(wals.front()->StartSequence(), &it); !s.ok()) raise(s, "cannot read the WAL");
  wal_scanner scanner(ranges, out);
  scanner.file = "WAL";
  for (; it->Valid(); it->Next()) {
    auto batch = it->GetBatch();
    if (const auto hs = batch.writeBatchPtr->Iterate(&scanner); !hs.ok()) raise(hs, "cannot read a WAL record");
  }
  return wals.size();
}

store::disk_check store::check_on_disk(const std::vector<std::pair<family, key_range>>& ranges) const {
  auto out = check_files(ranges);
  out.wal_files = impl_->wal_residues(ranges, out.residues);
  return out;
}

store::disk_check store::check_files(const std::vector<std::pair<family, key_range>>& ranges, bool first_only) const {
  // Files listed as live stay on disk while they are read. A compaction that
  // replaces one meanwhile writes only keys the listed files have, so what
  // they hold is what the replacement can hold.
  if (const auto s = impl_->db->DisableFileDeletions(); !s.ok()) raise(s, "cannot pin the live files");
  struct enable {
    rocksdb::DB* db;
    ~enable() { db->EnableFileDeletions(/*force=*/false); }
  } pin{impl_->db.get()};
  disk_check out;
  std::vector<rocksdb::LiveFileMetaData> files;
  impl_->db->GetLiveFilesMetaData(&files);
  rocksdb::Options options;
  for (const auto& f : files) {
    std::optional<family> fam;
    for (std::size_t i = 0; i < cf_count; ++i) {
      if (f.column_family_name == cf_names[i]) fam = family_of(i);
    }
    if (!fam) continue;
    std::vector<const key_range*> hits;
    for (const auto& [rf, r] : ranges) {
      if (rf == *fam && overlaps(f.smallestkey, f.largestkey, r)) hits.push_back(&r);
    }
    if (hits.empty()) continue;
    rocksdb::SstFileReader reader(options);
    const auto path = f.db_path + f.name;
    if (const auto s = reader.Open(path); !s.ok()) raise(s, fmt::format("cannot open {}", path));
    ++out.sst_files_read;
    rocksdb::ReadOptions ro;
    ro.ignore_range_deletions = true;  // the raw keys in the file, not what reads would see
    ro.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(ro));
    for (const auto* r : hits) {
      for (it->Seek(r->begin); it->Valid() && in_range(it->key().ToStringView(), *r); it->Next()) {
        out.residues.push_back({*fam, f.name, it->key().ToString(), f.being_compacted});
        if (first_only) break;
      }
      if (!it->status().ok()) raise(it->status(), fmt::format("cannot read {}", path));
    }
  }
  return out;
}

std::vector<residue> store::purge(const std::vector<std::pair<family, key_range>>& ranges) {
  if (ranges.empty()) return {};
  // Whole files inside a range go without rewriting anything: partitions
  // have SST files of their own. First thing, before a flush of the
  // memtable holding the range deletion can start a compaction that reads
  // those files (DeleteFilesInRange skips files being compacted).
  const auto delete_files = [&] {
    if (const auto s = impl_->delete_files(ranges); !s.ok()) raise(s, "cannot delete files in a purged range");
  };
  delete_files();
  // Removed keys still in a live WAL (written since the last flush): every
  // memtable is flushed, which makes every WAL up to the current one
  // obsolete (WAL archiving and recycling are off); RocksDB deletes them
  // right after, in the background, and the purge waits for that.
  std::vector<residue> in_wal;
  impl_->wal_residues(ranges, in_wal);
  if (!in_wal.empty()) {
    std::unique_ptr<rocksdb::LogFile> current;
    if (const auto s = impl_->db->GetCurrentWalFile(&current); !s.ok()) raise(s, "cannot find the current WAL");
    impl_->flush_all("cannot flush before a purge");
    for (int i = 0; i < 5000; ++i) {
      rocksdb::VectorLogPtr wals;
      if (const auto s = impl_->db->GetSortedWalFiles(wals); !s.ok()) raise(s, "cannot list WAL files");
      if (wals.empty() || wals.front()->LogNumber() > current->LogNumber()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // A file a background compaction is reading (RocksDB rewrites
  // bottommost files once, to zero their sequence numbers; a flush of the
  // range deletion can pull them into a compaction) is skipped by
  // DeleteFilesInRange; its output lies inside the range too, so the
  // deletion is retried once that compaction is done. Each attempt reads
  // one key per file and range (a month's file can hold millions).
  std::vector<residue> left;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) delete_files();
    // (The WAL cannot get new keys of these ranges: ingest batches into a
    // closed partition are refused, and retention changes run one at a time.)
    left = check_files(ranges, /*first_only=*/true).residues;
    const bool busy = std::any_of(left.begin(), left.end(), [](const residue& r) { return r.compacting; });
    if (!busy || attempt == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!left.empty()) left = check_files(ranges).residues;
  // Files that still hold keys of a range (shared with other keys, or in
  // level 0) are rewritten down to the bottom level without them: one
  // compaction per family and partition, spanning its residues.
  std::map<std::pair<family, std::string>, key_range> spans;
  for (const auto& res : left) {
    const auto group = res.key.substr(0, partition_prefix_size + (res.where == family::held ? 1 : 0));
    auto [it, fresh] = spans.try_emplace({res.where, group}, point_range(res.key));
    if (!fresh) {
      it->second.begin = std::min(it->second.begin, res.key);
      it->second.end = std::max(it->second.end, point_range(res.key).end);
    }
  }
  for (const auto& [key, r] : spans) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    co.exclusive_manual_compaction = false;
    const rocksdb::Slice b(r.begin);
    const rocksdb::Slice e(r.end);
    if (const auto s = impl_->db->CompactRange(co, impl_->h(key.first), &b, &e); !s.ok()) {
      raise(s, "cannot compact a purged range");
    }
  }
  return left.empty() ? left : check_files(ranges).residues;
}

void store::checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  if (const auto s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw); !s.ok()) raise(s, "cannot start a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  if (const auto s = cp->CreateCheckpoint(dir, /*log_size_for_flush=*/0); !s.ok()) {
    raise(s, fmt::format("cannot write a checkpoint to {}", dir));
  }
}

void store::settle(bool compact) {
  impl_->flush_all("cannot flush");
  for (auto* h : impl_->cf) {
    if (!compact) continue;
    rocksdb::CompactRangeOptions co;
    co.exclusive_manual_compaction = false;
    // Rewrites the bottom level too, with sequence numbers zeroed, as
    // RocksDB does to bottommost files some time after they are written.
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (const auto s = impl_->db->CompactRange(co, h, nullptr, nullptr); !s.ok()) raise(s, "cannot compact");
  }
  for (;;) {
    std::uint64_t running = 0;
    std::uint64_t pending = 0;
    std::uint64_t flushes = 0;
    impl_->db->GetIntProperty("rocksdb.num-running-compactions", &running);
    impl_->db->GetIntProperty("rocksdb.compaction-pending", &pending);
    impl_->db->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    if (running == 0 && pending == 0 && flushes == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<store::family_size> store::sizes() const {
  std::vector<family_size> out;
  for (std::size_t i = cf_metadata; i < cf_count; ++i) {
    std::uint64_t sst = 0;
    std::uint64_t mem = 0;
    impl_->db->GetIntProperty(impl_->cf[i], "rocksdb.live-sst-files-size", &sst);
    impl_->db->GetIntProperty(impl_->cf[i], "rocksdb.size-all-mem-tables", &mem);
    out.push_back({cf_names[i], sst + mem});
  }
  return out;
}

bool store::write_stopped() const {
  std::uint64_t v = 0;
  impl_->db->GetIntProperty("rocksdb.is-write-stopped", &v);
  return v != 0;
}

std::uint64_t store::stall_micros() const { return impl_->stats->getTickerCount(rocksdb::STALL_MICROS); }

}  // namespace cdr::store
