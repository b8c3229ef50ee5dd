#include "context.h"

#include <algorithm>

#include "cdr/core/hex.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

std::string describe(const std::vector<store::unreadable_entry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} ({}): {}", e.key, name(e.kind), e.reason);
  }
  return out;
}

// Who carried the action out, and for which fleet request.
void stamp(const std::string& member, const audit::record& entry, std::optional<deletion_event>& event) {
  if (!event) return;
  event->member = member;
  if (const auto o = audit::origin_of(entry)) event->request = o->request;
}

}  // namespace

state_unreadable::state_unreadable(const std::vector<store::unreadable_entry>& entries)
    : std::runtime_error(
          fmt::format("saved state does not decode, so sweeps and erasures are refused until it is repaired "
                      "(docs/operations.md, \"CdrRetentionSavedStateUnreadable\"): {}",
                      describe(entries))) {}

op_sequence::op_sequence(store::saved_state& state) : state_(state) {
  if (auto v = state_.counter(store::counter_name::operations)) last_ = v.value();
}

std::uint64_t op_sequence::next(store::change& c) {
  if (!last_) throw state_unreadable(state_.unreadable());
  ++*last_;
  state_.put_counter(c, store::counter_name::operations, *last_);
  return *last_;
}

void retention_context::require_readable_state() const {
  if (!state.healthy()) throw state_unreadable(state.unreadable());
}

std::vector<std::string> retention_context::subject_hashes(const std::vector<std::string>& normalized) const {
  std::vector<std::string> out;
  out.reserve(normalized.size());
  for (const auto& n : normalized) out.push_back(crypto::hmac_sha256(subject_key, n));
  return out;
}

vault::opened retention_context::open_identifiers(family f, const partition& p, std::string_view key,
                                                  std::string_view sealed) const {
  const bool held = f == family::held;
  auto o = keys.open(held ? key_scope::held : key_scope::partition, p, key, sealed);
  if (o.status == vault::open_status::unreadable) {
    spdlog::error("the identifiers of record {} of {} do not decrypt: tampered or corrupt",
                  record_id_of(held ? key.substr(1) : key), p.to_string());
  }
  return o;
}

std::uint64_t retention_context::journal(store::change& c, std::vector<removal> removals, const audit::record& entry,
                                         std::optional<deletion_event> event, std::optional<instant> purge_by) {
  stamp(member, entry, event);
  const auto op = ops.next(c);
  if (event) {
    event->event_id = op;
    event->time = time.now();
  }
  state.put_journal(c, op,
                    journal_entry{std::move(removals), audit::encode(entry, member), std::move(event), purge_by});
  if (!purge_by) journals.add_action(op);  // an erasure's is added once applied
  return op;
}

std::uint64_t retention_context::record(store::change& c, const audit::record& entry,
                                        std::optional<deletion_event> event) {
  stamp(member, entry, event);
  const auto op = ops.next(c);
  const auto now = time.now();
  if (event) {
    event->event_id = op;
    event->time = now;
    state.put_event(c, *event);
  }
  audit.stage(c, op, audit::encode(entry, member), now);
  return op;
}

void pending_purges::load(store::saved_state& state) {
  std::map<std::uint64_t, entry> found;
  std::set<std::uint64_t> actions;
  state.for_each_journal([&](std::uint64_t op, journal_entry&& j) {
    if (!j.purge_by) {
      actions.insert(op);
      return;
    }
    const auto subject = from_hex(j.audit.value("subject", ""));
    const auto erased = parse_rfc3339(j.audit.value("erased_at", ""));
    found[op] = {subject.value_or(""), erased.value_or(*j.purge_by), *j.purge_by, spans_of(j.removals),
                 j.removals.size()};
  });
  // An unreadable rate is listed with the other unreadable state; the
  // forecast assumes one meanwhile.
  const auto rate = state.counter(store::counter_name::purge_rate);
  std::lock_guard lock(mutex_);
  by_op_ = std::move(found);
  actions_ = std::move(actions);
  rate_ = rate ? static_cast<double>(*rate) : 0.0;
  spans_.clear();
  keys_ = 0;
  for (const auto& [op, e] : by_op_) count(e, true);
}

void pending_purges::count(const entry& e, bool in) {
  keys_ = in ? keys_ + e.keys : keys_ - std::min(keys_, e.keys);
  for (const auto& r : e.spans) {
    const std::pair<family, std::string> at{r.family, r.range.begin};
    if (in) {
      auto& slot = spans_.try_emplace(at, r.range, 0).first->second;
      ++slot.second;
    } else if (const auto it = spans_.find(at); it != spans_.end() && --it->second.second == 0) {
      spans_.erase(it);
    }
  }
}

