#include "retention.h"

#include <filesystem>
#include <random>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/core/ingest.h"
#include "failpoint.h"

namespace cdr::service {
namespace {

using ranges_t = std::vector<std::pair<store::family, key_range>>;

constexpr std::string_view journal_prefix = "journal/";
constexpr std::string_view event_prefix = "event/";
constexpr std::string_view hold_prefix = "hold/";
constexpr std::string_view deferred_prefix = "deferred/";
constexpr std::string_view erased_prefix = "erased/";

store::family main_family(record_kind k) { return k == record_kind::cdr ? store::family::metadata : store::family::usage; }

// The key ranges an action removes.
ranges_t removal_ranges(retention_action a, const partition& p) {
  const auto r = partition_range(p);
  switch (a) {
    case retention_action::strip_identifiers:
      return {{store::family::identifiers, r}, {store::family::subject_index, r}};
    case retention_action::drop_metadata:
      return {{store::family::metadata, r}, {store::family::identifiers, r}, {store::family::subject_index, r}};
    case retention_action::drop_usage: return {{store::family::usage, r}};
  }
  return {};
}

nlohmann::json ranges_json(const ranges_t& ranges) {
  auto out = nlohmann::json::array();
  for (const auto& [f, r] : ranges) out.push_back({store::name(f), to_hex(r.begin), to_hex(r.end)});
  return out;
}

void add_ranges(const nlohmann::json& j, ranges_t& out) {
  if (!j.is_array()) return;
  for (const auto& item : j) {
    if (!item.is_array() || item.size() != 3) continue;
    const auto f = store::family_from_name(item[0].get<std::string>());
    auto b = from_hex(item[1].get<std::string>());
    auto e = from_hex(item[2].get<std::string>());
    if (f && b && e) out.push_back({*f, key_range{std::move(*b), std::move(*e)}});
  }
}

// The identifier values of an opened identifiers object, normalised as the
// subject index and the holds' hashes take them.
std::vector<std::string> normalized_identifiers(std::string_view identifiers_json) {
  std::vector<std::string> out;
  for (const auto& v : identifier_values(identifiers_json)) out.push_back(normalize_identifier(v));
  return out;
}

nlohmann::json partition_json(const partition& p) {
  return {{"kind", name(p.kind)}, {"month", p.month.to_string()}, {"class", p.cls}};
}

}  // namespace

retention::retention(const daemon_config& config, std::string bootstrap, const clock& time, store::store& store,
                     metrics::retention_probe& probe, std::string subject_key, vault& keys)
    : config_(config),
      bootstrap_(std::move(bootstrap)),
      clock_(time),
      store_(store),
      probe_(probe),
      subject_key_(std::move(subject_key)),
      vault_(keys),
      audit_(store, config.storage.path + "/audit.jsonl"),
      interval_us_(config.sweep.interval.count()),
      jitter_us_(config.sweep.jitter.count()) {
  if (auto v = store_.entry("op_counter")) op_counter_ = std::stoull(*v);
  if (auto v = store_.entry("hold_counter")) hold_counter_ = std::stoull(*v);
  load_holds();
}

retention::~retention() { stop(); }

void retention::load_holds() {
  auto list = std::make_shared<std::vector<hold>>();
  for (const auto& [key, value] : store_.entries(hold_prefix)) {
    if (auto h = hold_from_json(nlohmann::json::parse(value, nullptr, false))) list->push_back(std::move(*h));
  }
  std::lock_guard lock(holds_mutex_);
  holds_ = std::move(list);
}

std::shared_ptr<const std::vector<hold>> retention::holds() const {
  std::lock_guard lock(holds_mutex_);
  return holds_;
}

std::uint64_t retention::next_op(store::change& c) {
  ++op_counter_;
  c.put_entry("op_counter", std::to_string(op_counter_));
  return op_counter_;
}

std::vector<std::string> retention::subject_hashes_of(const std::vector<std::string>& normalized) const {
  std::vector<std::string> out;
  for (const auto& n : normalized) out.push_back(crypto::hmac_sha256(subject_key_, n));
  return out;
}

void retention::journal(store::change& c, std::uint64_t op, const ranges_t& ranges, nlohmann::json audit_entry,
                        nlohmann::json event) {
  nlohmann::json j{{"ranges", ranges_json(ranges)}, {"audit", std::move(audit_entry)}, {"event", std::move(event)}};
  c.put_entry(std::string(journal_prefix) + be64(op), j.dump());
}

void retention::start() {
  {
    std::lock_guard lock(ops_);
    // Keys a stop left undestroyed (or a restored key store brought back)
    // go first; then the actions a stop interrupted are finished.
    const auto keys = destroy_unused_keys("recovery", 0);
    if (!keys.empty()) spdlog::warn("destroyed {} data key(s) a stop left behind", keys.size());
    const auto done = finish_journals();
    if (!done.empty()) spdlog::warn("finished {} retention action(s) interrupted by a stop", done.value("actions", 0));
  }
  audit_.drain();
  producer_ = std::make_unique<kafka::producer>(
      kafka::client_options{bootstrap_, config_.kafka.client_id, config_.kafka.properties},
      [this](std::uint64_t ticket, bool ok, std::string_view error) {
        // On the publisher thread (it is the one that flushes).
        if (ok) {
          acked_.insert(ticket);
        } else {
          spdlog::warn("deletion event {} not delivered yet: {}", ticket, error);
        }
      });
  scheduler_ = std::thread([this] { schedule_loop(); });
  publisher_ = std::thread([this] { publish_loop(); });
}

void retention::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  if (publisher_.joinable()) publisher_.join();
  producer_.reset();
}

