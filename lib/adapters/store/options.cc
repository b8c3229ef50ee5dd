// How the store opens RocksDB: every tuning setting, and why it is what it
// is. Figures quoted are from docs/performance.md.
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_partitioner.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include "insert_hint.h"
#include "internal.h"
#include "statistics.h"
#include "sync_ledger.h"

namespace cdr::store {
namespace {

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

class dropped_ids_filter final : public rocksdb::CompactionFilter {
 public:
  explicit dropped_ids_filter(std::shared_ptr<detail::dropped_set> dropped) : dropped_(std::move(dropped)) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
    // A held record's entry (marked) outlives its partition.
    return value.size() == detail::id_entry_size &&
           dropped_->contains(std::string_view(value.data(), partition_prefix_size));
  }
  const char* Name() const override { return "cdr.dropped_ids"; }

 private:
  std::shared_ptr<detail::dropped_set> dropped_;
};

// Drops the versions a purge pass names (detail::purge_keys), in the
// compactions that start while it runs.
class purge_filter final : public rocksdb::CompactionFilter {
 public:
  purge_filter(std::size_t cf, std::shared_ptr<const detail::purge_keys> keys) : cf_(cf), keys_(std::move(keys)) {}
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string*, bool*) const override {
    return keys_->drops(cf_, key.ToStringView(), value.ToStringView());
  }
  const char* Name() const override { return "cdr.purge"; }

 private:
  std::size_t cf_;
  std::shared_ptr<const detail::purge_keys> keys_;
};

class purge_filter_factory final : public rocksdb::CompactionFilterFactory {
 public:
  purge_filter_factory(std::size_t cf, std::shared_ptr<detail::purge_slot> slot) : cf_(cf), slot_(std::move(slot)) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context&) override {
    auto keys = slot_->get();
    if (!keys || keys->by_family[cf_].empty()) return nullptr;  // no pass running
    return std::make_unique<purge_filter>(cf_, std::move(keys));
  }
  const char* Name() const override { return "cdr.purge"; }

 private:
  std::size_t cf_;
  std::shared_ptr<detail::purge_slot> slot_;
};

