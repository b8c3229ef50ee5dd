// Test instrumentation for the power-loss simulation (like the failpoints:
// armed by an environment variable, never set in production). With
// CDR_RETENTION_SYNC_LEDGER=<path>, every file the daemon makes durable
// (RocksDB's, through the store's file system, and the daemon's own: the
// key store, the audit trail, the erasure ledger) appends to <path> what
// the kernel was told to make durable:
//   create F | sync F SIZE | dirsync D | rename A B SHADOW | delete F SHADOW
// A file a rename replaces, or a delete removes, is first hard-linked to
// SHADOW ("-": there was none), so a simulated power failure that loses
// the rename or the delete (its directory was not synced since) can bring
// it back. tests/support/power_loss.h applies the ledger after a SIGKILL.
// A replacing rename is noted just before it is made: a kill between the
// rename and a note after it would leave the replaced file's synced size
// standing for the new file, and the simulation would tear a file that was
// whole (a kill between the note and the rename is undone to the state
// the disk has).
#pragma once

#include <cstdint>
#include <string>

namespace cdr::store::durability {

bool armed();
void created(const std::string& path);
void synced(const std::string& path, std::uint64_t size);
void dir_synced(const std::string& dir);
// Before a rename onto `path` or a delete of it: keeps the file that
// would go (a hard link); returns where, or "-" (not armed, or no file).
std::string set_aside(const std::string& path);
// Just before a rename that replaces `to` (see above).
void renaming(const std::string& from, const std::string& to, const std::string& shadow);
void deleted(const std::string& path, const std::string& shadow);

}  // namespace cdr::store::durability
