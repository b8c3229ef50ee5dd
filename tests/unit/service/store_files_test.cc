// How the store lays its families out in SST files, read back from a closed
// store by hand: what flushes and compactions write, not what reads see.
#include <algorithm>
#include <iterator>

#include "fixture.h"

namespace cdr::test {
namespace {

const month january = month::of(2024, 1);

class store_files : public service_fixture {
 protected:
  void fill_usage(int first, int n) {
    store::write_batch b(*store_);
    const partition p{record_kind::usage, january, 0};
    for (int i = first; i < first + n; ++i) {
      b.put_usage(p, "u-" + std::to_string(1000000 + i), R"({"type":"usage"})", {}, static_cast<std::uint64_t>(i));
    }
    store_->commit(b);
  }
  static std::vector<raw_file> of(const std::vector<raw_file>& files, std::string_view family) {
    std::vector<raw_file> out;
    std::copy_if(files.begin(), files.end(), std::back_inserter(out),
                 [&](const raw_file& f) { return f.family == family; });
    return out;
  }
};

// The metadata families keep their bottom level in ZSTD (most of the store:
// docs/capacity.md); every other level and family stays LZ4.
TEST_F(store_files, the_bottom_level_of_the_metadata_families_is_zstd) {
  config_.storage.compression = compression_kind::lz4;  // the fixture's is "none"
  reopen();
  fill(january, 0, 200);
  fill_usage(0, 200);
  store_->settle(/*compact=*/true);
  close();
  const auto files = raw_files(dir_ / "data");
  int bottom = 0;
  for (const auto& f : files) bottom = std::max(bottom, f.level);
  ASSERT_GT(bottom, 0);
  std::size_t zstd = 0;
  for (const auto& f : files) {
    const bool metadata = f.family == "metadata" || f.family == "usage";
    const auto expected = metadata && f.level == bottom ? "ZSTD" : "LZ4";
    EXPECT_EQ(f.compression, expected) << f.family << " at level " << f.level;
    if (f.compression == "ZSTD") ++zstd;
  }
  EXPECT_GE(zstd, 2u) << "a metadata and a usage file at the bottom";
}

// RocksDB 7.8 splits only compaction outputs at partition boundaries: a
// flush writes one level-0 file per family, spanning every partition it
// holds, and compaction cuts it into files of one partition each
// (docs/performance.md, "Cost per event grows with the store").
TEST_F(store_files, a_flush_spans_partitions_and_compaction_cuts_them_apart) {
  fill(january, 0, 100);
  fill(month::of(2024, 2), 0, 100);
  store_->settle();
  close();
  const auto flushed = of(raw_files(dir_ / "data"), "metadata");
  ASSERT_EQ(flushed.size(), 1U);
  EXPECT_NE(decode_partition(flushed[0].smallest), decode_partition(flushed[0].largest));

  open();
  store_->settle(/*compact=*/true);
  close();
  const auto compacted = of(raw_files(dir_ / "data"), "metadata");
  ASSERT_EQ(compacted.size(), 2U);
  for (const auto& f : compacted) EXPECT_EQ(decode_partition(f.smallest), decode_partition(f.largest));
}

// Issue "Erasure, exact and at scale", item 2: a purge pass rewrites the
// files that hold an erased key, each once, and no other: January's
// identifiers file loses the key, February's is not touched; a re-sealed
// key keeps its current value.
TEST_F(store_files, a_purge_pass_rewrites_only_the_files_that_hold_an_erased_key) {
  const month february = month::of(2024, 2);
  fill(january, 0, 200);
  fill(february, 0, 200);
  store_->settle(/*compact=*/true);
  const auto jan = removal{family::identifiers, partition_range({record_kind::cdr, january, 0})};
  const auto feb = removal{family::identifiers, partition_range({record_kind::cdr, february, 0})};
  const auto jan_bytes = store_->file_bytes({jan});
  const auto feb_bytes = store_->file_bytes({feb});
  const auto erased = record_key({record_kind::cdr, january, 0}, "id-1000007");
  const auto resealed = record_key({record_kind::cdr, january, 0}, "id-1000008");
  {
    store::change c(*store_);
    c.remove(family::identifiers, erased);
    c.put(family::identifiers, resealed, "re-sealed");
    store_->apply(c);
  }
  const std::vector<removal> removed{{family::identifiers, point_range(erased)},
                                     {family::identifiers, point_range(resealed), /*older_versions=*/true}};
  store::purge_pass pass(*store_);
  for (const auto& r : removed) pass.add(r);
  pass.run();
  EXPECT_EQ(pass.bytes_rewritten(), jan_bytes) << "January's file, once";
  EXPECT_EQ(store_->file_bytes({feb}), feb_bytes) << "February's file is not rewritten";
  EXPECT_TRUE(store_->check_on_disk(removed).residues.empty());
  EXPECT_EQ(store_->value(family::identifiers, resealed), "re-sealed");
  EXPECT_FALSE(store_->value(family::identifiers, erased).has_value());
  close();
  std::uint64_t january_entries = 0;
  for (const auto& f : of(raw_files(dir_ / "data"), "identifiers")) {
    if (decode_partition(f.smallest) == partition{record_kind::cdr, january, 0}) january_entries += f.entries;
  }
  EXPECT_EQ(january_entries, 198u + 2u)
      << "both old versions dropped from the rewritten file; the deletion and the re-sealed value flushed at close";
  open();
}

// The subject index is only ever iterated by range: it carries no filter,
// while the families read by whole key keep theirs.
TEST_F(store_files, the_subject_index_carries_no_filter_and_the_record_families_do) {
  // Files of both writers: CDRs and usage events flushed and compacted to
  // the bottom, then more of both flushed into level 0.
  fill(january, 0, 200);
  fill_usage(0, 200);
  store_->settle(/*compact=*/true);
  fill(january, 200, 200);
  fill_usage(200, 200);
  store_->settle();
  close();
  const auto files = raw_files(dir_ / "data");
  const auto subjects = of(files, "subject_index");
  ASSERT_FALSE(subjects.empty());
  for (const auto& f : subjects) {
    EXPECT_GT(f.entries, 0U);
    EXPECT_EQ(f.filter_bytes, 0U);
  }
  for (const auto* family : {"metadata", "identifiers", "usage", "ids"}) {
    const auto read_by_key = of(files, family);
    ASSERT_FALSE(read_by_key.empty()) << family;
    for (const auto& f : read_by_key) EXPECT_GT(f.filter_bytes, 0U) << family;
  }
}

}  // namespace
}  // namespace cdr::test
