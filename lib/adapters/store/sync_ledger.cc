#include "sync_ledger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "cdr/store/durability.h"

namespace cdr::store::detail {
namespace {

// The ledger file, opened once per process when the variable is set.
class ledger {
 public:
  static ledger* get() {
    static ledger* const instance = [] {
      const char* path = std::getenv("CDR_RETENTION_SYNC_LEDGER");
      return path == nullptr || *path == '\0' ? nullptr : new ledger(path);
    }();
    return instance;
  }
  void note(const std::string& line) {
    if (fd_ < 0) return;
    std::lock_guard lock(mutex_);
    const auto text = line + "\n";
    (void)!::write(fd_, text.data(), text.size());
  }
  std::string set_aside(const std::string& path) {
    std::lock_guard lock(mutex_);
    const auto shadow = fmt::format("{}.shadow/{}-{}", path_, ::getpid(), ++shadows_);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(shadow).parent_path(), ec);
    return ::link(path.c_str(), shadow.c_str()) == 0 ? shadow : std::string("-");
  }

 private:
  explicit ledger(std::string path)
      : path_(std::move(path)), fd_(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {}
  std::string path_;
  int fd_;
  std::mutex mutex_;
  std::uint64_t shadows_ = 0;  // guarded by mutex_
};

class ledger_file final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  ledger_file(std::unique_ptr<rocksdb::FSWritableFile>&& f, std::string path, std::uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(f)), path_(std::move(path)), size_(size) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    auto s = target()->Append(data, o, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* dbg) override {
    auto s = target()->Append(data, o, v, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset, const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) override {
    auto s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) size_ = std::max<std::uint64_t>(size_, offset + data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset, const rocksdb::IOOptions& o,
                                     const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* dbg) override {
    auto s = target()->PositionedAppend(data, offset, o, v, dbg);
    if (s.ok()) size_ = std::max<std::uint64_t>(size_, offset + data.size());
    return s;
  }
  rocksdb::IOStatus Truncate(std::uint64_t size, const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    auto s = target()->Truncate(size, o, dbg);
    if (s.ok()) size_ = size;
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return synced(target()->Sync(o, dbg));
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return synced(target()->Fsync(o, dbg));
  }

 private:
  rocksdb::IOStatus synced(rocksdb::IOStatus s) {
    if (s.ok()) durability::synced(path_, size_);
    return s;
  }
  std::string path_;
  std::uint64_t size_;
};

class ledger_directory final : public rocksdb::FSDirectoryWrapper {
 public:
  ledger_directory(std::unique_ptr<rocksdb::FSDirectory>&& d, std::string path)
      : FSDirectoryWrapper(std::move(d)), path_(std::move(path)) {}
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return noted(FSDirectoryWrapper::Fsync(o, dbg));
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& d) override {
    return noted(FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d));
  }

 private:
  rocksdb::IOStatus noted(rocksdb::IOStatus s) {
    if (s.ok()) durability::dir_synced(path_);
    return s;
  }
  std::string path_;
};

class ledger_fs final : public rocksdb::FileSystemWrapper {
 public:
  explicit ledger_fs(const std::shared_ptr<rocksdb::FileSystem>& base) : FileSystemWrapper(base) {}
  const char* Name() const override { return "cdr.SyncLedgerFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) {
      durability::created(f);
      *r = std::make_unique<ledger_file>(std::move(*r), f, 0);
    }
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    std::uint64_t size = 0;
    target()->GetFileSize(f, rocksdb::IOOptions(), &size, dbg).PermitUncheckedError();
    auto s = target()->ReopenWritableFile(f, o, r, dbg);
    if (s.ok()) *r = std::make_unique<ledger_file>(std::move(*r), f, size);
    return s;
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io,
                                 std::unique_ptr<rocksdb::FSDirectory>* r, rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewDirectory(name, io, r, dbg);
    if (s.ok()) *r = std::make_unique<ledger_directory>(std::move(*r), name);
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    durability::renaming(src, dst, durability::set_aside(dst));
    return target()->RenameFile(src, dst, o, dbg);
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    const auto shadow = durability::set_aside(f);
    auto s = target()->DeleteFile(f, o, dbg);
    if (s.ok()) durability::deleted(f, shadow);
    return s;
  }
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> store_file_system() {
  if (!durability::armed()) return rocksdb::FileSystem::Default();
  return std::make_shared<ledger_fs>(rocksdb::FileSystem::Default());
}

}  // namespace cdr::store::detail

namespace cdr::store::durability {

using detail::ledger;

bool armed() { return ledger::get() != nullptr; }

void created(const std::string& path) {
  if (auto* l = ledger::get()) l->note("create " + path);
}

void synced(const std::string& path, std::uint64_t size) {
  if (auto* l = ledger::get()) l->note(fmt::format("sync {} {}", path, size));
}

void dir_synced(const std::string& dir) {
  if (auto* l = ledger::get()) l->note("dirsync " + dir);
}

std::string set_aside(const std::string& path) {
  auto* l = ledger::get();
  return l == nullptr ? std::string("-") : l->set_aside(path);
}

void renaming(const std::string& from, const std::string& to, const std::string& shadow) {
  if (auto* l = ledger::get()) l->note(fmt::format("rename {} {} {}", from, to, shadow));
}

void deleted(const std::string& path, const std::string& shadow) {
  if (auto* l = ledger::get()) l->note(fmt::format("delete {} {}", path, shadow));
}

}  // namespace cdr::store::durability
