#include "cdr/store/saved_state.h"

#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"

namespace cdr::store {
namespace {

// Keys under the system family's saved-state tag. Numbered entries end in a
// big-endian u64 (so they list in number order), subjects' in their hex.
constexpr std::string_view hold_prefix = "hold/";
constexpr std::string_view journal_prefix = "journal/";
constexpr std::string_view event_prefix = "event/";
constexpr std::string_view deferred_prefix = "deferred/";
constexpr std::string_view erased_prefix = "erased/";
constexpr std::string_view audit_prefix = "audit/";
constexpr std::string_view request_prefix = "request/";  // + subject hex: its erasure request
constexpr std::string_view head_key = "audit_head";
constexpr std::string_view keystore_key = "keystore_id";
constexpr std::string_view identity_key = "identity";
constexpr std::string_view clock_key = "clock_mark";
constexpr std::string_view applied_prefix = "applied/";  // + a control request applied here
constexpr std::string_view member_prefix = "member/";    // + a fleet member known here

std::string_view counter_key(counter_name n) {
  switch (n) {
    case counter_name::operations: return "op_counter";
    case counter_name::holds: return "hold_counter";
    case counter_name::control: return "control_position";
    case counter_name::purge_rate: return "purge_rate";
  }
  return "op_counter";
}

std::string numbered(std::string_view prefix, std::uint64_t n) { return std::string(prefix) + be64(n); }

bool starts(std::string_view key, std::string_view prefix) { return key.substr(0, prefix.size()) == prefix; }

// The key as people read it: a numbered entry's number in hex.
std::string readable(std::string_view key) {
  for (auto p : {hold_prefix, journal_prefix, event_prefix, audit_prefix}) {
    if (starts(key, p) && key.size() == p.size() + 8) return std::string(p) + to_hex(key.substr(p.size()));
  }
  return std::string(key);
}

state_kind kind_of_key(std::string_view key) {
  if (starts(key, hold_prefix)) return state_kind::hold;
  if (starts(key, journal_prefix)) return state_kind::journal;
  if (starts(key, event_prefix)) return state_kind::deletion_event;
  if (starts(key, deferred_prefix)) return state_kind::deferred_erasure;
  if (starts(key, erased_prefix)) return state_kind::erased_subject;
  if (starts(key, request_prefix)) return state_kind::erasure_request;
  if (starts(key, audit_prefix)) return state_kind::pending_audit;
  if (starts(key, applied_prefix) || starts(key, member_prefix)) return state_kind::fleet;
  if (key == head_key) return state_kind::audit_head;
  if (key == keystore_key) return state_kind::keystore_binding;
  if (key == identity_key) return state_kind::identity;
  if (key == counter_key(counter_name::operations) || key == counter_key(counter_name::holds) ||
      key == counter_key(counter_name::control) || key == counter_key(counter_name::purge_rate) || key == clock_key) {
    return state_kind::counter;
  }
  return state_kind::unknown;
}

std::optional<std::uint64_t> number_of(std::string_view key, std::string_view prefix) {
  if (key.size() != prefix.size() + 8) return std::nullopt;
  return read_be64(key.substr(prefix.size()));
}

// "<prefix><subject hex>" (a record of a build before chunks: chunk 0) or
// "<prefix><subject hex>/<chunk, 16 hex digits>".
std::optional<chunk_id> chunk_of(std::string_view key, std::string_view prefix) {
  auto rest = key.substr(prefix.size());
  const auto slash = rest.find('/');
  auto subject = from_hex(rest.substr(0, slash));
  if (!subject || subject->empty()) return std::nullopt;
  chunk_id id{std::move(*subject), 0};
  if (slash == std::string_view::npos) return id;
  const auto number = from_hex(rest.substr(slash + 1));
  if (!number || number->size() != 8) return std::nullopt;
  id.chunk = read_be64(*number);
  return id;
}

std::string chunk_key(std::string_view prefix, const chunk_id& id) {
  auto k = std::string(prefix) + to_hex(id.subject);
  if (id.chunk != 0) k += "/" + to_hex(be64(id.chunk));
  return k;
}

// Fleet markers: present with an empty value, or absent.
result<bool> fleet_marker(std::string_view value) {
  if (!value.empty()) return failure{"a fleet marker is not empty"};
  return true;
}

// Decodes any entry by its key's kind; the reason when it does not decode.
std::optional<std::string> problem_of(std::string_view key, std::string_view value) {
  const auto reason = [](const auto& r) { return r ? std::nullopt : std::optional<std::string>(r.error()); };
  const auto numbered_ok = [&](std::string_view prefix) { return number_of(key, prefix).has_value(); };
  switch (kind_of_key(key)) {
    case state_kind::hold:
      return numbered_ok(hold_prefix) ? reason(decode_hold(value)) : std::optional<std::string>("malformed key");
    case state_kind::journal:
      return numbered_ok(journal_prefix) ? reason(decode_journal(value)) : std::optional<std::string>("malformed key");
    case state_kind::deletion_event:
      return numbered_ok(event_prefix) ? reason(decode_deletion_event(value))
                                       : std::optional<std::string>("malformed key");
    case state_kind::pending_audit:
      return numbered_ok(audit_prefix) ? reason(decode_pending_audit(value))
                                       : std::optional<std::string>("malformed key");
    case state_kind::deferred_erasure:
      return chunk_of(key, deferred_prefix) ? reason(decode_deferred_erasure(value))
                                            : std::optional<std::string>("malformed key");
    case state_kind::erased_subject:
      return chunk_of(key, erased_prefix) ? reason(decode_erased_subject(value))
                                          : std::optional<std::string>("malformed key");
    case state_kind::erasure_request: {
      const auto id = chunk_of(key, request_prefix);
      return id && id->chunk == 0 ? reason(decode_erasure_request(value)) : std::optional<std::string>("malformed key");
    }
    case state_kind::audit_head: return reason(decode_audit_head(value));
    case state_kind::counter: return reason(decode_counter(value));
    case state_kind::keystore_binding:
      return from_hex(value) ? std::nullopt : std::optional<std::string>("key store id: not hexadecimal");
    case state_kind::identity: return reason(decode_identity_state(value));
    case state_kind::fleet:
      return fleet_marker(value).ok() ? std::nullopt : std::optional<std::string>(fleet_marker(value).error());
    case state_kind::unknown: return "a saved-state key this build does not know";
  }
  return "a saved-state key this build does not know";
}

}  // namespace

void saved_state::note(const std::string& key, state_kind kind, const std::string& reason) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = unreadable_.try_emplace(key, unreadable_entry{kind, readable(key), reason});
  if (fresh || it->second.reason != reason) {
    it->second.reason = reason;
    spdlog::critical(
        "saved state {} ({}) does not decode: {}; sweeps and erasures are refused until it is repaired "
        "(docs/operations.md, \"CdrRetentionSavedStateUnreadable\")",
        readable(key), name(kind), reason);
  }
}

