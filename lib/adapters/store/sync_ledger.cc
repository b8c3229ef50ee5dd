#include "sync_ledger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include <fmt/format.h>

namespace cdr::store::detail {
namespace {

class ledger {
 public:
  explicit ledger(const char* path) : fd_(::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {}
  void note(const std::string& line) {
    if (fd_ < 0) return;
    std::lock_guard lock(mutex_);
    const auto text = line + "\n";
    (void)!::write(fd_, text.data(), text.size());
  }

 private:
  int fd_;
  std::mutex mutex_;
};

class ledger_file final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  ledger_file(std::unique_ptr<rocksdb::FSWritableFile>&& f, std::string path, std::shared_ptr<ledger> l,
              std::uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(f)), path_(std::move(path)), ledger_(std::move(l)), size_(size) {}

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
    if (s.ok()) ledger_->note(fmt::format("sync {} {}", path_, size_));
    return s;
  }
  std::string path_;
  std::shared_ptr<ledger> ledger_;
  std::uint64_t size_;
};

class ledger_directory final : public rocksdb::FSDirectoryWrapper {
 public:
  ledger_directory(std::unique_ptr<rocksdb::FSDirectory>&& d, std::string path, std::shared_ptr<ledger> l)
      : FSDirectoryWrapper(std::move(d)), path_(std::move(path)), ledger_(std::move(l)) {}
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return noted(FSDirectoryWrapper::Fsync(o, dbg));
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& d) override {
    return noted(FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d));
  }

 private:
  rocksdb::IOStatus noted(rocksdb::IOStatus s) {
    if (s.ok()) ledger_->note("dirsync " + path_);
    return s;
  }
  std::string path_;
  std::shared_ptr<ledger> ledger_;
};

class ledger_fs final : public rocksdb::FileSystemWrapper {
 public:
  ledger_fs(const std::shared_ptr<rocksdb::FileSystem>& base, std::shared_ptr<ledger> l)
      : FileSystemWrapper(base), ledger_(std::move(l)) {}
  const char* Name() const override { return "cdr.SyncLedgerFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) {
      ledger_->note("create " + f);
      *r = std::make_unique<ledger_file>(std::move(*r), f, ledger_, 0);
    }
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    std::uint64_t size = 0;
    target()->GetFileSize(f, rocksdb::IOOptions(), &size, dbg).PermitUncheckedError();
    auto s = target()->ReopenWritableFile(f, o, r, dbg);
    if (s.ok()) *r = std::make_unique<ledger_file>(std::move(*r), f, ledger_, size);
    return s;
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io,
                                 std::unique_ptr<rocksdb::FSDirectory>* r, rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewDirectory(name, io, r, dbg);
    if (s.ok()) *r = std::make_unique<ledger_directory>(std::move(*r), name, ledger_);
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    auto s = target()->RenameFile(src, dst, o, dbg);
    if (s.ok()) ledger_->note("rename " + src + " " + dst);
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    auto s = target()->DeleteFile(f, o, dbg);
    if (s.ok()) ledger_->note("delete " + f);
    return s;
  }

 private:
  std::shared_ptr<ledger> ledger_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> store_file_system() {
  const char* path = std::getenv("CDR_RETENTION_SYNC_LEDGER");
  if (path == nullptr || *path == '\0') return rocksdb::FileSystem::Default();
  return std::make_shared<ledger_fs>(rocksdb::FileSystem::Default(), std::make_shared<ledger>(path));
}

}  // namespace cdr::store::detail
