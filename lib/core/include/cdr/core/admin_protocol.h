// The admin protocol (docs/admin-protocol.md): newline-delimited JSON over a
// Unix stream socket. Pure: parsing, the command table and authorization.
//
// Request:  {"id": <any JSON>, "command": "status", "args": {...}}
// Response: {"id": ..., "ok": true, "result": {...}}
//           {"id": ..., "ok": false, "error": {"code": "...", "message": "..."}}
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace cdr::admin {

// What a peer may do. Ordered: each level includes the ones below it.
enum class access : std::uint8_t { none = 0, viewer = 1, operator_ = 2 };
std::string_view name(access a);

enum class error_code : std::uint8_t {
  invalid_json,     // the line is not a JSON object
  invalid_request,  // fields missing or of the wrong type
  unknown_command,
  invalid_argument,
  permission_denied,
  request_too_large,
  busy,         // too many connections
  unavailable,  // the command exists but cannot run in this mode
  not_found,    // the record (or other object) named does not exist
  internal,
};
std::string_view name(error_code c);

// Every command, in the order of the command table. The daemon keeps one
// handler per command in a table indexed by this (lib/service/admin), and a
// static_assert there fails the build when a command has no handler or two.
enum class command_id : std::uint8_t {
  status,
  config,
  record_get,
  subject_export,
  sweep,
  hold_add,
  hold_list,
  hold_release,
  subject_erase,
  verify,
  audit_export,
  audit_verify,
  checkpoint,
  debug_advance_clock,
};
inline constexpr std::size_t command_count = 14;

struct command_spec {
  command_id id;
  std::string_view name;
  access required;
  std::string_view summary;
};
// Every command the daemon understands (the CLI mirrors this table).
std::span<const command_spec> commands();
const command_spec* find_command(std::string_view name);

struct request {
  nlohmann::json id;  // echoed back; null when absent
  std::string command;
  command_id which = command_id::status;  // the command's entry in the table
  nlohmann::json args;                    // always an object
};

struct error {
  nlohmann::json id;
  error_code code = error_code::internal;
  std::string message;
};

// Parses one request line (without its newline).
std::variant<request, error> parse_request(std::string_view line);

std::string ok_response(const nlohmann::json& id, nlohmann::json result);
std::string error_response(const error& e);

// The rights of a peer identified by SO_PEERCRED: root and the daemon's own
// uid are operators; otherwise group membership decides.
struct peer {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> groups;  // supplementary groups
};
struct group_policy {
  std::uint32_t daemon_uid = 0;
  std::optional<std::uint32_t> operator_gid;
  std::optional<std::uint32_t> viewer_gid;
};
access access_of(const peer& p, const group_policy& g);

// Reads a string argument; nullopt when absent; error when not a string.
std::variant<std::optional<std::string>, error> string_arg(const request& r, std::string_view key);
// Reads a string argument that must be present and non-empty.
std::variant<std::string, error> required_string_arg(const request& r, std::string_view key);

}  // namespace cdr::admin
