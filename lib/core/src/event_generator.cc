#include "cdr/core/event_generator.h"

#include <array>

#include <fmt/format.h>

namespace cdr {
namespace {

constexpr std::array<std::string_view, 8> channels{"sms", "sms", "sms", "voice", "email", "whatsapp", "viber", "rcs"};
constexpr std::array<std::string_view, 4> statuses{"delivered", "delivered", "failed", "pending"};
constexpr std::array<std::string_view, 10> countries{"HR", "DE", "GB", "US", "BR", "IN", "KR", "PH", "TH", "PK"};
constexpr std::array<std::string_view, 5> actions{"api.sms.send", "portal.login", "api.email.send",
                                                  "portal.report.view", "api.voice.call"};
constexpr std::string_view crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// A ULID-shaped id (26 characters) unique per (seed, counter). Like a real
// ULID it sorts by creation: the counter comes first, most significant
// digit first; the seed-derived part makes streams of different seeds differ.
std::string make_id(std::uint64_t seed, std::uint64_t counter, std::string_view prefix) {
  std::string id(prefix);
  for (int shift = 60; shift >= 0; shift -= 5) id.push_back(crockford[(counter >> shift) & 31]);
  std::uint64_t tail = seed * 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 13; ++i) {
    id.push_back(crockford[tail & 31]);
    tail >>= 5;
  }
  return id;
}

// A UUIDv4-style id: 122 random bits, the version and variant bits set.
std::string uuid_v4(std::uint64_t hi, std::uint64_t lo) {
  hi = (hi & ~0xf000ULL) | 0x4000ULL;
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
                     lo & 0xffffffffffffULL);
}

// The phone number of subject n (E.164).
std::string phone_of(std::uint32_t n) { return fmt::format("+3859{:08}", n); }

}  // namespace

event_generator::event_generator(generator_options options)
    : options_(options), state_(options.seed ^ 0x853c49e6748fea9bULL) {}

std::uint64_t event_generator::random() {
  // splitmix64: fast, and good enough for test data.
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void event_generator::next(generated_event* out) {
  ++counter_;
  out->expected_reject.reset();
  out->late = false;
  if (options_.malformed_fraction > 0 && uniform() < options_.malformed_fraction) {
    malformed(out);
    return;
  }
  const bool usage = uniform() < options_.usage_fraction;
  out->kind = usage ? record_kind::usage : record_kind::cdr;
  out->id = options_.random_ids ? uuid_v4(random(), random()) : make_id(options_.seed, counter_, usage ? "u-" : "");
  instant when =
      options_.now - microseconds{static_cast<std::int64_t>(uniform() * static_cast<double>(options_.spread.count()))};
  if (options_.late_fraction > 0 && uniform() < options_.late_fraction) {
    out->late = true;
    when = options_.now - std::chrono::hours(24 * 31 * static_cast<std::int64_t>(13 + below(118)));
  }
  const auto customer = fmt::format("cust-{:03}", below(200));
  const auto country = countries[below(countries.size())];
  const auto subject = static_cast<std::uint32_t>(below(options_.subjects));
  const auto at = format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(when));
  if (usage) {
    out->json = fmt::format(
        R"({{"type":"usage","id":"{}","customer_id":"{}","occurred_at":"{}","account_user":"user{}@{}.example","ip":"203.0.{}.{}","user_agent":"Mozilla/5.0","action":"{}","route":{{"region":"eu-west"}}}})",
        out->id, customer, at, below(50), customer, below(256), below(256), actions[below(actions.size())]);
    return;
  }
  const auto channel = channels[below(channels.size())];
  const bool email = channel == "email";
  const auto to = email ? fmt::format("subject{}@mail.example", subject) : phone_of(subject);
  const auto from = email ? fmt::format("noreply@{}.example", customer) : fmt::format("+4477009{:05}", below(100000));
  out->json = fmt::format(
      R"({{"type":"cdr","id":"{}","customer_id":"{}","occurred_at":"{}","channel":"{}","direction":"outbound","status":"{}","duration_ms":{},"parts":{},"route":{{"country":"{}","mcc_mnc":"{}","operator":"op-{}","connection":"smpp-{}"}},"price":{{"amount":"0.{:04}","currency":"EUR"}},"from":"{}","to":"{}"}})",
      out->id, customer, at, channel, statuses[below(statuses.size())], channel == "voice" ? below(600'000) : 0,
      1 + below(3), country, 21900 + below(99), below(40), below(12), 10 + below(9990), from, to);
}

void event_generator::malformed(generated_event* out) {
  out->kind = record_kind::cdr;
  out->id = make_id(options_.seed, counter_, "bad-");
  const auto at = format_rfc3339(options_.now);
  struct variant {
    reject_reason reason;
    std::string json;
  };
  const std::array<variant, 6> variants{{
      {reject_reason::invalid_json, fmt::format(R"({{"type":"cdr","id":"{}",)", out->id)},
      {reject_reason::missing_customer_id,
       fmt::format(R"({{"type":"cdr","id":"{}","occurred_at":"{}","channel":"sms"}})", out->id, at)},
      {reject_reason::invalid_occurred_at,
       fmt::format(R"({{"type":"cdr","id":"{}","customer_id":"c","occurred_at":"yesterday","channel":"sms"}})",
                   out->id)},
      {reject_reason::unknown_type,
       fmt::format(R"({{"type":"fax","id":"{}","customer_id":"c","occurred_at":"{}"}})", out->id, at)},
      {reject_reason::invalid_duration_ms,
       fmt::format(
           R"({{"type":"cdr","id":"{}","customer_id":"c","occurred_at":"{}","channel":"voice","duration_ms":-5}})",
           out->id, at)},
      {reject_reason::invalid_utf8,
       fmt::format(
           "{{\"type\":\"cdr\",\"id\":\"{}\",\"customer_id\":\"c\xff\",\"occurred_at\":\"{}\",\"channel\":\"sms\"}}",
           out->id, at)},
  }};
  const auto& v = variants[below(variants.size())];
  out->expected_reject = v.reason;
  out->json = v.json;
}

}  // namespace cdr
