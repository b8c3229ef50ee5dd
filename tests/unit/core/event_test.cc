// Parsing and validation of events exactly as docs/events.md says.
#include <gtest/gtest.h>

#include <string>

#include "cdr/core/event.h"

namespace cdr {
namespace {

const instant now = *parse_rfc3339("2025-03-15T00:00:00Z");

// The contract's example CDR, as a producer would send it.
const std::string example_cdr =
    R"({"type": "cdr", "id": "01J9ZK3T8V6Q4W2M7N5B1C0XYZ", "customer_id": "acme-eu-1",)"
    R"( "occurred_at": "2025-03-14T09:26:53.589Z", "channel": "sms", "direction": "outbound",)"
    R"( "status": "delivered", "duration_ms": 0, "parts": 1,)"
    R"( "route": {"country": "HR", "mcc_mnc": "21901", "operator": "op-17", "connection": "smpp-7"},)"
    R"( "price": {"amount": "0.0075", "currency": "EUR"}, "from": "+385911234567", "to": "+447700900123"})";

TEST(event_parser, splits_a_cdr_into_metadata_and_identifiers_byte_exact) {
  event_parser parser;
  parsed_event e;
  ASSERT_EQ(parser.parse(example_cdr, now, &e), std::nullopt);
  EXPECT_EQ(e.kind, record_kind::cdr);
  EXPECT_EQ(e.id, "01J9ZK3T8V6Q4W2M7N5B1C0XYZ");
  EXPECT_EQ(e.customer_id, "acme-eu-1");
  EXPECT_EQ(e.country, "HR");
  EXPECT_EQ(e.month, month::of(2025, 3));
  EXPECT_EQ(format_rfc3339(e.occurred_at), "2025-03-14T09:26:53.589000Z");
  EXPECT_EQ(e.metadata,
            R"({"type": "cdr","id": "01J9ZK3T8V6Q4W2M7N5B1C0XYZ","customer_id": "acme-eu-1",)"
            R"("occurred_at": "2025-03-14T09:26:53.589Z","channel": "sms","direction": "outbound",)"
            R"("status": "delivered","duration_ms": 0,"parts": 1,)"
            R"("route": {"country": "HR", "mcc_mnc": "21901", "operator": "op-17", "connection": "smpp-7"},)"
            R"("price": {"amount": "0.0075", "currency": "EUR"}})");
  EXPECT_EQ(e.identifiers, R"({"from": "+385911234567","to": "+447700900123"})");
  ASSERT_EQ(e.identifier_strings.size(), 2u);
  EXPECT_EQ(e.identifier_strings[0], (std::pair<std::string_view, std::string_view>{"from", "+385911234567"}));
  EXPECT_EQ(e.identifier_strings[1], (std::pair<std::string_view, std::string_view>{"to", "+447700900123"}));
  // Every byte of every member survives: nothing but separators is lost.
  for (auto part : {std::string_view("\"mcc_mnc\": \"21901\""), std::string_view("\"to\": \"+447700900123\"")}) {
    EXPECT_NE((e.metadata + e.identifiers).find(part), std::string::npos) << part;
  }
}

TEST(event_parser, unknown_fields_are_identifiers_fail_closed) {
  event_parser parser;
  parsed_event e;
  const std::string msg =
      R"({"msisdn":"+385911111111","type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z",)"
      R"("channel":"voice","ip":"203.0.113.9","future_field":{"nested":["x",1,null,true]},"sender":"Acme"})";
  ASSERT_EQ(parser.parse(msg, now, &e), std::nullopt);
  EXPECT_EQ(e.metadata,
            R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"voice"})");
  EXPECT_EQ(
      e.identifiers,
      R"({"msisdn":"+385911111111","ip":"203.0.113.9","future_field":{"nested":["x",1,null,true]},"sender":"Acme"})");
  // Strings at any depth are indexed: "x" inside future_field too.
  ASSERT_EQ(e.identifier_strings.size(), 4u);
  EXPECT_EQ(e.identifier_strings[2], (std::pair<std::string_view, std::string_view>{"future_field", "x"}));
}

// Issue "Erasure at scale": a group MMS ("to" an array), an e-mail to a list,
// a nested contact object: every string is a subject to index.
TEST(event_parser, identifiers_in_arrays_and_nested_objects_are_all_found) {
  event_parser parser;
  parsed_event e;
  const std::string msg =
      R"({"type":"cdr","id":"g","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"mms",)"
      R"("from":"+447700900001","to":["+447700900002","+447700900003"],)"
      R"("email_to":[{"name":"Ann","address":"ann@example.org"},["bob@example.org"]],)"
      R"("contact":{"work":{"phone":"+4930123456"}},"count":[1,2]})";
  ASSERT_EQ(parser.parse(msg, now, &e), std::nullopt);
  std::vector<std::string_view> values;
  for (const auto& [field, value] : e.identifier_strings) values.push_back(value);
  EXPECT_EQ(values, (std::vector<std::string_view>{"+447700900001", "+447700900002", "+447700900003", "Ann",
                                                   "ann@example.org", "bob@example.org", "+4930123456"}));
  EXPECT_EQ(e.identifier_strings[2].first, "to");
  EXPECT_EQ(e.identifier_strings[6].first, "contact");
}

