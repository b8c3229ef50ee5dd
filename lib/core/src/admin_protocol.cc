#include "cdr/core/admin_protocol.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "cdr/core/identity.h"
#include "cdr/core/month.h"
#include "cdr/core/time.h"

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
using t = arg_type;
constexpr arg_spec record_get_args[] = {
    {"id", t::text, true, false, "ID", "the record's id, as its producer sent it"},
    {"kind", t::kind, false, false, "cdr|usage", "look in one kind only (default: both)"},
};
constexpr arg_spec identifier_arg{
    "identifier", t::identifier, true,
    false,        "X",           "a phone number, e-mail address or IP address (normalised like the index)"};
constexpr arg_spec raw_arg{
    "raw", t::flag, false,
    false, "",      "take the identifier as written, although it is no phone number, e-mail or IP address"};
// --fleet: every live member answers (docs/operations.md, "Fleet-wide reads").
constexpr arg_spec fleet_arg{"fleet", t::flag, false, false, "", "ask every live fleet member; per-member breakdown"};
constexpr arg_spec subject_export_args[] = {
    identifier_arg,
    {"reason", t::text, false, false, "TEXT", "why (recorded in the audit entry), e.g. the legal basis"},
    {"reference", t::text, false, false, "TEXT", "the request it serves, e.g. a ticket (recorded in the audit entry)"},
    raw_arg,
    fleet_arg,
};
// An erasure says why and for what request, like a hold (both required).
constexpr arg_spec subject_erase_args[] = {
    identifier_arg,
    {"reason", t::text, true, false, "TEXT", "why (recorded in the audit entry and the receipt), e.g. the legal basis"},
    {"reference", t::text, true, false, "TEXT", "the request it serves, e.g. a ticket (recorded likewise)"},
    raw_arg,
};
constexpr arg_spec fleet_only_args[] = {fleet_arg};
constexpr arg_spec status_args[] = {
    {"all", t::flag, false, false, "", "print every figure, not only the summary (text format; JSON has both)"},
    fleet_arg,
};
constexpr arg_spec hold_list_args[] = {
    {"identifier", t::identifier, false, false, "X",
     "only the holds that keep records of this phone number, e-mail or IP address"},
    raw_arg,
    fleet_arg,
};
constexpr arg_spec subject_status_args[] = {identifier_arg, raw_arg};
constexpr arg_spec sweep_args[] = {
    {"dry_run", t::flag, false, false, "", "only forecast what a sweep would do; nothing changes"},
    {"as_of", t::time, false, false, "RFC3339", "with --dry-run: forecast for this instant instead of now"},
    fleet_arg,
};
constexpr arg_spec plan_args[] = {
    {"until", t::month, false, false, "YYYY-MM",
     "only partitions whose next action falls due by the end of this month"},
    {"customer", t::text, false, false, "ID", "count this customer's records only (reads the store)"},
};
constexpr arg_spec hold_add_args[] = {
    {"customer", t::text, false, false, "ID", "hold the records of this customer"},
    {"subject", t::identifier, false, false, "X", "hold the records naming this phone number, e-mail or IP address"},
    {"from_month", t::month, false, false, "YYYY-MM", "hold records from this month on (inclusive)"},
    {"to_month", t::month, false, false, "YYYY-MM", "hold records up to this month (inclusive)"},
    {"kind", t::kind, false, false, "cdr|usage", "hold records of this kind only"},
    {"reason", t::text, true, false, "TEXT", "why (kept in the hold and the audit trail)"},
    {"reference", t::text, true, false, "TEXT", "the case or request it serves, e.g. a ticket"},
    raw_arg,
};
constexpr arg_spec hold_release_args[] = {
    {"id", t::count, true, true, "ID", "the hold's id (hold list shows it)"},
    {"reason", t::text, true, false, "TEXT", "why it is released (kept in the audit trail)"},
    {"reference", t::text, true, false, "TEXT", "the case or request it serves, e.g. a ticket"},
};
constexpr arg_spec audit_export_args[] = {
    {"since", t::time, false, false, "RFC3339", "entries at or after this instant only"},
};
constexpr arg_spec checkpoint_args[] = {
    {"to", t::text, true, false, "NAME", "the checkpoint's name: a new directory under storage.checkpoint_dir"},
};
constexpr arg_spec advance_clock_args[] = {
    {"duration", t::duration, true, true, "DURATION", "how far, e.g. 90s, 45m, 12h, 17d"},
};
constexpr arg_spec control_skip_args[] = {
    {"offset", t::count, true, false, "N",
     "the control topic offset applying is stuck at (status: kafka.fleet.blocked names it)"},
};
constexpr arg_spec dead_letter_open_args[] = {
    {"message", t::text, true, false, "JSON", "the dead letter's value as the topic holds it (e.g. from kcat)"},
};
constexpr arg_spec jump_clock_args[] = {
    {"duration", t::duration, true, true, "DURATION", "how far, e.g. 2d"},
    {"backward", t::flag, false, false, "", "jump back instead of forward"},
};

