#include "harnesses.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include "cdr/core/admin_protocol.h"
#include "cdr/core/config.h"
#include "cdr/core/event.h"
#include "cdr/core/ingest.h"
#include "cdr/core/retention.h"

namespace cdr::fuzz {
namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

std::string_view text_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace

void event(const std::uint8_t* data, std::size_t size) {
  static event_parser parser;
  static const instant now = *parse_rfc3339("2026-01-01T00:00:00Z");
  parsed_event e;
  const auto input = text_of(data, size);
  if (const auto reason = parser.parse(input, now, &e)) {
    require(reject_reason_from_name(name(*reason)) == *reason);
    return;
  }
  // Accepted: what the store keys and the policy decides on is in range.
  require(!e.id.empty() && !e.customer_id.empty());
  require(in_supported_calendar(e.occurred_at));
  require(e.month.year() >= first_supported_year && e.month.year() <= last_supported_year);
  require(e.occurred_at <= now + parser.rules().future_skew);
  const auto key = record_key({e.kind, e.month, 0}, e.id);
  require(decode_partition(key).has_value());
  (void)lateness_of(retention_policy{}, e.kind, e.month, 0, now);
}

void admin_request(const std::uint8_t* data, std::size_t size) {
  const auto line = text_of(data, size);
  if (auto e = admin::check_nesting(line)) {
    (void)admin::error_response(*e);
    return;
  }
  const auto head = admin::parse_request(line, /*with_args=*/false);
  const auto full = admin::parse_request(line);
  if (const auto* e = std::get_if<admin::error>(&full)) {
    (void)admin::error_response(*e);
    return;
  }
  // A request that parses whole also parses without its arguments, as the
  // same command (rights are checked on that).
  require(std::holds_alternative<admin::request>(head));
  const auto& req = std::get<admin::request>(full);
  require(std::get<admin::request>(head).command == req.command);
  const auto* spec = admin::find_command(req.command);
  require(spec != nullptr && spec->id == req.which);
  if (auto e = admin::check_args(*spec, req)) {
    (void)admin::error_response(*e);
    return;
  }
  if (req.which == admin::command_id::hold_add) {
    (void)hold_from_request(req.args, [](std::string_view s) { return std::string(32, s.empty() ? 'x' : s[0]); });
  }
  (void)admin::ok_response(req.id, req.args);
}

void config(const std::uint8_t* data, std::size_t size) {
  // The first line, if it starts with "--set ", is an override; the rest
  // is the file.
  auto input = text_of(data, size);
  std::vector<std::string> sets;
  if (input.starts_with("--set ")) {
    const auto nl = input.find('\n');
    sets.emplace_back(input.substr(6, nl == std::string_view::npos ? std::string_view::npos : nl - 6));
    input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  }
  const auto parsed = parse_config(input, "fuzz.toml", sets);
  if (const auto* c = std::get_if<daemon_config>(&parsed)) {
    // Every accepted configuration keeps deadlines inside the calendar and
    // durations that cannot overflow against an instant.
    require(c->events.future_skew <= std::chrono::days(366));
    for (const auto a : all_retention_actions) {
      const auto d = c->retention.deadline(a, month::of(last_supported_year, 12), 0);
      require(d.year() <= last_supported_year + 1001);
    }
    require(!c->storage.checkpoint_dir.empty());
  } else {
    require(!std::get<config_error>(parsed).message.empty() || !std::get<config_error>(parsed).file.empty());
  }
}

}  // namespace cdr::fuzz