void retention::set_schedule(microseconds interval, microseconds jitter) {
  {
    std::lock_guard lock(wake_mutex_);
    interval_us_ = interval.count();
    jitter_us_ = jitter.count();
    reschedule_ = true;
  }
  wake_.notify_all();
}

void retention::schedule_loop() {
  std::mt19937_64 rng(std::random_device{}());
  const auto delay = [&] {
    const auto j = jitter_us_.load();
    return microseconds(interval_us_.load() + (j > 0 ? std::uniform_int_distribution<std::int64_t>(0, j)(rng) : 0));
  };
  std::string_view trigger = "startup";
  auto last = std::chrono::steady_clock::now();
  auto next = last;  // the first sweep runs at once
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_until(lock, next, [this] { return stopping_ || reschedule_; });
      if (stopping_) return;
      if (reschedule_) {
        reschedule_ = false;
        next = last + delay();
        continue;
      }
    }
    try {
      sweep(trigger, 0);
    } catch (const std::exception& e) {
      spdlog::error("{} sweep failed: {}", trigger, e.what());
    }
    trigger = "schedule";
    last = std::chrono::steady_clock::now();
    next = last + delay();
  }
}

void retention::publish_loop() {
  auto backoff = std::chrono::milliseconds(200);
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, backoff, [this] { return stopping_ || publish_now_; });
      if (stopping_) return;
      publish_now_ = false;
    }
    try {
      const auto pending = store_.entries(event_prefix);
      if (pending.empty()) {
        backoff = std::chrono::milliseconds(1000);
        continue;
      }
      acked_.clear();
      for (const auto& [key, value] : pending) {
        const auto op = read_be64(std::string_view(key).substr(event_prefix.size()));
        std::string error;
        if (!producer_->produce(config_.kafka.topic_deletion_events, std::to_string(op), value, {}, op, &error)) {
          spdlog::warn("deletion event {} not queued: {}", op, error);
        }
      }
      producer_->flush(std::chrono::seconds(10));
      store::change c(store_);
      for (const auto& [key, value] : pending) {
        const auto op = read_be64(std::string_view(key).substr(event_prefix.size()));
        if (acked_.count(op) != 0) c.remove_entry(key);
      }
      if (!c.empty()) store_.apply(c);
      backoff = acked_.size() == pending.size() ? std::chrono::milliseconds(200) : std::chrono::milliseconds(2000);
    } catch (const std::exception& e) {
      spdlog::warn("deletion events: {}", e.what());
      backoff = std::chrono::milliseconds(2000);
    }
  }
}

nlohmann::json retention::sweep(std::string_view trigger, std::uint32_t uid) {
  std::lock_guard lock(ops_);
  const auto started = std::chrono::steady_clock::now();
  const auto now = clock_.now();
  nlohmann::json report{{"trigger", trigger},
                        {"as_of", format_rfc3339(now)},
                        {"actions", nlohmann::json::array()},
                        {"deferred", nlohmann::json::array()}};
  bool ok = false;
  try {
    const auto h = holds();
    for (const auto& a : plan_sweep(config_.retention, store_.counts(), store_.states(), *h, now)) {
      if (a.deferred()) {
        report["deferred"].push_back(to_json(a));
      } else {
        report["actions"].push_back(remove_partition(a, trigger, uid));
      }
    }
    report["released"] = release_held(uid);
    report["deferred_erasures"] = erase_deferred(uid, "deferred");
    report["keys_destroyed"] = destroy_unused_keys(trigger, uid);
    report["purge"] = finish_journals();
    ok = true;
  } catch (...) {
    probe_.sweep(trigger, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), false,
                 to_seconds(now));
    throw;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  probe_.sweep(trigger, seconds, ok, to_seconds(now));
  report["duration_seconds"] = seconds;
  audit_.drain();
  wake_publisher();
  if (!report["actions"].empty() || !report["released"].empty()) {
    spdlog::info("{} sweep: {} action(s), {} deferred by holds, {} held release(s) in {:.3f}s", trigger,
                 report["actions"].size(), report["deferred"].size(), report["released"].size(), seconds);
  }
  return report;
}

