#include "cdr/admin/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace cdr::admin {

namespace {
[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }
}  // namespace

client::client(const std::string& socket_path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    throw std::system_error(ENAMETOOLONG, std::generic_category(), "socket path too long");
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_errno("socket");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(err, std::generic_category(), "connect " + socket_path);
  }
}

client::~client() {
  if (fd_ >= 0) ::close(fd_);
}

std::string client::exchange(std::string_view line) {
  std::string out(line);
  out.push_back('\n');
  std::size_t sent = 0;
  while (sent < out.size()) {
    const auto n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("send");
    }
    sent += static_cast<std::size_t>(n);
  }
  return read_line();
}

std::string client::read_line() {
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char chunk[65536];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) throw std::system_error(ETIMEDOUT, std::generic_category(), "recv");
      throw_errno("recv");
    }
    if (n == 0) throw std::runtime_error("the daemon closed the connection");
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

nlohmann::json client::call(std::string_view command, const nlohmann::json& args) {
  return call(command, args, [](const nlohmann::json&) {});
}

nlohmann::json client::call(std::string_view command, const nlohmann::json& args,
                            const std::function<void(const nlohmann::json&)>& on_item) {
  const nlohmann::json req{{"id", 1}, {"command", command}, {"args", args}};
  auto line = nlohmann::json::parse(exchange(req.dump()));
  while (line.contains("item")) {
    on_item(line["item"]);
    line = nlohmann::json::parse(read_line());
  }
  return line;
}

}  // namespace cdr::admin
