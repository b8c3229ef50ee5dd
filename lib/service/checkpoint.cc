#include "checkpoint.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "cdr/store/durability.h"

namespace cdr::service {
namespace {

bool name_ok(const std::string& n) {
  if (n.empty() || n.size() > 200 || n.front() == '.') return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

// Whether `name` exists in the directory, as itself: a symbolic link counts
// as existing and is not followed.
bool taken(int dir_fd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  throw std::runtime_error(fmt::format("cannot look up {}: {}", name, std::strerror(errno)));
}

std::string random_suffix() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

}  // namespace

checkpoint_place::checkpoint_place(const std::string& dir, const std::string& name) : dir_(dir), name_(name) {
  if (!name_ok(name) || name.ends_with(".tmp")) {
    throw checkpoint_refused(fmt::format(
        "\"to\" must be a name (letters, digits, '.', '_', '-'; not starting with '.', not ending in \".tmp\", at "
        "most 200 characters): the checkpoint is written to {}/NAME (storage.checkpoint_dir), never elsewhere",
        dir));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {} (storage.checkpoint_dir): {}", dir, ec.message()));
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw std::runtime_error(fmt::format("cannot open {}: {}", dir, std::strerror(errno)));
  // RocksDB writes NAME.tmp first and empties it if it exists: refused too.
  for (const auto& n : {name, name + ".tmp"}) {
    if (taken(dir_fd_, n)) {
      ::close(dir_fd_);
      throw checkpoint_refused(fmt::format("{}/{} exists already: choose another name", dir, n));
    }
  }
  staging_name_ = ".staging-" + random_suffix();
  if (::mkdirat(dir_fd_, staging_name_.c_str(), 0700) != 0) {
    const int err = errno;
    ::close(dir_fd_);
    throw std::runtime_error(fmt::format("cannot create a staging directory in {}: {}", dir, std::strerror(err)));
  }
  staging_copy_ = dir + "/" + staging_name_ + "/copy";
}

checkpoint_place::~checkpoint_place() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_ + "/" + staging_name_, ec);  // does not follow links inside
  }
  ::close(dir_fd_);
}

std::string checkpoint_place::commit() {
  const auto from = staging_name_ + "/copy";
  // Never replaces: NAME created meanwhile (a file, a link) makes it fail.
  if (::syscall(SYS_renameat2, dir_fd_, from.c_str(), dir_fd_, name_.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    if (err == EEXIST)
      throw checkpoint_refused(fmt::format("{}/{} appeared meanwhile: choose another name", dir_, name_));
    throw std::runtime_error(fmt::format("cannot move the checkpoint to {}/{}: {}", dir_, name_, std::strerror(err)));
  }
  committed_ = true;
  // It replaced nothing, so it is noted once made.
  store::durability::renaming(dir_ + "/" + from, dir_ + "/" + name_, "-");
  ::unlinkat(dir_fd_, staging_name_.c_str(), AT_REMOVEDIR);
  if (::fsync(dir_fd_) == 0) store::durability::dir_synced(dir_);
  return dir_ + "/" + name_;
}

}  // namespace cdr::service
