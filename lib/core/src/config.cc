#include "cdr/core/config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "cdr/core/admin_protocol.h"
#include "cdr/core/identity.h"

namespace cdr {
namespace {

// Thrown inside this file only; parse_config turns it into a config_error.
struct config_failure {
  config_error error;
};

using namespace std::chrono_literals;

// Retention periods are capped: a deadline then stays inside the calendar
// types (a 5-digit period once wrapped a year to -29047 and dropped the
// current month).
constexpr std::int32_t max_period_months = 1000 * 12;

// librdkafka properties the daemon sets itself and its delivery guarantees
// depend on: refused in kafka.properties, each with the reason.
struct protected_property {
  std::string_view name;
  std::string_view why;
};
constexpr std::array<protected_property, 12> protected_properties{{
    {"bootstrap.servers", "the daemon sets it from kafka.brokers"},
    {"group.id", "the daemon sets it from kafka.group_id"},
    {"group.instance.id", "the daemon sets it from kafka.group_instance_id"},
    {"client.id", "the daemon sets it from kafka.client_id"},
    {"enable.auto.commit", "offsets are committed by the daemon only once their records are durable (no loss)"},
    {"enable.auto.offset.store", "offsets are stored by the daemon with the records, in one atomic write (no loss)"},
    {"auto.offset.reset",
     "the daemon starts a partition without a stored offset at its beginning, and a position the broker no longer "
     "holds must be reported and counted (\"error\"), not skipped silently"},
    {"isolation.level", "the daemon reads committed messages only (\"read_committed\")"},
    {"acks", "deletion events and dead-letter copies need every in-sync replica's acknowledgement (\"all\")"},
    {"enable.idempotence", "the producer must not write a retried message twice (\"true\")"},
    {"partition.assignment.strategy",
     "the consumer hands partitions over incrementally (\"cooperative-sticky\"); another strategy breaks its "
     "rebalance handling"},
    {"enable.partition.eof", "the consumer loop treats every message it polls as a record"},
}};

std::string join_key(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

[[noreturn]] void fail(const toml::node* node, std::string key, std::string message, std::string_view fallback_file) {
  config_error e;
  e.key = std::move(key);
  e.message = std::move(message);
  e.file = std::string(fallback_file);
  if (node != nullptr) {
    const auto& src = node->source();
    if (src.path) e.file = *src.path;
    e.line = src.begin.line;
  }
  throw config_failure{std::move(e)};
}

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date or time";
  }
}

// Moves `from` into `into`, tables merged key by key, other values replaced.
// Moving (not copying) keeps each node's source position for error messages.
void merge(toml::table& into, toml::table&& from) {
  for (auto&& [k, v] : from) {
    auto* existing = into.get(k);
    if (existing != nullptr && existing->is_table() && v.is_table()) {
      merge(*existing->as_table(), std::move(*v.as_table()));
    } else {
      into.insert_or_assign(k, std::move(v));
    }
  }
}

// Adds every key of the defaults that `into` lacks.
void fill_defaults(toml::table& into, const toml::table& defaults) {
  for (const auto& [k, v] : defaults) {
    auto* existing = into.get(k);
    if (existing == nullptr) {
      into.insert(k, v);
    } else if (existing->is_table() && v.is_table()) {
      fill_defaults(*existing->as_table(), *v.as_table());
    }
  }
}

bool free_form(std::string_view path) { return path == "kafka.properties"; }

// Whether `inner` names `outer` or something under it, compared lexically
// (no file system access: a symbolic link can still hide it).
bool path_within(const std::string& inner, const std::string& outer) {
  const auto a = std::filesystem::path(inner).lexically_normal();
  const auto b = std::filesystem::path(outer).lexically_normal();
  auto ai = a.begin();
  for (auto bi = b.begin(); bi != b.end(); ++bi, ++ai) {
    if (bi->empty() && std::next(bi) == b.end()) break;  // trailing slash
    if (ai == a.end() || *ai != *bi) return false;
  }
  return true;
}

// Every key must exist in the defaults with the same type.
void check_schema(const toml::table& t, const toml::table& schema, const std::string& prefix, std::string_view file) {
  for (const auto& [k, v] : t) {
    const auto key = join_key(prefix, k.str());
    if (key == "retention.overrides") continue;  // checked when read
    const auto* expected = schema.get(k);
    if (expected == nullptr) fail(&v, key, "unknown key", file);
    const bool number_ok = expected->is_floating_point() && v.is_integer();
    if (expected->type() != v.type() && !number_ok) {
      fail(&v, key, fmt::format("expected {}, got {}", type_name(expected->type()), type_name(v.type())), file);
    }
    if (v.is_table() && !free_form(key)) {
      check_schema(*v.as_table(), *expected->as_table(), key, file);
    }
  }
}

class reader {
 public:
  reader(const toml::table& root, std::string_view file) : root_(root), file_(file) {}

