#include "executor.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

namespace cdr::service {

std::int64_t sweep_executor::copy_held(const partition& p, const std::vector<hold>& partial, bool drop) {
  // Matching a subject selector needs every record's identifiers opened;
  // customer selectors only the metadata.
  const bool by_subject =
      std::any_of(partial.begin(), partial.end(), [](const hold& h) { return h.subject.has_value(); });
  const bool only_by_subject =
      std::all_of(partial.begin(), partial.end(), [](const hold& h) { return h.subject.has_value(); });
  const auto states = ctx_.store.states();
  const auto state = states.find(p);
  const bool stripped = state != states.end() && state->second.stripped;
  std::int64_t held = 0;
  std::string resealed;
  std::vector<std::string> held_hashes;
  // Copies are committed in chunks before the partition goes: a crash in
  // between leaves copies of records still in their partition, which the
  // next sweep copies again (the same keys) before removing the partition.
  auto c = std::make_unique<store::change>(ctx_.store);
  std::size_t in_chunk = 0;
  const auto consider = [&](std::string_view key, std::string_view value) {
    // The record's identifiers, opened at most once, when needed: the
    // partition's, or, once it is stripped, the copy a hold kept of them.
    bool opened = false;
    bool kept_already = false;
    std::optional<std::string> plain;
    std::vector<std::string> normalized;
    const auto open = [&] {
      if (std::exchange(opened, true)) return;
      auto sealed = ctx_.store.value(family::identifiers, key);
      const auto hk = held_key(held_tag::identifiers, key);
      if (!sealed) {
        sealed = ctx_.store.value(family::held, hk);
        kept_already = sealed.has_value();
      }
      if (!sealed) return;
      auto o = kept_already ? ctx_.open_identifiers(family::held, p, hk, *sealed)
                            : ctx_.open_identifiers(family::identifiers, p, key, *sealed);
      if (o.status == vault::open_status::ok) {
        plain = std::move(o.plaintext);
        normalized = ctx_.identifier_forms(*plain);
      } else if (o.status == vault::open_status::key_destroyed) {
        spdlog::error("a legal hold may name record {} of {}, but its {} key is destroyed", record_id_of(key),
                      p.to_string(), kept_already ? "held" : "partition's");
      }
    };
    if (by_subject) open();
    if (!any_covers(partial, p, customer_of(value), ctx_.subject_hashes(normalized))) return true;
    if (drop) {
      c->put(family::held, held_key(held_tag::record, key), value);
      c->hold_id(p.kind, record_id_of(key));  // its id outlives the partition
    }
    open();
    if (plain && !kept_already) {
      // Re-sealed under the held key, which lives as long as held copies of
      // this partition do (the partition key is destroyed now).
      const auto id = record_id_of(key);
      const auto hk = held_key(held_tag::identifiers, key);
      // Indexed in the current form (`normalized` has the earlier ones too,
      // for the holds).
      ctx_.keys.seal_indexed(key_scope::held, p, hk, *plain, ctx_.normalized_identifiers(*plain), resealed,
                             held_hashes);
      c->put(family::held, hk, resealed);
      for (const auto& h : held_hashes) c->put(family::held, held_key(held_tag::subject, subject_key(p, h, id)), "");
    }
    ++held;
    if (++in_chunk == chunk_records) {
      ctx_.store.apply(*c);
      c = std::make_unique<store::change>(ctx_.store);
      in_chunk = 0;
    }
    return true;
  };
  if (stripped && only_by_subject) {
    // A stripped partition's identifiers are gone but for the copies holds
    // kept: only those records can name a subject, so only they are read
    // (not the whole partition: a drop's cost stays that of what is held).
    ctx_.store.scan(family::held, prefix_range(held_key(held_tag::identifiers, partition_prefix(p))),
                    [&](std::string_view key, std::string_view) {
                      const auto rk = key.substr(1);
                      if (const auto meta = ctx_.store.value(record_family(p.kind), rk)) consider(rk, *meta);
                      return true;
                    });
  } else {
    ctx_.store.scan(record_family(p.kind), partition_range(p), consider);
  }
  if (!c->empty()) ctx_.store.apply(*c);
  return held;
}

nlohmann::json sweep_executor::remove_partition(const planned_action& a, std::string_view trigger, std::uint32_t uid) {
  const auto& p = a.where;
  const bool drop = a.action != retention_action::strip_identifiers;
  std::int64_t held = 0;
  if (!a.partial_holds.empty()) {
    // Records a hold names go to the held family before the range goes.
    std::vector<hold> partial;
    for (const auto& h : *holds_.snapshot()) {
      if (std::find(a.partial_holds.begin(), a.partial_holds.end(), h.id) != a.partial_holds.end()) {
        partial.push_back(h);
      }
    }
    held = copy_held(p, partial, drop);
  }
  store::change c(ctx_.store);
  auto removals = removals_of(a.action, p);
  for (const auto& r : removals) c.remove_range(r.family, r.range);
  // The planner never plans a dropped partition: after this it is stripped,
  // and dropped too when the action drops.
  c.set_state(p, partition_state{true, drop});
  const audit::partition_action entry{a.action, p, a.records - held, held, a.deadline.start(), std::string(trigger),
                                      uid};
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
  return audit::encode(entry);
}

// Releases held copies chunk by chunk: each chunk one commit, journalled
// with the counts it released per (partition, action).
class sweep_executor::releaser {
 public:
  releaser(retention_context& ctx, std::uint32_t uid)
      : ctx_(ctx), uid_(uid), c_(std::make_unique<store::change>(ctx.store)) {}

