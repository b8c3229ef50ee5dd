// Boost.Beast adapter for the daemon's HTTP port (metrics.host:port): a
// small HTTP/1.1 server of fixed GET routes, `/metrics` (the scrape) and
// the probes `/healthz` and `/readyz`.
//
// Its own threads: an I/O thread that accepts, parses, writes and answers
// the quick routes (the probes: they never wait behind a scrape, an admin
// command or anything else), and one worker for the slow ones (a scrape
// reads the store's properties). Abuse bounds: headers of at most 8 KiB,
// no request body, at most max_connections open (more are closed at once),
// and every read and write has a deadline (idle_timeout).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace cdr::admin {

struct http_reply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct http_route {
  std::function<http_reply()> answer;
  // Answered on the I/O thread: it must not block (a probe).
  bool quick = false;
};

struct http_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free port
  std::uint32_t max_connections = 64;
  std::chrono::seconds idle_timeout{30};
};

class http_server {
 public:
  // Binds and starts serving `routes` (by path; a query string is ignored).
  // Throws std::runtime_error when the address cannot be bound.
  http_server(http_options options, std::map<std::string, http_route> routes);
  ~http_server();  // stops accepting and answering; returns once no route runs
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  std::uint16_t port() const;
  std::string address() const;        // host:port actually bound ([host]:port for IPv6)
  std::uint32_t connections() const;  // open now

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace cdr::admin