  const toml::node& node(const std::string& key) const {
    const auto* n = root_.at_path(key).node();
    if (n == nullptr) fail(nullptr, key, "missing (the built-in defaults lack it: a bug)", file_);
    return *n;
  }
  std::string str(const std::string& key) const { return *node(key).value<std::string>(); }
  std::int64_t integer(const std::string& key) const { return *node(key).value<std::int64_t>(); }
  double number(const std::string& key) const { return *node(key).value<double>(); }
  bool boolean(const std::string& key) const { return *node(key).value<bool>(); }

  template <typename T>
  T ranged(const std::string& key, std::int64_t lo, std::int64_t hi) const {
    const auto v = integer(key);
    if (v < lo || v > hi) bad(key, fmt::format("must be between {} and {}", lo, hi));
    return static_cast<T>(v);
  }
  std::string non_empty(const std::string& key) const {
    auto v = str(key);
    if (v.empty()) bad(key, "must not be empty");
    return v;
  }
  // A duration within [lo, hi]: every duration key is bounded, so no sum
  // with an instant can overflow.
  microseconds duration(const std::string& key, microseconds lo, microseconds hi) const {
    const auto v = parse_duration(str(key), /*allow_zero=*/lo == microseconds(0));
    if (!v) bad(key, "must be a duration such as \"90s\", \"45m\", \"12h\" or \"17d\"");
    if (*v < lo || *v > hi) {
      bad(key, fmt::format("must be between {} and {}", format_duration(lo), format_duration(hi)));
    }
    return *v;
  }
  retention_rule rule(const std::string& key, const toml::table* t = nullptr) const;

  [[noreturn]] void bad(const std::string& key, std::string message) const {
    fail(&node(key), key, std::move(message), file_);
  }
  std::string_view file() const { return file_; }