  void remove(std::string key) {
    c_->remove(family::held, key);
    removals_.push_back({family::held, point_range(key)});
  }
  // A held copy of a dropped partition goes for good: its id too.
  void forget_id(const partition& p, std::string_view record_key) { c_->remove_id(p.kind, record_id_of(record_key)); }
  void released(const partition& p, retention_action a) { ++released_[{p, a}]; }
  // Commits when the chunk is full (or at the end, when `last`).
  void maybe_commit(bool last = false) {
    if (removals_.size() < chunk_records && !last) return;
    if (removals_.empty()) return;
    for (const auto& [key, n] : released_) {
      const auto& [p, action] = key;
      const audit::partition_action entry{action, p, n, std::nullopt, std::nullopt, "hold_release", uid_};
      deletion_event event;
      event.action = name(action);
      event.where = p;
      event.records = n;
      // The first journal carries every removed key; the others only report.
      ctx_.journal(*c_, std::exchange(removals_, {}), entry, std::move(event));
      report_.push_back(audit::encode(entry));
      if (action == retention_action::strip_identifiers) {
        ctx_.probe.stripped(p.kind, n);
      } else {
        ctx_.probe.dropped(p.kind, n);
      }
    }
    ctx_.store.apply(*c_);
    c_ = std::make_unique<store::change>(ctx_.store);
    removals_.clear();
    released_.clear();
  }
  nlohmann::json report() { return std::move(report_); }

