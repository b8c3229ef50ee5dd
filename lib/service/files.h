// Durable appends to the service's own files (the audit trail, the erasure
// ledger): written whole, fsynced, errors thrown with the file's name.
#pragma once

#include <string>

namespace cdr::service {

// Throws std::runtime_error "what: strerror(errno)".
[[noreturn]] void fail_errno(const std::string& what);
// Appends text to the file (created 0640 if missing), fsyncs it, and the
// directory too when it created the file. `what` names it in errors.
void append_synced(const std::string& path, const std::string& text, const std::string& what);
// Replaces the file with `text` whole: written to `tmp` and fsynced, renamed
// over `path`, the directory fsynced. `what` names it in errors.
void replace_synced(const std::string& path, const std::string& tmp, const std::string& text, const std::string& what);
// Fsyncs the directory holding `path` (best effort).
void sync_dir_of(const std::string& path);

}  // namespace cdr::service
