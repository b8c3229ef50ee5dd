// On-disk verification: which keys of removed ranges are still in a live
// SST file or a live WAL record.
#include <algorithm>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/transaction_log.h>

#include "cdr/store/store.h"
#include "internal.h"

namespace cdr::store {
using namespace detail;

namespace {

bool in_range(std::string_view key, const key_range& r) {
  return key >= std::string_view(r.begin) && (r.end.empty() || key < std::string_view(r.end));
}

// Whether a version of a key in removal r is a residue: any version is,
// except the key's current value where only older versions must be gone.
bool residual(const removal& r, std::string_view key, std::string_view value, const current_values& now) {
  if (!r.older_versions) return true;
  const auto it = now.find({r.family, std::string(key)});
  return it == now.end() || !it->second || *it->second != value;
}

// The removals each file overlaps, in time proportional to the files plus
// the ranges: the point ranges (an erasure's keys, hundreds of thousands)
// sorted and found by binary search from a file's smallest key; the wide
// ones (a sweep's partitions, a few hundred) tried one by one.
class range_index {
 public:
  explicit range_index(const std::vector<removal>& ranges) {
    for (const auto& r : ranges) (is_point(r.range) ? points_ : wide_).push_back(&r);
    std::sort(points_.begin(), points_.end(), [](const removal* a, const removal* b) {
      return std::tie(a->family, a->range.begin) < std::tie(b->family, b->range.begin);
    });
  }
  // The removal holding `key`, if any.
  const removal* containing(family f, std::string_view key) const {
    const auto it = std::lower_bound(points_.begin(), points_.end(), std::pair(f, key), before);
    if (it != points_.end() && (*it)->family == f && (*it)->range.begin == key) return *it;
    for (const auto* r : wide_) {
      if (r->family == f && in_range(key, r->range)) return r;
    }
    return nullptr;
  }
  std::vector<const removal*> overlapping(family f, std::string_view smallest, std::string_view largest) const {
    std::vector<const removal*> out;
    // A point range starting before `smallest` ends at or before it.
    auto it = std::lower_bound(points_.begin(), points_.end(), std::pair(f, smallest), before);
    for (; it != points_.end() && (*it)->family == f && std::string_view((*it)->range.begin) <= largest; ++it) {
      out.push_back(*it);
    }
    for (const auto* r : wide_) {
      if (r->family == f && overlaps(smallest, largest, r->range)) out.push_back(r);
    }
    return out;
  }

 private:
  static bool before(const removal* r, const std::pair<family, std::string_view>& k) {
    return std::pair(r->family, std::string_view(r->range.begin)) < k;
  }
  std::vector<const removal*> points_;
  std::vector<const removal*> wide_;
};

// Looks for WAL records that put a key into one of the ranges.
class wal_scanner final : public rocksdb::WriteBatch::Handler {
 public:
  wal_scanner(const std::vector<removal>& ranges, const current_values& now, std::vector<residue>& out)
      : ranges_(ranges), now_(now), out_(out) {}
  // The WAL file the next batches come from (a residue names it).
  void set_file(std::string file) { file_ = std::move(file); }
  rocksdb::Status PutCF(std::uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    check(cf, key, value);
    return rocksdb::Status::OK();
  }
  rocksdb::Status MergeCF(std::uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    check(cf, key, value);
    return rocksdb::Status::OK();
  }
  // Deletions carry keys but no values; they are what a purge writes.
  rocksdb::Status DeleteCF(std::uint32_t, const rocksdb::Slice&) override { return rocksdb::Status::OK(); }
  rocksdb::Status SingleDeleteCF(std::uint32_t, const rocksdb::Slice&) override { return rocksdb::Status::OK(); }
  rocksdb::Status DeleteRangeCF(std::uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();
  }