nlohmann::json retention::forecast(instant as_of) const {
  const auto h = holds();
  nlohmann::json out{{"as_of", format_rfc3339(as_of)},
                     {"actions", nlohmann::json::array()},
                     {"deferred", nlohmann::json::array()}};
  std::map<std::string, std::int64_t> totals;
  for (const auto& a : plan_sweep(config_.retention, store_.counts(), store_.states(), *h, as_of)) {
    out[a.deferred() ? "deferred" : "actions"].push_back(to_json(a));
    if (!a.deferred()) totals[std::string(name(a.action))] += a.records;
  }
  out["records"] = totals;
  return out;
}

nlohmann::json retention::remove_partition(const planned_action& a, std::string_view trigger, std::uint32_t uid) {
  const auto& p = a.where;
  const bool drop = a.action != retention_action::strip_identifiers;
  const auto range = partition_range(p);
  store::change c(store_);
  std::int64_t held = 0;
  if (!a.partial_holds.empty()) {
    // Records a hold names go to the held family before the range goes.
    std::vector<hold> partial;
    for (const auto& h : *holds()) {
      if (std::find(a.partial_holds.begin(), a.partial_holds.end(), h.id) != a.partial_holds.end()) {
        partial.push_back(h);
      }
    }
    // Matching a subject selector needs every record's identifiers opened;
    // customer selectors only the metadata.
    const bool by_subject =
        std::any_of(partial.begin(), partial.end(), [](const hold& h) { return h.subject.has_value(); });
    std::string resealed;
    std::vector<std::string> held_hashes;
    store_.scan(main_family(p.kind), range, [&](std::string_view key, std::string_view value) {
      // The record's identifiers, opened at most once, when needed.
      bool opened = false;
      std::optional<std::string> plain;
      std::vector<std::string> normalized;
      const auto open = [&] {
        if (std::exchange(opened, true) || p.kind != record_kind::cdr) return;
        const auto sealed = store_.value(store::family::identifiers, key);
        if (!sealed) return;
        auto o = open_identifiers(store::family::identifiers, p, key, *sealed);
        if (o.status == vault::open_status::ok) {
          plain = std::move(o.plaintext);
          normalized = normalized_identifiers(*plain);
        } else if (o.status == vault::open_status::key_destroyed) {
          spdlog::error("a legal hold may name record {} of {}, but its partition's key is destroyed",
                        record_id_of(key), p.to_string());
        }
      };
      if (by_subject) open();
      if (!any_covers(partial, p, customer_of(value), subject_hashes_of(normalized))) return true;
      if (drop) c.put(store::family::held, held_key(held_tag::record, key), value);
      open();
      if (plain) {
        // Re-sealed under the held key, which lives as long as held copies
        // of this partition do (the partition key is destroyed now).
        const auto id = record_id_of(key);
        const auto hk = held_key(held_tag::identifiers, key);
        vault_.seal_indexed(key_scope::held, p, hk, *plain, normalized, resealed, held_hashes);
        c.put(store::family::held, hk, resealed);
        for (const auto& h : held_hashes) {
          c.put(store::family::held, held_key(held_tag::subject, subject_key(p, h, id)), "");
        }
      }
      ++held;
      return true;
    });
  }
  const auto ranges = removal_ranges(a.action, p);
  for (const auto& [f, r] : ranges) c.remove_range(f, r);
  // The planner never plans a dropped partition: after this it is stripped,
  // and dropped too when the action drops.
  c.set_state(p, partition_state{true, drop});
  const auto op = next_op(c);
  const auto now = clock_.now();
  auto entry = partition_json(p);
  entry["action"] = name(a.action);
  entry["records"] = a.records - held;
  entry["held"] = held;
  entry["deadline"] = format_rfc3339(a.deadline.start());
  entry["trigger"] = trigger;
  entry["requested_by"] = uid;
  auto event = partition_json(p);
  event["event_id"] = op;
  event["action"] = name(a.action);
  event["records"] = a.records - held;
  event["time"] = format_rfc3339(now);
  journal(c, op, ranges, entry, event);
  store_.apply(c);
  if (drop) {
    probe_.dropped(p.kind, a.records - held);
  } else {
    probe_.stripped(p.kind, a.records - held);
  }
  return entry;
}