TEST(event_parser, escaped_keys_are_classified_by_their_meaning) {
  event_parser parser;
  parsed_event e;
  const std::string msg =
      R"({"\u0074ype":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"sms",)"
      R"("fr\u006fm":"+385","\u0072oute":{"country":"DE"}})";
  ASSERT_EQ(parser.parse(msg, now, &e), std::nullopt);
  EXPECT_EQ(e.country, "DE");
  EXPECT_EQ(e.identifiers, R"({"fr\u006fm":"+385"})");
  EXPECT_EQ(e.identifier_strings.at(0).first, "from");
}

TEST(event_parser, a_field_removed_from_the_allow_list_becomes_an_identifier) {
  event_rules rules;
  rules.metadata_fields = {"type", "id", "customer_id", "occurred_at", "channel", "campaign"};
  event_parser parser(rules);
  parsed_event e;
  const std::string msg =
      R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"sms",)"
      R"("status":"delivered","campaign":{"n":1},"to":"+1"})";
  ASSERT_EQ(parser.parse(msg, now, &e), std::nullopt);
  EXPECT_EQ(
      e.metadata,
      R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"sms","campaign":{"n":1}})");
  EXPECT_EQ(e.identifiers, R"({"status":"delivered","to":"+1"})");
}

TEST(event_parser, a_cdr_without_identifiers_has_none) {
  event_parser parser;
  parsed_event e;
  ASSERT_EQ(
      parser.parse(R"(  {"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"sms"}
)",
                   now, &e),
      std::nullopt);
  EXPECT_TRUE(e.identifiers.empty());
  EXPECT_TRUE(e.identifier_strings.empty());
}

// Usage events: the usage allow-list as sent, every other member (personal
// data, fail closed) split off byte-exact for sealing, its strings at any
// depth collected for the subject index; CDR field rules do not apply.
TEST(event_parser, usage_events_split_on_the_usage_allow_list) {
  event_parser parser;
  parsed_event e;
  const std::string msg =
      R"({"type": "usage", "id": "u-7f3a9c", "customer_id": "acme-eu-1", "occurred_at": "2025-03-14T09:30:00Z",)"
      R"( "account_user": "jane.doe@acme.example", "ip": "203.0.113.7", "action": "api.sms.send",)"
      R"( "duration_ms": -5, "route": {"region": 1, "via": ["x@y.example"]}})";
  ASSERT_EQ(parser.parse(msg, now, &e), std::nullopt);
  EXPECT_EQ(e.kind, record_kind::usage);
  EXPECT_EQ(e.month, month::of(2025, 3));
  EXPECT_EQ(e.metadata,
            R"({"type": "usage","id": "u-7f3a9c","customer_id": "acme-eu-1","occurred_at": "2025-03-14T09:30:00Z",)"
            R"("action": "api.sms.send"})");
  EXPECT_EQ(e.identifiers, R"({"account_user": "jane.doe@acme.example","ip": "203.0.113.7","duration_ms": -5,)"
                           R"("route": {"region": 1, "via": ["x@y.example"]}})");
  std::vector<std::pair<std::string, std::string>> strings(e.identifier_strings.begin(), e.identifier_strings.end());
  EXPECT_EQ(strings, (std::vector<std::pair<std::string, std::string>>{
                         {"account_user", "jane.doe@acme.example"}, {"ip", "203.0.113.7"}, {"route", "x@y.example"}}));
  // Nothing but the allow-list: no identifiers at all.
  ASSERT_EQ(
      parser.parse(R"({"type":"usage","id":"u2","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z"})", now, &e),
      std::nullopt);
  EXPECT_TRUE(e.identifiers.empty());
  EXPECT_TRUE(e.identifier_strings.empty());
  // The allow-list is configurable; its required fields cannot leave it.
  event_rules rules;
  rules.usage_metadata_fields = {"ip"};
  event_parser narrow(rules);
  ASSERT_EQ(narrow.parse(msg, now, &e), std::nullopt);
  EXPECT_NE(e.metadata.find("\"ip\""), std::string::npos);
  EXPECT_NE(e.metadata.find("\"customer_id\""), std::string::npos);
  EXPECT_EQ(e.identifiers.find("\"ip\""), std::string::npos);
  EXPECT_NE(e.identifiers.find("\"action\""), std::string::npos);
}

