// How the store lays its families out in SST files, read back from a closed
// store by hand: what flushes and compactions write, not what reads see.
#include <algorithm>
#include <iterator>
#include <map>

#include "fixture.h"

namespace cdr::test {
namespace {

const month january = month::of(2024, 1);

class store_files : public service_fixture {
 protected:
  void fill_usage(int first, int n, retention_class cls = 0) {
    store::write_batch b(*store_);
    const partition p{record_kind::usage, january, cls};
    for (int i = first; i < first + n; ++i) {
      b.put_usage(p, "u-" + std::to_string(1000000 + i), R"({"type":"usage"})", {}, static_cast<std::uint64_t>(i));
    }
    store_->commit(b);
  }
  // Every record as reads see it, the counts and the subject index.
  struct contents {
    std::map<std::string, std::pair<std::string, std::optional<std::string>>> records;  // metadata, identifiers
    std::map<partition, std::int64_t> counts;
    std::size_t subject_entries = 0;
    bool operator==(const contents&) const = default;
  };
  contents read_all() const {
    contents out;
    for (const auto kind : {record_kind::cdr, record_kind::usage}) {
      store_->for_each_record(kind, [&](const partition& p, std::string_view id, bool) {
        const auto r = store_->get_at(p, id);
        const auto key = p.to_string() + "/" + std::string(id);
        EXPECT_TRUE(r.has_value()) << key;
        EXPECT_TRUE(out.records.emplace(key, std::pair{r->metadata, r->identifiers}).second) << "twice: " << key;
      });
    }
    out.counts = store_->counts();
    store_->scan(family::subject_index, {}, [&](std::string_view, std::string_view) { return ++out.subject_entries; });
    return out;
  }
  // Fills three months of CDRs and two classes of usage, turns the closed
  // store into format 2 (halfway: as a migration killed in the middle
  // leaves it), and opens it again.
  void migrate(bool halfway) {
    fill(january, 0, 300);
    fill(month::of(2024, 2), 0, 300);
    fill(month::of(2023, 12), 0, 300);
    fill_usage(0, 200, 0);
    fill_usage(200, 200, 1);
    const auto before = read_all();
    ASSERT_EQ(before.records.size(), 1300U);
    close();
    to_format_2(dir_ / "data", halfway);
    const auto old = column_families(dir_ / "data");
    ASSERT_NE(std::find(old.begin(), old.end(), "metadata"), old.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> told;
    open_progress_ = [&](std::string_view, std::uint64_t done, std::uint64_t total) { told.emplace_back(done, total); };
    open();
    EXPECT_EQ(read_all(), before);
    ASSERT_GE(told.size(), 2U);
    EXPECT_EQ(told.front().first, 0U);
    EXPECT_EQ(told.back().first, told.back().second) << "done of total at the end";
    EXPECT_GE(told.back().first, halfway ? 1300U / 2 : 1300U);
    close();
    for (const auto& name : column_families(dir_ / "data")) {
      for (const auto* shared : {"metadata", "identifiers", "usage", "subject_index"}) EXPECT_NE(name, shared);
    }
    open_progress_ = {};
    open();
    told.clear();
    EXPECT_EQ(read_all(), before) << "the next open migrates nothing";
  }
  static std::vector<raw_file> of(const std::vector<raw_file>& files, std::string_view family) {
    std::vector<raw_file> out;
    std::copy_if(files.begin(), files.end(), std::back_inserter(out),
                 [&](const raw_file& f) { return f.family == family; });
    return out;
  }
};

// Each month of a record family has a column family of its own, so a
// flush never spans months; within a month, compaction cuts the classes'
// partitions into files of their own (RocksDB 7.8 splits only compaction
// outputs at partition boundaries).
TEST_F(store_files, a_flush_stays_within_a_month_and_compaction_cuts_its_classes_apart) {
  fill(january, 0, 100);
  fill(month::of(2024, 2), 0, 100);
  fill_usage(0, 50, 0);
  fill_usage(50, 50, 1);
  store_->settle();
  close();
  const auto flushed = raw_files(dir_ / "data");
  const auto metadata = of(flushed, "metadata");
  ASSERT_EQ(metadata.size(), 2U);
  EXPECT_EQ(metadata[0].column_family, "metadata/cdr/2024-01");
  EXPECT_EQ(metadata[1].column_family, "metadata/cdr/2024-02");
  for (const auto& f : metadata) EXPECT_EQ(decode_partition(f.smallest), decode_partition(f.largest));
  const auto usage = of(flushed, "usage");
  ASSERT_EQ(usage.size(), 1U);  // one flush of both classes of the month
  EXPECT_EQ(usage[0].column_family, "usage/usage/2024-01");
  EXPECT_NE(decode_partition(usage[0].smallest), decode_partition(usage[0].largest));

  open();
  store_->settle(/*compact=*/true);
  close();
  const auto compacted = of(raw_files(dir_ / "data"), "usage");
  ASSERT_EQ(compacted.size(), 2U);
  for (const auto& f : compacted) EXPECT_EQ(decode_partition(f.smallest), decode_partition(f.largest));
}

// A month whose keys sweeps removed loses its column families at the next
// open; a late record of that month creates them again.
TEST_F(store_files, a_month_sweeps_emptied_loses_its_families_at_the_next_open) {
  fill(january, 0, 100);
  fill(month::of(2024, 2), 0, 100);
  store::change c(*store_);
  const partition p{record_kind::cdr, january, 0};
  for (const auto f : {family::metadata, family::identifiers, family::subject_index}) {
    c.remove_range(f, partition_range(p));
  }
  store_->apply(c);
  close();
  const auto has = [&](std::string_view name) {
    const auto names = column_families(dir_ / "data");
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  EXPECT_TRUE(has("metadata/cdr/2024-01"));
  open();
  close();
  for (const auto* name : {"metadata/cdr/2024-01", "identifiers/cdr/2024-01", "subject_index/cdr/2024-01"}) {
    EXPECT_FALSE(has(name)) << name;
  }
  EXPECT_TRUE(has("metadata/cdr/2024-02"));
  open();
  fill(january, 100, 10);
  EXPECT_TRUE(store_->get_at(p, "id-1000100").has_value());
  EXPECT_FALSE(store_->get_at(p, "id-1000000").has_value());
}

// A format-2 store's shared record families move to a family per month at
// open, with progress told; every record, count and index entry reads the
// same, once, and the shared families are gone.
TEST_F(store_files, a_format_2_store_moves_to_month_families_at_open) { migrate(false); }

// A migration killed halfway resumes at its cursor: the keys moved before
// the kill are not lost, and none is kept twice.
TEST_F(store_files, a_migration_killed_halfway_resumes_where_it_stopped) { migrate(true); }

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