struct retention::held_record {
  bool record = false;
  std::optional<std::string> identifiers;  // sealed under the held key
  std::vector<std::string> hashes;         // of its held subject entries
  std::string metadata;
};

nlohmann::json retention::release_held(std::uint32_t uid) {
  const auto now = clock_.now();
  const auto h = holds();
  std::map<std::string, held_record> items;
  store_.scan(store::family::held, key_range{}, [&](std::string_view key, std::string_view value) {
    if (key.empty()) return true;
    const auto inner = key.substr(1);
    switch (static_cast<held_tag>(key[0])) {
      case held_tag::record: {
        auto& it = items[std::string(inner)];
        it.record = true;
        it.metadata = value;
        break;
      }
      case held_tag::identifiers: items[std::string(inner)].identifiers = std::string(value); break;
      case held_tag::subject:
        if (inner.size() > partition_prefix_size + subject_hash_size) {
          std::string rk(inner.substr(0, partition_prefix_size));
          rk.append(inner.substr(partition_prefix_size + subject_hash_size));
          items[rk].hashes.emplace_back(inner.substr(partition_prefix_size, subject_hash_size));
        }
        break;
    }
    return true;
  });
  store::change c(store_);
  ranges_t ranges;
  std::map<std::pair<partition, retention_action>, std::int64_t> released;
  const auto remove = [&](std::string key) {
    c.remove(store::family::held, key);
    ranges.push_back({store::family::held, point_range(key)});
  };
  for (const auto& [rk, it] : items) {
    const auto p = decode_partition(rk);
    if (!p) continue;
    const auto id = record_id_of(rk);
    const auto metadata =
        it.record ? it.metadata : store_.value(main_family(p->kind), rk).value_or(std::string());
    std::vector<std::string> subjects;
    if (it.identifiers) {
      const auto o = open_identifiers(store::family::held, *p, held_key(held_tag::identifiers, rk), *it.identifiers);
      if (o.status == vault::open_status::ok) subjects = subject_hashes_of(normalized_identifiers(o.plaintext));
    }
    if (any_covers(*h, *p, customer_of(metadata), subjects)) continue;
    const auto due = [&](retention_action a) { return config_.retention.deadline(a, p->month, p->cls).start() <= now; };
    const bool drop_due = due(p->kind == record_kind::cdr ? retention_action::drop_metadata : retention_action::drop_usage);
    const bool strip_due = p->kind == record_kind::cdr && (drop_due || due(retention_action::strip_identifiers));
    if (strip_due && (it.identifiers || !it.hashes.empty())) {
      if (it.identifiers) remove(held_key(held_tag::identifiers, rk));
      for (const auto& hash : it.hashes) remove(held_key(held_tag::subject, subject_key(*p, hash, id)));
      if (!(it.record && drop_due)) ++released[{*p, retention_action::strip_identifiers}];
    }
    if (it.record && drop_due) {
      remove(held_key(held_tag::record, rk));
      ++released[{*p, p->kind == record_kind::cdr ? retention_action::drop_metadata : retention_action::drop_usage}];
    }
  }
  auto out = nlohmann::json::array();
  if (released.empty()) return out;
  bool first = true;
  for (const auto& [key, n] : released) {
    const auto& [p, action] = key;
    const auto op = next_op(c);
    auto entry = partition_json(p);
    entry["action"] = name(action);
    entry["records"] = n;
    entry["trigger"] = "hold_release";
    entry["requested_by"] = uid;
    auto event = partition_json(p);
    event["event_id"] = op;
    event["action"] = name(action);
    event["records"] = n;
    event["time"] = format_rfc3339(now);
    journal(c, op, first ? ranges : ranges_t{}, entry, event);
    first = false;
    out.push_back(entry);
    if (action == retention_action::strip_identifiers) {
      probe_.stripped(p.kind, n);
    } else {
      probe_.dropped(p.kind, n);
    }
  }
  store_.apply(c);
  return out;
}

