#include "erasure.h"

#include <algorithm>
#include <set>

#include "cdr/core/hex.h"

namespace cdr::service {

std::vector<std::tuple<partition, key_scope>> subject_erasure::indexes() const {
  std::vector<std::tuple<partition, key_scope>> out;
  for (const auto& [scope, p] : ctx_.keys.live()) {
    if (p.kind == record_kind::cdr) out.emplace_back(p, scope);
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

std::vector<std::string> subject_erasure::next_records(std::string_view normalized, cursor& cur,
                                                       std::size_t limit) const {
  std::vector<std::string> out;
  for (const auto& index : indexes()) {
    if (cur.at && index < *cur.at) continue;
    if (cur.at && index == *cur.at && !cur.after) continue;  // done with it
    const auto& [p, scope] = index;
    const auto from = cur.at && index == *cur.at ? cur.after : std::nullopt;
    cur = {index, from};
    if (const auto hash = ctx_.keys.index_hash(scope, p, normalized)) {
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

std::vector<subject_erasure::source> subject_erasure::sources_of(const partition& p,
                                                                 const std::string& record_key) const {
  std::vector<source> out;
  for (auto [f, scope, k] : {std::tuple{family::identifiers, key_scope::partition, record_key},
                             std::tuple{family::held, key_scope::held, held_key(held_tag::identifiers, record_key)}}) {
    const auto sealed = ctx_.store.value(f, k);
    if (!sealed) continue;
    auto& src = out.emplace_back(source{f, scope, k, {}});
    const auto o = ctx_.open_identifiers(f, p, k, *sealed);
    if (o.status == vault::open_status::ok) src.normalized = normalized_identifiers(o.plaintext);
  }
  return out;
}

bool subject_erasure::held_back(const partition& p, const std::string& record_key, const std::string& subject,
                                const std::vector<source>& sources) const {
  // A hold may name the record by its customer or by any of its subjects.
  std::vector<std::string> hashes{subject};
  for (const auto& src : sources) {
    for (auto& h : ctx_.subject_hashes(src.normalized)) hashes.push_back(std::move(h));
  }
  auto meta = ctx_.store.value(family::metadata, record_key);
  if (!meta) meta = ctx_.store.value(family::held, held_key(held_tag::record, record_key));
  return any_covers(*holds_.snapshot(), p, customer_of(meta.value_or("{}")), hashes);
}

void subject_erasure::remove(const partition& p, std::string_view id, const std::vector<source>& sources,
                             store::change& c, std::vector<std::pair<family, std::string>>& removed) const {
  const auto gone = [&](family f, std::string key) {
    c.remove(f, key);
    removed.emplace_back(f, std::move(key));
  };
  for (const auto& src : sources) {
    gone(src.where, src.key);
    for (const auto& n : src.normalized) {
      const auto hash = ctx_.keys.index_hash(src.scope, p, n);
      if (!hash) continue;
      const auto sk = subject_key(p, *hash, id);
      if (src.scope == key_scope::held) {
        gone(family::held, held_key(held_tag::subject, sk));
      } else {
        gone(family::subject_index, sk);
      }
    }
  }
}

nlohmann::json subject_erasure::erase(const std::string& subject, const std::vector<std::string>& record_keys,
                                      std::uint32_t uid, std::string_view trigger,
                                      const std::optional<store::chunk_id>& retry, const nlohmann::json& note,
                                      const erasure_request* request) {
  store::change c(ctx_.store);
  if (request != nullptr) ctx_.state.put_erasure_request(c, subject, *request);
  std::vector<std::pair<family, std::string>> removed;
  std::set<std::string> done;
  std::set<month> months;
  deferred_erasure deferred{ctx_.time.now(), {}};
  auto deferred_report = nlohmann::json::array();
  std::int64_t erased = 0;
  for (const auto& key : record_keys) {
    const auto p = decode_partition(key);
    if (!p || !done.insert(key).second) continue;
    const auto sources = sources_of(*p, key);
    if (held_back(*p, key, subject, sources)) {
      deferred_report.push_back({{"month", p->month.to_string()}, {"class", p->cls}, {"id", record_id_of(key)}});
      deferred.record_keys.push_back(key);
      continue;
    }
    if (sources.empty()) continue;
    remove(*p, record_id_of(key), sources, c, removed);
    months.insert(p->month);
    ++erased;
  }
  if (retry) {
    if (deferred.record_keys.empty()) {
      ctx_.state.remove_deferred(c, *retry);
    } else {
      ctx_.state.put_deferred(c, *retry, deferred);
    }
  }
  const auto hex = to_hex(subject);
  if (erased > 0 || trigger == "admin") {
    // What verify checks for this subject: every key removed, in a chunk of
    // this batch's own.
    erased_subject chunk;
    std::vector<removal> removals;
    for (auto& [f, k] : removed) {
      removals.push_back({f, point_range(k)});
      chunk.keys.emplace_back(f, std::move(k));
    }
    auto month_list = nlohmann::json::array();
    for (const auto& m : months) month_list.push_back(m.to_string());
    nlohmann::json entry{
        {"action", "erase_subject"}, {"subject", hex},     {"records", erased},  {"deferred", deferred_report.size()},
        {"months", month_list},      {"trigger", trigger}, {"requested_by", uid}};
    entry.update(note);
    std::optional<deletion_event> event;
    if (erased > 0) {
      event = deletion_event{0, "erase_subject", std::nullopt, hex, {months.begin(), months.end()}, erased, {}};
    }
    const auto op = ctx_.journal(c, std::move(removals), entry, std::move(event));
    if (erased > 0) ctx_.state.put_erased(c, {subject, op}, chunk);
    if (!retry && !deferred.record_keys.empty()) ctx_.state.put_deferred(c, {subject, op}, deferred);
  }
  if (!c.empty()) ctx_.store.apply(c);
  if (erased > 0) ctx_.probe.erased(record_kind::cdr, erased);
  return {{"subject", hex}, {"erased", erased}, {"deferred", deferred_report}};
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
    out.push_back(erase(id.subject, d->value().record_keys, uid, trigger, id));
  }
  return out;
}

}  // namespace cdr::service
