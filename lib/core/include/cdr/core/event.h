// Parsing, validation and classification of input events (spec/events.md).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cdr/core/month.h"
#include "cdr/core/policy.h"
#include "cdr/core/time.h"

namespace cdr {

// Why an event was rejected. The names are stable: they label metrics and
// dead-letter headers. Append new reasons; never rename or reorder.
enum class reject_reason : std::uint8_t {
  too_large,
  invalid_utf8,
  invalid_json,
  not_an_object,
  duplicate_field,
  missing_type,
  invalid_type,
  unknown_type,
  missing_id,
  invalid_id,
  missing_customer_id,
  invalid_customer_id,
  missing_occurred_at,
  invalid_occurred_at,
  future_occurred_at,
  missing_channel,
  invalid_channel,
  invalid_direction,
  invalid_status,
  invalid_duration_ms,
  invalid_parts,
  invalid_route,
  invalid_price,
  occurred_at_out_of_range,  // valid RFC 3339, but its UTC year is outside 1..9999
};
inline constexpr std::size_t reject_reason_count = 24;
std::string_view name(reject_reason r);
std::optional<reject_reason> reject_reason_from_name(std::string_view text);

// The contract's metadata allow-list for CDRs; every other field is an
// end-user identifier (fail closed).
inline constexpr std::array<std::string_view, 11> contract_metadata_fields{
    "type",   "id",          "customer_id", "occurred_at", "channel", "direction",
    "status", "duration_ms", "parts",       "route",       "price"};
// Fields that can never leave the allow-list (the record is unusable without).
inline constexpr std::array<std::string_view, 5> required_metadata_fields{"type", "id", "customer_id", "occurred_at",
                                                                          "channel"};

struct event_rules {
  // Messages larger than this are rejected as too_large.
  std::size_t max_bytes = 64 * 1024;
  // occurred_at may lie at most this far in the future.
  microseconds future_skew = std::chrono::hours(24);
  // The CDR metadata allow-list. The required fields are always included;
  // fields beyond the contract's are accepted with any JSON value.
  std::vector<std::string> metadata_fields{contract_metadata_fields.begin(), contract_metadata_fields.end()};
};

// One parsed event. string_views point into the parser's buffers and stay
// valid until the parser's next parse() call.
struct parsed_event {
  record_kind kind = record_kind::cdr;
  std::string_view id;
  std::string_view customer_id;
  std::string_view country;  // route.country, empty if absent
  instant occurred_at{};
  cdr::month month = month::of(1970, 1);
  // CDR: a JSON object of the allow-listed members, each member's bytes as
  // sent. Usage: the whole message as sent (the whole record is personal data).
  std::string metadata;
  // CDR: a JSON object of every other member, bytes as sent; empty when the
  // event carries none. Usage: always empty.
  std::string identifiers;
  // CDR: (field, unescaped value) of every string in the identifier
  // members, at any depth (arrays, nested objects), for the subject index.
  std::vector<std::pair<std::string_view, std::string_view>> identifier_strings;
};

class event_parser {
 public:
  explicit event_parser(event_rules rules = {});
  ~event_parser();
  event_parser(const event_parser&) = delete;
  event_parser& operator=(const event_parser&) = delete;

  // Validates one Kafka message value. Returns nullopt and fills *out when
  // the event is accepted, or the reason it is rejected.
  std::optional<reject_reason> parse(std::string_view message, instant now, parsed_event* out);

  const event_rules& rules() const { return rules_; }

 private:
  struct impl;
  event_rules rules_;
  std::unique_ptr<impl> impl_;
};

}  // namespace cdr
