#pragma once

#include <rocksdb/statistics.h>

namespace cdr::store {

// The level of RocksDB statistics the store keeps: tickers only, so no
// histogram is timed on the write path. The write-stall time behind
// cdr_retention_store_write_stall_seconds_total is a ticker RocksDB still
// counts at this level (statistics_test forces a stall to show it).
inline constexpr rocksdb::StatsLevel statistics_level = rocksdb::StatsLevel::kExceptHistogramOrTimers;

}  // namespace cdr::store