class record_insert_hint final : public rocksdb::SliceTransform {
 public:
  explicit record_insert_hint(std::size_t size) : size_(size) {}
  const char* Name() const override { return "cdr.RecordInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return {key.data(), size_}; }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > size_; }

 private:
  std::size_t size_;
};

rocksdb::DBOptions database_options(const std::shared_ptr<rocksdb::Statistics>& stats) {
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  // One flush and one compaction at a time: the machine class has 2 cores,
  // and the ingest thread needs one of them.
  o.max_background_jobs = 2;
  // Writes SST data to disk in 1 MiB steps instead of all at once at the
  // end of a file, so a flush does not stall on one large fsync.
  o.bytes_per_sync = 1 << 20;
  // Bounds the live WAL: the system family's few bytes per batch would
  // otherwise keep old WAL files alive, and a purge reads the live WAL.
  o.max_total_wal_size = 64 << 20;
  o.statistics = stats;
  return o;
}

rocksdb::BlockBasedTableOptions table_options(const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  // Filters and indexes are partitioned (a lookup reads one small partition,
  // not a whole file's filter), cached with high priority, and their top
  // levels pinned: memory stays bounded by the cache while id lookups at
  // ingest stay off the disk.
  t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  t.partition_filters = true;
  t.metadata_block_size = 4096;  // RocksDB's default page-sized partitions
  t.cache_index_and_filter_blocks = true;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_top_level_index_and_filter = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  // 10 bits per key: about 1% false positives, RocksDB's usual trade-off;
  // nearly every id looked up at ingest is new, so misses must stay cheap.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Format 5: the current full-filter format of RocksDB 7.
  t.format_version = 5;
  return t;
}

rocksdb::ColumnFamilyOptions family_options(std::size_t i, const storage_config& config,
                                            const std::shared_ptr<rocksdb::Cache>& cache, detail::tuning& out,
                                            const std::shared_ptr<detail::dropped_set>& dropped,
                                            const std::shared_ptr<detail::purge_slot>& purging) {
  const auto compression =
      config.compression == compression_kind::lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  rocksdb::ColumnFamilyOptions o;
  o.compression = compression;
  o.bottommost_compression = compression;
  // Memtables of up to 32 MiB, up to 3 per family, so ingest keeps writing
  // while one is flushed. All are charged to the block cache, and the
  // write-buffer manager (half the cache, shared by every family) flushes
  // them before that: with the default 64 MiB cache, every flush is the
  // manager's, at a few MB of data per family (docs/performance.md,
  // "Session 7").
  o.write_buffer_size = 32 << 20;
  o.max_write_buffer_number = 3;
  // Levels sized from the bottom up: space amplification stays near 1.1
  // whatever the data size.
  o.level_compaction_dynamic_level_bytes = true;
  // Small files: an L0 file overlapping a partition's tail rewrites one of
  // them, and an erasure's purge rewrites only the few holding its keys.
  o.target_file_size_base = 8 << 20;
  auto table = table_options(cache);
  // The subject index is only ever iterated (a subject's range within a
  // partition), never read by whole key, so a whole-key filter would be
  // built at every flush and compaction and never consulted.
  if (i == detail::cf_subject) table.filter_policy.reset();
  if ((i == detail::cf_metadata || i == detail::cf_usage) && config.compression == compression_kind::lz4) {
    // The metadata of every record kept, stripped or not, is most of the
    // store (70% of a fleet's disk, docs/capacity.md), and nearly all of it
    // sits in the bottom level, read only by record lookups, exports and
    // drains. There it is ZSTD in 16 KiB blocks: 45 bytes per record instead
    // of LZ4's 104 in 4 KiB blocks (sst_dump recompress of a bench_scale
    // file; docs/performance.md, "Bytes per record"). Upper levels keep LZ4,
    // so flushes and ingest's compactions cost what they did.
    o.bottommost_compression = rocksdb::kZSTD;
    table.block_size = 16 << 10;
  }
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (i == detail::cf_metadata || i == detail::cf_identifiers || i == detail::cf_usage || i == detail::cf_subject) {
    // Compaction cuts its output at partition boundaries, so below level 0
    // each (kind, month, class) partition lives in SST files of its own; each
    // partition also gets a memtable insert hint of its own (ids arrive in
    // creation order). RocksDB 7.8 does not cut flushes: a level-0 file spans
    // every partition its memtable held, and compacting it rewrites every
    // level-base file in that span (store_files_test; docs/performance.md,
    // "Cost per event grows with the store").
    o.sst_partitioner_factory = rocksdb::NewSstPartitionerFixedPrefixFactory(partition_prefix_size);
    o.memtable_insert_with_hint_prefix_extractor = new_record_insert_hint(partition_prefix_size);
    // The record families are not read at ingest, so level 0 may grow:
    // compacting after every flush or two rewrote each partition's tail again
    // and again (16 files: compaction CPU 10.7 s -> 6.4 s on 1.5M events).
    // Slowdown and stop at 3x and 4.5x that keep RocksDB's default ratios.
    o.level0_file_num_compaction_trigger = 16;
    o.level0_slowdown_writes_trigger = 48;
    o.level0_stop_writes_trigger = 72;
  }
  if (i == detail::cf_ids) {
    // Ids arrive in creation order (ULIDs) per kind: insert with a hint on
    // the kind byte.
    o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
    // Ingest looks every id of a batch up here, and nearly all are new: a
    // whole-key bloom filter answers them without searching the memtables
    // (MemTable::MultiGet 8.3% -> 0.2% of the ingest thread). 5% of the
    // memtable's size is RocksDB's suggested ratio.
    o.memtable_prefix_bloom_size_ratio = 0.05;
    o.memtable_whole_key_filtering = true;
    out.ids_filter = std::make_unique<dropped_ids_filter>(dropped);
    o.compaction_filter = out.ids_filter.get();
  }
  if (i == detail::cf_system) o.merge_operator = std::make_shared<add_operator>();
  if (i != detail::cf_system && i != detail::cf_ids) {
    o.compaction_filter_factory = std::make_shared<purge_filter_factory>(i, purging);
  }
  return o;
}

}  // namespace

std::shared_ptr<const rocksdb::SliceTransform> new_record_insert_hint(std::size_t prefix_size) {
  return std::make_shared<record_insert_hint>(prefix_size);
}

namespace detail {

tuning make_tuning(const storage_config& config, std::shared_ptr<dropped_set> dropped,
                   const std::shared_ptr<purge_slot>& purging) {
  tuning out;
  out.stats = rocksdb::CreateDBStatistics();
  out.stats->set_stats_level(statistics_level);
  out.db = database_options(out.stats);
  if (auto fs = store_file_system(); fs != rocksdb::FileSystem::Default()) {
    out.env = rocksdb::NewCompositeEnv(fs);
    out.db.env = out.env.get();
  }
  // Memory stays bounded: memtables are charged to the block cache (half of
  // it at most). Index and filter blocks get the cache's high-priority half
  // (the last argument), so data blocks cannot push them out.
  auto cache = rocksdb::NewLRUCache(config.block_cache_bytes, -1, false, 0.5);
  out.db.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(config.block_cache_bytes / 2, cache);
  for (std::size_t i = 0; i < cf_count; ++i) {
    out.families.emplace_back(cf_names[i], family_options(i, config, cache, out, dropped, purging));
  }
  return out;
}

}  // namespace detail
}  // namespace cdr::store
