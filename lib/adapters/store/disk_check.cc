// On-disk verification: which keys of removed ranges are still in a live
// SST file or a live WAL record.
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
bool overlaps(std::string_view smallest, std::string_view largest, const key_range& r) {
  return largest >= std::string_view(r.begin) && (r.end.empty() || smallest < std::string_view(r.end));
}

// Looks for WAL records that put a key into one of the ranges.
class wal_scanner final : public rocksdb::WriteBatch::Handler {
 public:
  wal_scanner(const std::vector<removal>& ranges, std::vector<residue>& out) : ranges_(ranges), out_(out) {}
  // The WAL file the next batches come from (a residue names it).
  void set_file(std::string file) { file_ = std::move(file); }
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

 private:
  void check(std::uint32_t cf, const rocksdb::Slice& key) {
    const auto f = family_of(cf);
    if (!f) return;
    for (const auto& [rf, r] : ranges_) {
      if (rf == *f && in_range(key.ToStringView(), r)) {
        out_.push_back({*f, file_, key.ToString()});
        return;
      }
    }
  }
  const std::vector<removal>& ranges_;
  std::vector<residue>& out_;
  std::string file_;
};

}  // namespace

std::size_t store::impl::wal_residues(const std::vector<removal>& ranges, std::vector<residue>& out) const {
  rocksdb::VectorLogPtr wals;
  if (const auto s = db->GetSortedWalFiles(wals); !s.ok()) raise(s, "cannot list WAL files");
  if (wals.empty()) return 0;
  std::unique_ptr<rocksdb::TransactionLogIterator> it;
  if (const auto s = db->GetUpdatesSince(wals.front()->StartSequence(), &it); !s.ok()) raise(s, "cannot read the WAL");
  wal_scanner scanner(ranges, out);
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
  std::vector<std::pair<const rocksdb::LiveFileMetaData*, std::vector<const key_range*>>> reads;
  for (const auto& f : files) {
    const auto fam = family_named(f.column_family_name);
    if (!fam) continue;
    std::vector<const key_range*> hits;
    for (const auto& [rf, r] : ranges) {
      if (rf == *fam && overlaps(f.smallestkey, f.largestkey, r)) hits.push_back(&r);
    }
    if (!hits.empty()) reads.emplace_back(&f, std::move(hits));
  }
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
    for (const auto* r : hits) {
      for (it->Seek(r->begin); it->Valid() && in_range(it->key().ToStringView(), *r); it->Next()) {
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

std::uint64_t store::file_bytes(const std::vector<removal>& ranges) const {
  std::vector<rocksdb::LiveFileMetaData> files;
  impl_->db->GetLiveFilesMetaData(&files);
  std::uint64_t bytes = 0;
  for (const auto& f : files) {
    const auto fam = family_named(f.column_family_name);
    if (!fam) continue;
    for (const auto& [rf, r] : ranges) {
      if (rf == *fam && overlaps(f.smallestkey, f.largestkey, r)) {
        bytes += f.size;
        break;
      }
    }
  }
  return bytes;
}

}  // namespace cdr::store