TEST(event_parser, reuse_across_events_leaves_nothing_behind) {
  event_parser parser;
  parsed_event e;
  ASSERT_EQ(parser.parse(example_cdr, now, &e), std::nullopt);
  ASSERT_EQ(
      parser.parse(R"({"type":"cdr","id":"b","customer_id":"c","occurred_at":"2025-03-01T00:00:00Z","channel":"sms"})",
                   now, &e),
      std::nullopt);
  EXPECT_EQ(e.id, "b");
  EXPECT_TRUE(e.country.empty());
  EXPECT_TRUE(e.identifiers.empty());
  EXPECT_TRUE(e.identifier_strings.empty());
}

TEST(event_parser, future_skew_is_configurable) {
  event_rules rules;
  rules.future_skew = std::chrono::hours(1);
  event_parser parser(rules);
  parsed_event e;
  const auto msg = [](const char* at) {
    return std::string(R"({"type":"cdr","id":"a","customer_id":"c","channel":"sms","occurred_at":")") + at + "\"}";
  };
  EXPECT_EQ(parser.parse(msg("2025-03-15T01:00:00Z"), now, &e), std::nullopt);
  EXPECT_EQ(parser.parse(msg("2025-03-15T01:00:00.000001Z"), now, &e), reject_reason::future_occurred_at);
}

struct malformed_case {
  std::string name;
  std::string json;
  reject_reason reason;
};

// Test names show the case's name, not its bytes.
void PrintTo(const malformed_case& c, std::ostream* os) { *os << c.name; }

std::string cdr_with(const std::string& fields) {
  return R"({"type":"cdr","id":"r-1","customer_id":"acme","occurred_at":"2025-03-14T09:26:53Z","channel":"sms")" +
         fields + "}";
}