nlohmann::json retention::erase(const std::string& subject, const std::vector<std::string>& record_keys,
                                std::uint32_t uid, std::string_view trigger) {
  const auto now = clock_.now();
  const auto h = holds();
  store::change c(store_);
  ranges_t ranges;
  std::set<std::string> done;
  std::set<month> months;
  auto deferred = nlohmann::json::array();
  auto deferred_keys = nlohmann::json::array();
  auto erased_keys = nlohmann::json::array();
  std::int64_t erased = 0;
  const auto remove = [&](store::family f, std::string key) {
    c.remove(f, key);
    erased_keys.push_back({store::name(f), to_hex(key)});
    ranges.push_back({f, point_range(key)});
  };
  for (const auto& key : record_keys) {
    const auto p = decode_partition(key);
    if (!p || !done.insert(key).second) continue;
    const auto id = record_id_of(key);
    // Its identifiers sit in the partition (sealed under its key) or in
    // the held family (under the held key); both are opened to find every
    // identifier's index entry and to match legal holds.
    struct source {
      store::family family;
      key_scope scope;
      std::string key;
      std::vector<std::string> normalized;  // its identifiers; none if it does not open
    };
    std::vector<source> sources;
    for (const auto& [f, scope, k] : {std::tuple{store::family::identifiers, key_scope::partition, key},
                                      std::tuple{store::family::held, key_scope::held,
                                                 held_key(held_tag::identifiers, key)}}) {
      const auto sealed = store_.value(f, k);
      if (!sealed) continue;
      auto& src = sources.emplace_back(source{f, scope, k, {}});
      const auto o = open_identifiers(f, *p, k, *sealed);
      if (o.status == vault::open_status::ok) src.normalized = normalized_identifiers(o.plaintext);
    }
    std::vector<std::string> hashes{subject};
    for (const auto& src : sources) {
      for (auto& hh : subject_hashes_of(src.normalized)) hashes.push_back(std::move(hh));
    }
    auto meta = store_.value(store::family::metadata, key);
    if (!meta) meta = store_.value(store::family::held, held_key(held_tag::record, key));
    if (any_covers(*h, *p, customer_of(meta.value_or("{}")), hashes)) {
      deferred.push_back({{"month", p->month.to_string()}, {"class", p->cls}, {"id", id}});
      deferred_keys.push_back(to_hex(key));
      continue;
    }
    for (const auto& src : sources) {
      remove(src.family, src.key);
      for (const auto& n : src.normalized) {
        const auto hash = vault_.index_hash(src.scope, *p, n);
        if (!hash) continue;
        const auto sk = subject_key(*p, *hash, id);
        remove(src.scope == key_scope::held ? store::family::held : store::family::subject_index,
               src.scope == key_scope::held ? held_key(held_tag::subject, sk) : sk);
      }
    }
    if (sources.empty()) continue;
    months.insert(p->month);
    ++erased;
  }
  const auto hex = to_hex(subject);
  const auto deferred_key = std::string(deferred_prefix) + hex;
  if (!deferred.empty()) {
    c.put_entry(deferred_key, nlohmann::json{{"since", format_rfc3339(now)}, {"records", deferred_keys}}.dump());
  } else if (store_.entry(deferred_key)) {
    c.remove_entry(deferred_key);
  }
  nlohmann::json result{{"subject", hex}, {"erased", erased}, {"deferred", deferred}};
  if (erased > 0 || trigger == "admin") {
    // What verify checks for this subject: every key removed, ever.
    const auto erased_entry = std::string(erased_prefix) + hex;
    auto all = nlohmann::json::parse(store_.entry(erased_entry).value_or("[]"), nullptr, false);
    if (!all.is_array()) all = nlohmann::json::array();
    for (auto& k : erased_keys) all.push_back(std::move(k));
    if (erased > 0) c.put_entry(erased_entry, all.dump());
    const auto op = next_op(c);
    auto month_list = nlohmann::json::array();
    for (const auto& m : months) month_list.push_back(m.to_string());
    nlohmann::json entry{{"action", "erase_subject"}, {"subject", hex},           {"records", erased},
                         {"deferred", deferred.size()}, {"months", month_list}, {"trigger", trigger},
                         {"requested_by", uid}};
    nlohmann::json event{{"event_id", op},     {"action", "erase_subject"}, {"subject", hex},
                         {"records", erased}, {"months", month_list},     {"time", format_rfc3339(now)}};
    journal(c, op, ranges, entry, erased > 0 ? event : nlohmann::json(nullptr));
  }
  if (!c.empty()) store_.apply(c);
  if (erased > 0) probe_.erased(record_kind::cdr, erased);
  return result;
}

nlohmann::json retention::erase_deferred(std::uint32_t uid, std::string_view trigger) {
  auto erasures = nlohmann::json::array();
  for (const auto& [key, value] : store_.entries(deferred_prefix)) {
    const auto subject = from_hex(std::string_view(key).substr(deferred_prefix.size()));
    const auto j = nlohmann::json::parse(value, nullptr, false);
    if (!subject || !j.is_object() || !j.contains("records") || !j["records"].is_array()) continue;
    std::vector<std::string> keys;
    for (const auto& k : j["records"]) {
      if (auto bytes = k.is_string() ? from_hex(k.get<std::string>()) : std::nullopt) keys.push_back(std::move(*bytes));
    }
    erasures.push_back(erase(*subject, keys, uid, trigger));
  }
  return erasures;
}

