#include "cdr/admin/server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cdr::admin {

namespace asio = boost::asio;
using unix_stream = asio::local::stream_protocol;

struct server::state : std::enable_shared_from_this<server::state> {
  state(asio::io_context& io, server_options o, group_policy g, handler h)
      : acceptor(io), options(std::move(o)), groups(g), handle(std::move(h)) {}

  unix_stream::acceptor acceptor;
  server_options options;
  std::mutex groups_mutex;
  group_policy groups;  // guarded by groups_mutex
  handler handle;
  std::atomic<std::uint32_t> active{0};
  std::atomic<bool> stopped{false};
  // Commands run here, not on the io thread: a sweep that takes seconds
  // must not hold up the main loop (signals, the systemd watchdog) or other
  // admin requests.
  asio::thread_pool workers{2};

  void accept();
  std::string process(std::string_view line, const peer& p);
};

namespace {

// The peer's credentials from SO_PEERCRED, and its supplementary groups as
// the kernel recorded them at connect time (SO_PEERGROUPS, Linux 4.13): no
// /proc access needed, so the unit can hide other processes (ProtectProc).
peer peer_of(int fd) {
  peer p;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    p.uid = static_cast<std::uint32_t>(-1);  // unknown peer: no rights
    p.gid = static_cast<std::uint32_t>(-1);
    return p;
  }
  p.uid = cred.uid;
  p.gid = cred.gid;
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      p.groups.assign(groups.begin(), groups.end());
      return p;
    }
    if (errno != ERANGE) break;
    groups.resize(bytes / sizeof(gid_t) + 1);  // the kernel said how many
  }
  // Older kernels: the groups the process has now.
  std::ifstream status(fmt::format("/proc/{}/status", cred.pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Groups:", 0) == 0) {
      std::istringstream in(line.substr(7));
      std::uint32_t g = 0;
      while (in >> g) p.groups.push_back(g);
      break;
    }
  }
  return p;
}

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(std::shared_ptr<server::state> owner, unix_stream::socket socket)
      : owner_(std::move(owner)), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

  void start() {
    peer_ = peer_of(socket_.native_handle());
    read();
  }

  // Sends one error line, then closes (too many connections).
  void refuse(const error& e) {
    response_ = error_response(e);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(response_), [self](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    });
  }

  ~connection() {
    if (counted_) --owner_->active;
  }
  void count() {
    counted_ = true;
    ++owner_->active;
  }

 private:
  void arm_timer() {
    timer_.expires_after(owner_->options.idle_timeout);
    std::weak_ptr<connection> weak = shared_from_this();
    timer_.async_wait([weak](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      }
    });
  }

  void read() {
    arm_timer();
    auto self = shared_from_this();
    asio::async_read_until(
        socket_, asio::dynamic_buffer(buffer_, owner_->options.max_request_bytes), '\n',
        [self](boost::system::error_code ec, std::size_t n) {
          if (ec == asio::error::not_found) {
            self->timer_.cancel();
            self->refuse({nullptr, error_code::request_too_large,
                          fmt::format("a request line may hold at most {} bytes",
                                      self->owner_->options.max_request_bytes)});
            return;
          }
          if (ec) {
            self->timer_.cancel();
            return;  // peer closed, idle timeout or shutdown
          }
          std::string line(self->buffer_.data(), n - 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          self->buffer_.erase(0, n);
          self->timer_.cancel();  // a long command is not idleness
          asio::post(self->owner_->workers, [self, line = std::move(line)] {
            auto response = self->owner_->process(line, self->peer_);
            asio::post(self->socket_.get_executor(),
                       [self, response = std::move(response)]() mutable { self->reply(std::move(response)); });
          });
        });
  }

  void reply(std::string response) {
    response_ = std::move(response);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(response_), [self](boost::system::error_code ec, std::size_t) {
      if (!ec) self->read();
    });
  }

  std::shared_ptr<server::state> owner_;
  unix_stream::socket socket_;
  asio::steady_timer timer_;
  std::string buffer_;
  std::string response_;
  peer peer_;
  bool counted_ = false;
};

}  // namespace