 private:
  const toml::table& root_;
  std::string_view file_;
};

retention_rule reader::rule(const std::string& key, const toml::table* t) const {
  // t: an override's own table (keys relative to it); else the root.
  auto get = [&](std::string_view sub) -> const toml::node* {
    return t ? t->at_path(sub).node() : root_.at_path(fmt::format("{}.{}", key, sub)).node();
  };
  retention_rule r;
  const auto* period = get("period");
  const auto* anchor_node = get("anchor");
  const auto pkey = fmt::format("{}.period", key);
  const auto akey = fmt::format("{}.anchor", key);
  if (period == nullptr || !period->is_string())
    fail(period ? period : t, pkey, "must be a string such as \"12 months\" or \"10 years\"", file_);
  if (anchor_node == nullptr || !anchor_node->is_string())
    fail(anchor_node ? anchor_node : t, akey, "must be one of month_start, month_end, year_start, year_end", file_);
  const auto months = parse_period_months(*period->value<std::string>());
  if (!months) fail(period, pkey, "must be \"<n> months\" or \"<n> years\"", file_);
  if (*months > max_period_months) {
    fail(period, pkey, fmt::format("must be at most {} years ({} months)", max_period_months / 12, max_period_months),
         file_);
  }
  const auto a = anchor_from_name(*anchor_node->value<std::string>());
  if (!a) fail(anchor_node, akey, "must be one of month_start, month_end, year_start, year_end", file_);
  r.period_months = *months;
  r.anchor = *a;
  return r;
}

std::vector<std::string> string_list(const toml::node* n, const std::string& key, std::string_view file) {
  std::vector<std::string> out;
  if (n == nullptr) return out;
  const auto* arr = n->as_array();
  if (arr == nullptr) fail(n, key, "expected an array of strings", file);
  for (const auto& e : *arr) {
    const auto s = e.value<std::string>();
    if (!s || s->empty()) fail(&e, key, "expected an array of non-empty strings", file);
    out.push_back(*s);
  }
  return out;
}

std::vector<retention_override> read_overrides(const toml::table& root, const class_rules& defaults,
                                               std::string_view file, const reader& r) {
  std::vector<retention_override> out;
  const auto* node = root.at_path("retention.overrides").node();
  if (node == nullptr) return out;
  const auto* arr = node->as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    fail(node, "retention.overrides", "expected an array of tables ([[retention.overrides]])", file);
  }
  std::set<int> ids;
  std::set<std::string> names, customers, countries;
  static const std::set<std::string> known{"id", "name", "customers", "countries", "identifiers", "metadata", "usage"};
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto& t = *arr->get(i)->as_table();
    const auto base = fmt::format("retention.overrides[{}]", i);
    for (const auto& [k, v] : t) {
      if (!known.contains(std::string(k.str()))) fail(&v, join_key(base, k.str()), "unknown key", file);
    }
    retention_override o;
    o.rules = defaults;
    const auto* id = t.get("id");
    const auto idv = id ? id->value<std::int64_t>() : std::nullopt;
    if (!idv || *idv < 1 || *idv > 65535) {
      fail(id ? id : &t, base + ".id", "must be an integer between 1 and 65535 (stored in keys: never reuse one)",
           file);
    }
    if (!ids.insert(static_cast<int>(*idv)).second) fail(id, base + ".id", "duplicate override id", file);
    o.id = static_cast<retention_class>(*idv);
    const auto* nm = t.get("name");
    const auto nmv = nm ? nm->value<std::string>() : std::nullopt;
    if (!nmv || nmv->empty()) fail(nm ? nm : &t, base + ".name", "must be a non-empty string", file);
    if (!names.insert(*nmv).second) fail(nm, base + ".name", "duplicate override name", file);
    o.name = *nmv;
    o.customers = string_list(t.get("customers"), base + ".customers", file);
    o.countries = string_list(t.get("countries"), base + ".countries", file);
    if (o.customers.empty() && o.countries.empty()) {
      fail(&t, base, "an override needs at least one of customers or countries", file);
    }
    for (const auto& c : o.customers) {
      if (!customers.insert(c).second)
        fail(t.get("customers"), base + ".customers", fmt::format("customer {} is in two overrides", c), file);
    }
    for (auto c : o.countries) {
      std::transform(c.begin(), c.end(), c.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
      if (c.size() != 2)
        fail(t.get("countries"), base + ".countries", fmt::format("{} is not an ISO 3166 alpha-2 code", c), file);
      if (!countries.insert(c).second)
        fail(t.get("countries"), base + ".countries", fmt::format("country {} is in two overrides", c), file);
    }
    for (auto [field, target] : {std::pair{"identifiers", &o.rules.identifiers},
                                 std::pair{"metadata", &o.rules.metadata}, std::pair{"usage", &o.rules.usage}}) {
      if (const auto* sub = t.get(field)) {
        if (!sub->is_table())
          fail(sub, fmt::format("{}.{}", base, field), "expected a table with period and anchor", file);
        *target = r.rule(fmt::format("{}.{}", base, field), sub->as_table());
      }
    }
    out.push_back(std::move(o));
  }
  return out;
}

void check_listen(const reader& r, metrics_config* m) {
  const auto v = r.str("metrics.listen");
  const auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) r.bad("metrics.listen", "must be host:port");
  auto host = v.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto port_text = std::string_view(v).substr(colon + 1);
  unsigned port = 0;
  const auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || p != port_text.data() + port_text.size() || port > 65535) {
    r.bad("metrics.listen", "port must be a number from 0 to 65535");
  }
  m->host = host;
  m->port = static_cast<std::uint16_t>(port);
}

// `${NAME}` or `@FILE` (not `@@...`): a value given by reference.
bool is_reference(std::string_view text) {
  return text.starts_with("${") || (text.starts_with('@') && !text.starts_with("@@"));
}

void redact(toml::table& t) {
  if (auto* props = t.at_path("kafka.properties").as_table()) {
    for (auto& [k, v] : *props) {
      // A ${NAME} or @FILE reference says where the secret is, not what.
      if (!v.is_string() || !is_secret_property(k.str())) continue;
      if (!is_reference(v.as_string()->get())) *v.as_string() = std::string("<redacted>");
    }
  }
}