vault::opened retention::open_identifiers(store::family f, const partition& p, std::string_view key,
                                          std::string_view sealed) const {
  auto o = vault_.open(f == store::family::held ? key_scope::held : key_scope::partition, p, key, sealed);
  if (o.status == vault::open_status::unreadable) {
    spdlog::error("the identifiers of record {} of {} do not decrypt: tampered or corrupt", record_id_of(
                      f == store::family::held ? key.substr(1) : key), p.to_string());
  }
  return o;
}

retention::identifiers_view retention::identifiers_of(const store::stored_record& r) const {
  if (!r.identifiers) return {std::nullopt, "none"};
  const auto key = record_key(r.where, r.id);
  auto o = r.identifiers_held
               ? open_identifiers(store::family::held, r.where, held_key(held_tag::identifiers, key), *r.identifiers)
               : open_identifiers(store::family::identifiers, r.where, key, *r.identifiers);
  switch (o.status) {
    case vault::open_status::ok: return {std::move(o.plaintext), "present"};
    case vault::open_status::key_destroyed: return {std::nullopt, "key_destroyed"};
    case vault::open_status::unreadable: return {std::nullopt, "unreadable"};
  }
  return {std::nullopt, "unreadable"};
}

std::vector<std::string> retention::subject_records(std::string_view normalized) const {
  std::vector<std::string> out;
  for (const auto& [scope, p] : vault_.live()) {
    if (p.kind != record_kind::cdr) continue;
    const auto hash = vault_.index_hash(scope, p, normalized);
    if (!hash) continue;
    for (const auto& id : store_.subject_ids(p, *hash, scope == key_scope::held)) out.push_back(record_key(p, id));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

nlohmann::json retention::destroy_unused_keys(std::string_view trigger, std::uint32_t uid) {
  // Exclusive: no ingest batch is sealing under these keys meanwhile, and
  // the store shows every batch sealed before.
  const auto guard = vault_.exclusive();
  const auto states = store_.states();
  std::vector<std::pair<key_scope, partition>> unused;
  for (const auto& [scope, p] : vault_.live()) {
    if (scope == key_scope::partition) {
      const auto st = states.find(p);
      if (st != states.end() && (st->second.stripped || st->second.dropped)) unused.emplace_back(scope, p);
    } else {
      bool any = false;
      store_.scan(store::family::held, prefix_range(held_key(held_tag::identifiers, partition_prefix(p))),
                  [&](std::string_view, std::string_view) { return !(any = true); });
      if (!any) unused.emplace_back(scope, p);
    }
  }
  auto names = nlohmann::json::array();
  if (unused.empty()) return names;
  failpoint("before_key_destruction");
  for (const auto& [scope, p] : unused) names.push_back(key_name(scope, p));
  // Journalled first: the audit entry follows with the purge, and a crash
  // after this commit still leaves the keys to the next start's pass.
  store::change c(store_);
  const auto op = next_op(c);
  journal(c, op, {}, {{"action", "destroy_keys"}, {"keys", names}, {"trigger", trigger}, {"requested_by", uid}},
          nullptr);
  store_.apply(c);
  const auto destroyed = vault_.destroy(unused);
  spdlog::info("destroyed {} data key(s) ({}): {}", destroyed.size(), trigger, names.dump());
  return names;
}

void retention::wake_publisher() {
  {
    std::lock_guard lock(wake_mutex_);
    publish_now_ = true;
  }
  wake_.notify_all();
}

nlohmann::json retention::finish_journals() {
  const auto journals = store_.entries(journal_prefix);
  if (journals.empty()) return nlohmann::json::object();
  ranges_t ranges;
  std::vector<nlohmann::json> parsed;
  for (const auto& [key, value] : journals) {
    parsed.push_back(nlohmann::json::parse(value, nullptr, false));
    add_ranges(parsed.back().value("ranges", nlohmann::json::array()), ranges);
  }
  const auto started = std::chrono::steady_clock::now();
  const auto residues = store_.purge(ranges);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!residues.empty()) {
    spdlog::error("{} removed key(s) are still on disk after the purge (first in {} of {})", residues.size(),
                  residues.front().file, store::name(residues.front().where));
  }
  const auto now = clock_.now();
  store::change c(store_);
  for (std::size_t i = 0; i < journals.size(); ++i) {
    const auto& key = journals[i].first;
    const auto op = read_be64(std::string_view(key).substr(journal_prefix.size()));
    auto& j = parsed[i];
    if (j.is_object()) {
      auto entry = j.value("audit", nlohmann::json::object());
      entry["purge_seconds"] = seconds;
      entry["residues"] = residues.size();
      audit_.stage(c, op, std::move(entry), now);
      if (j.contains("event") && j["event"].is_object()) {
        c.put_entry(std::string(event_prefix) + be64(op), j["event"].dump());
      }
    }
    c.remove_entry(key);
  }
  store_.apply(c);
  return {{"actions", journals.size()}, {"ranges", ranges.size()}, {"seconds", seconds}, {"residues", residues.size()}};
}

std::variant<nlohmann::json, std::string> retention::hold_add(const nlohmann::json& args, std::uint32_t uid) {
  auto parsed = hold_from_request(args, [this](std::string_view identifier) {
    return crypto::hmac_sha256(subject_key_, normalize_identifier(identifier));
  });
  if (auto* e = std::get_if<std::string>(&parsed)) return *e;
  auto h = std::get<hold>(std::move(parsed));
  std::lock_guard lock(ops_);
  h.id = ++hold_counter_;
  h.created_at = clock_.now();
  h.created_by = uid;
  const auto j = to_json(h);
  store::change c(store_);
  c.put_entry(std::string(hold_prefix) + be64(h.id), j.dump());
  c.put_entry("hold_counter", std::to_string(hold_counter_));
  audit_.stage(c, next_op(c), {{"action", "hold_add"}, {"hold", j}, {"requested_by", uid}}, h.created_at);
  store_.apply(c);
  load_holds();
  audit_.drain();
  spdlog::info("legal hold {} added by uid {} (reference {})", h.id, uid, h.reference);
  return j;
}

nlohmann::json retention::hold_list() const {
  auto out = nlohmann::json::array();
  for (const auto& h : *holds()) out.push_back(to_json(h));
  return {{"holds", out}};
}

std::optional<nlohmann::json> retention::hold_release(std::uint64_t id, std::uint32_t uid) {
  std::lock_guard lock(ops_);
  const auto key = std::string(hold_prefix) + be64(id);
  const auto v = store_.entry(key);
  if (!v) return std::nullopt;
  const auto j = nlohmann::json::parse(*v, nullptr, false);
  const auto now = clock_.now();
  store::change c(store_);
  c.remove_entry(key);
  audit_.stage(c, next_op(c), {{"action", "hold_release"}, {"hold", j}, {"requested_by", uid}}, now);
  store_.apply(c);
  load_holds();
  // Erasures the hold deferred happen now; held records go at the next
  // sweep (their deadline has passed).
  auto erasures = erase_deferred(uid, "hold_release");
  destroy_unused_keys("hold_release", uid);
  finish_journals();
  audit_.drain();
  spdlog::info("legal hold {} released by uid {}", id, uid);
  return nlohmann::json{{"released", j}, {"erasures", erasures}};
}

nlohmann::json retention::subject_erase(std::string_view identifier, std::uint32_t uid) {
  const auto normalized = normalize_identifier(identifier);
  const auto hash = crypto::hmac_sha256(subject_key_, normalized);
  std::lock_guard lock(ops_);
  const auto started = std::chrono::steady_clock::now();
  auto result = erase(hash, subject_records(normalized), uid, "admin");
  destroy_unused_keys("erasure", uid);
  result["purge"] = finish_journals();
  result["duration_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  audit_.drain();
  wake_publisher();
  spdlog::info("subject erasure by uid {}: subject {} ({} records erased, {} deferred by holds)", uid,
               result["subject"].get<std::string>().substr(0, 16), result["erased"].get<std::int64_t>(),
               result["deferred"].size());
  return result;
}

void retention::subject_exported(std::string_view hash, std::size_t records, std::uint32_t uid) {
  std::lock_guard lock(ops_);
  store::change c(store_);
  audit_.stage(c, next_op(c),
               {{"action", "subject_export"}, {"subject", to_hex(hash)}, {"records", records}, {"requested_by", uid}},
               clock_.now());
  store_.apply(c);
  audit_.drain();
}

nlohmann::json retention::verify() const {
  std::lock_guard lock(ops_);
  ranges_t ranges;
  std::vector<std::size_t> owner;  // index into checks, per range
  auto checks = nlohmann::json::array();
  // A stripped partition's key must be gone too.
  std::set<partition> live;
  for (const auto& [scope, p] : vault_.live()) {
    if (scope == key_scope::partition) live.insert(p);
  }
  std::size_t live_keys = 0;
  for (const auto& [p, st] : store_.states()) {
    if (!st.stripped && !st.dropped) continue;
    const auto action = p.kind == record_kind::usage ? retention_action::drop_usage
                        : st.dropped                 ? retention_action::drop_metadata
                                                     : retention_action::strip_identifiers;
    auto item = partition_json(p);
    item["state"] = st.dropped ? "dropped" : "stripped";
    if (p.kind == record_kind::cdr) {
      const bool key_live = live.count(p) != 0;
      live_keys += key_live ? 1 : 0;
      // "none": every record arrived after the strip deadline, unsealed.
      item["key"] = key_live ? "live" : vault_.destroyed(key_scope::partition, p) ? "destroyed" : "none";
    }
    for (auto& r : removal_ranges(action, p)) {
      ranges.push_back(std::move(r));
      owner.push_back(checks.size());
    }
    checks.push_back(std::move(item));
  }
  for (const auto& [key, value] : store_.entries(erased_prefix)) {
    const auto keys = nlohmann::json::parse(value, nullptr, false);
    nlohmann::json item{{"subject", std::string(key.substr(erased_prefix.size()))}, {"keys", keys.size()}};
    for (const auto& k : keys) {
      if (!k.is_array() || k.size() != 2) continue;
      const auto f = store::family_from_name(k[0].get<std::string>());
      const auto bytes = from_hex(k[1].get<std::string>());
      if (!f || !bytes) continue;
      ranges.push_back({*f, point_range(*bytes)});
      owner.push_back(checks.size());
    }
    checks.push_back(std::move(item));
  }
  const auto disk = store_.check_on_disk(ranges);
  std::vector<std::size_t> found(checks.size(), 0);
  for (const auto& res : disk.residues) {
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      const auto& [f, r] = ranges[i];
      if (f == res.where && res.key >= r.begin && res.key < r.end) {
        ++found[owner[i]];
        break;
      }
    }
  }
  auto partitions = nlohmann::json::array();
  auto subjects = nlohmann::json::array();
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto& item = checks[i];
    item["keys_on_disk"] = found[i];
    item["ok"] = found[i] == 0 && item.value("key", "none") != "live";
    (item.contains("subject") ? subjects : partitions).push_back(std::move(item));
  }
  auto samples = nlohmann::json::array();
  for (std::size_t i = 0; i < disk.residues.size() && i < 20; ++i) {
    samples.push_back({{"family", store::name(disk.residues[i].where)},
                       {"file", disk.residues[i].file},
                       {"key", to_hex(disk.residues[i].key)}});
  }
  return {{"ok", disk.residues.empty() && live_keys == 0},
          {"keystore",
           {{"path", vault_.keys().path()},
            {"keys_live", vault_.keys().live()},
            {"keys_destroyed", vault_.keys().destroyed_total()},
            {"stripped_partitions_with_live_keys", live_keys}}},
          {"sst_files_read", disk.sst_files_read},
          {"wal_files", disk.wal_files},
          {"partitions", partitions},
          {"subjects", subjects},
          {"residues", samples}};
}