void server::state::accept() {
  auto self = shared_from_this();
  acceptor.async_accept([self](boost::system::error_code ec, unix_stream::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto c = std::make_shared<connection>(self, std::move(socket));
      if (self->active >= self->options.max_connections) {
        c->refuse({nullptr, error_code::busy,
                   fmt::format("too many admin connections (at most {})", self->options.max_connections)});
      } else {
        c->count();
        c->start();
      }
    } else {
      spdlog::warn("admin socket: accept failed: {}", ec.message());
    }
    self->accept();
  });
}

std::string server::state::process(std::string_view line, const peer& p) {
  auto parsed = parse_request(line);
  if (auto* e = std::get_if<error>(&parsed)) return error_response(*e);
  auto& req = std::get<request>(parsed);
  const auto* spec = find_command(req.command);
  const auto granted = [&] {
    std::lock_guard lock(groups_mutex);
    return access_of(p, groups);
  }();
  if (granted < spec->required) {
    spdlog::warn("admin socket: refused \"{}\" to uid {} (needs {}, has {})", req.command, p.uid,
                 name(spec->required), name(granted));
    return error_response({req.id, error_code::permission_denied,
                           fmt::format("\"{}\" needs {} rights; uid {} has {}", req.command,
                                       name(spec->required), p.uid, name(granted))});
  }
  try {
    auto out = handle(req, p);
    if (auto* e = std::get_if<error>(&out)) {
      e->id = req.id;
      return error_response(*e);
    }
    if (auto* st = std::get_if<stream>(&out)) {
      std::string lines;
      for (auto& item : st->items) {
        lines += nlohmann::json{{"id", req.id}, {"item", std::move(item)}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace) +
                 "\n";
      }
      return lines + ok_response(req.id, std::move(st->result));
    }
    return ok_response(req.id, std::move(std::get<nlohmann::json>(out)));
  } catch (const std::exception& ex) {
    spdlog::error("admin command \"{}\" failed: {}", req.command, ex.what());
    return error_response({req.id, error_code::internal, ex.what()});
  }
}

server::server(asio::io_context& io, server_options options, group_policy groups, handler h)
    : state_(std::make_shared<state>(io, std::move(options), groups, std::move(h))) {
  const auto& path = state_->options.path;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec))) {
    // A socket file is left over from a crash, or a live daemon owns it.
    unix_stream::socket probe(io);
    boost::system::error_code probe_ec;
    probe.connect(unix_stream::endpoint(path), probe_ec);
    if (!probe_ec) throw std::runtime_error(fmt::format("admin socket {} is in use by a running daemon", path));
    if (!fs::is_socket(fs::symlink_status(path, ec))) {
      throw std::runtime_error(fmt::format("admin socket path {} exists and is not a socket", path));
    }
    fs::remove(path, ec);
  }
  const auto parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);

  state_->acceptor.open(unix_stream());
  const mode_t old_mask = umask(0117);  // the socket is born 0660
  boost::system::error_code bind_ec;
  state_->acceptor.bind(unix_stream::endpoint(path), bind_ec);
  umask(old_mask);
  if (bind_ec) throw std::runtime_error(fmt::format("cannot bind admin socket {}: {}", path, bind_ec.message()));
  if (chmod(path.c_str(), 0660) != 0) {
    throw std::runtime_error(fmt::format("cannot chmod admin socket {}: {}", path, std::strerror(errno)));
  }
  if (state_->options.socket_gid && chown(path.c_str(), static_cast<uid_t>(-1), *state_->options.socket_gid) != 0) {
    throw std::runtime_error(fmt::format("cannot give admin socket {} to group {}: {}", path,
                                         *state_->options.socket_gid, std::strerror(errno)));
  }
  state_->acceptor.listen();
  state_->accept();
}

server::~server() {
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  state_->workers.join();  // commands in progress finish before their handler goes
  std::error_code ec;
  std::filesystem::remove(state_->options.path, ec);
}

void server::set_groups(group_policy groups) {
  std::lock_guard lock(state_->groups_mutex);
  state_->groups = groups;
}

std::uint32_t server::connections() const { return state_->active; }

std::optional<gid_t> lookup_group(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<char> buf(16384);
  group g{};
  group* result = nullptr;
  if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return std::nullopt;
  }
  return result->gr_gid;
}

}  // namespace cdr::admin
