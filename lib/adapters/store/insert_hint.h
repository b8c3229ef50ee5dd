#pragma once

#include <rocksdb/slice_transform.h>

#include <cstddef>
#include <memory>

namespace cdr::store {

// The memtable insert hint of the record families: one skiplist splice per
// partition prefix, so records that arrive in id order per partition are
// inserted next to the previous one instead of searched from the top.
//
// Only keys longer than the prefix are in its domain. A sweep's range
// deletion starts at the bare prefix, so it never takes a hint: RocksDB 7.8
// keeps one hint map per memtable for both its point and its range-tombstone
// skiplists, and a hint of one used on the other corrupts it.
std::shared_ptr<const rocksdb::SliceTransform> new_record_insert_hint(std::size_t prefix_size);

}  // namespace cdr::store
