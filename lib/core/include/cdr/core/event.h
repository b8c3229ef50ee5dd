// Parsing, validation and classification of input events (docs/events.md).
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
  unsealed_handover,         // on the handover topic, not sealed under this fleet's subject key
};
inline constexpr std::size_t reject_reason_count = 25;
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

// The usage allow-list's default and its fields that cannot be removed:
// every other member of a usage event is personal data.
inline constexpr std::array<std::string_view, 5> default_usage_fields{"type", "id", "customer_id", "occurred_at",
                                                                      "action"};
inline constexpr std::array<std::string_view, 4> required_usage_fields{"type", "id", "customer_id", "occurred_at"};

struct event_rules {
  // Messages larger than this are rejected as too_large.
  std::size_t max_bytes = 64 * 1024;
  // occurred_at may lie at most this far in the future.
  microseconds future_skew = std::chrono::hours(24);
  // The CDR metadata allow-list. The required fields are always included;
  // fields beyond the contract's are accepted with any JSON value.
  std::vector<std::string> metadata_fields{contract_metadata_fields.begin(), contract_metadata_fields.end()};
  // The usage allow-list: stored as sent; the rest is sealed and indexed.
  std::vector<std::string> usage_metadata_fields{default_usage_fields.begin(), default_usage_fields.end()};
  // ISO 3166-1 region phone numbers written without a country code belong
  // to ("HR"); empty: none, such numbers keep their digits
  // (cdr/core/identity.h).
  std::string default_region;
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
  // A JSON object of the allow-listed members (events.metadata_fields for
  // CDRs, events.usage_metadata_fields for usage), each member's bytes as
  // sent.
  std::string metadata;
  // A JSON object of every other member, bytes as sent; empty when the
  // event carries none.
  std::string identifiers;
  // (field, unescaped value) of every string in those other members, at
  // any depth (arrays, nested objects), for the subject index.
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
  // Splits the members into out->metadata and out->identifiers, each
  // member's bytes as sent.
  void split_members(std::string_view message, const char* base, parsed_event* out);
  // A usage event's strings in its sealed part (parsed again); false when
  // it does not parse (it always does: it was cut from a valid object).
  bool collect_usage_strings(parsed_event* out);
  struct impl;
  event_rules rules_;
  std::unique_ptr<impl> impl_;
};

}  // namespace cdr
