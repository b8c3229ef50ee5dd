#include "cdr/store/store.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_partitioner.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

namespace cdr::store {
namespace {

enum cf : std::size_t { cf_default, cf_metadata, cf_identifiers, cf_usage, cf_subject, cf_ids, cf_system, cf_count };
constexpr std::array<const char*, cf_count> cf_names{"default", "metadata", "identifiers", "usage",
                                                    "subject_index", "ids", "system"};

constexpr std::string_view key_format = "format_version";
constexpr char offset_tag = 'o';
constexpr char count_tag = 'c';

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_u64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string offset_key(std::string_view topic, std::int32_t p) {
  std::string k(1, offset_tag);
  k.append(topic);
  k.push_back('\0');
  put_u64(k, static_cast<std::uint32_t>(p));
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
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    std::uint64_t sum = existing != nullptr && existing->size() == 8 ? get_u64({existing->data(), 8}) : 0;
    if (value.size() == 8) sum += get_u64({value.data(), 8});
    new_value->clear();
    put_u64(*new_value, sum);
    return true;
  }
  const char* Name() const override { return "cdr.add_int64"; }
};

[[noreturn]] void raise(const rocksdb::Status& s, std::string_view what) {
  auto k = store_error::kind::fatal;
  if (s.IsIncomplete() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) k = store_error::kind::stall;
  if (s.IsNoSpace()) k = store_error::kind::no_space;
  throw store_error(k, fmt::format("{}: {}", what, s.ToString()));
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
  records_ = 0;
}


void write_batch::put_cdr(const partition& p, std::string_view id, std::string_view metadata,
                          std::string_view identifiers, std::uint64_t digest) {
  auto& b = impl_->batch;
  auto& k = impl_->key;
  k.clear();
  append_partition_prefix(k, p);
  k.append(id);
  // Column families are addressed by id here and resolved at commit.
  b.Put(impl_->h(cf_metadata), k, rocksdb::Slice(metadata.data(), metadata.size()));
  if (!identifiers.empty()) {
    b.Put(impl_->h(cf_identifiers), k,
            rocksdb::Slice(identifiers.data(), identifiers.size()));
  }
  auto& v = impl_->value;
  v.assign(k.data(), partition_prefix_size);
  put_u64(v, digest);
  b.Put(impl_->h(cf_ids), id_key(record_kind::cdr, id), v);
  ++impl_->counts[p];
  ++records_;
}

void write_batch::put_usage(const partition& p, std::string_view id, std::string_view body, std::uint64_t digest) {
  auto& k = impl_->key;
  k.clear();
  append_partition_prefix(k, p);
  k.append(id);
  impl_->batch.Put(impl_->h(cf_usage), k, rocksdb::Slice(body.data(), body.size()));
  auto& v = impl_->value;
  v.assign(k.data(), partition_prefix_size);
  put_u64(v, digest);
  impl_->batch.Put(impl_->h(cf_ids), id_key(record_kind::usage, id), v);
  ++impl_->counts[p];
  ++records_;
}

void write_batch::put_subject(const partition& p, std::string_view hash, std::string_view id) {
  impl_->subjects.push_back(subject_key(p, hash, id));
}

void write_batch::set_offset(std::string_view topic, std::int32_t kafka_partition, std::int64_t next) {
  std::string v;
  put_u64(v, static_cast<std::uint64_t>(next));
  impl_->batch.Put(impl_->h(cf_system), offset_key(topic, kafka_partition), v);
}

store::store(const storage_config& config) : impl_(std::make_unique<impl>()) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 256 << 20;
  impl_->stats = rocksdb::CreateDBStatistics();
  impl_->stats->set_stats_level(rocksdb::StatsLevel::kExceptTimeForMutex);
  db_options.statistics = impl_->stats;
  // Memory stays bounded: memtables are charged to the block cache.
  // Index and filter blocks get the cache's high-priority half, so data
  // blocks cannot push them out.
  auto cache = rocksdb::NewLRUCache(config.block_cache_bytes, -1, false, 0.5);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(config.block_cache_bytes / 2, cache);

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
      // Each (kind, month, class) partition gets SST files of its own.
      o.sst_partitioner_factory = rocksdb::NewSstPartitionerFixedPrefixFactory(partition_prefix_size);
      // Inserts into one partition continue where the last one stopped.
      o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(partition_prefix_size));
    }
    if (i == cf_ids) {
      // Ids arrive in creation order (ULIDs) per kind: insert with a hint.
      o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
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
  for (std::size_t i = 0; i < cf_count; ++i) impl_->cf[i] = handles[i];

  std::string version;
  const auto vs = db->Get(rocksdb::ReadOptions(), impl_->cf[cf_system], key_format, &version);
  if (vs.IsNotFound()) {
    std::string v;
    put_u64(v, format_version);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    const auto ws = db->Put(wo, impl_->cf[cf_system], key_format, v);
    if (!ws.ok()) raise(ws, "cannot write the store's format version");
  } else if (!vs.ok()) {
    raise(vs, "cannot read the store's format version");
  } else if (version.size() != 8 || get_u64(version) != format_version) {
    throw store_error(store_error::kind::fatal,
                      fmt::format("the store at {} has on-disk format {} but this build reads format {}; "
                                  "use the matching cdr-retentiond version",
                                  config.path, version.size() == 8 ? get_u64(version) : 0, format_version));
  }
}

