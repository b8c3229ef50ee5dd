// Test instrumentation for power-loss simulation (cdr/store/durability.h):
// with CDR_RETENTION_SYNC_LEDGER set, the store opens RocksDB on a
// FileSystemWrapper that notes, for every file RocksDB writes, what the
// kernel has been told to make durable (created, synced, directories
// synced, renamed and deleted, the files those replace kept aside).
#pragma once

#include <memory>

#include <rocksdb/file_system.h>

namespace cdr::store::detail {

// The file system to open RocksDB on: the default one, or (with the
// environment variable set) the ledger-keeping wrapper around it.
std::shared_ptr<rocksdb::FileSystem> store_file_system();

}  // namespace cdr::store::detail