 private:
  void check(std::uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice& value) {
    const auto f = family_of(cf);
    if (!f) return;
    const auto* r = ranges_.containing(*f, key.ToStringView());
    if (r != nullptr && residual(*r, key.ToStringView(), value.ToStringView(), now_)) {
      out_.push_back({*f, file_, key.ToString()});
    }
  }
  range_index ranges_;
  const current_values& now_;
  std::vector<residue>& out_;
  std::string file_;
};

}  // namespace

std::optional<std::string> store::impl::current(family f, const std::string& key) const {
  std::string value;
  const auto s = db->Get(rocksdb::ReadOptions(), h(f), key, &value);
  if (!s.ok() && !s.IsNotFound()) raise(s, "cannot read a re-sealed key");
  return s.ok() ? std::optional(std::move(value)) : std::nullopt;
}

current_values store::impl::current(const std::vector<removal>& ranges) const {
  current_values out;
  for (const auto& r : ranges) {
    if (r.older_versions) out[{r.family, r.range.begin}] = current(r.family, r.range.begin);
  }
  return out;
}

std::size_t store::impl::wal_residues(const std::vector<removal>& ranges, std::vector<residue>& out) const {
  rocksdb::VectorLogPtr wals;
  if (const auto s = db->GetSortedWalFiles(wals); !s.ok()) raise(s, "cannot list WAL files");
  if (wals.empty()) return 0;
  std::unique_ptr<rocksdb::TransactionLogIterator> it;
  if (const auto s = db->GetUpdatesSince(wals.front()->StartSequence(), &it); !s.ok()) raise(s, "cannot read the WAL");
  const auto now = current(ranges);
  wal_scanner scanner(ranges, now, out);
  std::size_t file = 0;
  for (; it->Valid(); it->Next()) {
    auto batch = it->GetBatch();
    // The last file starting at or before the batch's sequence holds it.
    while (file + 1 < wals.size() && wals[file + 1]->StartSequence() <= batch.sequence) ++file;
    scanner.set_file(wals[file]->PathName());
    if (const auto hs = batch.writeBatchPtr->Iterate(&scanner); !hs.ok()) raise(hs, "cannot read a WAL record");
  }
  return wals.size();
}

store::disk_check store::check_on_disk(const std::vector<removal>& ranges, const file_progress& on_file) const {
  auto out = check_files(ranges, false, on_file);
  out.wal_files = impl_->wal_residues(ranges, out.residues);
  return out;
}

store::disk_check store::check_files(const std::vector<removal>& ranges, bool first_only,
                                     const file_progress& on_file) const {
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
  // The files to read, each with the ranges it overlaps.
  std::vector<std::pair<const rocksdb::LiveFileMetaData*, std::vector<const removal*>>> reads;
  const range_index index(ranges);
  for (const auto& f : files) {
    const auto fam = family_named(f.column_family_name);
    if (!fam) continue;
    auto hits = index.overlapping(*fam, f.smallestkey, f.largestkey);
    if (!hits.empty()) reads.emplace_back(&f, std::move(hits));
  }
  const auto now = impl_->current(ranges);
  rocksdb::Options options;
  std::uint64_t bytes = 0;
  for (const auto& [file, hits] : reads) {
    const auto& f = *file;
    const auto fam = family_named(f.column_family_name);
    rocksdb::SstFileReader reader(options);
    const auto path = f.db_path + f.name;
    if (const auto s = reader.Open(path); !s.ok()) raise(s, fmt::format("cannot open {}", path));
    ++out.sst_files_read;
    rocksdb::ReadOptions ro;
    ro.ignore_range_deletions = true;  // the raw keys in the file, not what reads would see
    ro.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(ro));
    // The point ranges come first, sorted. Many of them for the file's
    // size: one read through the file merged with them, as a seek that
    // lands in a run of deletions walks it (an erasure's flushed
    // tombstones) and thousands of seeks would walk it thousands of times.
    const auto points = static_cast<std::size_t>(
        std::find_if(hits.begin(), hits.end(), [](const removal* r) { return !is_point(r->range); }) - hits.begin());
    std::size_t first_seek = 0;
    if (points > 64 || points * 16 > f.num_entries) {
      first_seek = points;
      std::size_t p = 0;
      for (it->Seek(hits[0]->range.begin); it->Valid() && p < points;) {
        const auto k = it->key().ToStringView();
        const std::string_view want = hits[p]->range.begin;
        if (k < want) {
          it->Next();
        } else if (want < k) {
          ++p;
        } else {
          if (residual(*hits[p], k, it->value().ToStringView(), now)) {
            out.residues.push_back({*fam, f.name, std::string(k), f.being_compacted});
          }
          ++p;  // a key two removals name is checked for each
          if (p == points || hits[p]->range.begin != k) it->Next();
        }
      }
      if (!it->status().ok()) raise(it->status(), fmt::format("cannot read {}", path));
    }
    for (std::size_t h = first_seek; h < hits.size(); ++h) {
      const auto* r = hits[h];
      for (it->Seek(r->range.begin); it->Valid() && in_range(it->key().ToStringView(), r->range); it->Next()) {
        if (!residual(*r, it->key().ToStringView(), it->value().ToStringView(), now)) continue;
        out.residues.push_back({*fam, f.name, it->key().ToString(), f.being_compacted});
        if (first_only) break;
      }
      if (!it->status().ok()) raise(it->status(), fmt::format("cannot read {}", path));
    }
    bytes += f.size;
    if (on_file) on_file(out.sst_files_read, reads.size(), bytes);
  }
  return out;
}

store::file_total store::files_overlapping(const std::vector<removal>& ranges) const {
  std::vector<rocksdb::LiveFileMetaData> files;
  impl_->db->GetLiveFilesMetaData(&files);
  file_total total;
  const range_index index(ranges);
  for (const auto& f : files) {
    const auto fam = family_named(f.column_family_name);
    if (!fam || index.overlapping(*fam, f.smallestkey, f.largestkey).empty()) continue;
    ++total.files;
    total.bytes += f.size;
  }
  return total;
}

}  // namespace cdr::store
