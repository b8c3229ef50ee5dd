#include "cdr/core/event.h"

#include <algorithm>
#include <cstring>

#include <simdjson.h>

namespace cdr {
namespace od = simdjson::ondemand;

namespace {

constexpr std::array<std::string_view, reject_reason_count> reject_reason_names{
    "too_large",           "invalid_utf8",        "invalid_json",        "not_an_object",
    "duplicate_field",     "missing_type",        "invalid_type",        "unknown_type",
    "missing_id",          "invalid_id",          "missing_customer_id", "invalid_customer_id",
    "missing_occurred_at", "invalid_occurred_at", "future_occurred_at",  "missing_channel",
    "invalid_channel",     "invalid_direction",   "invalid_status",      "invalid_duration_ms",
    "invalid_parts",       "invalid_route",       "invalid_price",       "occurred_at_out_of_range",
    "unsealed_handover",
};

// Contract fields, in the order their checks are reported.
enum field : std::uint8_t {
  f_type,
  f_id,
  f_customer_id,
  f_occurred_at,
  f_channel,
  f_direction,
  f_status,
  f_duration_ms,
  f_parts,
  f_route,
  f_price,
  f_count,
  f_extra_metadata = f_count,  // allow-listed by configuration, any value
  f_identifier,                // everything else (fail closed)
};

// Outcome of checking one value: `broken` means the JSON itself is invalid.
enum class check : std::uint8_t { ok, bad, broken };

constexpr int max_depth = 64;

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool printable_ascii(std::string_view s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool short_text(std::string_view s, std::size_t max) {
  if (s.size() > max) return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool channel_word(std::string_view s) {
  if (s.empty() || s.size() > 32 || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

bool decimal_amount(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  std::size_t i = s[0] == '-' ? 1 : 0;
  const std::size_t int_start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == int_start) return false;
  if (i == s.size()) return true;
  if (s[i] != '.') return false;
  const std::size_t frac_start = ++i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return i == s.size() && i > frac_start;
}

bool currency_code(std::string_view s) {
  return s.size() == 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// Copies `text` into `buffer` (reused across messages) followed by zeroed
// padding, as simdjson's own padded_string does. The padding must not keep a
// previous message's bytes: on an unbalanced document simdjson's on-demand
// iterator reads the token just past the end, and a stale quote there made it
// unescape a "string" running through the rest of the buffer into its string
// arena (a heap overflow the event fuzzer found).
simdjson::padded_string_view padded_copy(std::string_view text, std::string* buffer) {
  const std::size_t capacity = text.size() + simdjson::SIMDJSON_PADDING;
  if (buffer->size() < capacity) buffer->resize(capacity);
  std::memcpy(buffer->data(), text.data(), text.size());
  std::memset(buffer->data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  return simdjson::padded_string_view(buffer->data(), text.size(), capacity);
}

// Consumes and validates any JSON value (objects and arrays recursively).
// Reads a value of any shape (up to max_depth); with `strings`, every string
// in it, at any depth, is added under `field` (identifier members: an array
// of numbers or a nested object is personal data all the same).
check consume_any(od::value v, int depth, std::vector<std::pair<std::string_view, std::string_view>>* strings = nullptr,
                  std::string_view field = {}) {
  if (depth > max_depth) return check::broken;
  od::json_type t{};
  if (v.type().get(t)) return check::broken;
  switch (t) {
    case od::json_type::array: {
      od::array a;
      if (v.get_array().get(a)) return check::broken;
      for (auto element : a) {
        od::value ev;
        if (std::move(element).get(ev) || consume_any(ev, depth + 1, strings, field) == check::broken) {
          return check::broken;
        }
      }
      return check::ok;
    }
    case od::json_type::object: {
      od::object o;
      if (v.get_object().get(o)) return check::broken;
      for (auto member : o) {
        od::field f;
        std::string_view key;
        if (std::move(member).get(f) || f.unescaped_key().get(key)) return check::broken;
        if (consume_any(f.value(), depth + 1, strings, field) == check::broken) return check::broken;
      }
      return check::ok;
    }
    case od::json_type::number: {
      od::number n;
      return v.get_number().get(n) ? check::broken : check::ok;
    }
    case od::json_type::string: {
      std::string_view s;
      if (v.get_string().get(s)) return check::broken;
      if (strings != nullptr) strings->emplace_back(field, s);
      return check::ok;
    }
    case od::json_type::boolean: {
      bool b = false;
      return v.get_bool().get(b) ? check::broken : check::ok;
    }
    case od::json_type::null: {
      bool is_null = false;
      return (v.is_null().get(is_null) || !is_null) ? check::broken : check::ok;
    }
  }
  return check::broken;
}

// When v is not of the expected type: consumes it and says `bad` (or
// `broken` for invalid JSON). nullopt when it is.
std::optional<check> unexpected_type(od::value v, od::json_type expected) {
  od::json_type t{};
  if (v.type().get(t)) return check::broken;
  if (t == expected) return std::nullopt;
  return consume_any(v, 1) == check::broken ? check::broken : check::bad;
}

// A string value checked by pred; any other type is consumed and `bad`.
template <typename Pred>
check string_value(od::value v, std::string_view* out, Pred pred) {
  if (auto c = unexpected_type(v, od::json_type::string)) return *c;
  if (v.get_string().get(*out)) return check::broken;
  return pred(*out) ? check::ok : check::bad;
}

check non_negative_integer(od::value v) {
  if (auto c = unexpected_type(v, od::json_type::number)) return *c;
  od::number n;
  if (v.get_number().get(n)) return check::broken;
  switch (n.get_number_type()) {
    case od::number_type::unsigned_integer: return check::ok;
    case od::number_type::signed_integer: return n.get_int64() >= 0 ? check::ok : check::bad;
    default: return check::bad;
  }
}

// route: an object of short strings. Captures route.country.
check route_value(od::value v, std::string_view* country) {
  if (auto c = unexpected_type(v, od::json_type::object)) return *c;
  od::object o;
  if (v.get_object().get(o)) return check::broken;
  check result = check::ok;
  std::size_t members = 0;
  for (auto member : o) {
    od::field f;
    std::string_view key;
    if (std::move(member).get(f) || f.unescaped_key().get(key)) return check::broken;
    std::string_view text;
    const check c = string_value(f.value(), &text, [](std::string_view s) { return short_text(s, 128); });
    if (c == check::broken) return check::broken;
    if (c == check::bad || ++members > 32 || !short_text(key, 64)) result = check::bad;
    if (c == check::ok && key == "country") *country = text;
  }
  return result;
}

// price: exactly {"amount": decimal string, "currency": ISO 4217 code}.
check price_value(od::value v) {
  if (auto c = unexpected_type(v, od::json_type::object)) return *c;
  od::object o;
  if (v.get_object().get(o)) return check::broken;
  check result = check::ok;
  bool amount = false;
  bool currency = false;
  for (auto member : o) {
    od::field f;
    std::string_view key;
    if (std::move(member).get(f) || f.unescaped_key().get(key)) return check::broken;
    std::string_view text;
    check c = check::bad;
    if (key == "amount" && !amount) {
      c = string_value(f.value(), &text, decimal_amount);
      amount = true;
    } else if (key == "currency" && !currency) {
      c = string_value(f.value(), &text, currency_code);
      currency = true;
    } else if (consume_any(f.value(), 1) == check::broken) {
      return check::broken;
    }
    if (c == check::broken) return check::broken;
    if (c == check::bad) result = check::bad;
  }
  return (amount && currency) ? result : check::bad;
}

// True when nothing but whitespace follows the root value.
bool at_end(od::document& doc) {
  const char* where = nullptr;
  return doc.current_location().get(where) == simdjson::OUT_OF_BOUNDS;
}

reject_reason missing_reason(field f) {
  switch (f) {
    case f_type: return reject_reason::missing_type;
    case f_id: return reject_reason::missing_id;
    case f_customer_id: return reject_reason::missing_customer_id;
    case f_occurred_at: return reject_reason::missing_occurred_at;
    default: return reject_reason::missing_channel;
  }
}

constexpr std::array<reject_reason, f_count> invalid_reasons{
    reject_reason::invalid_type,        reject_reason::invalid_id,          reject_reason::invalid_customer_id,
    reject_reason::invalid_occurred_at, reject_reason::invalid_channel,     reject_reason::invalid_direction,
    reject_reason::invalid_status,      reject_reason::invalid_duration_ms, reject_reason::invalid_parts,
    reject_reason::invalid_route,       reject_reason::invalid_price,
};

}  // namespace

std::string_view name(reject_reason r) { return reject_reason_names[static_cast<std::size_t>(r)]; }

std::optional<reject_reason> reject_reason_from_name(std::string_view text) {
  for (std::size_t i = 0; i < reject_reason_names.size(); ++i) {
    if (reject_reason_names[i] == text) return static_cast<reject_reason>(i);
  }
  return std::nullopt;
}

struct event_parser::impl {
  struct member {
    const char* begin;
    field kind;
    const char* end = nullptr;
    std::string_view key;  // unescaped
  };

  od::parser parser;
  std::string buffer;
  // A usage event's sealed part, parsed again for its strings.
  od::parser usage_parser;
  std::string usage_buffer;
  std::vector<std::string> usage_fields;
  std::array<bool, f_count> allowed{};
  std::vector<std::string> extra_fields;
  std::vector<member> members;
  std::vector<std::string_view> keys;

  // Field of a key: a switch on the length keeps this to one comparison.
  field classify(std::string_view key) const {
    field f = f_identifier;
    switch (key.size()) {
      case 2: f = key == "id" ? f_id : f; break;
      case 4: f = key == "type" ? f_type : f; break;
      case 5: f = key == "parts" ? f_parts : key == "route" ? f_route : key == "price" ? f_price : f; break;
      case 6: f = key == "status" ? f_status : f; break;
      case 7: f = key == "channel" ? f_channel : f; break;
      case 9: f = key == "direction" ? f_direction : f; break;
      case 11:
        f = key == "customer_id"   ? f_customer_id
            : key == "occurred_at" ? f_occurred_at
            : key == "duration_ms" ? f_duration_ms
                                   : f;
        break;
      default: break;
    }
    if (f != f_identifier) return allowed[f] ? f : f_identifier;
    for (const auto& extra : extra_fields) {
      if (extra == key) return f_extra_metadata;
    }
    return f_identifier;
  }

  // True when two of the collected non-contract keys are equal.
  bool duplicate_other_keys() {
    if (keys.size() <= 16) {
      for (std::size_t i = 1; i < keys.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
          if (keys[i] == keys[j]) return true;
        }
      }
      return false;
    }
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
  }
};

event_parser::event_parser(event_rules rules) : rules_(std::move(rules)), impl_(std::make_unique<impl>()) {
  for (std::size_t i = 0; i < f_count; ++i) {
    const auto name = contract_metadata_fields[i];
    impl_->allowed[i] =
        std::find(required_metadata_fields.begin(), required_metadata_fields.end(), name) !=
            required_metadata_fields.end() ||
        std::find(rules_.metadata_fields.begin(), rules_.metadata_fields.end(), name) != rules_.metadata_fields.end();
  }
  for (const auto& f : rules_.metadata_fields) {
    if (std::find(contract_metadata_fields.begin(), contract_metadata_fields.end(), f) ==
        contract_metadata_fields.end()) {
      impl_->extra_fields.push_back(f);
    }
  }
  impl_->usage_fields = rules_.usage_metadata_fields;
  for (auto req : required_usage_fields) {
    if (std::find(impl_->usage_fields.begin(), impl_->usage_fields.end(), req) == impl_->usage_fields.end()) {
      impl_->usage_fields.emplace_back(req);
    }
  }
}

event_parser::~event_parser() = default;

std::optional<reject_reason> event_parser::parse(std::string_view message, instant now, parsed_event* out) {
  if (message.size() > rules_.max_bytes) return reject_reason::too_large;
  auto& m = *impl_;
  const simdjson::padded_string_view json = padded_copy(message, &m.buffer);
  const char* const base = json.data();

  od::document doc;
  if (auto err = m.parser.iterate(json).get(doc)) {
    return err == simdjson::UTF8_ERROR ? reject_reason::invalid_utf8 : reject_reason::invalid_json;
  }
  od::json_type doc_type{};
  if (doc.type().get(doc_type)) return reject_reason::invalid_json;
  if (doc_type != od::json_type::object) {
    // Tell a valid non-object document from invalid JSON. simdjson reads a
    // scalar document through the document itself, not as a value.
    bool valid = false;
    switch (doc_type) {
      case od::json_type::array: {
        od::value v;
        valid = !doc.get_value().get(v) && consume_any(v, 0) != check::broken;
        break;
      }
      case od::json_type::string: {
        std::string_view s;
        valid = !doc.get_string().get(s);
        break;
      }
      case od::json_type::number: {
        od::number n;
        valid = !doc.get_number().get(n);
        break;
      }
      case od::json_type::boolean: {
        bool b = false;
        valid = !doc.get_bool().get(b);
        break;
      }
      case od::json_type::null: {
        bool is_null = false;
        valid = !doc.is_null().get(is_null) && is_null;
        break;
      }
      case od::json_type::object: break;
    }
    return valid && at_end(doc) ? reject_reason::not_an_object : reject_reason::invalid_json;
  }
  od::object obj;
  if (doc.get_object().get(obj)) return reject_reason::invalid_json;

  m.members.clear();
  m.keys.clear();
  out->identifier_strings.clear();
  out->country = {};
  std::array<std::string_view, f_count> text{};
  std::array<check, f_count> state{};
  std::array<bool, f_count> present{};
  bool duplicate = false;

  for (auto member_result : obj) {
    od::field f;
    if (std::move(member_result).get(f)) return reject_reason::invalid_json;
    const char* begin = f.key().raw() - 1;  // the opening quote; read before unescaping
    std::string_view key;
    if (f.unescaped_key().get(key)) return reject_reason::invalid_json;
    const field kind = m.classify(key);
    if (kind < f_count) {
      duplicate = duplicate || present[kind];
      present[kind] = true;
    } else {
      m.keys.push_back(key);  // compared with each other after the loop
    }
    m.members.push_back({begin, kind, nullptr, key});
    od::value v = f.value();
    check c = check::ok;
    switch (kind) {
      case f_type:
      case f_id:
      case f_customer_id:
      case f_occurred_at:
      case f_direction:
      case f_status: c = string_value(v, &text[kind], [](std::string_view) { return true; }); break;
      case f_channel: c = string_value(v, &text[kind], channel_word); break;
      case f_duration_ms:
      case f_parts: c = non_negative_integer(v); break;
      case f_route: c = route_value(v, &out->country); break;
      case f_price: c = price_value(v); break;
      case f_extra_metadata: c = consume_any(v, 1); break;
      case f_identifier: c = consume_any(v, 1, &out->identifier_strings, key); break;
    }
    if (c == check::broken) return reject_reason::invalid_json;
    if (kind < f_count) state[kind] = c;
  }
  if (!at_end(doc)) return reject_reason::invalid_json;

  // Duplicate keys make a record ambiguous: reject rather than guess.
  if (duplicate || m.duplicate_other_keys()) return reject_reason::duplicate_field;

  if (!present[f_type]) return reject_reason::missing_type;
  if (state[f_type] != check::ok) return reject_reason::invalid_type;
  if (text[f_type] == "cdr") {
    out->kind = record_kind::cdr;
  } else if (text[f_type] == "usage") {
    out->kind = record_kind::usage;
  } else {
    return reject_reason::unknown_type;
  }

  for (field f : {f_id, f_customer_id, f_occurred_at}) {
    if (!present[f]) return missing_reason(f);
    if (state[f] != check::ok) return invalid_reasons[f];
  }
  if (!printable_ascii(text[f_id], 1, 128)) return reject_reason::invalid_id;
  if (!printable_ascii(text[f_customer_id], 1, 64)) return reject_reason::invalid_customer_id;
  const auto when = parse_rfc3339(text[f_occurred_at]);
  if (!when) return reject_reason::invalid_occurred_at;
  // "0000-01-01T00:00:00+00:01" is valid RFC 3339 and falls in year -1:
  // outside what the store can key (cdr/core/month.h).
  if (!in_supported_calendar(*when)) return reject_reason::occurred_at_out_of_range;
  if (*when > now + rules_.future_skew) return reject_reason::future_occurred_at;

  out->id = text[f_id];
  out->customer_id = text[f_customer_id];
  out->occurred_at = *when;
  out->month = month::containing(*when);
  out->identifiers.clear();

  if (out->kind == record_kind::usage) {
    // Usage data is free-form: the allow-listed members as sent, the rest
    // personal data, sealed and indexed like a CDR's identifiers.
    out->country = {};
    for (auto& mem : m.members) {
      const bool allowed = std::find(m.usage_fields.begin(), m.usage_fields.end(), mem.key) != m.usage_fields.end();
      mem.kind = allowed ? f_type : f_identifier;
    }
    split_members(message, base, out);
    return collect_usage_strings(out) ? std::nullopt : std::optional(reject_reason::invalid_json);
  }

  if (!present[f_channel]) return reject_reason::missing_channel;
  for (std::size_t f = f_channel; f < f_count; ++f) {
    if (present[f] && state[f] != check::ok) return invalid_reasons[f];
  }
  if (!short_text(text[f_direction], 64)) return reject_reason::invalid_direction;
  if (!short_text(text[f_status], 64)) return reject_reason::invalid_status;
  split_members(message, base, out);
  return std::nullopt;
}

bool event_parser::collect_usage_strings(parsed_event* out) {
  auto& m = *impl_;
  out->identifier_strings.clear();
  if (out->identifiers.empty()) return true;
  od::document doc;
  od::object obj;
  if (m.usage_parser.iterate(padded_copy(out->identifiers, &m.usage_buffer)).get(doc) || doc.get_object().get(obj)) {
    return false;
  }
  for (auto member_result : obj) {
    od::field f;
    std::string_view key;
    if (std::move(member_result).get(f) || f.unescaped_key().get(key)) return false;
    if (consume_any(f.value(), 1, &out->identifier_strings, key) == check::broken) return false;
  }
  return true;
}

void event_parser::split_members(std::string_view message, const char* base, parsed_event* out) {
  auto& m = *impl_;

  // Split the members, each byte-exact, into metadata and identifiers. A
  // member ends where the separator before the next member (or the closing
  // brace) begins.
  const char* close = base + message.size();
  while (close > base && is_ws(close[-1])) --close;
  --close;  // the object's closing brace
  const std::size_t n = m.members.size();
  // Bytes of each target ([0] metadata, [1] identifiers): the opening brace,
  // then per member its text plus one (a comma before it, or for the first
  // member the closing brace).
  std::array<std::size_t, 2> sizes{1, 1};
  std::array<std::size_t, 2> counts{};
  for (std::size_t i = 0; i < n; ++i) {
    const char* end = i + 1 < n ? m.members[i + 1].begin : close;
    while (is_ws(end[-1])) --end;
    if (i + 1 < n) {
      --end;  // the comma
      while (is_ws(end[-1])) --end;
    }
    m.members[i].end = end;
    const std::size_t t = m.members[i].kind == f_identifier ? 1 : 0;
    sizes[t] += static_cast<std::size_t>(end - m.members[i].begin) + 1;
    ++counts[t];
  }
  std::array<std::string*, 2> targets{&out->metadata, &out->identifiers};
  std::array<char*, 2> cursor{};
  for (std::size_t t = 0; t < 2; ++t) {
    if (t == 1 && counts[1] == 0) {
      out->identifiers.clear();
      break;
    }
    targets[t]->resize(sizes[t]);
    cursor[t] = targets[t]->data();
    *cursor[t]++ = '{';
  }
  std::array<bool, 2> first{true, true};
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t t = m.members[i].kind == f_identifier ? 1 : 0;
    if (!first[t]) *cursor[t]++ = ',';
    first[t] = false;
    const auto len = static_cast<std::size_t>(m.members[i].end - m.members[i].begin);
    std::memcpy(cursor[t], m.members[i].begin, len);
    cursor[t] += len;
  }
  for (std::size_t t = 0; t < 2; ++t) {
    if (cursor[t] != nullptr) *cursor[t]++ = '}';
  }
}

}  // namespace cdr