daemon_config build(const toml::table& root, std::string_view file, const secret_reader* secrets) {
  const reader r(root, file);
  daemon_config c;

  c.kafka.brokers = r.non_empty("kafka.brokers");
  c.kafka.group_id = r.non_empty("kafka.group_id");
  c.kafka.client_id = r.non_empty("kafka.client_id");
  c.kafka.topic_cdr = r.non_empty("kafka.topics.cdr");
  c.kafka.topic_usage = r.non_empty("kafka.topics.usage");
  c.kafka.topic_dead_letter = r.non_empty("kafka.topics.dead_letter");
  if (c.kafka.topic_cdr == c.kafka.topic_usage) r.bad("kafka.topics.usage", "must differ from kafka.topics.cdr");
  if (c.kafka.topic_dead_letter == c.kafka.topic_cdr || c.kafka.topic_dead_letter == c.kafka.topic_usage) {
    r.bad("kafka.topics.dead_letter", "must differ from the input topics");
  }
  c.kafka.topic_deletion_events = r.non_empty("kafka.topics.deletion_events");
  for (const auto* other : {&c.kafka.topic_cdr, &c.kafka.topic_usage, &c.kafka.topic_dead_letter}) {
    if (c.kafka.topic_deletion_events == *other) {
      r.bad("kafka.topics.deletion_events", "must differ from the input and dead-letter topics");
    }
  }
  c.kafka.topic_control = r.str("kafka.topics.control");
  c.kafka.topic_replies = r.str("kafka.topics.replies");
  c.kafka.topic_handover = r.str("kafka.topics.handover");
  {
    const std::vector<std::pair<const char*, const std::string*>> others{
        {"kafka.topics.cdr", &c.kafka.topic_cdr},
        {"kafka.topics.usage", &c.kafka.topic_usage},
        {"kafka.topics.dead_letter", &c.kafka.topic_dead_letter},
        {"kafka.topics.deletion_events", &c.kafka.topic_deletion_events}};
    for (const auto& [key, topic] : {std::pair{"kafka.topics.control", &c.kafka.topic_control},
                                     std::pair{"kafka.topics.replies", &c.kafka.topic_replies},
                                     std::pair{"kafka.topics.handover", &c.kafka.topic_handover}}) {
      for (const auto& [other_key, other] : others) {
        if (!topic->empty() && *topic == *other) r.bad(key, fmt::format("must differ from {}", other_key));
      }
    }
    if (c.kafka.topic_control.empty() && !c.kafka.topic_replies.empty()) {
      r.bad("kafka.topics.control", "is empty: set kafka.topics.replies empty too (both empty: the daemon acts alone)");
    }
    if (!c.kafka.topic_control.empty() && c.kafka.topic_replies.empty()) {
      r.bad("kafka.topics.replies", "must not be empty while kafka.topics.control is set");
    }
    if (!c.kafka.topic_control.empty() && c.kafka.topic_control == c.kafka.topic_replies) {
      r.bad("kafka.topics.replies", "must differ from kafka.topics.control");
    }
    if (c.kafka.topic_control.empty() != c.kafka.topic_handover.empty()) {
      r.bad("kafka.topics.handover",
            "must be set exactly when kafka.topics.control is (both empty: the daemon acts alone)");
    }
    if (!c.kafka.topic_handover.empty() &&
        (c.kafka.topic_handover == c.kafka.topic_control || c.kafka.topic_handover == c.kafka.topic_replies)) {
      r.bad("kafka.topics.handover", "must differ from kafka.topics.control and kafka.topics.replies");
    }
  }
  c.kafka.group_instance_id = r.str("kafka.group_instance_id");
  if (c.kafka.group_instance_id.size() > 249 ||
      c.kafka.group_instance_id.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos) {
    r.bad("kafka.group_instance_id", "must be at most 249 of the characters a-z A-Z 0-9 . _ - (or empty)");
  }
  c.kafka.control_timeout = r.duration("kafka.control_timeout", 1s, 10min);
  c.kafka.fleet_key_file = r.str("kafka.fleet_key_file");
  c.kafka.fleet_accept_key_files =
      string_list(&r.node("kafka.fleet_accept_key_files"), "kafka.fleet_accept_key_files", file);
  c.sweep.interval = r.duration("sweep.interval", 1s, std::chrono::days(31));
  c.sweep.jitter = r.duration("sweep.jitter", 1ms, std::chrono::days(31));
  if (c.sweep.jitter > c.sweep.interval) r.bad("sweep.jitter", "must not exceed sweep.interval");
  c.sweep.max_clock_jump = r.duration("sweep.max_clock_jump", std::chrono::minutes(1), std::chrono::days(366));
  c.erasure.purge_after = r.duration("erasure.purge_after", 0s, std::chrono::days(30));
  c.kafka.embedded_partitions = r.ranged<int>("kafka.embedded_partitions", 1, 256);
  c.kafka.batch_max_records = r.ranged<std::uint32_t>("kafka.batch_max_records", 1, 100000);
  c.kafka.batch_linger = r.duration("kafka.batch_linger", 1ms, 1min);
  c.kafka.shutdown_timeout = r.duration("kafka.shutdown_timeout", 1s, 1h);
  for (const auto& [k, v] : *root.at_path("kafka.properties").as_table()) {
    const auto key = join_key("kafka.properties", k.str());
    // librdkafka's names are printable ASCII; anything else is refused
    // here, before it reaches librdkafka's messages and the logs.
    if (!admin::printable(k.str())) fail(&v, key, "is not a librdkafka property name", file);
    for (const auto& p : protected_properties) {
      if (p.name == k.str()) fail(&v, key, fmt::format("is protected: {}; remove it", p.why), file);
    }
    if (v.is_string()) {
      auto value = resolve_secret(*v.value<std::string>(), secrets);
      if (!value) fail(&v, key, value.error(), file);
      c.kafka.properties.emplace(k.str(), std::move(value).value());
    } else if (v.is_integer() || v.is_boolean() || v.is_floating_point()) {
      std::ostringstream s;
      s << toml::default_formatter{v};  // NOLINT: same text librdkafka expects
      c.kafka.properties.emplace(k.str(), s.str());
    } else {
      fail(&v, key, "librdkafka properties must be strings, numbers or booleans", file);
    }
  }

  c.storage.path = r.non_empty("storage.path");
  c.storage.checkpoint_dir = r.str("storage.checkpoint_dir");
  if (c.storage.checkpoint_dir.empty()) {
    const auto store = std::filesystem::path(c.storage.path).lexically_normal();
    const auto parent = (store.has_filename() ? store : store.parent_path()).parent_path();
    c.storage.checkpoint_dir = (parent / "checkpoints").string();
  }
  if (path_within(c.storage.checkpoint_dir, c.storage.path)) {
    r.bad("storage.checkpoint_dir", "must be outside storage.path");
  }
  const auto compression = r.str("storage.compression");
  if (compression == "lz4") {
    c.storage.compression = compression_kind::lz4;
  } else if (compression == "none") {
    c.storage.compression = compression_kind::none;
  } else {
    r.bad("storage.compression", "must be \"lz4\" or \"none\"");
  }
  c.storage.block_cache_bytes = r.ranged<std::uint64_t>("storage.block_cache_mb", 1, 1 << 20) << 20;
  c.storage.subject_key_file = r.non_empty("storage.subject_key_file");
  c.storage.keystore_path = r.non_empty("storage.keystore_path");
  c.storage.master_key_file = r.non_empty("storage.master_key_file");
  c.storage.wal_sync_interval = r.duration("storage.wal_sync_interval", 1ms, 10s);
  c.storage.wal_sync_bytes = r.ranged<std::uint64_t>("storage.wal_sync_bytes", 64 << 10, std::int64_t{1} << 30);
  c.storage.max_seals_per_key = r.ranged<std::uint64_t>("storage.max_seals_per_key", 1, std::int64_t{1} << 32);
  if (!c.storage.path.empty() && !c.storage.keystore_path.empty() &&
      path_within(c.storage.keystore_path, c.storage.path)) {
    r.bad("storage.keystore_path",
          "must be outside storage.path: checkpoints and snapshots of the data must not carry the keys");
  }

  c.admin.socket = r.non_empty("admin.socket");
  if (c.admin.socket.size() >= 108) r.bad("admin.socket", "a Unix socket path must be shorter than 108 bytes");
  c.admin.socket_group = r.str("admin.socket_group");
  c.admin.operator_group = r.str("admin.operator_group");
  c.admin.viewer_group = r.str("admin.viewer_group");
  c.admin.max_connections = r.ranged<std::uint32_t>("admin.max_connections", 1, 4096);
  c.admin.max_request_bytes = r.ranged<std::uint32_t>("admin.max_request_bytes", 256, 16 << 20);
  c.admin.idle_timeout = r.duration("admin.idle_timeout", 1s, std::chrono::days(1));

  check_listen(r, &c.metrics);

  c.log.level = r.str("log.level");
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.contains(c.log.level))
    r.bad("log.level", "must be one of trace, debug, info, warn, error, critical, off");
  const auto fmt_name = r.str("log.format");
  if (fmt_name == "auto") {
    c.log.format = log_format::automatic;
  } else if (fmt_name == "text") {
    c.log.format = log_format::text;
  } else if (fmt_name == "json") {
    c.log.format = log_format::json;
  } else {
    r.bad("log.format", "must be \"auto\", \"text\" or \"json\"");
  }

  c.events.max_bytes = r.ranged<std::size_t>("events.max_bytes", 64, 16 << 20);
  c.events.future_skew = r.duration("events.future_skew", 1s, std::chrono::days(366));
  c.events.default_region = r.str("events.default_region");
  if (!c.events.default_region.empty() && !form_region(identity_form(c.events.default_region))) {
    r.bad("events.default_region", "must be an ISO 3166-1 alpha-2 region code in capitals (e.g. \"HR\") or \"\"");
  }
  c.events.metadata_fields = string_list(&r.node("events.metadata_fields"), "events.metadata_fields", file);
  for (auto req : required_metadata_fields) {
    if (std::find(c.events.metadata_fields.begin(), c.events.metadata_fields.end(), req) ==
        c.events.metadata_fields.end()) {
      r.bad("events.metadata_fields", fmt::format("must include the required field {}", req));
    }
  }
  c.events.usage_metadata_fields =
      string_list(&r.node("events.usage_metadata_fields"), "events.usage_metadata_fields", file);
  for (auto req : required_usage_fields) {
    if (std::find(c.events.usage_metadata_fields.begin(), c.events.usage_metadata_fields.end(), req) ==
        c.events.usage_metadata_fields.end()) {
      r.bad("events.usage_metadata_fields", fmt::format("must include the required field {}", req));
    }
  }

  class_rules defaults;
  defaults.identifiers = r.rule("retention.identifiers");
  defaults.metadata = r.rule("retention.metadata");
  defaults.usage = r.rule("retention.usage");
  c.retention = retention_policy(defaults, read_overrides(root, defaults, file, r));

  c.demo.enabled = r.boolean("demo.enabled");
  c.demo.events_per_second = r.number("demo.events_per_second");
  if (c.demo.events_per_second <= 0 || c.demo.events_per_second > 1e6) {
    r.bad("demo.events_per_second", "must be greater than 0 and at most 1000000");
  }
  c.demo.seed = static_cast<std::uint64_t>(r.ranged<std::int64_t>("demo.seed", 0, INT64_MAX));
  for (auto [key, target] : {std::pair{"demo.late_fraction", &c.demo.late_fraction},
                             std::pair{"demo.malformed_fraction", &c.demo.malformed_fraction}}) {
    *target = r.number(key);
    if (*target < 0 || *target > 1) r.bad(key, "must be between 0 and 1");
  }
  if (c.demo.enabled && !c.kafka.embedded()) {
    r.bad("demo.enabled", "demo traffic needs kafka.brokers = \"embedded\"");
  }

  toml::table shown = root;
  redact(shown);
  std::ostringstream json;
  json << toml::json_formatter{shown};
  c.effective_json = json.str();
  return c;
}

