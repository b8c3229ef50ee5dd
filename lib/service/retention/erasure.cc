#include "erasure.h"

#include <algorithm>
#include <set>

#include "cdr/core/hex.h"

namespace cdr::service {

std::vector<std::tuple<partition, key_scope>> subject_erasure::indexes() const {
  std::vector<std::tuple<partition, key_scope>> out;
  for (const auto& [scope, p] : ctx_.keys.live()) {
    out.emplace_back(p, scope);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void subject_erasure::for_each_record_of(std::string_view normalized,
                                         const std::function<void(const partition&, std::string_view)>& fn) const {
  for (const auto& [p, scope] : indexes()) {
    const auto hash = ctx_.keys.index_hash(scope, p, normalized);
    if (!hash) continue;
    ctx_.store.for_each_subject_id(p, *hash, scope == key_scope::held, std::nullopt, [&](std::string_view id) {
      fn(p, id);
      return true;
    });
  }
}

std::vector<std::string> subject_erasure::records_of(std::string_view normalized) const {
  std::vector<std::string> out;
  for_each_record_of(normalized, [&](const partition& p, std::string_view id) { out.push_back(record_key(p, id)); });
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

subject_erasure::index_hash_fn subject_erasure::hashes_of(std::string_view normalized) const {
  return [this, n = std::string(normalized)](key_scope scope, const partition& p) {
    return ctx_.keys.index_hash(scope, p, n);
  };
}

subject_erasure::index_hash_fn subject_erasure::hashes_from(const std::map<std::string, std::string>& by_key) {
  return [&by_key](key_scope scope, const partition& p) -> std::optional<std::string> {
    const auto it = by_key.find(key_name(scope, p));
    if (it == by_key.end()) return std::nullopt;
    return it->second;
  };
}

std::map<std::string, std::string> subject_erasure::index_hashes(std::string_view normalized) const {
  std::map<std::string, std::string> out;
  for (const auto& [p, scope] : indexes()) {
    if (auto h = ctx_.keys.index_hash(scope, p, normalized)) out.emplace(key_name(scope, p), std::move(*h));
  }
  return out;
}

std::vector<std::string> subject_erasure::next_records(const index_hash_fn& hash_of, cursor& cur,
                                                       std::size_t limit) const {
  std::vector<std::string> out;
  for (const auto& index : indexes()) {
    if (cur.at && index < *cur.at) continue;
    if (cur.at && index == *cur.at && !cur.after) continue;  // done with it
    const auto& [p, scope] = index;
    const auto from = cur.at && index == *cur.at ? cur.after : std::nullopt;
    cur = {index, from};
    if (const auto hash = hash_of(scope, p)) {
      ctx_.store.for_each_subject_id(p, *hash, scope == key_scope::held, from, [&](std::string_view id) {
        out.push_back(record_key(p, id));
        cur.after = std::string(id);
        return out.size() < limit;
      });
      if (out.size() == limit) return out;
    }
    cur.after.reset();  // this index is done
  }
  return out;
}

std::map<std::uint64_t, std::size_t> subject_erasure::holds_over(std::string_view normalized,
                                                                 const std::string& subject) const {
  std::map<std::uint64_t, std::size_t> out;
  for (const auto& key : records_of(normalized)) {
    const auto p = decode_partition(key);
    if (!p) continue;
    for (const auto id : holding(*p, key, subject, sources_of(*p, key))) ++out[id];
  }
  return out;
}

std::vector<subject_erasure::source> subject_erasure::sources_of(const partition& p,
                                                                 const std::string& record_key) const {
  std::vector<source> out;
  for (auto [f, scope, k] : {std::tuple{family::identifiers, key_scope::partition, record_key},
                             std::tuple{family::held, key_scope::held, held_key(held_tag::identifiers, record_key)}}) {
    const auto sealed = ctx_.store.value(f, k);
    if (!sealed) continue;
    auto& src = out.emplace_back(source{f, scope, k, {}, {}});
    auto o = ctx_.open_identifiers(f, p, k, *sealed);
    if (o.status != vault::open_status::ok) continue;
    // Each value normalised and hashed once: most of an erasure's cost.
    for (auto& v : identifier_values(o.plaintext)) {
      auto forms = ctx_.ids.forms_of(v);
      auto hashes = ctx_.subject_hashes(forms);
      src.values.push_back({std::move(v), std::move(forms), std::move(hashes)});
    }
    src.plaintext = std::move(o.plaintext);
  }
  return out;
}

std::vector<std::uint64_t> subject_erasure::holding(const partition& p, const std::string& record_key,
                                                    const std::string& subject,
                                                    const std::vector<source>& sources) const {
  // A hold may name the record by its customer or by any of its subjects.
  std::vector<std::string> hashes{subject};
  for (const auto& src : sources) {
    for (const auto& v : src.values) hashes.insert(hashes.end(), v.hashes.begin(), v.hashes.end());
  }
  auto meta = ctx_.store.value(record_family(p.kind), record_key);
  if (!meta) meta = ctx_.store.value(family::held, held_key(held_tag::record, record_key));
  return covering_holds(*holds_.snapshot(), p, customer_of(meta.value_or("{}")), hashes);
}

std::optional<std::int64_t> subject_erasure::remove(const partition& p, std::string_view id, const std::string& subject,
                                                    const std::vector<source>& sources, store::change& c,
                                                    std::vector<erased_key>& removed) const {
  const auto unindex = [&](const source& src, const std::string& form) {
    const auto hash = ctx_.keys.index_hash(src.scope, p, form);
    if (!hash) return;
    const auto sk = subject_key(p, *hash, id);
    const bool held = src.scope == key_scope::held;
    auto key = held ? held_key(held_tag::subject, sk) : sk;
    c.remove(held ? family::held : family::subject_index, key);
    removed.push_back({held ? family::held : family::subject_index, std::move(key)});
  };
  std::optional<std::int64_t> values;
  for (const auto& src : sources) {
    // The subject's values (a form of theirs hashes to it), and the forms
    // only they are indexed by (another subject's value written alike keeps
    // its entry).
    std::int64_t mine = 0;
    std::int64_t theirs = 0;
    std::set<std::string, std::less<>> erased_values;
    std::set<std::string> gone;
    std::set<std::string> kept;
    std::string rest;
    if (src.plaintext) {
      for (const auto& v : src.values) {
        const bool erased = std::find(v.hashes.begin(), v.hashes.end(), subject) != v.hashes.end();
        (erased ? mine : theirs) += 1;
        (erased ? gone : kept).insert(v.forms.begin(), v.forms.end());
        if (erased) erased_values.insert(v.text);
      }
      if (mine == 0) continue;  // found by another form's hash, not the subject's
      // Another subject's value left: the rest stays (empty arrays and
      // objects that held the subject's values show where they were).
      if (theirs > 0) {
        rest = without_identifiers(*src.plaintext,
                                   [&](std::string_view v) { return erased_values.find(v) != erased_values.end(); });
      }
    }
    values = values.value_or(0) + mine;
    std::string resealed;
    std::vector<std::string> no_hashes;
    if (!rest.empty() && ctx_.keys.seal_indexed(src.scope, p, src.key, rest, {}, resealed, no_hashes)) {
      c.put(src.where, src.key, resealed);
      removed.push_back({src.where, src.key, /*resealed=*/true});
      for (const auto& f : gone) {
        if (!kept.contains(f)) unindex(src, f);
      }
      continue;
    }
    // Nothing else left (or it does not open): the whole copy goes.
    c.remove(src.where, src.key);
    removed.push_back({src.where, src.key});
    for (const auto& v : src.values) {
      for (const auto& form : v.forms) unindex(src, form);
    }
  }
  return values;
}

void subject_erasure::outcome::add(const outcome& other) {
  erased += other.erased;
  values += other.values;
  for (const auto& [m, n] : other.months) months[m] += n;
  deferred += other.deferred;
  for (const auto& d : other.deferred_list) {
    if (deferred_list.size() < max_listed) deferred_list.push_back(d);
  }
  holds.insert(other.holds.begin(), other.holds.end());
}

nlohmann::json subject_erasure::outcome::months_json() const {
  auto out = nlohmann::json::object();
  for (const auto& [m, n] : months) out[m.to_string()] = n;
  return out;
}

audit::subject_erased subject_erasure::audit_entry(const std::string& subject, const outcome& o,
                                                   std::string_view trigger, std::uint32_t uid, instant purge_by,
                                                   audit::request_note note) {
  return {to_hex(subject),
          o.erased,
          o.values,
          static_cast<std::int64_t>(o.deferred),
          o.months,
          o.holds,
          std::string(trigger),
          uid,
          o.erased > 0 ? std::optional(purge_by) : std::nullopt,
          std::move(note)};
}

namespace {
std::optional<deletion_event> erasure_event(const std::string& subject, const subject_erasure::outcome& o) {
  if (o.erased == 0) return std::nullopt;
  std::vector<month> months;
  for (const auto& [m, n] : o.months) months.push_back(m);
  return deletion_event{0, "erase_subject", std::nullopt, to_hex(subject), std::move(months), o.erased, {}};
}
}  // namespace

subject_erasure::outcome subject_erasure::erase(const std::string& subject, const std::vector<std::string>& record_keys,
                                                std::uint32_t uid, std::string_view trigger,
                                                const std::optional<store::chunk_id>& retry,
                                                const erasure_request* request) {
  store::change c(ctx_.store);
  if (request != nullptr) ctx_.state.put_erasure_request(c, subject, *request);
  std::vector<erased_key> removed;
  std::set<std::string> done;
  const auto now = ctx_.time.now();
  deferred_erasure deferred{now, {}};
  outcome out;
  std::map<record_kind, std::int64_t> erased_by_kind;
  for (const auto& key : record_keys) {
    const auto p = decode_partition(key);
    if (!p || !done.insert(key).second) continue;
    const auto sources = sources_of(*p, key);
    if (auto holds = holding(*p, key, subject, sources); !holds.empty()) {
      if (out.deferred_list.size() < outcome::max_listed) {
        out.deferred_list.push_back(nlohmann::json{
            {"month", p->month.to_string()}, {"class", p->cls}, {"id", record_id_of(key)}, {"holds", holds}});
      }
      ++out.deferred;
      out.holds.insert(holds.begin(), holds.end());
      deferred.record_keys.push_back(key);
      continue;
    }
    const auto values = remove(*p, record_id_of(key), subject, sources, c, removed);
    if (!values) continue;
    out.values += *values;
    ++out.months[p->month];
    ++out.erased;
    ++erased_by_kind[p->kind];
  }
  if (retry) {
    if (deferred.record_keys.empty()) {
      ctx_.state.remove_deferred(c, *retry);
    } else {
      ctx_.state.put_deferred(c, *retry, deferred);
    }
  }
  const auto purge_by = now + ctx_.config.erasure.purge_after;
  std::optional<std::uint64_t> op;
  std::vector<removal> spans;
  std::uint64_t keys = 0;
  if (out.erased > 0) {
    // What verify checks for this subject once purged: every key removed,
    // in a chunk of this batch's own; the journal waits for the purge pass.
    erased_subject chunk;
    std::vector<removal> removals;
    for (auto& k : removed) {
      removals.push_back({k.where, point_range(k.key), k.resealed});
      chunk.keys.push_back(std::move(k));
    }
    spans = pending_purges::spans_of(removals);
    keys = removals.size();
    op = ctx_.journal(c, std::move(removals),
                      audit::erasure_purged{to_hex(subject), out.erased, now, std::string(trigger)}, std::nullopt,
                      purge_by);
    ctx_.state.put_erased(c, {subject, *op}, chunk);
    // An erasure request's batches are audited once, by conclude().
    if (trigger == "deferred" || trigger == "hold_release")
      ctx_.record(c, audit_entry(subject, out, trigger, uid, purge_by), erasure_event(subject, out));
  }
  if (!retry && !deferred.record_keys.empty())
    ctx_.state.put_deferred(c, {subject, op ? *op : ctx_.ops.next(c)}, deferred);
  if (!c.empty()) ctx_.store.apply(c);
  if (op) ctx_.journals.add(*op, {subject, now, purge_by, std::move(spans), keys});
  for (const auto& [kind, n] : erased_by_kind) ctx_.probe.erased(kind, n);
  return out;
}

std::uint64_t subject_erasure::conclude(const std::string& subject, erasure_request request, const outcome& total,
                                        std::uint32_t uid, std::string_view trigger, const audit::request_note& note,
                                        std::optional<control_step> control_next) {
  store::change c(ctx_.store);
  if (control_next) ctx_.state.put_control_step(c, control_next->next, control_next->request);
  const auto op =
      ctx_.record(c, audit_entry(subject, total, trigger, uid, request.at + ctx_.config.erasure.purge_after, note),
                  erasure_event(subject, total));
  request.done = true;
  ctx_.state.put_erasure_request(c, subject, request);
  ctx_.store.apply(c);
  return op;
}

void erasure_requests::load() {
  auto times = std::make_shared<erasure_times>();
  ctx_.state.for_each_erasure_request(
      [&](const std::string& subject, const erasure_request& r) { (*times)[subject] = r.at; });
  std::lock_guard lock(mutex_);
  times_ = std::move(times);
}

void erasure_requests::add(const std::string& subject, instant at) {
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<erasure_times>(*times_);
  (*next)[subject] = at;
  times_ = std::move(next);
}

std::shared_ptr<const erasure_times> erasure_requests::snapshot() const {
  std::lock_guard lock(mutex_);
  return times_;
}

nlohmann::json subject_erasure::run_deferred(std::uint32_t uid, std::string_view trigger) {
  // The chunks first (their keys are small), then each erased in turn: the
  // erasure rewrites the chunk it reads.
  std::vector<store::chunk_id> chunks;
  const auto bad =
      ctx_.state.for_each_deferred([&](const store::chunk_id& id, const deferred_erasure&) { chunks.push_back(id); });
  if (!bad.empty()) throw state_unreadable(ctx_.state.unreadable());
  auto out = nlohmann::json::array();
  for (const auto& id : chunks) {
    auto d = ctx_.state.deferred(id);
    if (!d) continue;
    if (!*d) throw state_unreadable(ctx_.state.unreadable());
    const auto o = erase(id.subject, d->value().record_keys, uid, trigger, id);
    out.push_back(
        {{"subject", to_hex(id.subject)}, {"erased", o.erased}, {"values", o.values}, {"deferred", o.deferred_list}});
  }
  return out;
}

}  // namespace cdr::service