void saved_state::clear(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (unreadable_.erase(key) != 0) spdlog::warn("saved state {} is readable again (or gone)", readable(key));
}

void saved_state::forget_except(std::string_view prefix, const std::map<std::string, std::string>& still_bad) {
  std::lock_guard lock(mutex_);
  std::erase_if(unreadable_, [&](const auto& e) { return starts(e.first, prefix) && still_bad.count(e.first) == 0; });
}

std::vector<unreadable_entry> saved_state::check_all() {
  std::map<std::string, std::string> found;
  store_.for_each_entry("", [&](std::string_view key, std::string_view value) {
    if (auto why = problem_of(key, value)) found.emplace(key, *why);
    return true;
  });
  forget_except("", found);
  std::vector<unreadable_entry> out;
  for (const auto& [key, why] : found) {
    note(key, kind_of_key(key), why);
    out.push_back({kind_of_key(key), readable(key), why});
  }
  return out;
}

std::vector<unreadable_entry> saved_state::unreadable() const {
  std::lock_guard lock(mutex_);
  std::vector<unreadable_entry> out;
  for (const auto& [key, e] : unreadable_) out.push_back(e);
  return out;
}

bool saved_state::healthy() const {
  std::lock_guard lock(mutex_);
  return unreadable_.empty();
}

template <class K, class T, class Decode, class Key, class Fn>
std::vector<unreadable_entry> saved_state::stream_all(std::string_view prefix, state_kind kind, Decode decode,
                                                      Key key_of, Fn&& fn) {
  std::map<std::string, std::string> bad;
  store_.for_each_entry(prefix, [&](std::string_view key, std::string_view value) {
    const auto k = key_of(key);
    auto decoded = decode(value);
    if (k && decoded) {
      fn(*k, std::move(decoded).value());
    } else {
      bad.emplace(key, k ? decoded.error() : std::string("malformed key"));
    }
    return true;
  });
  forget_except(prefix, bad);
  std::vector<unreadable_entry> out;
  for (const auto& [key, why] : bad) {
    note(key, kind, why);
    out.push_back({kind, readable(key), why});
  }
  return out;
}

template <class K, class T, class Decode, class Key>
entries_of<K, T> saved_state::read_all(std::string_view prefix, state_kind kind, Decode decode, Key key_of) {
  entries_of<K, T> out;
  out.unreadable = stream_all<K, T>(prefix, kind, decode, key_of,
                                    [&](const K& k, T&& v) { out.items.emplace_back(k, std::move(v)); });
  return out;
}