constexpr std::array<command_spec, command_count> command_table{{
    {command_id::status, "status", access::viewer,
     "a health summary (--all: version, uptime, clock, config, store, consumer and retention in full)", status_args},
    {command_id::config, "config", access::viewer, "the effective configuration, secrets redacted", {}},
    {command_id::record_get, "record get", access::operator_, "one stored record, its identifiers opened",
     record_get_args},
    {command_id::subject_export, "subject export", access::operator_,
     "every stored record carrying an identifier, streamed as JSON lines", subject_export_args},
    {command_id::sweep, "sweep", access::operator_, "run a retention sweep now and report it (or forecast one)",
     sweep_args},
    {command_id::hold_add, "hold add", access::operator_,
     "add a legal hold (at least one of customer, subject, from/to month, kind)", hold_add_args},
    {command_id::hold_list, "hold list", access::viewer, "the active legal holds", hold_list_args},
    {command_id::hold_release, "hold release", access::operator_, "release a legal hold", hold_release_args},
    {command_id::subject_erase, "subject erase", access::operator_,
     "erase an end user's identifiers from every month now (held ones when released)", subject_erase_args},
    {command_id::verify, "verify", access::viewer,
     "prove from the live files that stripped, dropped and erased keys are gone", fleet_only_args},
    {command_id::audit_export, "audit export", access::operator_, "the audit trail as JSON lines", audit_export_args},
    {command_id::audit_verify, "audit verify", access::viewer, "check the audit trail's hash chain", {}},
    {command_id::checkpoint, "checkpoint", access::operator_,
     "a consistent copy of the store and audit trail under storage.checkpoint_dir", checkpoint_args},
    {command_id::debug_advance_clock, "debug advance-clock", access::operator_,
     "move the simulated clock forward, deliberately (only with --fake-clock)", advance_clock_args},
    {command_id::clock_confirm,
     "clock confirm",
     access::operator_,
     "confirm the wall clock after a jump paused sweeps (audited)",
     {}},
    {command_id::debug_jump_clock, "debug jump-clock", access::operator_,
     "make the simulated clock jump as a broken clock would (only with --fake-clock; tests)", jump_clock_args},
    {command_id::subject_purge,
     "subject purge",
     access::operator_,
     "purge every erased subject's keys from the files on disk now (due by erasure.purge_after otherwise)",
     {}},
    {command_id::subject_status, "subject status", access::operator_,
     "where an erasure of this subject stands: none, in_progress, hidden, deferred or purged", subject_status_args},
    {command_id::drain,
     "drain",
     access::operator_,
     "leave the fleet: hand every record to the other members, then empty this store (before a scale-down)",
     {}},
    {command_id::plan, "plan", access::viewer,
     "the forecast: every partition's state, records, next action, deadline and holds; totals per month", plan_args},
    {command_id::control_skip, "control skip", access::operator_,
     "skip the signed control message this member cannot decode (an upgrade is the better way; audited)",
     control_skip_args},
    {command_id::dead_letter_open, "dead-letter open", access::operator_,
     "open a sealed dead letter: its source, reason, key and value (audited; docs/data-protection.md)",
     dead_letter_open_args},
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

bool fleet_readable(command_id c) {
  return c == command_id::status || c == command_id::verify || c == command_id::hold_list || c == command_id::sweep ||
         c == command_id::subject_export;
}

const command_spec* find_command(std::string_view name) {
  const auto it =
      std::find_if(command_table.begin(), command_table.end(), [&](const command_spec& c) { return c.name == name; });
  return it == command_table.end() ? nullptr : &*it;
}

std::optional<error> check_nesting(std::string_view line, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return error{nullptr, error_code::invalid_request,
                     fmt::format("a request may nest arrays and objects at most {} deep", max_depth)};
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

std::variant<request, error> parse_request(std::string_view line, bool with_args) {
  // Without the arguments: the parser skips the value of the top-level
  // "args" member instead of building it.
  const nlohmann::json::parser_callback_t skip_args = [](int depth, nlohmann::json::parse_event_t event,
                                                         nlohmann::json& parsed) {
    return !(event == nlohmann::json::parse_event_t::key && depth == 1 && parsed == "args");
  };
  auto doc = nlohmann::json::parse(line, with_args ? nullptr : skip_args, /*allow_exceptions=*/false);
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

std::string cli_flag(const arg_spec& a) {
  std::string out = "--";
  for (char c : a.name) out.push_back(c == '_' ? '-' : c);
  return out;
}

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 20 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Why a value does not fit its argument's type; empty when it does.
// `raw`: an identifier may be any printable text.
std::string misfit(const arg_spec& a, const nlohmann::json& v, bool raw) {
  const auto text = v.is_string() ? std::string_view(v.get_ref<const std::string&>()) : std::string_view();
  switch (a.type) {
    case arg_type::text:
    case arg_type::identifier:
      if (!v.is_string()) return "must be a string";
      if (!printable(text)) {
        return "must be printable text: no control characters (tab, newline, escape, ...) or "
               "bidirectional overrides, which would spoof tables, logs and the audit trail";
      }
      return a.type == arg_type::text || raw || identifier_shape(text)
                 ? ""
                 : "is neither a phone number, an e-mail address nor an IP address (\"raw\": true takes it as "
                   "written)";
    case arg_type::flag: return v.is_boolean() ? "" : "must be true or false";
    case arg_type::count: return v.is_number_unsigned() || all_digits(text) ? "" : "must be a whole number";
    case arg_type::time:
      return v.is_string() && parse_rfc3339(text) ? "" : "must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z";
    case arg_type::month: return v.is_string() && month::parse(text) ? "" : "must be a month as YYYY-MM";
    case arg_type::kind: return text == "cdr" || text == "usage" ? "" : "must be cdr or usage";
    case arg_type::duration:
      return v.is_string() && parse_duration(text) ? "" : "must be a duration such as 90s, 45m, 12h or 17d";
  }
  return "is of an unknown type";
}

}  // namespace

bool printable(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return false;
    const auto next = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0; };
    if (c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) return false;  // C1 controls
    if (c == 0xd8 && next(1) == 0x9c) return false;                     // U+061C arabic letter mark
    if (c == 0xe2 && next(1) == 0x80 && (next(2) == 0x8e || next(2) == 0x8f || (next(2) >= 0xaa && next(2) <= 0xae))) {
      return false;  // U+200E/F marks, U+202A-E embeddings and overrides
    }
    if (c == 0xe2 && next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9) return false;  // U+2066-9 isolates
  }
  return true;
}

std::optional<error> check_args(const command_spec& spec, const request& r) {
  for (const auto& [k, value] : r.args.items()) {
    const std::string& key = k;  // (clang 14 cannot capture a structured binding)
    const auto it = std::find_if(spec.args.begin(), spec.args.end(), [&](const arg_spec& a) { return a.name == key; });
    if (it == spec.args.end()) {
      std::string takes;
      for (const auto& a : spec.args) takes += (takes.empty() ? "" : ", ") + std::string(a.name);
      return error{r.id, error_code::invalid_argument,
                   fmt::format("\"{}\" takes no argument \"{}\" ({})", spec.name, key,
                               takes.empty() ? "it takes none" : "it takes: " + takes)};
    }
    if (value.is_null()) continue;
    const auto raw = r.args.find("raw");
    if (const auto why = misfit(*it, value, raw != r.args.end() && raw->is_boolean() && raw->get<bool>());
        !why.empty()) {
      return error{r.id, error_code::invalid_argument, fmt::format("argument \"{}\" {}", key, why)};
    }
  }
  for (const auto& a : spec.args) {
    const auto it = r.args.find(a.name);
    const bool present =
        it != r.args.end() && !it->is_null() && !(it->is_string() && it->get_ref<const std::string&>().empty());
    if (a.required && !present) {
      return error{r.id, error_code::invalid_argument, fmt::format("\"{}\" is required", a.name)};
    }
  }
  return std::nullopt;
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
