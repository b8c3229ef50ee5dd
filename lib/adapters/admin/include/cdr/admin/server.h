// Boost.Asio adapter for the admin socket: a Unix stream socket speaking the
// newline-delimited JSON protocol of cdr/core/admin_protocol.h.
//
// Abuse bounds: a request line is at most max_request_bytes; its nesting is
// checked before anything parses it; the peer's rights are checked on the
// command name alone, before its arguments are read; every reply write has
// a deadline (idle_timeout), so a peer that does not read is hung up on;
// peers other than root and the daemon's own uid share max_connections,
// and those two have as many slots of their own, so nobody else can keep an
// operator out.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "cdr/core/admin_protocol.h"
#include "cdr/core/time.h"

namespace cdr::admin {

struct server_options {
  std::string path;
  std::optional<gid_t> socket_gid;  // group owning the socket file (mode 0660)
  std::uint32_t max_connections = 16;
  std::uint32_t max_request_bytes = 64 * 1024;
  microseconds idle_timeout = std::chrono::seconds(60);  // also each reply write's deadline
};

// Thrown by a stream's emit once its connection is gone: the handler stops.
class stream_closed : public std::runtime_error {
 public:
  stream_closed() : std::runtime_error("the admin connection closed while a streamed reply was sent") {}
};

// A streamed outcome: `run` calls emit once per item, each sent as its own
// line {"id": ..., "item": {...}} as it comes, then returns the final
// result, sent as {"id": ..., "ok": true, "result": ...}. Memory stays
// bounded: emit waits while the peer is behind.
using emit_fn = std::function<void(nlohmann::json item)>;
struct stream {
  std::function<nlohmann::json(const emit_fn& emit)> run;
};

// A command's outcome: its result object, a stream, or an error.
using reply = std::variant<nlohmann::json, error, stream>;
// Runs an authorized request whose arguments fit its command (on a worker).
using handler = std::function<reply(const request&, const peer&)>;

class server {
 public:
  // Binds and listens. Throws std::runtime_error when the path is taken by
  // a live daemon or cannot be bound.
  server(boost::asio::io_context& io, server_options options, group_policy groups, handler h);
  // Replaces who is operator and viewer (configuration reload).
  void set_groups(group_policy groups);
  ~server();  // stops accepting, closes connections, removes the socket file
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint32_t connections() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

// Resolves a group name; nullopt when empty or unknown.
std::optional<gid_t> lookup_group(const std::string& name);

}  // namespace cdr::admin
