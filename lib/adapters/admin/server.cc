#include "cdr/admin/server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>

namespace cdr::admin {

namespace asio = boost::asio;
using unix_stream = asio::local::stream_protocol;

namespace {

// Reply bytes queued for one connection before a streaming handler waits.
constexpr std::size_t max_queued_bytes = 1 << 20;

std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

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

}  // namespace

class connection;

struct server::state : std::enable_shared_from_this<server::state> {
  state(asio::io_context& io, server_options o, group_policy g, handler h)
      : acceptor(io), options(std::move(o)), groups(g), handle(std::move(h)) {}

  unix_stream::acceptor acceptor;
  server_options options;
  std::mutex groups_mutex;
  group_policy groups;  // guarded by groups_mutex
  handler handle;
  // Connections of ordinary peers, and of root and the daemon's own uid.
  std::atomic<std::uint32_t> active{0};
  std::atomic<std::uint32_t> active_privileged{0};
  std::atomic<bool> stopped{false};
  std::mutex live_mutex;
  std::vector<std::weak_ptr<connection>> live;  // guarded by live_mutex
  // Commands run here, not on the io thread: a sweep that takes seconds
  // must not hold up the main loop (signals, the systemd watchdog) or other
  // admin requests.
  asio::thread_pool workers{2};

  void accept();
  // Runs one request line (on a worker), sending its reply lines to `out`.
  void process(std::string_view line, const peer& p, connection& out);
  group_policy current_groups() {
    std::lock_guard lock(groups_mutex);
    return groups;
  }
};

// One peer. Reads run on the io thread; a request runs on a worker, which
// queues its reply lines here (waiting while more than max_queued_bytes
// are unsent); the io thread writes them out, each write under a deadline.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(std::shared_ptr<server::state> owner, unix_stream::socket socket)
      : owner_(std::move(owner)),
        socket_(std::move(socket)),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()) {}

  ~connection() {
    if (counter_ != nullptr) --*counter_;
  }

  const peer& who() const { return peer_; }
  void identify() { peer_ = peer_of(socket_.native_handle()); }

  void start(std::atomic<std::uint32_t>& counter) {
    counter_ = &counter;
    ++counter;
    read();
  }

  // Sends one error line, then closes.
  void refuse(const error& e) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(error_response(e));
      queued_ += queue_.back().size();
      request_done_ = true;
      close_after_ = true;
    }
    pump();
  }

  // Worker side: queues one reply line. Throws stream_closed once the
  // connection is gone.
  void send(std::string line) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return closed_ || queued_ < max_queued_bytes; });
      if (closed_) throw stream_closed();
      queued_ += line.size();
      queue_.push_back(std::move(line));
    }
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->pump(); });
  }

  // Worker side: the request's reply is queued; read the next request once
  // it is written.
  void done() {
    {
      std::lock_guard lock(mutex_);
      request_done_ = true;
    }
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->pump(); });
  }

  // Any thread (server shutdown): wakes a worker waiting to send.
  void abandon() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  void read() {
    arm(read_timer_);
    auto self = shared_from_this();
    asio::async_read_until(socket_, asio::dynamic_buffer(buffer_, owner_->options.max_request_bytes), '\n',
                           [self](boost::system::error_code ec, std::size_t n) {
                             self->read_timer_.cancel();
                             if (ec == asio::error::not_found) {
                               self->refuse({nullptr, error_code::request_too_large,
                                             fmt::format("a request line may hold at most {} bytes",
                                                         self->owner_->options.max_request_bytes)});
                               return;
                             }
                             if (ec) {
                               self->close();  // peer closed, idle timeout or shutdown
                               return;
                             }
                             std::string line(self->buffer_.data(), n - 1);
                             if (!line.empty() && line.back() == '\r') line.pop_back();
                             self->buffer_.erase(0, n);
                             asio::post(self->owner_->workers, [self, line = std::move(line)] {
                               try {
                                 self->owner_->process(line, self->peer_, *self);
                               } catch (const stream_closed&) {
                                 // The peer went away in the middle of a reply.
                               }
                               self->done();
                             });
                           });
  }

  // io thread: writes the next queued line, or reads the next request once
  // the reply is out.
  void pump() {
    std::unique_lock lock(mutex_);
    if (closed_ || writing_) return;
    if (queue_.empty()) {
      if (!request_done_) return;
      request_done_ = false;
      const bool then_close = close_after_;
      lock.unlock();
      if (then_close) {
        close();
      } else {
        read();
      }
      return;
    }
    writing_ = true;
    const std::string& front = queue_.front();  // deque: stays put while others are added
    lock.unlock();
    arm(write_timer_);
    asio::async_write(socket_, asio::buffer(front),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->write_timer_.cancel();
                        {
                          std::lock_guard guard(self->mutex_);
                          self->queued_ -= self->queue_.front().size();
                          self->queue_.pop_front();
                          self->writing_ = false;
                          self->cv_.notify_all();
                        }
                        if (ec) {
                          self->close();
                          return;
                        }
                        self->pump();
                      });
  }

  // Closes the connection when `timer` expires (idle reading, or a write the
  // peer does not take).
  void arm(asio::steady_timer& timer) {
    timer.expires_after(owner_->options.idle_timeout);
    std::weak_ptr<connection> weak = shared_from_this();
    timer.async_wait([weak](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->close();
    });
  }

  // io thread.
  void close() {
    abandon();
    boost::system::error_code ignored;
    socket_.close(ignored);
    read_timer_.cancel();
    write_timer_.cancel();
  }

  std::shared_ptr<server::state> owner_;
  unix_stream::socket socket_;
  asio::steady_timer read_timer_;
  asio::steady_timer write_timer_;
  std::string buffer_;
  peer peer_;
  std::atomic<std::uint32_t>* counter_ = nullptr;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // guarded by mutex_, as are the fields below
  std::size_t queued_ = 0;
  bool writing_ = false;
  bool request_done_ = false;
  bool close_after_ = false;
  bool closed_ = false;
};

