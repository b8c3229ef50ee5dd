#include "cdr/core/admin_protocol.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace cdr::admin {

std::string_view name(access a) {
  switch (a) {
    case access::none: return "none";
    case access::viewer: return "viewer";
    case access::operator_: return "operator";
  }
  return "?";
}

std::string_view name(error_code c) {
  switch (c) {
    case error_code::invalid_json: return "invalid_json";
    case error_code::invalid_request: return "invalid_request";
    case error_code::unknown_command: return "unknown_command";
    case error_code::invalid_argument: return "invalid_argument";
    case error_code::permission_denied: return "permission_denied";
    case error_code::request_too_large: return "request_too_large";
    case error_code::busy: return "busy";
    case error_code::unavailable: return "unavailable";
    case error_code::not_found: return "not_found";
    case error_code::internal: return "internal";
  }
  return "internal";
}

namespace {
constexpr std::array<command_spec, command_count> command_table{{
    {command_id::status, "status", access::viewer, "version, uptime, clock, config digest, store and consumer summary"},
    {command_id::config, "config", access::viewer, "the effective configuration, secrets redacted"},
    {command_id::record_get, "record get", access::operator_,
     "one stored record; args: {\"id\": ID, \"kind\": \"cdr\"|\"usage\"}"},
    {command_id::subject_export, "subject export", access::operator_,
     "every stored record carrying an identifier, streamed as JSON lines; args: {\"identifier\": X}"},
    {command_id::sweep, "sweep", access::operator_,
     "run a retention sweep now and report it; args: {\"dry_run\": true, \"as_of\": RFC3339} only forecasts"},
    {command_id::hold_add, "hold add", access::operator_,
     "add a legal hold; args: customer, subject, from_month, to_month, kind (at least one), reason, reference"},
    {command_id::hold_list, "hold list", access::viewer, "the active legal holds"},
    {command_id::hold_release, "hold release", access::operator_, "release a legal hold; args: {\"id\": ID}"},
    {command_id::subject_erase, "subject erase", access::operator_,
     "erase an end user's identifiers from every month now (held ones when released); args: {\"identifier\": X}"},
    {command_id::verify, "verify", access::viewer,
     "prove from the live files that stripped, dropped and erased keys are gone"},
    {command_id::audit_export, "audit export", access::operator_,
     "the audit trail as JSON lines; args: {\"since\": RFC3339}"},
    {command_id::audit_verify, "audit verify", access::viewer, "check the audit trail's hash chain"},
    {command_id::checkpoint, "checkpoint", access::operator_,
     "a consistent copy of the store and audit trail in a new directory; args: {\"to\": DIR}"},
    {command_id::debug_advance_clock, "debug advance-clock", access::operator_,
     "move the simulated clock forward (only with --fake-clock); args: {\"duration\": \"90s\"}"},
}};

// The table is in command_id order, so an id indexes it.
constexpr bool in_id_order() {
  for (std::size_t i = 0; i < command_table.size(); ++i) {
    if (static_cast<std::size_t>(command_table[i].id) != i) return false;
  }
  return true;
}
static_assert(in_id_order(), "command_table must list the commands in command_id order");
}  // namespace

std::span<const command_spec> commands() { return command_table; }

const command_spec* find_command(std::string_view name) {
  const auto it =
      std::find_if(command_table.begin(), command_table.end(), [&](const command_spec& c) { return c.name == name; });
  return it == command_table.end() ? nullptr : &*it;
}

std::variant<request, error> parse_request(std::string_view line) {
  auto doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return error{nullptr, error_code::invalid_json, "a request is one JSON object on one line"};
  }
  request r;
  if (auto it = doc.find("id"); it != doc.end()) r.id = *it;
  const auto cmd = doc.find("command");
  if (cmd == doc.end() || !cmd->is_string()) {
    return error{r.id, error_code::invalid_request, "\"command\" must be a string"};
  }
  r.command = cmd->get<std::string>();
  r.args = nlohmann::json::object();
  if (auto it = doc.find("args"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return error{r.id, error_code::invalid_request, "\"args\" must be an object"};
    r.args = *it;
  }
  for (const auto& [k, v] : doc.items()) {
    if (k != "id" && k != "command" && k != "args") {
      return error{r.id, error_code::invalid_request, fmt::format("unknown request field \"{}\"", k)};
    }
  }
  const auto* spec = find_command(r.command);
  if (spec == nullptr) {
    return error{r.id, error_code::unknown_command, fmt::format("unknown command \"{}\"", r.command)};
  }
  r.which = spec->id;
  return r;
}

std::string ok_response(const nlohmann::json& id, nlohmann::json result) {
  nlohmann::json out{{"id", id}, {"ok", true}, {"result", std::move(result)}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string error_response(const error& e) {
  nlohmann::json out{{"id", e.id}, {"ok", false}, {"error", {{"code", name(e.code)}, {"message", e.message}}}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

access access_of(const peer& p, const group_policy& g) {
  if (p.uid == 0 || p.uid == g.daemon_uid) return access::operator_;
  const auto member = [&](std::optional<std::uint32_t> gid) {
    return gid && (p.gid == *gid || std::find(p.groups.begin(), p.groups.end(), *gid) != p.groups.end());
  };
  if (member(g.operator_gid)) return access::operator_;
  if (member(g.viewer_gid)) return access::viewer;
  return access::none;
}

std::variant<std::optional<std::string>, error> string_arg(const request& r, std::string_view key) {
  const auto it = r.args.find(key);
  if (it == r.args.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) {
    return error{r.id, error_code::invalid_argument, fmt::format("argument \"{}\" must be a string", key)};
  }
  return std::optional<std::string>{it->get<std::string>()};
}

std::variant<std::string, error> required_string_arg(const request& r, std::string_view key) {
  auto arg = string_arg(r, key);
  if (auto* e = std::get_if<error>(&arg)) return *e;
  auto& text = std::get<std::optional<std::string>>(arg);
  if (!text || text->empty()) return error{r.id, error_code::invalid_argument, fmt::format("\"{}\" is required", key)};
  return std::move(*text);
}

}  // namespace cdr::admin
