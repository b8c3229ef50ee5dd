// Spike of rival store layouts, side by side (issue "The store at the real
// scale", item 2): the daemon's write pattern on raw RocksDB, measured as
// CPU per event (every thread of the process, compactions included) while
// new events land on top of a store of BASE older records.
//
//   cmake --preset release && cmake --build --preset release --target bench_layout
//   build/release/benchmarks/bench_layout LAYOUT BASE NEW
//
// LAYOUT:
//   shared     today's: one column family per family (metadata, identifiers,
//              usage, subject_index, ids), both kinds and every month in each
//   by-kind    the same, with identifiers and subject_index split by kind
//   per-month  a column family per (family, kind, month) for the records and
//              the subject index; ids as today
// BASE records are written first in the production shape (120 months of
// CDRs, the 13 newest with identifiers, 36 months of usage) and compacted,
// untimed. NEW events then arrive as ingest writes them (batches of 2000:
// one id lookup per event, metadata, sealed identifiers, the id entry and
// two subject-index entries per CDR, 15% usage events; 3% of them stragglers
// of the previous month); the clock stops once every flush and compaction
// they caused is done. This is a spike: the one benchmark that names RocksDB,
// because it compares layouts the store adapter does not have.
// Options are the store's (lib/adapters/store/options.cc) where they apply.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_partitioner.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