void server::state::accept() {
  auto self = shared_from_this();
  acceptor.async_accept([self](boost::system::error_code ec, unix_stream::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto c = std::make_shared<connection>(self, std::move(socket));
      c->identify();
      const auto g = self->current_groups();
      const bool privileged = c->who().uid == 0 || c->who().uid == g.daemon_uid;
      auto& counter = privileged ? self->active_privileged : self->active;
      if (counter >= self->options.max_connections) {
        c->refuse({nullptr, error_code::busy,
                   fmt::format("too many admin connections (at most {})", self->options.max_connections)});
      } else {
        {
          std::lock_guard lock(self->live_mutex);
          std::erase_if(self->live, [](const auto& w) { return w.expired(); });
          self->live.push_back(c);
        }
        c->start(counter);
      }
    } else {
      spdlog::warn("admin socket: accept failed: {}", ec.message());
    }
    self->accept();
  });
}

void server::state::process(std::string_view line, const peer& p, connection& out) {
  // Before anything parses the line: its nesting, then the command name
  // alone (the arguments skipped), then the peer's rights.
  if (auto e = check_nesting(line)) return out.send(error_response(*e));
  auto head = parse_request(line, /*with_args=*/false);
  if (auto* e = std::get_if<error>(&head)) return out.send(error_response(*e));
  const auto& req_head = std::get<request>(head);
  const auto* spec = find_command(req_head.command);
  const auto granted = access_of(p, current_groups());
  if (granted < spec->required) {
    spdlog::warn("admin socket: refused \"{}\" to uid {} (needs {}, has {})", req_head.command, p.uid,
                 name(spec->required), name(granted));
    return out.send(error_response({req_head.id, error_code::permission_denied,
                                    fmt::format("\"{}\" needs {} rights; uid {} has {}", req_head.command,
                                                name(spec->required), p.uid, name(granted))}));
  }
  auto parsed = parse_request(line);
  if (auto* e = std::get_if<error>(&parsed)) return out.send(error_response(*e));
  const auto& req = std::get<request>(parsed);
  if (auto e = check_args(*spec, req)) return out.send(error_response(*e));
  try {
    auto outcome = handle(req, p);
    if (auto* e = std::get_if<error>(&outcome)) {
      e->id = req.id;
      return out.send(error_response(*e));
    }
    if (auto* st = std::get_if<stream>(&outcome)) {
      auto result = st->run([&](nlohmann::json item) {
        out.send(dump_line(nlohmann::json{{"id", req.id}, {"item", std::move(item)}}));
      });
      return out.send(ok_response(req.id, std::move(result)));
    }
    out.send(ok_response(req.id, std::move(std::get<nlohmann::json>(outcome))));
  } catch (const stream_closed&) {
    throw;
  } catch (const std::exception& ex) {
    spdlog::error("admin command \"{}\" failed: {}", req.command, ex.what());
    out.send(error_response({req.id, error_code::internal, ex.what()}));
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
  {
    // A worker waiting for a peer to read must not hold up the stop.
    std::lock_guard lock(state_->live_mutex);
    for (const auto& w : state_->live) {
      if (auto c = w.lock()) c->abandon();
    }
  }
  state_->workers.join();  // commands in progress finish before their handler goes
  std::error_code ec;
  std::filesystem::remove(state_->options.path, ec);
}

void server::set_groups(group_policy groups) {
  std::lock_guard lock(state_->groups_mutex);
  state_->groups = groups;
}

std::uint32_t server::connections() const { return state_->active + state_->active_privileged; }

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