// Applies one `key=value` override. The value is read as a TOML value; if
// that fails it is taken as a plain string (so `--set storage.path=/x` works).
void apply_override(toml::table& root, const std::string& arg) {
  const auto eq = arg.find('=');
  const auto source = fmt::format("--set {}", arg);
  if (eq == std::string::npos || eq == 0) {
    throw config_failure{{source, 0, "", "expected --set section.key=value"}};
  }
  const auto key = arg.substr(0, eq);
  const auto value = arg.substr(eq + 1);
  toml::table patch;
  try {
    patch = toml::parse(fmt::format("{} = {}", key, value), std::string(source));
  } catch (const toml::parse_error&) {
    std::string quoted;
    for (char ch : value) {
      if (ch == '"' || ch == '\\') quoted.push_back('\\');
      quoted.push_back(ch);
    }
    try {
      patch = toml::parse(fmt::format("{} = \"{}\"", key, quoted), std::string(source));
    } catch (const toml::parse_error& e) {
      throw config_failure{{source, 0, key, std::string(e.description())}};
    }
  }
  merge(root, std::move(patch));
}

}  // namespace

std::string config_error::to_string() const {
  std::string out = file;
  if (line != 0) out += fmt::format(":{}", line);
  out += ": ";
  // A key with control or direction characters is shown escaped: it goes to
  // a terminal and to logs.
  if (!key.empty())
    out += fmt::format("key {}: ", admin::printable(key) ? key : nlohmann::json(key).dump(-1, ' ', true));
  out += message;
  return out;
}