std::vector<removal> pending_purges::spans_of(const std::vector<removal>& removals) {
  std::set<std::pair<family, std::string>> seen;
  std::vector<removal> out;
  for (const auto& r : removals) {
    // Held keys are a one-byte tag and a record or subject key.
    const bool held = r.family == family::held;
    const std::string_view key = r.range.begin;
    if (held && key.empty()) continue;
    const auto p = decode_partition(held ? key.substr(1) : key);
    if (!p) continue;
    auto range = partition_range(*p);
    if (held) {
      const std::string tag(key.substr(0, 1));
      range = {tag + range.begin, tag + range.end};
    }
    if (seen.emplace(r.family, range.begin).second) out.push_back({r.family, std::move(range)});
  }
  return out;
}

std::optional<pending_purges::outlook> pending_purges::forecast(const store::store& s, instant now) const {
  std::vector<removal> spans;
  outlook o;
  {
    std::lock_guard lock(mutex_);
    if (by_op_.empty()) return std::nullopt;
    o.in.deadline = instant::max();
    for (const auto& [op, e] : by_op_) o.in.deadline = std::min(o.in.deadline, e.purge_by);
    for (const auto& [at, span] : spans_) spans.push_back({at.first, span.first});
    o.in.keys = keys_;
    o.in.bytes_per_second = rate_;
    o.in.running_since = running_since_;
  }
  o.in.now = now;
  const auto files = s.files_overlapping(spans);
  o.in.files = files.files;
  o.in.bytes = files.bytes;
  o.forecast = forecast_purge(o.in);
  return o;
}

void pending_purges::pass_started(instant at) {
  std::lock_guard lock(mutex_);
  running_since_ = at;
}

std::optional<std::uint64_t> pending_purges::pass_ended(std::uint64_t bytes, double seconds) {
  std::lock_guard lock(mutex_);
  running_since_.reset();
  if (bytes < purge_rate_min_bytes || seconds <= 0) return std::nullopt;
  rate_ = static_cast<double>(bytes) / seconds;
  return static_cast<std::uint64_t>(rate_);
}

void pending_purges::add_action(std::uint64_t op) {
  std::lock_guard lock(mutex_);
  actions_.insert(op);
}

std::vector<std::uint64_t> pending_purges::actions() const {
  std::lock_guard lock(mutex_);
  return {actions_.begin(), actions_.end()};
}

std::pair<std::size_t, std::optional<instant>> pending_purges::of_subject(const std::string& subject) const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  std::optional<instant> first;
  for (const auto& [op, e] : by_op_) {
    if (e.subject != subject) continue;
    ++n;
    first = first ? std::min(*first, e.purge_by) : e.purge_by;
  }
  return {n, first};
}

void pending_purges::add(std::uint64_t op, entry e) {
  std::lock_guard lock(mutex_);
  if (const auto it = by_op_.find(op); it != by_op_.end()) count(it->second, false);
  count(e, true);
  by_op_[op] = std::move(e);
}

void pending_purges::remove(std::uint64_t op) {
  std::lock_guard lock(mutex_);
  if (const auto it = by_op_.find(op); it != by_op_.end()) {
    count(it->second, false);
    by_op_.erase(it);
  }
  actions_.erase(op);
}

std::map<std::uint64_t, pending_purges::entry> pending_purges::all() const {
  std::lock_guard lock(mutex_);
  return by_op_;
}

std::optional<pending_purges::entry> pending_purges::first_due() const {
  std::lock_guard lock(mutex_);
  const auto it = std::min_element(by_op_.begin(), by_op_.end(),
                                   [](const auto& a, const auto& b) { return a.second.purge_by < b.second.purge_by; });
  if (it == by_op_.end()) return std::nullopt;
  return it->second;
}

std::size_t pending_purges::subjects() const {
  std::lock_guard lock(mutex_);
  std::set<std::string_view> s;
  for (const auto& [op, e] : by_op_) s.insert(e.subject);
  return s.size();
}

std::size_t pending_purges::overdue_subjects(instant now) const {
  std::lock_guard lock(mutex_);
  std::set<std::string_view> s;
  for (const auto& [op, e] : by_op_) {
    if (now > e.purge_by + grace) s.insert(e.subject);
  }
  return s.size();
}

std::vector<std::string> retention_context::normalized_identifiers(std::string_view identifiers_json) const {
  std::vector<std::string> out;
  for (const auto& v : identifier_values(identifiers_json)) out.push_back(ids.normalize(v));
  return out;
}

std::vector<std::string> retention_context::identifier_forms(std::string_view identifiers_json) const {
  std::vector<std::string> out;
  for (const auto& v : identifier_values(identifiers_json)) {
    for (auto& f : ids.forms_of(v)) out.push_back(std::move(f));
  }
  return out;
}

nlohmann::json partition_json(const partition& p) {
  return {{"kind", name(p.kind)}, {"month", p.month.to_string()}, {"class", p.cls}};
}

family record_family(record_kind k) { return k == record_kind::cdr ? family::metadata : family::usage; }

}  // namespace cdr::service