template <class T, class Decode>
std::optional<result<T>> saved_state::read_one(const std::string& key, state_kind kind, Decode decode) {
  const auto value = store_.entry(key);
  if (!value) {
    clear(key);
    return std::nullopt;
  }
  result<T> decoded = decode(*value);
  if (decoded) {
    clear(key);
  } else {
    note(key, kind, decoded.error());
  }
  return decoded;
}

// --- counters ---

result<std::uint64_t> saved_state::counter(counter_name n) {
  auto r = read_one<std::uint64_t>(std::string(counter_key(n)), state_kind::counter, decode_counter);
  return r ? std::move(*r) : result<std::uint64_t>(0);
}
void saved_state::put_counter(change& c, counter_name n, std::uint64_t v) {
  c.put_entry(counter_key(n), encode_counter(v));
}
std::optional<result<std::uint64_t>> saved_state::clock_mark() {
  return read_one<std::uint64_t>(std::string(clock_key), state_kind::counter, decode_counter);
}
void saved_state::put_clock_mark(change& c, std::uint64_t micros) { c.put_entry(clock_key, encode_counter(micros)); }

// --- holds ---

entries_of<std::uint64_t, hold> saved_state::holds() {
  return read_all<std::uint64_t, hold>(hold_prefix, state_kind::hold, decode_hold,
                                       [](std::string_view k) { return number_of(k, hold_prefix); });
}
std::optional<result<hold>> saved_state::hold_by_id(std::uint64_t id) {
  return read_one<hold>(numbered(hold_prefix, id), state_kind::hold, decode_hold);
}
void saved_state::put_hold(change& c, const hold& h) { c.put_entry(numbered(hold_prefix, h.id), encode(h)); }
void saved_state::remove_hold(change& c, std::uint64_t id) { c.remove_entry(numbered(hold_prefix, id)); }

// --- journals ---

entries_of<std::uint64_t, journal_entry> saved_state::journals() {
  return read_all<std::uint64_t, journal_entry>(journal_prefix, state_kind::journal, decode_journal,
                                                [](std::string_view k) { return number_of(k, journal_prefix); });
}
std::vector<unreadable_entry> saved_state::for_each_journal(
    const std::function<void(std::uint64_t, journal_entry&&)>& fn) {
  return stream_all<std::uint64_t, journal_entry>(
      journal_prefix, state_kind::journal, decode_journal,
      [](std::string_view k) { return number_of(k, journal_prefix); },
      [&](std::uint64_t op, journal_entry&& j) { fn(op, std::move(j)); });
}
std::optional<result<journal_entry>> saved_state::journal(std::uint64_t op) {
  return read_one<journal_entry>(numbered(journal_prefix, op), state_kind::journal, decode_journal);
}
void saved_state::put_journal(change& c, std::uint64_t op, const journal_entry& j) {
  c.put_entry(numbered(journal_prefix, op), encode(j));
}
void saved_state::remove_journal(change& c, std::uint64_t op) { c.remove_entry(numbered(journal_prefix, op)); }

// --- the deletion-event outbox ---

