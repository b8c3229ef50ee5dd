// The store's RocksDB statistics level (lib/adapters/store/statistics.h, private to the adapter) against
// RocksDB itself: a forced write stall is still counted in STALL_MICROS,
// the ticker the write-stall metric exports.
#include "statistics.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>

#include "temp_dir.h"

namespace {

TEST(statistics, a_write_stall_is_counted_at_the_stores_level) {
  cdr::test::temp_dir dir;
  rocksdb::Options o;
  o.create_if_missing = true;
  // With more than three write buffers, RocksDB delays writes once all but
  // one are full and unflushed; background work is paused so that nothing
  // is flushed meanwhile.
  o.write_buffer_size = 1 << 20;
  o.max_write_buffer_number = 4;
  o.delayed_write_rate = 16 << 20;
  o.statistics = rocksdb::CreateDBStatistics();
  o.statistics->set_stats_level(cdr::store::statistics_level);
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir / "db", &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  ASSERT_TRUE(db->PauseBackgroundWork().ok());
  const std::string value(1000, 'x');
  // About 1,000 values fill a write buffer: three full ones and a third of
  // the fourth (a full fourth would stop writes for good).
  for (int i = 0; i < 3300; ++i) ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k" + std::to_string(i), value).ok());
  EXPECT_GT(o.statistics->getTickerCount(rocksdb::STALL_MICROS), 0u);
  ASSERT_TRUE(db->ContinueBackgroundWork().ok());
}

}  // namespace
