// Physical removal (purge) and the operations that wait for RocksDB's own
// background work: settle and checkpoint. RocksDB's flushes, compactions
// and file deletions run on its threads in real time, so these waits poll
// on the steady clock, not on the service's time source.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>

#include "cdr/store/store.h"
#include "internal.h"

namespace cdr::store {
using namespace detail;

namespace {

// Polls a background condition at `every` until it holds or `attempts` ran out.
template <class F>
bool wait_for_rocksdb(F&& done, std::chrono::milliseconds every, int attempts) {
  for (int i = 0; i < attempts; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return done();
}

// The span a key's compaction covers: its family and partition (the held
// family's keys carry a tag byte first).
std::pair<family, std::string> group_of(family f, std::string_view key) {
  return {f, std::string(key.substr(0, partition_prefix_size + (f == family::held ? 1 : 0)))};
}

void widen(std::map<std::pair<family, std::string>, key_range>& spans, family f, const key_range& r) {
  auto [it, fresh] = spans.try_emplace(group_of(f, r.begin), r);
  if (!fresh) {
    it->second.begin = std::min(it->second.begin, r.begin);
    it->second.end = std::max(it->second.end, r.end);
  }
}

// Runs fn on a thread of its own at nice 19 (a thread's nice value cannot
// be raised back without privileges, hence a thread of its own).
rocksdb::Status on_idle_thread(const std::function<rocksdb::Status()>& fn) {
  rocksdb::Status out;
  std::thread t([&] {
    setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);  // best effort
    out = fn();
  });
  t.join();
  return out;
}

}  // namespace

void purge_pass::add(const removal& r) {
  ++added_;
  if (is_point(r.range)) {
    widen(spans_, r.family, r.range);
    points_.push_back({r.family, r.range.begin, r.older_versions});
  } else {
    whole_.push_back(r);
  }
}

void purge_pass::run() {
  auto& impl = *store_.impl_;
  if (empty()) return;
  // Whole files inside a range go without rewriting anything: partitions
  // have SST files of their own. First thing, before a flush of the
  // memtable holding the range deletion can start a compaction that reads
  // those files (DeleteFilesInRange skips files being compacted).
  const auto delete_files = [&] {
    if (const auto s = impl.delete_files(whole_); !s.ok()) raise(s, "cannot delete files in a purged range");
  };
  if (!whole_.empty()) delete_files();
  // Removed keys still in a live WAL (written since the last flush): every
  // memtable is flushed, which makes every WAL up to the current one
  // obsolete (WAL archiving and recycling are off); RocksDB deletes them
  // right after, in the background, and the purge waits for that. A span
  // stands for its points here (a superset: at worst one flush too many).
  std::vector<removal> covered = whole_;
  for (const auto& [group, span] : spans_) covered.push_back({group.first, span});
  std::vector<residue> in_wal;
  impl.wal_residues(covered, in_wal);
  if (!in_wal.empty()) {
    std::unique_ptr<rocksdb::LogFile> current;
    if (const auto s = impl.db->GetCurrentWalFile(&current); !s.ok()) raise(s, "cannot find the current WAL");
    impl.flush_all("cannot flush before a purge");
    wait_for_rocksdb(
        [&] {
          rocksdb::VectorLogPtr wals;
          if (const auto s = impl.db->GetSortedWalFiles(wals); !s.ok()) raise(s, "cannot list WAL files");
          return wals.empty() || wals.front()->LogNumber() > current->LogNumber();
        },
        std::chrono::milliseconds(1), 5000);
  }
  // A file a background compaction is reading (RocksDB rewrites bottommost
  // files once, to zero their sequence numbers; a flush of the range
  // deletion can pull them into a compaction) is skipped by
  // DeleteFilesInRange; its output lies inside the range too, so the
  // deletion is retried once that compaction is done. Each attempt reads one
  // key per file and range (a month's file can hold millions). (The WAL
  // cannot get new keys of these ranges: ingest batches into a closed
  // partition are refused, and retention changes run one at a time.)
  if (!whole_.empty()) {
    std::vector<residue> left;
    bool first = true;
    wait_for_rocksdb(
        [&] {
          if (!std::exchange(first, false)) delete_files();
          left = store_.check_files(whole_, /*first_only=*/true).residues;
          return std::none_of(left.begin(), left.end(), [](const residue& r) { return r.compacting; });
        },
        std::chrono::milliseconds(50), 200);
    // Keys of a range still in a file (shared with other keys, or in level
    // 0) are purged as points, like erased keys.
    if (!left.empty()) {
      for (const auto& res : store_.check_files(whole_).residues) points_.push_back({res.where, res.key, false});
    }
  }
  if (points_.empty()) return;
  // Every version of the points goes but a re-sealed key's current value,
  // in whatever compaction rewrites it while the pass runs; the pass
  // rewrites the files that hold one, each once, in place.
  const auto keys = drop_list();
  impl.purging->set(keys);
  struct clear {
    detail::purge_slot& slot;
    ~clear() { slot.set(nullptr); }
  } cleared{*impl.purging};
  std::vector<family> families;
  for (std::size_t cf = 0; cf < cf_count; ++cf) {
    if (const auto f = family_of(cf); f && !keys->by_family[cf].empty()) families.push_back(*f);
  }
  for (std::size_t i = 0; i < families.size(); ++i) {
    bytes_rewritten_ += rewrite_holders(families[i], *keys);
    if (progress_) progress_(i + 1, families.size(), bytes_rewritten_);
  }
}

std::shared_ptr<const detail::purge_keys> purge_pass::drop_list() const {
  auto& impl = *store_.impl_;
  auto keys = std::make_shared<detail::purge_keys>();
  for (const auto& p : points_) {
    auto keep = p.older_versions ? impl.current(p.where, p.key) : std::nullopt;
    keys->by_family[cf_of(p.where)].push_back({p.key, std::move(keep)});
  }
  for (auto& v : keys->by_family) {
    std::sort(v.begin(), v.end());
    // A key named twice (re-sealed by one erasure, removed by a later one)
    // keeps a value only if every naming keeps it.
    std::vector<detail::purge_keys::key> once;
    for (auto& k : v) {
      if (!once.empty() && once.back().name == k.name) {
        if (!k.keep || once.back().keep != k.keep) once.back().keep.reset();
      } else {
        once.push_back(std::move(k));
      }
    }
    v = std::move(once);
  }
  return keys;
}

std::uint64_t purge_pass::rewrite_holders(family f, const detail::purge_keys& keys) {
  // The family's live files that hold a version to drop, compacted level by
  // level into their own level (CompactFiles, one job per level, its input
  // exactly those files), on a thread of its own at nice 19, so it takes
  // what ingest and RocksDB's own work leave of the cores. Level 0 files
  // (written since the last flush) go through CompactRange over their keys.
  // A file a background compaction holds is waited for (that compaction
  // drops the keys too); the holders are found again each time.
  auto& impl = *store_.impl_;
  auto* handle = impl.h(f);
  rocksdb::CompactionOptions co;
  co.compression = rocksdb::kDisableCompressionOption;  // the family's own, per level
  co.output_file_size_limit = impl.db->GetOptions(handle).target_file_size_base;
  co.max_subcompactions = 1;
  std::uint64_t rewritten = 0;
  for (int attempt = 0; attempt < 400; ++attempt) {
    const auto found = holding_files(f, keys);
    if (found.empty()) return rewritten;
    bool busy = false;
    for (const auto& [level, files] : found) {
      busy = busy || files.busy;
      if (files.names.empty()) continue;
      if (level == 0) {
        rocksdb::CompactRangeOptions cro;
        cro.exclusive_manual_compaction = false;
        const rocksdb::Slice b(files.first);
        const rocksdb::Slice e(files.last);
        const auto s = impl.db->CompactRange(cro, handle, &b, &e);
        if (!s.ok()) raise(s, "cannot compact a purged range");
      } else {
        const auto s = on_idle_thread([&] { return impl.db->CompactFiles(co, handle, files.names, level); });
        if (!s.ok() && !s.IsAborted() && !s.IsInvalidArgument()) raise(s, "cannot compact a purged range");
        if (!s.ok()) {
          busy = true;  // inputs taken by a background compaction since they were listed
          continue;
        }
      }
      rewritten += files.bytes;
    }
    if (busy) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return rewritten;
}

std::map<int, purge_pass::holders> purge_pass::holding_files(family f, const detail::purge_keys& keys) const {
  auto& impl = *store_.impl_;
  const auto& names = keys.by_family[cf_of(f)];
  rocksdb::ColumnFamilyMetaData meta;
  impl.db->GetColumnFamilyMetaData(impl.h(f), &meta);
  std::map<int, holders> out;
  rocksdb::Options options;
  for (const auto& level : meta.levels) {
    for (const auto& file : level.files) {
      auto it = std::lower_bound(names.begin(), names.end(), file.smallestkey,
                                 [](const auto& k, const std::string& n) { return k.name < n; });
      if (it == names.end() || it->name > file.largestkey) continue;
      rocksdb::SstFileReader reader(options);
      const auto path = file.db_path + file.name;
      if (!reader.Open(path).ok()) continue;  // deleted since it was listed
      rocksdb::ReadOptions ro;
      ro.ignore_range_deletions = true;
      std::unique_ptr<rocksdb::Iterator> at(reader.NewIterator(ro));
      // A seek per key, or one read through the file merged with the keys
      // when they are many (a seek reads a block, and one that lands in a
      // run of deletions walks it: the subject index's random keys put
      // thousands in each of a month's files). One
      // key found is enough to rewrite a file; level 0 files go through
      // CompactRange, which needs the span of their keys.
      const auto end = std::upper_bound(it, names.end(), file.largestkey,
                                        [](const std::string& n, const auto& k) { return n < k.name; });
      const auto candidates = static_cast<std::uint64_t>(end - it);
      const bool scan = candidates > 64 || candidates * 16 > file.num_entries;
      bool holds = false;
      std::string first;
      std::string last;
      const auto hit = [&](const std::string& name) {
        if (!keys.drops(cf_of(f), name, at->value().ToStringView())) return false;
        if (!holds) first = name;
        last = name;
        holds = true;
        return level.level > 0;  // one is enough to rewrite a file above level 0
      };
      if (scan) {
        for (at->Seek(it->name); at->Valid() && it != end;) {
          const auto k = at->key().ToStringView();
          if (k < it->name) {
            at->Next();
          } else if (it->name < k) {
            ++it;
          } else {
            if (hit(it->name)) break;
            at->Next();
            ++it;
          }
        }
      } else {
        for (; it != end; ++it) {
          at->Seek(it->name);
          if (at->Valid() && at->key().ToStringView() == it->name && hit(it->name)) break;
        }
      }
      if (!holds) continue;
      auto& h = out[level.level];
      if (file.being_compacted) {
        h.busy = true;  // its compaction keeps the key or drops it: found again next time
        continue;
      }
      h.names.push_back(file.name);
      h.bytes += file.size;
      if (h.first.empty() || first < h.first) h.first = first;
      if (last + '\0' > h.last) h.last = last + '\0';
    }
  }
  return out;
}

std::vector<residue> store::purge(const std::vector<removal>& ranges) {
  if (ranges.empty()) return {};
  purge_pass pass(*this);
  for (const auto& r : ranges) pass.add(r);
  pass.run();
  return check_files(ranges).residues;
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
  for (auto* handle : impl_->cf) {
    if (!compact) continue;
    rocksdb::CompactRangeOptions co;
    co.exclusive_manual_compaction = false;
    // Rewrites the bottom level too, with sequence numbers zeroed, as
    // RocksDB does to bottommost files some time after they are written.
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (const auto s = impl_->db->CompactRange(co, handle, nullptr, nullptr); !s.ok()) raise(s, "cannot compact");
  }
  const auto idle = [&] {
    std::uint64_t running = 0;
    std::uint64_t pending = 0;
    std::uint64_t flushes = 0;
    impl_->db->GetIntProperty("rocksdb.num-running-compactions", &running);
    impl_->db->GetIntProperty("rocksdb.compaction-pending", &pending);
    impl_->db->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    return running == 0 && pending == 0 && flushes == 0;
  };
  while (!wait_for_rocksdb(idle, std::chrono::milliseconds(50), 1200)) {
  }
}

}  // namespace cdr::store
