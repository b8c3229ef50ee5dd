#include "executor.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

namespace cdr::service {

std::int64_t sweep_executor::copy_held(const partition& p, const std::vector<hold>& partial, bool drop,
                                       store::change& c) {
  // Matching a subject selector needs every record's identifiers opened;
  // customer selectors only the metadata.
  const bool by_subject =
      std::any_of(partial.begin(), partial.end(), [](const hold& h) { return h.subject.has_value(); });
  std::int64_t held = 0;
  std::string resealed;
  std::vector<std::string> held_hashes;
  ctx_.store.scan(record_family(p.kind), partition_range(p), [&](std::string_view key, std::string_view value) {
    // The record's identifiers, opened at most once, when needed.
    bool opened = false;
    std::optional<std::string> plain;
    std::vector<std::string> normalized;
    const auto open = [&] {
      if (std::exchange(opened, true) || p.kind != record_kind::cdr) return;
      const auto sealed = ctx_.store.value(family::identifiers, key);
      if (!sealed) return;
      auto o = ctx_.open_identifiers(family::identifiers, p, key, *sealed);
      if (o.status == vault::open_status::ok) {
        plain = std::move(o.plaintext);
        normalized = normalized_identifiers(*plain);
      } else if (o.status == vault::open_status::key_destroyed) {
        spdlog::error("a legal hold may name record {} of {}, but its partition's key is destroyed", record_id_of(key),
                      p.to_string());
      }
    };
    if (by_subject) open();
    if (!any_covers(partial, p, customer_of(value), ctx_.subject_hashes(normalized))) return true;
    if (drop) c.put(family::held, held_key(held_tag::record, key), value);
    open();
    if (plain) {
      // Re-sealed under the held key, which lives as long as held copies of
      // this partition do (the partition key is destroyed now).
      const auto id = record_id_of(key);
      const auto hk = held_key(held_tag::identifiers, key);
      ctx_.keys.seal_indexed(key_scope::held, p, hk, *plain, normalized, resealed, held_hashes);
      c.put(family::held, hk, resealed);
      for (const auto& h : held_hashes) c.put(family::held, held_key(held_tag::subject, subject_key(p, h, id)), "");
    }
    ++held;
    return true;
  });
  return held;
}

nlohmann::json sweep_executor::remove_partition(const planned_action& a, std::string_view trigger, std::uint32_t uid) {
  const auto& p = a.where;
  const bool drop = a.action != retention_action::strip_identifiers;
  store::change c(ctx_.store);
  std::int64_t held = 0;
  if (!a.partial_holds.empty()) {
    // Records a hold names go to the held family before the range goes.
    std::vector<hold> partial;
    for (const auto& h : *holds_.snapshot()) {
      if (std::find(a.partial_holds.begin(), a.partial_holds.end(), h.id) != a.partial_holds.end()) {
        partial.push_back(h);
      }
    }
    held = copy_held(p, partial, drop, c);
  }
  auto removals = removals_of(a.action, p);
  for (const auto& r : removals) c.remove_range(r.family, r.range);
  // The planner never plans a dropped partition: after this it is stripped,
  // and dropped too when the action drops.
  c.set_state(p, partition_state{true, drop});
  auto entry = partition_json(p);
  entry["action"] = name(a.action);
  entry["records"] = a.records - held;
  entry["held"] = held;
  entry["deadline"] = format_rfc3339(a.deadline.start());
  entry["trigger"] = trigger;
  entry["requested_by"] = uid;
  deletion_event event;
  event.action = name(a.action);
  event.where = p;
  event.records = a.records - held;
  ctx_.journal(c, std::move(removals), entry, std::move(event));
  ctx_.store.apply(c);
  if (drop) {
    ctx_.probe.dropped(p.kind, a.records - held);
  } else {
    ctx_.probe.stripped(p.kind, a.records - held);
  }
  return entry;
}

std::map<std::string, sweep_executor::held_record> sweep_executor::held_records() const {
  std::map<std::string, held_record> items;
  ctx_.store.scan(family::held, key_range{}, [&](std::string_view key, std::string_view value) {
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
  return items;
}

nlohmann::json sweep_executor::release_held(std::uint32_t uid) {
  const auto now = ctx_.time.now();
  const auto h = holds_.snapshot();
  store::change c(ctx_.store);
  std::vector<removal> removals;
  std::map<std::pair<partition, retention_action>, std::int64_t> released;
  const auto remove = [&](std::string key) {
    c.remove(family::held, key);
    removals.push_back({family::held, point_range(key)});
  };
  for (const auto& [rk, it] : held_records()) {
    const auto p = decode_partition(rk);
    if (!p) continue;
    const auto id = record_id_of(rk);
    const auto metadata = it.record ? it.metadata : ctx_.store.value(record_family(p->kind), rk).value_or("");
    std::vector<std::string> subjects;
    if (it.identifiers) {
      const auto o = ctx_.open_identifiers(family::held, *p, held_key(held_tag::identifiers, rk), *it.identifiers);
      if (o.status == vault::open_status::ok) subjects = ctx_.subject_hashes(normalized_identifiers(o.plaintext));
    }
    if (any_covers(*h, *p, customer_of(metadata), subjects)) continue;
    // Nothing names it any more: what its deadlines say has gone goes now.
    const auto passed = deadlines_passed(ctx_.config.retention, *p, now);
    if (passed.strip && (it.identifiers || !it.hashes.empty())) {
      if (it.identifiers) remove(held_key(held_tag::identifiers, rk));
      for (const auto& hash : it.hashes) remove(held_key(held_tag::subject, subject_key(*p, hash, id)));
      if (!(it.record && passed.drop)) ++released[{*p, retention_action::strip_identifiers}];
    }
    if (it.record && passed.drop) {
      remove(held_key(held_tag::record, rk));
      ++released[{*p, drop_action(p->kind)}];
    }
  }
  auto out = nlohmann::json::array();
  for (const auto& [key, n] : released) {
    const auto& [p, action] = key;
    auto entry = partition_json(p);
    entry["action"] = name(action);
    entry["records"] = n;
    entry["trigger"] = "hold_release";
    entry["requested_by"] = uid;
    deletion_event event;
    event.action = name(action);
    event.where = p;
    event.records = n;
    // The first journal carries every removed key; the others only report.
    ctx_.journal(c, std::exchange(removals, {}), entry, std::move(event));
    out.push_back(entry);
    if (action == retention_action::strip_identifiers) {
      ctx_.probe.stripped(p.kind, n);
    } else {
      ctx_.probe.dropped(p.kind, n);
    }
  }
  if (!released.empty()) ctx_.store.apply(c);
  return out;
}

}  // namespace cdr::service