nlohmann::json retention::checkpoint(const std::string& dir, std::uint32_t uid) {
  std::lock_guard lock(ops_);  // no retention change between the store and the trail
  audit_.drain();
  const auto started = std::chrono::steady_clock::now();
  store_.checkpoint(dir);
  std::error_code ec;
  std::filesystem::copy_file(audit_.path(), dir + "/audit.jsonl", ec);
  if (ec && std::filesystem::exists(audit_.path())) {
    throw std::runtime_error(fmt::format("cannot copy the audit trail into {}: {}", dir, ec.message()));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("checkpoint of the store written to {} by uid {} in {:.3f}s", dir, uid, seconds);
  return {{"path", dir},
          {"seconds", seconds},
          {"keystore", "not included: identifiers in the copy open only with the live key store (" +
                           vault_.keys().path() + ")"}};
}

retention::gauges retention::figures() const {
  gauges g;
  const auto h = holds();
  const auto overdue =
      overdue_of(plan_sweep(config_.retention, store_.counts(), store_.states(), *h, clock_.now()));
  g.overdue_partitions = overdue.partitions;
  g.overdue_records = overdue.records;
  g.holds_active = h->size();
  std::set<std::string, std::less<>> held;
  store_.scan(store::family::held, key_range{}, [&](std::string_view key, std::string_view) {
    if (!key.empty() && (key[0] == static_cast<char>(held_tag::record) ||
                         key[0] == static_cast<char>(held_tag::identifiers))) {
      held.emplace(key.substr(1));
    }
    return true;
  });
  g.records_held = static_cast<std::int64_t>(held.size());
  g.events_pending = store_.entries(event_prefix).size();
  return g;
}

}  // namespace cdr::service
