// Boost.Asio adapter for the admin socket: a Unix stream socket speaking the
// newline-delimited JSON protocol of cdr/core/admin_protocol.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  microseconds idle_timeout = std::chrono::seconds(60);
};

// A streamed outcome: each item is sent as its own line
// {"id": ..., "item": {...}} before the final {"id": ..., "ok": true, "result": ...}.
struct stream {
  std::vector<nlohmann::json> items;
  nlohmann::json result;
};

// A command's outcome: its result object, a stream, or an error.
using reply = std::variant<nlohmann::json, error, stream>;
// Runs an authorized request on the io_context's thread.
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
