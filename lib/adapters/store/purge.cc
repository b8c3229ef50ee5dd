// Physical removal (purge) and the operations that wait for RocksDB's own
// background work: settle and checkpoint. RocksDB's flushes, compactions
// and file deletions run on its threads in real time, so these waits poll
// on the steady clock, not on the service's time source.
#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>
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

bool is_point(const key_range& r) {
  return r.end.size() == r.begin.size() + 1 && r.end.back() == '\0' && r.end.compare(0, r.begin.size(), r.begin) == 0;
}

}  // namespace

void purge_pass::add(const removal& r) {
  ++added_;
  if (is_point(r.range)) {
    widen(spans_, r.family, r.range);
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
    // Files that still hold keys of a range (shared with other keys, or in
    // level 0) are rewritten down to the bottom level without them: one
    // compaction per family and partition, spanning its residues.
    if (!left.empty()) {
      for (const auto& res : store_.check_files(whole_).residues) widen(spans_, res.where, point_range(res.key));
    }
  }
  std::vector<removal> rewritten;
  for (const auto& [group, r] : spans_) rewritten.push_back({group.first, r});
  bytes_rewritten_ = rewritten.empty() ? 0 : store_.file_bytes(rewritten);
  std::size_t compacted = 0;
  for (const auto& [group, r] : spans_) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    co.exclusive_manual_compaction = false;
    const rocksdb::Slice b(r.begin);
    const rocksdb::Slice e(r.end);
    const auto started = std::chrono::steady_clock::now();
    if (const auto s = impl.db->CompactRange(co, impl.h(group.first), &b, &e); !s.ok()) {
      raise(s, "cannot compact a purged range");
    }
    if (pacing_ > 0) std::this_thread::sleep_for((std::chrono::steady_clock::now() - started) * pacing_);
    if (progress_) progress_(++compacted, spans_.size(), 0);
  }
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