namespace {

using steady = std::chrono::steady_clock;

enum class layout { shared, by_kind, per_month };
enum class fam : int { metadata, identifiers, usage, subject, ids };
constexpr int months_of_cdr = 120, whole_months = 13, months_of_usage = 36;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::string prefix(bool usage, int month) {
  std::string p(7, '\0');
  p[0] = usage ? 'u' : 'c';
  const auto m = static_cast<std::uint32_t>(24'000 + month);
  for (std::size_t i = 0; i < 4; ++i) p[1 + i] = static_cast<char>(m >> (24 - 8 * i));
  return p;
}

class spike {
 public:
  spike(layout l, const std::string& path) : layout_(l), path_(path) {
    cache_ = rocksdb::NewLRUCache(64 << 20, -1, false, 0.5);
    stats_ = rocksdb::CreateDBStatistics();
    db_options_.create_if_missing = true;
    db_options_.create_missing_column_families = true;
    db_options_.max_background_jobs = 2;
    db_options_.bytes_per_sync = 1 << 20;
    db_options_.max_total_wal_size = 64 << 20;
    db_options_.statistics = stats_;
    db_options_.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(32 << 20, cache_);
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs{{rocksdb::kDefaultColumnFamilyName, options(fam::ids)},
                                                     {"ids", options(fam::ids)}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    check(rocksdb::DB::Open(db_options_, path_, cfs, &handles, &db), "open");
    db_.reset(db);
    handles_.assign(handles.begin(), handles.end());
    ids_ = handles_[1];
  }
  ~spike() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_.reset();
  }

  // The column family a key of (family, kind, month) goes to; created on
  // first use (per-month).
  rocksdb::ColumnFamilyHandle* cf(fam f, bool usage, int month) {
    if (f == fam::ids) return ids_;
    std::string name = f == fam::metadata      ? "metadata"
                       : f == fam::identifiers ? "identifiers"
                       : f == fam::usage       ? "usage"
                                               : "subject_index";
    if (layout_ != layout::shared && (f == fam::identifiers || f == fam::subject)) name += usage ? "/usage" : "/cdr";
    if (layout_ == layout::per_month) name += "/" + std::to_string(month);
    if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
    rocksdb::ColumnFamilyHandle* h = nullptr;
    check(db_->CreateColumnFamily(options(f), name, &h), "create column family");
    handles_.push_back(h);
    by_name_[name] = h;
    return h;
  }

  rocksdb::DB& db() { return *db_; }
  std::uint64_t ticker(rocksdb::Tickers t) const { return stats_->getTickerCount(t); }
  std::size_t families() const { return handles_.size(); }

  void settle() {
    check(db_->Flush(rocksdb::FlushOptions{}, handles_), "flush");
    // RocksDB 7.8 has no WaitForCompact: poll until nothing is pending or running.
    for (;;) {
      std::uint64_t pending = 0, compactions = 0, flushes = 0;
      db_->GetAggregatedIntProperty("rocksdb.compaction-pending", &pending);
      db_->GetIntProperty("rocksdb.num-running-compactions", &compactions);
      db_->GetIntProperty("rocksdb.num-running-flushes", &flushes);
      if (pending + compactions + flushes == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void compact_all() {
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kSkip;
    for (auto* h : handles_) check(db_->CompactRange(o, h, nullptr, nullptr), "compact");
  }

 private:
  rocksdb::ColumnFamilyOptions options(fam f) const {
    rocksdb::ColumnFamilyOptions o;
    o.compression = rocksdb::kLZ4Compression;
    o.bottommost_compression = rocksdb::kLZ4Compression;
    o.write_buffer_size = 32 << 20;
    o.max_write_buffer_number = 3;
    o.level_compaction_dynamic_level_bytes = true;
    o.target_file_size_base = 8 << 20;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache_;
    t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.partition_filters = true;
    t.metadata_block_size = 4096;
    t.cache_index_and_filter_blocks = true;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.pin_top_level_index_and_filter = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    if (f != fam::subject) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.format_version = 5;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    if (f == fam::ids) {
      o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
      o.memtable_prefix_bloom_size_ratio = 0.05;
      o.memtable_whole_key_filtering = true;
    } else {
      o.sst_partitioner_factory = rocksdb::NewSstPartitionerFixedPrefixFactory(7);
      o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(7));
      o.level0_file_num_compaction_trigger = 16;
      o.level0_slowdown_writes_trigger = 48;
      o.level0_stop_writes_trigger = 72;
    }
    return o;
  }

  layout layout_;
  std::string path_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::Statistics> stats_;
  rocksdb::DBOptions db_options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name_;
  rocksdb::ColumnFamilyHandle* ids_ = nullptr;
};

// Writes events as ingest does; `month_of(i)` places event i.
class writer {
 public:
  explicit writer(spike& s) : s_(s), rng_(2025) {
    for (auto& c : metadata_) c = static_cast<char>('a' + rng_() % 26);
  }

  void write(std::uint64_t n, const std::function<int(std::uint64_t)>& month_of, const std::function<bool(int)>& whole,
             double usage_share, bool lookup) {
    rocksdb::WriteBatch b;
    std::vector<std::string> ids;
    std::uniform_real_distribution<double> u(0, 1);
    for (std::uint64_t i = 0; i < n; ++i) {
      const bool usage = u(rng_) < usage_share;
      const int month = month_of(i);
      const auto p = prefix(usage, month);
      char id[32];
      std::snprintf(id, sizeof id, "%c%025llu", usage ? 'u' : 'c', static_cast<unsigned long long>(++counter_));
      const std::string key = p + id;
      ids.emplace_back(id);
      // Metadata: about 250 bytes of JSON-like text (compressible); sealed
      // identifiers: about 110 bytes of ciphertext (not).
      b.Put(s_.cf(usage ? fam::usage : fam::metadata, usage, month), key, rocksdb::Slice(metadata_, usage ? 180 : 250));
      if (whole(month) || usage) {
        std::string sealed(usage ? 90 : 110, '\0');
        for (auto& c : sealed) c = static_cast<char>(rng_());
        b.Put(s_.cf(fam::identifiers, usage, month), key, sealed);
        for (int k = 0; k < 2; ++k) {
          std::string hash(32, '\0');
          for (auto& c : hash) c = static_cast<char>(rng_());
          b.Put(s_.cf(fam::subject, usage, month), p + hash + id, "");
        }
      }
      b.Put(s_.cf(fam::ids, usage, month), id, p + "digest..");
      if (ids.size() == 2000) flush(b, ids, lookup);
    }
    flush(b, ids, lookup);
  }

 private:
  void flush(rocksdb::WriteBatch& b, std::vector<std::string>& ids, bool lookup) {
    if (lookup && !ids.empty()) {
      std::sort(ids.begin(), ids.end());  // ingest asks in (kind, id) order
      std::vector<rocksdb::Slice> keys(ids.begin(), ids.end());
      std::vector<rocksdb::PinnableSlice> values(keys.size());
      std::vector<rocksdb::Status> statuses(keys.size());
      s_.db().MultiGet(rocksdb::ReadOptions(), s_.cf(fam::ids, false, 0), keys.size(), keys.data(), values.data(),
                       statuses.data(), true);
    }
    rocksdb::WriteOptions w;
    for (;;) {
      w.no_slowdown = true;
      const auto st = s_.db().Write(w, &b);
      if (st.ok()) break;
      if (!st.IsIncomplete()) check(st, "write");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    b.Clear();
    ids.clear();
  }

  spike& s_;
  std::mt19937_64 rng_;
  char metadata_[256];
  std::uint64_t counter_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bench_layout shared|by-kind|per-month BASE NEW\n");
    return 2;
  }
  const std::string name = argv[1];
  if (name != "shared" && name != "by-kind" && name != "per-month") {
    std::fprintf(stderr, "bench_layout: unknown layout \"%s\" (shared, by-kind or per-month)\n", name.c_str());
    return 2;
  }
  const layout l = name == "shared" ? layout::shared : name == "by-kind" ? layout::by_kind : layout::per_month;
  const auto base = std::stoull(argv[2]);
  const auto fresh = std::stoull(argv[3]);
  const std::string path = "/tmp/cdr-bench-layout";
  rocksdb::DestroyDB(path, rocksdb::Options());
  std::filesystem::remove_all(path);
  spike s(l, path);
  writer w(s);
  // Months 0 .. 119 are the past (CDRs), 120 the current one; usage keeps
  // 84 .. 120; identifiers 108 .. 120.
  const auto whole = [](int m) { return m >= months_of_cdr - whole_months + 1; };
  auto t0 = steady::now();
  if (base > 0) {
    const std::uint64_t per_month = base / months_of_cdr;
    for (int m = 0; m < months_of_cdr; ++m) {
      w.write(
          per_month, [m](std::uint64_t) { return m; }, whole, m >= months_of_cdr - months_of_usage ? 0.15 : 0.0, false);
    }
    s.settle();
    s.compact_all();
    s.settle();
  }
  const double base_s = std::chrono::duration<double>(steady::now() - t0).count();
  const auto flushed0 = s.ticker(rocksdb::FLUSH_WRITE_BYTES);
  const auto compacted0 = s.ticker(rocksdb::COMPACT_WRITE_BYTES);
  const double cpu0 = cpu_seconds();
  t0 = steady::now();
  // 3% of the new events are stragglers of the previous month.
  std::mt19937_64 r(7);
  w.write(
      fresh, [&](std::uint64_t) { return r() % 100 < 3 ? months_of_cdr - 1 : months_of_cdr; }, whole, 0.15, true);
  const double write_s = std::chrono::duration<double>(steady::now() - t0).count();
  s.settle();
  const double all_s = std::chrono::duration<double>(steady::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  const auto per = [&](std::uint64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(fresh); };
  std::printf(
      "%-10s base %llu (built in %.0f s) new %llu: %.0f events/s written, %.1f s with compactions; CPU %.2f us/event; "
      "flushed %.0f B/event, compacted %.0f B/event; %zu column families\n",
      name.c_str(), static_cast<unsigned long long>(base), base_s, static_cast<unsigned long long>(fresh),
      static_cast<double>(fresh) / write_s, all_s, 1e6 * cpu / static_cast<double>(fresh),
      per(s.ticker(rocksdb::FLUSH_WRITE_BYTES) - flushed0), per(s.ticker(rocksdb::COMPACT_WRITE_BYTES) - compacted0),
      s.families());
  return 0;
}