namespace {

bool env_name(std::string_view s) {
  return !s.empty() && !std::isdigit(static_cast<unsigned char>(s[0])) && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

result<std::string> env_value(const std::string& name, const secret_reader& secrets) {
  auto v = secrets.env(name);
  if (!v) return failure{fmt::format("environment variable {} is not set", name)};
  return std::move(*v);
}

// `${NAME}` expanded everywhere in `text` (a file path).
result<std::string> expand_env(const std::string& text, const secret_reader& secrets) {
  std::string out;
  std::size_t at = 0;
  while (true) {
    const auto open = text.find("${", at);
    if (open == std::string::npos) return out + text.substr(at);
    const auto close = text.find('}', open);
    const auto name = close == std::string::npos ? std::string() : text.substr(open + 2, close - open - 2);
    if (!env_name(name)) return failure{"\"${\" must be followed by a variable name and \"}\""};
    const auto value = env_value(name, secrets);
    if (!value) return failure{value.error()};
    out += text.substr(at, open - at) + *value;
    at = close + 1;
  }
}

}  // namespace

result<std::string> resolve_secret(const std::string& value, const secret_reader* secrets) {
  if (value.starts_with("@@")) return value.substr(1);
  if (!is_reference(value)) return value;
  if (secrets == nullptr) return failure{"a ${NAME} or @FILE reference cannot be resolved here"};
  if (value.starts_with("${")) {
    const auto name = value.back() == '}' ? value.substr(2, value.size() - 3) : std::string();
    if (!env_name(name)) return failure{"${...} must name an environment variable (letters, digits, _) and end with }"};
    return env_value(name, *secrets);
  }
  auto path = expand_env(value.substr(1), *secrets);
  if (!path) return failure{path.error()};
  if (path->empty()) return failure{"@ must be followed by a file name"};
  auto text = secrets->file(*path);
  if (!text) return failure{fmt::format("cannot read {}: {}", *path, text.error())};
  std::string bytes = std::move(text).value();
  if (!bytes.empty() && bytes.back() == '\n') bytes.pop_back();
  if (!bytes.empty() && bytes.back() == '\r') bytes.pop_back();
  if (bytes.empty()) return failure{fmt::format("{} is empty", *path)};
  return bytes;
}

bool is_secret_property(std::string_view name) {
  for (auto word : {"password", "secret", "key", "token", "credential", "jaas"}) {
    if (name.find(word) != std::string_view::npos) return true;
  }
  return false;
}

bool is_reloadable_key(std::string_view key) {
  static constexpr std::array<std::string_view, 6> reloadable{
      "log.level",         "sweep.interval", "sweep.jitter", "sweep.max_clock_jump", "admin.operator_group",
      "admin.viewer_group"};
  return std::find(reloadable.begin(), reloadable.end(), key) != reloadable.end();
}

std::variant<daemon_config, config_error> parse_config(std::string_view text, std::string_view file,
                                                       const std::vector<std::string>& overrides,
                                                       const secret_reader* secrets) {
  try {
    toml::table defaults = toml::parse(default_config_toml, std::string_view("<built-in defaults>"));
    toml::table user;
    try {
      user = toml::parse(text, std::string(file));
    } catch (const toml::parse_error& e) {
      return config_error{std::string(file), e.source().begin.line, "", std::string(e.description())};
    }
    for (const auto& o : overrides) apply_override(user, o);
    check_schema(user, defaults, "", file);
    fill_defaults(user, defaults);
    return build(user, file, secrets);
  } catch (const config_failure& f) {
    return f.error;
  }
}

}  // namespace cdr