std::vector<malformed_case> malformed_cases() {
  const std::string ok_tail = R"("customer_id":"acme","occurred_at":"2025-03-14T09:26:53Z","channel":"sms")";
  return {
      {"empty", "", reject_reason::invalid_json},
      {"whitespace_only", "  \n", reject_reason::invalid_json},
      {"truncated", R"({"type":"cdr","id":"a")", reject_reason::invalid_json},
      {"trailing_comma", R"({"type":"cdr",})", reject_reason::invalid_json},
      {"bare_word", "hello", reject_reason::invalid_json},
      {"single_quotes", "{'type':'cdr'}", reject_reason::invalid_json},
      {"trailing_garbage", cdr_with("") + " x", reject_reason::invalid_json},
      {"two_documents", cdr_with("") + "{}", reject_reason::invalid_json},
      {"broken_nested_identifier", cdr_with(R"(,"x":[1 2])"), reject_reason::invalid_json},
      {"bad_escape", cdr_with(R"(,"to":"\q")"), reject_reason::invalid_json},
      {"leading_zero_number", cdr_with(R"(,"parts":01)"), reject_reason::invalid_json},
      {"too_deep", cdr_with(R"(,"x":)" + std::string(100, '[') + std::string(100, ']')), reject_reason::invalid_json},
      {"array", "[1,2]", reject_reason::not_an_object},
      {"string", R"("cdr")", reject_reason::not_an_object},
      {"number", "42", reject_reason::not_an_object},
      {"invalid_utf8_byte", cdr_with(",\"to\":\"\xff\""), reject_reason::invalid_utf8},
      {"utf8_surrogate", cdr_with(",\"to\":\"\xed\xa0\x80\""), reject_reason::invalid_utf8},
      {"utf8_overlong", cdr_with(",\"to\":\"\xc0\xaf\""), reject_reason::invalid_utf8},
      {"duplicate_id", cdr_with(R"(,"id":"r-2")"), reject_reason::duplicate_field},
      {"duplicate_identifier", cdr_with(R"(,"to":"+1","to":"+2")"), reject_reason::duplicate_field},
      {"empty_object", "{}", reject_reason::missing_type},
      {"type_number", R"({"type":5,"id":"a",)" + ok_tail + "}", reject_reason::invalid_type},
      {"type_null", R"({"type":null,"id":"a",)" + ok_tail + "}", reject_reason::invalid_type},
      {"type_fax", R"({"type":"fax","id":"a",)" + ok_tail + "}", reject_reason::unknown_type},
      {"type_upper_case", R"({"type":"CDR","id":"a",)" + ok_tail + "}", reject_reason::unknown_type},
      {"id_missing", R"({"type":"cdr",)" + ok_tail + "}", reject_reason::missing_id},
      {"id_empty", R"({"type":"cdr","id":"",)" + ok_tail + "}", reject_reason::invalid_id},
      {"id_too_long", R"({"type":"cdr","id":")" + std::string(129, 'a') + "\"," + ok_tail + "}",
       reject_reason::invalid_id},
      {"id_number", R"({"type":"cdr","id":12,)" + ok_tail + "}", reject_reason::invalid_id},
      {"id_control_char", R"({"type":"cdr","id":"a\u0001",)" + ok_tail + "}", reject_reason::invalid_id},
      {"id_non_ascii", R"({"type":"cdr","id":"é",)" + ok_tail + "}", reject_reason::invalid_id},
      {"customer_missing", R"({"type":"cdr","id":"a","occurred_at":"2025-03-14T09:26:53Z","channel":"sms"})",
       reject_reason::missing_customer_id},
      {"customer_too_long",
       R"({"type":"cdr","id":"a","customer_id":")" + std::string(65, 'c') +
           R"(","occurred_at":"2025-03-14T09:26:53Z","channel":"sms"})",
       reject_reason::invalid_customer_id},
      {"customer_null",
       R"({"type":"cdr","id":"a","customer_id":null,"occurred_at":"2025-03-14T09:26:53Z","channel":"sms"})",
       reject_reason::invalid_customer_id},
      {"occurred_at_missing", R"({"type":"cdr","id":"a","customer_id":"c","channel":"sms"})",
       reject_reason::missing_occurred_at},
      {"occurred_at_no_offset",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14T09:26:53","channel":"sms"})",
       reject_reason::invalid_occurred_at},
      {"occurred_at_space",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14 09:26:53Z","channel":"sms"})",
       reject_reason::invalid_occurred_at},
      {"occurred_at_30_feb",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-02-30T00:00:00Z","channel":"sms"})",
       reject_reason::invalid_occurred_at},
      {"occurred_at_epoch_number",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":1741948013,"channel":"sms"})",
       reject_reason::invalid_occurred_at},
      {"occurred_at_offset_24h",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14T09:26:53+24:00","channel":"sms"})",
       reject_reason::invalid_occurred_at},
      {"occurred_at_future",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-16T00:00:01Z","channel":"sms"})",
       reject_reason::future_occurred_at},
      {"occurred_at_year_minus_1",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"0000-01-01T00:00:00+00:01","channel":"sms"})",
       reject_reason::occurred_at_out_of_range},
      {"occurred_at_year_0",
       R"({"type":"usage","id":"a","customer_id":"c","occurred_at":"0000-12-31T23:59:59Z","event":"login"})",
       reject_reason::occurred_at_out_of_range},
      {"channel_missing", R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14T09:26:53Z"})",
       reject_reason::missing_channel},
      {"channel_upper_case",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14T09:26:53Z","channel":"SMS"})",
       reject_reason::invalid_channel},
      {"channel_empty",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14T09:26:53Z","channel":""})",
       reject_reason::invalid_channel},
      {"channel_array",
       R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":"2025-03-14T09:26:53Z","channel":["sms"]})",
       reject_reason::invalid_channel},
      {"direction_number", cdr_with(R"(,"direction":1)"), reject_reason::invalid_direction},
      {"status_too_long", cdr_with(R"(,"status":")" + std::string(65, 's') + "\""), reject_reason::invalid_status},
      {"duration_negative", cdr_with(R"(,"duration_ms":-1)"), reject_reason::invalid_duration_ms},
      {"duration_fraction", cdr_with(R"(,"duration_ms":1.5)"), reject_reason::invalid_duration_ms},
      {"duration_string", cdr_with(R"(,"duration_ms":"10")"), reject_reason::invalid_duration_ms},
      {"parts_boolean", cdr_with(R"(,"parts":true)"), reject_reason::invalid_parts},
      {"route_string", cdr_with(R"(,"route":"HR")"), reject_reason::invalid_route},
      {"route_number_value", cdr_with(R"(,"route":{"country":1})"), reject_reason::invalid_route},
      {"price_number_amount", cdr_with(R"(,"price":{"amount":0.0075,"currency":"EUR"})"), reject_reason::invalid_price},
      {"price_no_currency", cdr_with(R"(,"price":{"amount":"0.0075"})"), reject_reason::invalid_price},
      {"price_lower_case_currency", cdr_with(R"(,"price":{"amount":"0.0075","currency":"eur"})"),
       reject_reason::invalid_price},
      {"price_hides_an_identifier", cdr_with(R"(,"price":{"amount":"1","currency":"EUR","payer":"+385911"})"),
       reject_reason::invalid_price},
      {"price_bad_decimal", cdr_with(R"(,"price":{"amount":"1.","currency":"EUR"})"), reject_reason::invalid_price},
      {"usage_missing_customer", R"({"type":"usage","id":"u","occurred_at":"2025-03-14T09:26:53Z"})",
       reject_reason::missing_customer_id},
  };
}