 private:
  retention_context& ctx_;
  std::uint32_t uid_;
  std::unique_ptr<store::change> c_;
  std::vector<removal> removals_;
  std::map<std::pair<partition, retention_action>, std::int64_t> released_;
  nlohmann::json report_ = nlohmann::json::array();
};

nlohmann::json sweep_executor::release_held(std::uint32_t uid) {
  const auto now = ctx_.time.now();
  const auto h = holds_.snapshot();
  releaser out(ctx_, uid);
  const auto value = [&](held_tag tag, const std::string& rk) {
    return ctx_.store.value(family::held, held_key(tag, rk));
  };
  const auto still_named = [&](const partition& p, const std::string& rk, const std::vector<std::string>& subjects) {
    const auto held_meta = value(held_tag::record, rk);
    const auto meta = held_meta ? held_meta : ctx_.store.value(record_family(p.kind), rk);
    return any_covers(*h, p, customer_of(meta.value_or("")), subjects);
  };
  // 1. Held identifiers: opened (for hold matching and to find their subject
  //    entries), released once no hold names them and their strip is due.
  ctx_.store.scan(family::held, held_range(held_tag::identifiers), [&](std::string_view key, std::string_view sealed) {
    const std::string rk(key.substr(1));
    const auto p = decode_partition(rk);
    if (!p) return true;
    std::vector<std::string> normalized;
    const auto o = ctx_.open_identifiers(family::held, *p, key, sealed);
    if (o.status == vault::open_status::ok) normalized = ctx_.identifier_forms(o.plaintext);
    if (still_named(*p, rk, ctx_.subject_hashes(normalized))) return true;
    const auto passed = deadlines_passed(ctx_.config.retention, *p, now);
    if (!passed.strip) return true;
    out.remove(std::string(key));
    for (const auto& n : normalized) {
      if (const auto hash = ctx_.keys.index_hash(key_scope::held, *p, n)) {
        out.remove(held_key(held_tag::subject, subject_key(*p, *hash, record_id_of(rk))));
      }
    }
    if (passed.drop && value(held_tag::record, rk)) {
      out.remove(held_key(held_tag::record, rk));
      out.forget_id(*p, rk);
      out.released(*p, drop_action(p->kind));
    } else {
      out.released(*p, retention_action::strip_identifiers);
    }
    out.maybe_commit();
    return true;
  });
  out.maybe_commit(true);
  // 2. Held records without held identifiers: released once their drop is due.
  ctx_.store.scan(family::held, held_range(held_tag::record), [&](std::string_view key, std::string_view) {
    const std::string rk(key.substr(1));
    const auto p = decode_partition(rk);
    if (!p || value(held_tag::identifiers, rk)) return true;
    if (still_named(*p, rk, {}) || !deadlines_passed(ctx_.config.retention, *p, now).drop) return true;
    out.remove(std::string(key));
    out.forget_id(*p, rk);
    out.released(*p, drop_action(p->kind));
    out.maybe_commit();
    return true;
  });
  out.maybe_commit(true);
  // 3. Subject entries whose record no longer has held identifiers (theirs
  //    did not open, so step 1 could not name them): gone once the strip is due.
  ctx_.store.scan(family::held, held_range(held_tag::subject), [&](std::string_view key, std::string_view) {
    const auto inner = key.substr(1);
    const auto p = decode_partition(inner);
    if (!p || inner.size() <= partition_prefix_size + subject_hash_size) return true;
    std::string rk(inner.substr(0, partition_prefix_size));
    rk.append(inner.substr(partition_prefix_size + subject_hash_size));
    if (value(held_tag::identifiers, rk) || !deadlines_passed(ctx_.config.retention, *p, now).strip) {
      return true;
    }
    if (still_named(*p, rk, {std::string(inner.substr(partition_prefix_size, subject_hash_size))})) {
      return true;
    }
    out.remove(std::string(key));
    out.released(*p, retention_action::strip_identifiers);
    out.maybe_commit();
    return true;
  });
  out.maybe_commit(true);
  return out.report();
}

std::size_t sweep_executor::mark_held_ids() {
  std::size_t n = 0;
  auto c = std::make_unique<store::change>(ctx_.store);
  ctx_.store.scan(family::held, held_range(held_tag::record), [&](std::string_view key, std::string_view) {
    const auto rk = key.substr(1);
    const auto p = decode_partition(rk);
    if (!p) return true;
    if (!c->hold_id(p->kind, record_id_of(rk))) return true;
    if (++n % chunk_records == 0) {
      ctx_.store.apply(*c);
      c = std::make_unique<store::change>(ctx_.store);
    }
    return true;
  });
  if (!c->empty()) ctx_.store.apply(*c);
  return n;
}

std::int64_t sweep_executor::held_records() const {
  // Records with held identifiers, plus held records without them.
  std::int64_t n = 0;
  ctx_.store.scan(family::held, held_range(held_tag::identifiers), [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  ctx_.store.scan(family::held, held_range(held_tag::record), [&](std::string_view key, std::string_view) {
    if (!ctx_.store.value(family::held, held_key(held_tag::identifiers, key.substr(1)))) ++n;
    return true;
  });
  return n;
}

}  // namespace cdr::service
