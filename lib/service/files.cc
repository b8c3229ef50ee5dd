#include "files.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "cdr/service/secrets.h"
#include "cdr/store/durability.h"

namespace cdr::service {

void fail_errno(const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

void sync_dir_of(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) == 0) store::durability::dir_synced(dir.empty() ? "." : dir.string());
  ::close(fd);
}

namespace {

// Fsyncs fd (the file at `path`) and tells the power-loss simulation how
// much of it is durable now.
bool fsync_noted(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) == 0) store::durability::synced(path, static_cast<std::uint64_t>(st.st_size));
  return true;
}

}  // namespace

void append_synced(const std::string& path, const std::string& text, const std::string& what) {
  const bool created = !std::filesystem::exists(path);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) fail_errno("cannot open " + what + " " + path);
  if (created) store::durability::created(path);
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      fail_errno("cannot append to " + what + " " + path);
    }
    done += static_cast<std::size_t>(n);
  }
  const bool synced = fsync_noted(fd, path);
  ::close(fd);
  if (!synced) throw std::runtime_error(fmt::format("cannot fsync {} {}", what, path));
  if (created) sync_dir_of(path);
}

void replace_synced(const std::string& path, const std::string& tmp, const std::string& text, const std::string& what) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) fail_errno("cannot write " + tmp);
  store::durability::created(tmp);
  const bool written =
      ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync_noted(fd, tmp);
  ::close(fd);
  if (!written) fail_errno("cannot rewrite " + what + " " + path);
  store::durability::renaming(tmp, path, store::durability::set_aside(path));
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("cannot rewrite " + what + " " + path);
  sync_dir_of(path);
}

namespace {

class system_secret_reader final : public secret_reader {
 public:
  std::optional<std::string> env(const std::string& name) const override {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read at start-up and reload
    return v == nullptr ? std::nullopt : std::optional<std::string>(v);
  }

  result<std::string> file(const std::string& path) const override {
    constexpr std::size_t max_bytes = 64 * 1024;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return failure{std::strerror(errno)};
    struct stat st {};
    std::string bytes;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) > max_bytes) {
      const bool too_large = S_ISREG(st.st_mode);
      ::close(fd);
      return failure{too_large ? "larger than 64 KiB" : "not a regular file"};
    }
    bytes.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < bytes.size()) {
      const auto n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    bytes.resize(got);
    return bytes;
  }
};

}  // namespace

const secret_reader& system_secrets() {
  static const system_secret_reader reader;
  return reader;
}

}  // namespace cdr::service