class malformed_events : public ::testing::TestWithParam<malformed_case> {};

TEST_P(malformed_events, are_rejected_with_their_reason) {
  event_parser parser;
  parsed_event e;
  const auto& c = GetParam();
  const auto got = parser.parse(c.json, now, &e);
  ASSERT_TRUE(got.has_value()) << c.json;
  EXPECT_EQ(name(*got), name(c.reason)) << c.json;
}

INSTANTIATE_TEST_SUITE_P(spec, malformed_events, ::testing::ValuesIn(malformed_cases()),
                         [](const auto& p) { return p.param.name; });

// The calendar's edges: year 1 is the first storable one, 9999 the last,
// whatever offset brings an instant there.
TEST(event_parser, occurred_at_is_bounded_to_years_1_to_9999_utc) {
  event_parser parser;
  parsed_event e;
  const auto cdr_at = [](const char* t) {
    return std::string(R"({"type":"cdr","id":"a","customer_id":"c","occurred_at":")") + t + R"(","channel":"sms"})";
  };
  ASSERT_EQ(parser.parse(cdr_at("0001-01-01T00:00:00Z"), now, &e), std::nullopt);
  EXPECT_EQ(e.month, month::of(1, 1));
  EXPECT_EQ(parser.parse(cdr_at("0001-01-01T00:00:00+00:01"), now, &e), reject_reason::occurred_at_out_of_range);
  EXPECT_EQ(parser.parse(cdr_at("0000-12-31T23:59:59.999999Z"), now, &e), reject_reason::occurred_at_out_of_range);
  const auto end_of_time = *parse_rfc3339("9999-12-31T23:59:59.999999Z");
  ASSERT_EQ(parser.parse(cdr_at("9999-12-31T23:59:59.999999Z"), end_of_time, &e), std::nullopt);
  EXPECT_EQ(e.month, month::of(9999, 12));
  EXPECT_EQ(parser.parse(cdr_at("9999-12-31T23:59:59-00:01"), end_of_time, &e),
            reject_reason::occurred_at_out_of_range);
  EXPECT_FALSE(in_supported_calendar(*parse_rfc3339("0000-01-01T00:00:00+00:01")));
  EXPECT_TRUE(in_supported_calendar(*parse_rfc3339("0001-01-01T00:00:00Z")));
}

TEST(event_parser, too_large_is_checked_before_parsing) {
  event_rules rules;
  rules.max_bytes = 100;
  event_parser parser(rules);
  parsed_event e;
  EXPECT_EQ(parser.parse(cdr_with(R"(,"to":")" + std::string(200, '1') + "\""), now, &e), reject_reason::too_large);
  EXPECT_EQ(parser.parse(std::string(101, '{'), now, &e), reject_reason::too_large);
}

// The parser reuses one buffer. An unbalanced document must not read the
// previous message's bytes past its end: a quote there once started a
// "string" that ran through the rest of the buffer (a heap overflow).
TEST(event_parser, unbalanced_documents_do_not_read_a_previous_message) {
  event_parser parser;
  parsed_event e;
  for (const std::string doc : {"[", "[[", "[{\"a\":[", R"({"to":[)", R"({"to":{"a":)", R"({"type":"cdr","x":[{)"}) {
    std::string previous(16 * 1024, 'a');
    previous[doc.size()] = '"';
    (void)parser.parse(previous, now, &e);
    EXPECT_EQ(parser.parse(doc, now, &e), reject_reason::invalid_json) << doc;
  }
}

TEST(reject_reason, names_are_stable_snake_case_and_round_trip) {
  EXPECT_EQ(name(reject_reason::too_large), "too_large");
  EXPECT_EQ(name(reject_reason::invalid_price), "invalid_price");
  for (std::size_t i = 0; i < reject_reason_count; ++i) {
    const auto r = static_cast<reject_reason>(i);
    const auto n = name(r);
    for (char c : n) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << n;
    EXPECT_EQ(reject_reason_from_name(n), r);
  }
  EXPECT_FALSE(reject_reason_from_name("nope"));
}

}  // namespace
}  // namespace cdr
