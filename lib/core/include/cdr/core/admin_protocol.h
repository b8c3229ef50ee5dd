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
  clock_confirm,
  debug_jump_clock,
  subject_purge,
  subject_status,
  drain,
  plan,
  control_skip,
  dead_letter_open,
};
inline constexpr std::size_t command_count = 22;

// What an argument's value must be (in the protocol; the CLI takes each as
// text and converts: a flag has no value).
enum class arg_type : std::uint8_t {
  text,      // a string
  flag,      // true or false
  count,     // an unsigned integer, or its decimal digits as a string
  time,      // RFC 3339 with an offset
  month,     // YYYY-MM
  kind,      // cdr or usage
  duration,  // 90s, 45m, 12h, 17d
  // A phone number, an e-mail address or an IP address, as written
  // (identifier_shape); any printable text when the request sets "raw".
  identifier,
};

struct arg_spec {
  std::string_view name;  // in the protocol, e.g. "as_of"; the CLI flag is --as-of
  arg_type type;
  bool required = false;
  bool positional = false;   // the CLI takes it as a word, not a flag
  std::string_view metavar;  // for usage text, e.g. "RFC3339"
  std::string_view help;
};

struct command_spec {
  command_id id;
  std::string_view name;
  access required;
  std::string_view summary;
  std::span<const arg_spec> args;  // every argument the command takes
};

// The CLI spelling of an argument: "--" + its name, underscores as dashes.
std::string cli_flag(const arg_spec& a);
// Every command the daemon understands (the CLI mirrors this table).
std::span<const command_spec> commands();
// The reads a fleet member answers for another (`--fleet`): status, verify,
// hold list, sweep (its dry run only) and subject export.
bool fleet_readable(command_id c);
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

// How deeply a request may nest arrays and objects (a request needs 3; an
// id may be any JSON value up to this). Checked before anything parses the
// line, so no parser recursion can be driven by a peer.
inline constexpr std::size_t max_request_depth = 32;
// A scan of the raw line, without recursion: invalid_request when its
// arrays and objects nest deeper than max_depth.
std::optional<error> check_nesting(std::string_view line, std::size_t max_depth = max_request_depth);

// Parses one request line (without its newline). Without `with_args` the
// arguments are skipped unparsed (args is an empty object): enough to
// check the peer's rights before anything else of the request is read.
std::variant<request, error> parse_request(std::string_view line, bool with_args = true);

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

// Checks a request's arguments against its command's table entry: an
// argument the command does not take, a value of the wrong type and a
// missing required argument are each an invalid_argument error naming it.
// A null value counts as absent.
std::optional<error> check_args(const command_spec& spec, const request& r);
// Whether text arguments hold only printable characters: no C0 or C1
// control, DEL, or bidirectional mark, embedding, override or isolate.
// check_args refuses any other text (customer ids, reasons, references,
// identifiers).
bool printable(std::string_view text);

// Reads a string argument; nullopt when absent; error when not a string.
std::variant<std::optional<std::string>, error> string_arg(const request& r, std::string_view key);
// Reads a string argument that must be present and non-empty.
std::variant<std::string, error> required_string_arg(const request& r, std::string_view key);

}  // namespace cdr::admin
