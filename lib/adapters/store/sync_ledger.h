// Test instrumentation for power-loss simulation (like the failpoints:
// armed by an environment variable, never set in production).
//
// With CDR_RETENTION_SYNC_LEDGER=<path>, the store opens RocksDB on a
// FileSystemWrapper that appends to <path>, for every file RocksDB writes,
// what the kernel has been told to make durable: "create F", "sync F SIZE"
// (Sync, Fsync), "dirsync D", "rename A B", "delete F". A test kills the
// daemon with SIGKILL (its page cache survives, as a power failure's would
// not) and then cuts the directory to what the ledger says was durable
// (tests/support/power_loss.h): files never made durable go, the others are
// truncated to their last synced size.
#pragma once

#include <memory>

#include <rocksdb/file_system.h>

namespace cdr::store::detail {

// The file system to open RocksDB on: the default one, or (with the
// environment variable set) the ledger-keeping wrapper around it.
std::shared_ptr<rocksdb::FileSystem> store_file_system();

}  // namespace cdr::store::detail