entries_of<std::uint64_t, deletion_event> saved_state::events() {
  return read_all<std::uint64_t, deletion_event>(event_prefix, state_kind::deletion_event, decode_deletion_event,
                                                 [](std::string_view k) { return number_of(k, event_prefix); });
}
std::size_t saved_state::events_pending() const {
  std::size_t n = 0;
  store_.for_each_entry(event_prefix, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  return n;
}
void saved_state::put_event(change& c, const deletion_event& e) {
  c.put_entry(numbered(event_prefix, e.event_id), encode(e));
}
void saved_state::remove_event(change& c, std::uint64_t event_id) { c.remove_entry(numbered(event_prefix, event_id)); }

// --- erasures ---

std::vector<unreadable_entry> saved_state::for_each_deferred(
    const std::function<void(const chunk_id&, const deferred_erasure&)>& fn) {
  return stream_all<chunk_id, deferred_erasure>(
      deferred_prefix, state_kind::deferred_erasure, decode_deferred_erasure,
      [](std::string_view k) { return chunk_of(k, deferred_prefix); },
      [&](const chunk_id& id, deferred_erasure&& d) { fn(id, d); });
}
std::optional<result<deferred_erasure>> saved_state::deferred(const chunk_id& id) {
  return read_one<deferred_erasure>(chunk_key(deferred_prefix, id), state_kind::deferred_erasure,
                                    decode_deferred_erasure);
}
void saved_state::put_deferred(change& c, const chunk_id& id, const deferred_erasure& d) {
  c.put_entry(chunk_key(deferred_prefix, id), encode(d));
}
void saved_state::remove_deferred(change& c, const chunk_id& id) { c.remove_entry(chunk_key(deferred_prefix, id)); }

std::vector<unreadable_entry> saved_state::for_each_erased(
    const std::function<void(const chunk_id&, const erased_subject&)>& fn) {
  return stream_all<chunk_id, erased_subject>(
      erased_prefix, state_kind::erased_subject, decode_erased_subject,
      [](std::string_view k) { return chunk_of(k, erased_prefix); },
      [&](const chunk_id& id, erased_subject&& e) { fn(id, e); });
}
void saved_state::put_erased(change& c, const chunk_id& id, const erased_subject& e) {
  c.put_entry(chunk_key(erased_prefix, id), encode(e));
}

std::vector<unreadable_entry> saved_state::for_each_erasure_request(
    const std::function<void(const std::string& subject, const erasure_request&)>& fn) {
  return stream_all<chunk_id, erasure_request>(
      request_prefix, state_kind::erasure_request, decode_erasure_request,
      [](std::string_view k) {
        auto id = chunk_of(k, request_prefix);
        return id && id->chunk == 0 ? id : std::nullopt;
      },
      [&](const chunk_id& id, erasure_request&& r) { fn(id.subject, r); });
}
std::optional<result<erasure_request>> saved_state::erasure_request_of(std::string_view subject) {
  return read_one<erasure_request>(chunk_key(request_prefix, {std::string(subject), 0}), state_kind::erasure_request,
                                   decode_erasure_request);
}
void saved_state::put_erasure_request(change& c, std::string_view subject, const erasure_request& r) {
  c.put_entry(chunk_key(request_prefix, {std::string(subject), 0}), encode(r));
}

// --- the audit trail ---

entries_of<std::uint64_t, pending_audit> saved_state::pending_audit_entries() {
  return read_all<std::uint64_t, pending_audit>(audit_prefix, state_kind::pending_audit, decode_pending_audit,
                                                [](std::string_view k) { return number_of(k, audit_prefix); });
}
void saved_state::put_pending_audit(change& c, const pending_audit& a) {
  c.put_entry(numbered(audit_prefix, a.op), encode(a));
}
void saved_state::remove_pending_audit(change& c, std::uint64_t op) { c.remove_entry(numbered(audit_prefix, op)); }

result<audit_head> saved_state::head() {
  auto r = read_one<audit_head>(std::string(head_key), state_kind::audit_head, decode_audit_head);
  return r ? std::move(*r) : result<audit_head>(audit_head{});
}
void saved_state::put_head(change& c, const audit_head& h) { c.put_entry(head_key, encode(h)); }

// --- the key store binding ---

std::optional<result<std::string>> saved_state::keystore_binding() {
  return read_one<std::string>(std::string(keystore_key), state_kind::keystore_binding,
                               [](std::string_view v) -> result<std::string> {
                                 if (v.empty() || !from_hex(v)) return failure{"key store id: not hexadecimal"};
                                 return std::string(v);
                               });
}
void saved_state::put_keystore_binding(change& c, std::string_view id_hex) { c.put_entry(keystore_key, id_hex); }

// --- the identifier form ---

std::optional<result<identity_state>> saved_state::identity() {
  return read_one<identity_state>(std::string(identity_key), state_kind::identity, decode_identity_state);
}
void saved_state::put_identity(change& c, const identity_state& s) { c.put_entry(identity_key, encode(s)); }

// --- the fleet ---

result<bool> saved_state::control_applied(std::string_view request) {
  auto r = read_one<bool>(std::string(applied_prefix) + std::string(request), state_kind::fleet, fleet_marker);
  return r ? std::move(*r) : result<bool>(false);
}

void saved_state::put_control_step(change& c, std::uint64_t next, std::string_view request) {
  put_counter(c, counter_name::control, next);
  if (!request.empty()) c.put_entry(std::string(applied_prefix) + std::string(request), "");
}

std::vector<std::string> saved_state::fleet_members() {
  std::vector<std::string> out;
  stream_all<std::string, bool>(
      member_prefix, state_kind::fleet, fleet_marker,
      [](std::string_view key) { return std::optional<std::string>(key.substr(member_prefix.size())); },
      [&](const std::string& name, bool) { out.push_back(name); });
  return out;
}

void saved_state::put_fleet_member(change& c, std::string_view name) {
  c.put_entry(std::string(member_prefix) + std::string(name), "");
}

void saved_state::remove_fleet_member(change& c, std::string_view name) {
  c.remove_entry(std::string(member_prefix) + std::string(name));
}

}  // namespace cdr::store
