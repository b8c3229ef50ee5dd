// The record families' memtable insert hint (lib/adapters/store/insert_hint.h, private to the adapter)
// against RocksDB itself: records of one partition inserted around a range
// deletion of that partition, all in one memtable, read back whole and in
// order. With a plain fixed-prefix hint, RocksDB 7.8 reuses the records'
// skiplist splice for the range-tombstone skiplist and corrupts both.
#include "insert_hint.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace {

constexpr std::size_t prefix_size = 7;

std::string key(std::string_view prefix, int id) { return fmt::format("{}{:026}", prefix, id); }

TEST(insert_hint, a_range_deletion_in_the_same_memtable_never_takes_a_records_hint) {
  cdr::test::temp_dir dir;
  rocksdb::Options o;
  o.create_if_missing = true;
  o.memtable_insert_with_hint_prefix_extractor = cdr::store::new_record_insert_hint(prefix_size);
  o.write_buffer_size = 64 << 20;  // everything below stays in one memtable
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir / "db", &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);

  // Three partitions with 7-byte prefixes; a sweep's range deletion starts
  // at a bare prefix and ends at the next one.
  const std::string p = "Mp-2025";
  const std::string q = "Mq-2025";
  const std::string r = "Mr-2025";
  rocksdb::WriteOptions wo;
  const auto remove = [&](const std::string& prefix) {
    std::string end = prefix;
    end.back() = static_cast<char>(end.back() + 1);
    return db->DeleteRange(wo, db->DefaultColumnFamily(), prefix, end);
  };
  for (int i = 0; i < 2000; ++i) {
    for (const auto& prefix : {p, q, r}) ASSERT_TRUE(db->Put(wo, key(prefix, i), "old").ok());
  }
  ASSERT_TRUE(remove(p).ok());
  // Later records of the removed partitions, and another removal between.
  for (int i = 2000; i < 4000; ++i) {
    ASSERT_TRUE(db->Put(wo, key(p, i), "new").ok());
    if (i == 3000) {
      ASSERT_TRUE(remove(r).ok());
    }
    if (i >= 3000) {
      ASSERT_TRUE(db->Put(wo, key(r, i), "new").ok());
    }
  }

  std::vector<std::string> seen;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) seen.push_back(it->key().ToString());
  ASSERT_TRUE(it->status().ok());

  std::vector<std::string> expected;
  for (int i = 2000; i < 4000; ++i) expected.push_back(key(p, i));
  for (int i = 0; i < 2000; ++i) expected.push_back(key(q, i));
  for (int i = 3000; i < 4000; ++i) expected.push_back(key(r, i));
  EXPECT_EQ(seen, expected);
  std::string v;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), key(p, 10), &v).IsNotFound());
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), key(p, 3999), &v).ok());
  EXPECT_EQ(v, "new");
}

TEST(insert_hint, only_keys_longer_than_the_prefix_are_in_its_domain) {
  const auto hint = cdr::store::new_record_insert_hint(prefix_size);
  EXPECT_FALSE(hint->InDomain("Mp-2025"));
  EXPECT_TRUE(hint->InDomain("Mp-2025x"));
  EXPECT_EQ(hint->Transform("Mp-2025x").ToString(), "Mp-2025");
}

}  // namespace