store::~store() = default;

void store::commit(write_batch& batch) {
  if (impl_->needs_resume) {
    // Busy: RocksDB is already recovering on its own; the write below tells
    // whether it has. Any other failure keeps the reason of the first error.
    const auto r = impl_->db->Resume();
    if (!r.ok() && !r.IsBusy()) {
      throw store_error(impl_->resume_kind, fmt::format("the store cannot resume writing yet: {}", r.ToString()));
    }
    if (r.ok()) impl_->needs_resume = false;
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
    put_u64(v, static_cast<std::uint64_t>(n));
    resolved.Merge(impl_->cf[cf_system], k, v);
  }
  // While RocksDB only slows writes down, the write waits (that throttles the
  // consumer); while it stops them, fail fast so the consumer pauses and
  // keeps serving its group instead of blocking for an unknown time.
  rocksdb::WriteOptions wo;
  wo.no_slowdown = write_stopped();
  const auto s = impl_->db->Write(wo, &resolved);
  if (!s.ok()) {
    resolved.RollbackToSavePoint();
    if (s.IsNoSpace() || s.IsIOError()) {
      if (!impl_->needs_resume) impl_->resume_kind = s.IsNoSpace() ? store_error::kind::no_space : store_error::kind::fatal;
      impl_->needs_resume = true;
      if (impl_->resume_kind == store_error::kind::no_space) {
        throw store_error(store_error::kind::no_space, fmt::format("cannot write a batch: {}", s.ToString()));
      }
    }
    raise(s, "cannot write a batch");
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
  return id_entry{*p, get_u64(v.substr(partition_prefix_size))};
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
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf[cf_ids], slices.size(), slices.data(), values.data(),
                      statuses.data());
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
  return static_cast<std::int64_t>(get_u64(v));
}

std::optional<stored_record> store::get(record_kind kind, std::string_view id) const {
  const auto entry = find_id(kind, id);
  if (!entry) return std::nullopt;
  const auto key = record_key(entry->where, id);
  stored_record r{entry->where, std::string(id), {}, std::nullopt};
  const auto main_cf = kind == record_kind::cdr ? cf_metadata : cf_usage;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[main_cf], key, &r.metadata);
  if (s.IsNotFound()) return std::nullopt;  // its partition was dropped
  if (!s.ok()) raise(s, "cannot read a record");
  if (kind == record_kind::cdr) {
    std::string ids;
    s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_identifiers], key, &ids);
    if (s.ok()) {
      r.identifiers = std::move(ids);
    } else if (!s.IsNotFound()) {
      raise(s, "cannot read a record's identifiers");
    }
  }
  return r;
}

void store::for_each_record(
    record_kind kind, const std::function<void(const partition&, std::string_view, bool)>& fn) const {
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
      out[*p] = static_cast<std::int64_t>(get_u64(it->value().ToStringView()));
    }
  }
  if (!it->status().ok()) raise(it->status(), "cannot read partition counts");
  return out;
}

void store::for_each_subject(std::string_view hash,
                             const std::function<void(const partition&, std::string_view)>& fn) const {
  // One seek per partition that may hold identifiers: the hash follows the
  // partition prefix in the key.
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[cf_subject]));
  for (const auto& [p, n] : counts()) {
    if (p.kind != record_kind::cdr) continue;
    std::string prefix = partition_prefix(p);
    prefix.append(hash);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      fn(p, it->key().ToStringView().substr(prefix.size()));
    }
  }
  if (!it->status().ok()) raise(it->status(), "cannot read the subject index");
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
