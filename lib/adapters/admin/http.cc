#include "cdr/admin/http.h"

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace cdr::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Declared in destruction order's reverse: the I/O context (whose pending
// handlers hold sessions) goes before the counter the sessions update.
struct http_server::state {
  http_options options;
  std::map<std::string, http_route> routes;
  std::atomic<std::uint32_t> open{0};
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer backoff{io};
  asio::thread_pool worker{1};
  std::thread thread;
};

namespace {

http_reply answer(const std::string& path, const http_route& route) {
  try {
    return route.answer();
  } catch (const std::exception& e) {
    spdlog::error("http: {} failed: {}", path, e.what());
    return {500, "text/plain; charset=utf-8", "internal error\n"};
  }
}

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, http_server::state& s) : stream_(std::move(socket)), s_(s) { ++s_.open; }
  ~session() { --s_.open; }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(1024);
    stream_.expires_after(s_.options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) {
      // A peer that closed, stalled past the deadline or sent what is not
      // HTTP within the limits: hung up on, nothing answered.
      if (ec != http::error::end_of_stream && ec != beast::error::timeout) {
        spdlog::debug("http: request refused: {}", ec.message());
      }
      return close();
    }
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head_) {
      return respond({405, "text/plain; charset=utf-8", "only GET and HEAD are served here\n"});
    }
    std::string path(req.target());
    path = path.substr(0, path.find('?'));
    const auto it = s_.routes.find(path);
    if (it == s_.routes.end()) {
      std::string known;
      for (const auto& [p, _] : s_.routes) known += " " + p;
      return respond({404, "text/plain; charset=utf-8", "not found; served:" + known + "\n"});
    }
    if (it->second.quick) return respond(answer(it->first, it->second));
    asio::post(s_.worker, [self = shared_from_this(), it] {
      auto reply = answer(it->first, it->second);
      asio::post(self->stream_.get_executor(),
                 [self, reply = std::move(reply)]() mutable { self->respond(std::move(reply)); });
    });
  }

  void respond(http_reply r) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version_);
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    if (r.status == 405) res->set(http::field::allow, "GET, HEAD");
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (head_) res->body().clear();  // the length stays what a GET would get
    stream_.expires_after(s_.options.idle_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  http_server::state& s_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 11;
};

void accept(http_server::state& s) {
  s.acceptor.async_accept([&s](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors, say: try again shortly rather than spin.
      spdlog::warn("http: accept failed: {}", ec.message());
      s.backoff.expires_after(std::chrono::milliseconds(100));
      s.backoff.async_wait([&s](boost::system::error_code e) {
        if (!e) accept(s);
      });
      return;
    }
    if (s.open.load() >= s.options.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<session>(std::move(socket), s)->read();
    }
    accept(s);
  });
}

}  // namespace

http_server::http_server(http_options options, std::map<std::string, http_route> routes)
    : state_(std::make_shared<state>()) {
  auto& s = *state_;
  s.options = std::move(options);
  s.routes = std::move(routes);
  const auto& host = s.options.host;
  const auto bind = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, s.options.port)
                                                        : fmt::format("{}:{}", host, s.options.port);
  boost::system::error_code ec;
  tcp::resolver resolver(s.io);
  const auto found = resolver.resolve(host, std::to_string(s.options.port), tcp::resolver::passive, ec);
  if (ec || found.empty()) {
    throw std::runtime_error(fmt::format("cannot listen on {}: {}", bind, ec ? ec.message() : "no address"));
  }
  const tcp::endpoint at = found.begin()->endpoint();
  s.acceptor.open(at.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(at, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}: {}", bind, ec.message()));
  accept(s);
  s.thread = std::thread([&s] { s.io.run(); });
}

http_server::~http_server() {
  auto& s = *state_;
  // A route running on the worker finishes first: it may use what its
  // owner is about to tear down.
  s.worker.stop();
  s.worker.join();
  s.io.stop();
  s.thread.join();
}

std::uint16_t http_server::port() const {
  boost::system::error_code ec;
  const auto at = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : at.port();
}

std::uint32_t http_server::connections() const { return state_->open.load(); }

std::string http_server::address() const {
  const auto& host = state_->options.host;
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port())
                                             : fmt::format("{}:{}", host, port());
}

}  // namespace cdr::admin
