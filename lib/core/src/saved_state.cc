#include "cdr/core/saved_state.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>

#include <fmt/format.h>

#include "cdr/core/hex.h"
#include "cdr/core/identity.h"

namespace cdr {
namespace {

using json = nlohmann::json;

// A decoding step that failed: the message names the member.
struct bad {
  std::string why;
};

json parse_object(std::string_view text, std::string_view what) {
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad{fmt::format("{} is not JSON", what)};
  if (!j.is_object()) throw bad{fmt::format("{} is not a JSON object", what)};
  return j;
}

// Refuses members the encoder never writes: they mean damage, or a newer
// build's state this one must not half-understand.
void only(const json& j, std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : j.items()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) throw bad{fmt::format("unknown member \"{}\"", k)};
  }
}

const json& member(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) throw bad{fmt::format("\"{}\" is missing", key)};
  return *it;
}

std::uint64_t unsigned_member(const json& j, const char* key) {
  const auto& v = member(j, key);
  if (!v.is_number_unsigned()) throw bad{fmt::format("\"{}\" is not an unsigned integer", key)};
  return v.get<std::uint64_t>();
}

std::int64_t count_member(const json& j, const char* key) {
  const auto& v = member(j, key);
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) throw bad{fmt::format("\"{}\" is not a count", key)};
  return v.get<std::int64_t>();
}

const std::string& string_member(const json& j, const char* key) {
  const auto& v = member(j, key);
  if (!v.is_string()) throw bad{fmt::format("\"{}\" is not a string", key)};
  return v.get_ref<const std::string&>();
}

// A member the encoder writes as null when absent.
const std::string* nullable_string(const json& j, const char* key) {
  const auto& v = member(j, key);
  if (v.is_null()) return nullptr;
  if (!v.is_string()) throw bad{fmt::format("\"{}\" is neither a string nor null", key)};
  return &v.get_ref<const std::string&>();
}

instant time_member(const json& j, const char* key) {
  const auto t = parse_rfc3339(string_member(j, key));
  if (!t) throw bad{fmt::format("\"{}\" is not an RFC 3339 time", key)};
  return *t;
}

month month_of(const std::string& text, const char* key) {
  const auto m = month::parse(text);
  if (!m) throw bad{fmt::format("\"{}\" is not a month (YYYY-MM)", key)};
  return *m;
}

std::string hex_bytes(const std::string& text, const char* key) {
  auto b = from_hex(text);
  if (!b) throw bad{fmt::format("\"{}\" is not hexadecimal", key)};
  return std::move(*b);
}

family family_of(const json& v) {
  const auto f = v.is_string() ? family_from_name(v.get<std::string>()) : std::nullopt;
  if (!f) throw bad{"a column family name is unknown"};
  return *f;
}

// An audit entry as the daemon writes it: an object naming its action.
const json& audit_entry(const json& j, const char* key) {
  const auto& e = member(j, key);
  if (!e.is_object()) throw bad{fmt::format("\"{}\" is not an object", key)};
  const auto a = e.find("action");
  if (a == e.end() || !a->is_string() || a->get_ref<const std::string&>().empty()) {
    throw bad{fmt::format("\"{}\" names no action", key)};
  }
  return e;
}

template <class T, class F>
result<T> decoding(std::string_view what, F&& f) {
  try {
    return f();
  } catch (const bad& b) {
    return failure{fmt::format("{}: {}", what, b.why)};
  } catch (const json::exception& e) {
    return failure{fmt::format("{}: {}", what, e.what())};
  }
}

}  // namespace

std::string_view name(state_kind k) {
  switch (k) {
    case state_kind::hold: return "hold";
    case state_kind::journal: return "journal";
    case state_kind::deletion_event: return "deletion_event";
    case state_kind::deferred_erasure: return "deferred_erasure";
    case state_kind::erased_subject: return "erased_subject";
    case state_kind::pending_audit: return "pending_audit";
    case state_kind::audit_head: return "audit_head";
    case state_kind::counter: return "counter";
    case state_kind::keystore_binding: return "keystore_binding";
    case state_kind::erasure_request: return "erasure_request";
    case state_kind::fleet: return "fleet";
    case state_kind::identity: return "identity";
    case state_kind::unknown: return "unknown";
  }
  return "unknown";
}

// --- holds ---

std::string encode(const hold& h) { return to_json(h).dump(); }

result<hold> decode_hold(std::string_view text) {
  return decoding<hold>("legal hold", [&]() -> hold {
    const auto j = parse_object(text, "the hold");
    only(j, {"id", "customer", "subject", "from_month", "to_month", "kind", "reason", "reference", "created_at",
             "created_by", "origin"});
    hold h;
    h.id = unsigned_member(j, "id");
    if (h.id == 0) throw bad{"\"id\" is 0"};
    if (const auto* s = nullable_string(j, "customer")) h.customer = *s;
    if (const auto* s = nullable_string(j, "subject")) {
      h.subject = hex_bytes(*s, "subject");
      if (h.subject->size() != subject_hash_size) throw bad{"\"subject\" is not a 32-byte keyed hash"};
    }
    if (const auto* s = nullable_string(j, "from_month")) h.from_month = month_of(*s, "from_month");
    if (const auto* s = nullable_string(j, "to_month")) h.to_month = month_of(*s, "to_month");
    if (const auto* s = nullable_string(j, "kind")) {
      h.kind = record_kind_from_name(*s);
      if (!h.kind) throw bad{"\"kind\" is neither cdr nor usage"};
    }
    if (!h.customer && !h.subject && !h.from_month && !h.to_month && !h.kind) throw bad{"it has no selector"};
    h.reason = string_member(j, "reason");
    h.reference = string_member(j, "reference");
    h.created_at = time_member(j, "created_at");
    const auto by = unsigned_member(j, "created_by");
    if (by > 0xffffffffULL) throw bad{"\"created_by\" is not a uid"};
    h.created_by = static_cast<std::uint32_t>(by);
    if (j.contains("origin")) {
      const auto& o = member(j, "origin");
      if (!o.is_object()) throw bad{"\"origin\" is not an object"};
      only(o, {"member", "request"});
      h.origin_member = string_member(o, "member");
      h.origin_request = string_member(o, "request");
      if (h.origin_request.empty()) throw bad{"\"origin\" names no request"};
    }
    return h;
  });
}

// --- deletion events ---

json to_json(const deletion_event& e) {
  json j{{"event_id", e.event_id}, {"action", e.action}, {"records", e.records}, {"time", format_rfc3339(e.time)}};
  if (e.where) {
    j["kind"] = name(e.where->kind);
    j["month"] = e.where->month.to_string();
    j["class"] = e.where->cls;
  }
  if (e.subject) {
    j["subject"] = *e.subject;
    auto months = json::array();
    for (const auto& m : e.months) months.push_back(m.to_string());
    j["months"] = std::move(months);
  }
  if (!e.member.empty()) j["member"] = e.member;
  if (!e.request.empty()) j["request"] = e.request;
  return j;
}

result<deletion_event> deletion_event_from_json(const json& j) {
  return decoding<deletion_event>("deletion event", [&]() -> deletion_event {
    if (!j.is_object()) throw bad{"it is not a JSON object"};
    only(j,
         {"event_id", "action", "records", "time", "kind", "month", "class", "subject", "months", "member", "request"});
    deletion_event e;
    e.event_id = unsigned_member(j, "event_id");
    e.action = string_member(j, "action");
    e.records = count_member(j, "records");
    e.time = time_member(j, "time");
    if (j.contains("member")) e.member = string_member(j, "member");
    if (j.contains("request")) e.request = string_member(j, "request");
    if (j.contains("kind")) {
      const auto kind = record_kind_from_name(string_member(j, "kind"));
      if (!kind) throw bad{"\"kind\" is neither cdr nor usage"};
      const auto cls = unsigned_member(j, "class");
      if (cls > 0xffff) throw bad{"\"class\" is out of range"};
      e.where = partition{*kind, month_of(string_member(j, "month"), "month"), static_cast<retention_class>(cls)};
    } else if (j.contains("subject")) {
      e.subject = string_member(j, "subject");
      if (!from_hex(*e.subject)) throw bad{"\"subject\" is not hexadecimal"};
      const auto& months = member(j, "months");
      if (!months.is_array()) throw bad{"\"months\" is not an array"};
      for (const auto& m : months) {
        if (!m.is_string()) throw bad{"\"months\" holds a non-string"};
        e.months.push_back(month_of(m.get<std::string>(), "months"));
      }
    } else {
      throw bad{"it names neither a partition nor a subject"};
    }
    return e;
  });
}

std::string encode(const deletion_event& e) { return to_json(e).dump(); }

result<deletion_event> decode_deletion_event(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return failure{"deletion event: it is not JSON"};
  return deletion_event_from_json(j);
}

// --- journals ---

std::string encode(const journal_entry& entry) {
  auto ranges = json::array();
  for (const auto& r : entry.removals) {
    auto item = json::array({name(r.family), to_hex(r.range.begin), to_hex(r.range.end)});
    if (r.older_versions) item.push_back("older_versions");
    ranges.push_back(std::move(item));
  }
  json j{{"ranges", std::move(ranges)},
         {"audit", entry.audit},
         {"event", entry.event ? to_json(*entry.event) : json(nullptr)}};
  if (entry.purge_by) j["purge_by"] = format_rfc3339(*entry.purge_by);
  return j.dump();
}

result<journal_entry> decode_journal(std::string_view text) {
  return decoding<journal_entry>("journal", [&]() -> journal_entry {
    const auto j = parse_object(text, "the journal");
    only(j, {"ranges", "audit", "event", "purge_by"});
    journal_entry out;
    if (j.contains("purge_by")) out.purge_by = time_member(j, "purge_by");
    const auto& ranges = member(j, "ranges");
    if (!ranges.is_array()) throw bad{"\"ranges\" is not an array"};
    for (const auto& item : ranges) {
      if (!item.is_array() || item.size() < 3 || item.size() > 4 || !item[1].is_string() || !item[2].is_string() ||
          (item.size() == 4 && item[3] != "older_versions")) {
        throw bad{"a range is not [family, begin, end] or [family, begin, end, \"older_versions\"]"};
      }
      out.removals.push_back(
          {family_of(item[0]),
           key_range{hex_bytes(item[1].get<std::string>(), "ranges"), hex_bytes(item[2].get<std::string>(), "ranges")},
           item.size() == 4});
    }
    out.audit = audit_entry(j, "audit");
    if (const auto& ev = member(j, "event"); !ev.is_null()) {
      auto e = deletion_event_from_json(ev);
      if (!e) throw bad{e.error()};
      out.event = std::move(e).value();
    }
    return out;
  });
}

// --- the audit trail ---

std::string encode(const pending_audit& a) {
  return json{{"op", a.op}, {"time", format_rfc3339(a.time)}, {"entry", a.entry}}.dump();
}

result<pending_audit> decode_pending_audit(std::string_view text) {
  return decoding<pending_audit>("pending audit entry", [&]() -> pending_audit {
    const auto j = parse_object(text, "the entry");
    only(j, {"op", "time", "entry"});
    return {unsigned_member(j, "op"), time_member(j, "time"), audit_entry(j, "entry")};
  });
}

std::string encode(const audit_head& h) {
  json j{{"seq", h.seq}, {"hash", h.hash}};
  if (h.bytes) j["bytes"] = *h.bytes;
  return j.dump();
}

result<audit_head> decode_audit_head(std::string_view text) {
  return decoding<audit_head>("audit head", [&]() -> audit_head {
    const auto j = parse_object(text, "the head");
    only(j, {"seq", "hash", "bytes"});
    audit_head h{unsigned_member(j, "seq"), string_member(j, "hash"), std::nullopt};
    if (j.contains("bytes")) h.bytes = unsigned_member(j, "bytes");
    if (h.hash.size() != 64 || !from_hex(h.hash)) throw bad{"\"hash\" is not a hex SHA-256"};
    return h;
  });
}

// --- the identifier form ---

std::string encode(const identity_state& s) {
  json j{{"form", s.form}, {"earlier", s.earlier}};
  if (s.moving)
    j["moving"] = {{"to", s.moving->to}, {"after", to_hex(s.moving->after)}, {"records", s.moving->records}};
  return j.dump();
}

result<identity_state> decode_identity_state(std::string_view text) {
  return decoding<identity_state>("identity", [&]() -> identity_state {
    const auto j = parse_object(text, "the identity");
    only(j, {"form", "earlier", "moving"});
    identity_state s;
    const auto form = [](const std::string& f) {
      if (!form_region(f)) throw bad{"unknown identifier form \"" + f + "\""};
      return f;
    };
    s.form = form(string_member(j, "form"));
    if (!j.contains("earlier") || !j["earlier"].is_array()) throw bad{"\"earlier\" is not an array"};
    for (const auto& e : j["earlier"]) {
      if (!e.is_string()) throw bad{"\"earlier\" holds a non-string"};
      s.earlier.push_back(form(e.get<std::string>()));
    }
    if (j.contains("moving")) {
      const auto& m = j["moving"];
      if (!m.is_object()) throw bad{"\"moving\" is not an object"};
      only(m, {"to", "after", "records"});
      const auto after = from_hex(string_member(m, "after"));
      if (!after) throw bad{"\"moving.after\" is not hexadecimal"};
      s.moving = identity_state::migration{form(string_member(m, "to")), *after, unsigned_member(m, "records")};
    }
    return s;
  });
}

// --- erasures ---

std::string encode(const deferred_erasure& d) {
  auto records = json::array();
  for (const auto& k : d.record_keys) records.push_back(to_hex(k));
  return json{{"since", format_rfc3339(d.since)}, {"records", std::move(records)}}.dump();
}

result<deferred_erasure> decode_deferred_erasure(std::string_view text) {
  return decoding<deferred_erasure>("deferred erasure", [&]() -> deferred_erasure {
    const auto j = parse_object(text, "the deferred erasure");
    only(j, {"since", "records"});
    deferred_erasure d;
    d.since = time_member(j, "since");
    const auto& records = member(j, "records");
    if (!records.is_array()) throw bad{"\"records\" is not an array"};
    for (const auto& r : records) {
      if (!r.is_string()) throw bad{"\"records\" holds a non-string"};
      auto key = hex_bytes(r.get<std::string>(), "records");
      if (!decode_partition(key)) throw bad{"a record key names no partition"};
      d.record_keys.push_back(std::move(key));
    }
    return d;
  });
}

std::string encode(const erasure_request& r) {
  const auto text = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json j{{"at", format_rfc3339(r.at)}, {"reason", text(r.reason)}, {"reference", text(r.reference)}, {"done", r.done}};
  if (r.purged_at) j["purged_at"] = format_rfc3339(*r.purged_at);
  return j.dump();
}

result<erasure_request> decode_erasure_request(std::string_view text) {
  return decoding<erasure_request>("erasure request", [&]() -> erasure_request {
    const auto j = parse_object(text, "the erasure request");
    only(j, {"at", "reason", "reference", "done", "purged_at"});
    erasure_request r;
    r.at = time_member(j, "at");
    // Requests saved before "done" was kept finished in one call.
    r.done = true;
    if (j.contains("done")) {
      if (!j["done"].is_boolean()) throw bad{"\"done\" is not true or false"};
      r.done = j["done"].get<bool>();
    }
    if (j.contains("purged_at")) r.purged_at = time_member(j, "purged_at");
    if (const auto* s = nullable_string(j, "reason")) r.reason = *s;
    if (const auto* s = nullable_string(j, "reference")) r.reference = *s;
    return r;
  });
}

std::string encode(const erased_subject& e) {
  auto out = json::array();
  for (const auto& k : e.keys) {
    auto item = json::array({name(k.where), to_hex(k.key)});
    if (k.resealed) item.push_back("resealed");
    out.push_back(std::move(item));
  }
  return out.dump();
}

result<erased_subject> decode_erased_subject(std::string_view text) {
  return decoding<erased_subject>("erased subject", [&]() -> erased_subject {
    const auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) throw bad{"it is not a JSON array"};
    erased_subject e;
    for (const auto& item : j) {
      if (!item.is_array() || item.size() < 2 || item.size() > 3 || !item[1].is_string() ||
          (item.size() == 3 && item[2] != "resealed")) {
        throw bad{"a key is not [family, key] or [family, key, \"resealed\"]"};
      }
      e.keys.push_back({family_of(item[0]), hex_bytes(item[1].get<std::string>(), "keys"), item.size() == 3});
    }
    return e;
  });
}

// --- the erasure ledger ---

std::string encode(const ledger_entry& e) {
  auto indexes = json::object();
  for (const auto& [key, hash] : e.indexes) indexes[key] = to_hex(hash);
  return json{{"subject", to_hex(e.subject)},
              {"at", format_rfc3339(e.at)},
              {"reason", e.reason},
              {"reference", e.reference},
              {"indexes", std::move(indexes)}}
      .dump();
}

result<ledger_entry> decode_ledger_entry(std::string_view text) {
  return decoding<ledger_entry>("erasure ledger entry", [&]() -> ledger_entry {
    const auto j = parse_object(text, "the entry");
    only(j, {"subject", "at", "reason", "reference", "indexes"});
    ledger_entry e;
    e.subject = hex_bytes(string_member(j, "subject"), "subject");
    if (e.subject.size() != subject_hash_size) throw bad{"\"subject\" is not a keyed hash"};
    e.at = time_member(j, "at");
    e.reason = string_member(j, "reason");
    e.reference = string_member(j, "reference");
    const auto& indexes = member(j, "indexes");
    if (!indexes.is_object()) throw bad{"\"indexes\" is not an object"};
    for (const auto& [key, hash] : indexes.items()) {
      if (!parse_key_name(key)) throw bad{"\"indexes\" names no data key: " + key};
      if (!hash.is_string()) throw bad{"an index hash is not a string"};
      e.indexes[key] = hex_bytes(hash.get<std::string>(), "indexes");
    }
    return e;
  });
}

// --- control messages ---

std::string_view name(control_kind k) {
  switch (k) {
    case control_kind::hold_add: return "hold_add";
    case control_kind::hold_release: return "hold_release";
    case control_kind::subject_erase: return "subject_erase";
    case control_kind::query: return "query";
    case control_kind::heartbeat: return "heartbeat";
  }
  return "hold_add";
}

std::string control_key(const control_message& m) {
  return fmt::format("{}/{}", name(m.kind), m.kind == control_kind::heartbeat ? m.member : m.request);
}

bool changes_state(control_kind k) { return k != control_kind::query && k != control_kind::heartbeat; }

std::string encode(const control_message& m) {
  json j{{"type", name(m.kind)},
         {"member", m.member},
         {"request", m.request},
         {"at", format_rfc3339(m.at)},
         {"uid", m.uid}};
  switch (m.kind) {
    case control_kind::hold_add: {
      auto h = to_json(m.new_hold);
      h.erase("id");
      // The message's own member, request, uid and time stand for them.
      for (const auto* k : {"origin", "created_at", "created_by"}) h.erase(k);
      j["hold"] = std::move(h);
      break;
    }
    case control_kind::hold_release:
      j["hold_request"] = m.hold_request;
      j["reason"] = m.reason;
      j["reference"] = m.reference;
      break;
    case control_kind::subject_erase:
      j["identifier"] = to_hex(m.sealed_identifier);
      j["reason"] = m.reason;
      j["reference"] = m.reference;
      break;
    case control_kind::query:
      j["command"] = m.command;
      j["args"] = m.args;
      if (!m.sealed_identifier.empty()) j["identifier"] = to_hex(m.sealed_identifier);
      break;
    case control_kind::heartbeat:
      j["leaving"] = m.leaving;
      j["incarnation"] = m.incarnation;
      j["seq"] = m.seq;
      j["records"] = m.records;
      j["next_deadline"] = m.next_deadline ? json(format_rfc3339(*m.next_deadline)) : json(nullptr);
      break;
  }
  return j.dump();
}

result<control_message> decode_control(std::string_view text) {
  return decoding<control_message>("control message", [&]() -> control_message {
    auto j = parse_object(text, "the message");
    control_message m;
    const auto& type = string_member(j, "type");
    if (type == "hold_add") {
      m.kind = control_kind::hold_add;
      only(j, {"type", "member", "request", "at", "uid", "hold"});
    } else if (type == "hold_release") {
      m.kind = control_kind::hold_release;
      only(j, {"type", "member", "request", "at", "uid", "hold_request", "reason", "reference"});
    } else if (type == "subject_erase") {
      m.kind = control_kind::subject_erase;
      only(j, {"type", "member", "request", "at", "uid", "identifier", "reason", "reference"});
    } else if (type == "query") {
      m.kind = control_kind::query;
      only(j, {"type", "member", "request", "at", "uid", "command", "args", "identifier"});
    } else if (type == "heartbeat") {
      m.kind = control_kind::heartbeat;
      only(j, {"type", "member", "request", "at", "uid", "leaving", "incarnation", "seq", "records", "next_deadline"});
    } else {
      throw bad{fmt::format("\"type\" {} is not an action this build knows", json(type).dump())};
    }
    m.member = string_member(j, "member");
    m.request = string_member(j, "request");
    if (m.member.empty() || m.request.empty()) throw bad{"\"member\" and \"request\" must not be empty"};
    m.at = time_member(j, "at");
    const auto uid = unsigned_member(j, "uid");
    if (uid > 0xffffffffULL) throw bad{"\"uid\" is not a uid"};
    m.uid = static_cast<std::uint32_t>(uid);
    switch (m.kind) {
      case control_kind::hold_add: {
        auto h = member(j, "hold");
        if (!h.is_object()) throw bad{"\"hold\" is not an object"};
        if (h.contains("created_at") || h.contains("created_by") || h.contains("origin")) {
          throw bad{"\"hold\" names its creator or origin: they are the message's own"};
        }
        h["id"] = 1;  // numbered by each member
        h["created_at"] = j["at"];
        h["created_by"] = m.uid;
        auto decoded = decode_hold(h.dump());
        if (!decoded) throw bad{decoded.error()};
        m.new_hold = std::move(decoded.value());
        m.new_hold.id = 0;
        m.new_hold.created_at = m.at;
        m.new_hold.created_by = m.uid;
        m.new_hold.origin_member = m.member;
        m.new_hold.origin_request = m.request;
        break;
      }
      case control_kind::hold_release:
        m.hold_request = string_member(j, "hold_request");
        if (m.hold_request.empty()) throw bad{"\"hold_request\" is empty"};
        // Releases published by earlier builds carry neither.
        if (j.contains("reason")) m.reason = string_member(j, "reason");
        if (j.contains("reference")) m.reference = string_member(j, "reference");
        break;
      case control_kind::subject_erase:
        m.sealed_identifier = hex_bytes(string_member(j, "identifier"), "identifier");
        if (m.sealed_identifier.empty()) throw bad{"\"identifier\" is empty"};
        m.reason = string_member(j, "reason");
        m.reference = string_member(j, "reference");
        break;
      case control_kind::query:
        m.command = string_member(j, "command");
        if (m.command.empty()) throw bad{"\"command\" is empty"};
        m.args = member(j, "args");
        if (!m.args.is_object()) throw bad{"\"args\" is not an object"};
        if (j.contains("identifier")) {
          m.sealed_identifier = hex_bytes(string_member(j, "identifier"), "identifier");
          if (m.sealed_identifier.empty()) throw bad{"\"identifier\" is empty"};
        }
        break;
      case control_kind::heartbeat: {
        const auto& leaving = member(j, "leaving");
        if (!leaving.is_boolean()) throw bad{"\"leaving\" is not true or false"};
        m.leaving = leaving.get<bool>();
        m.incarnation = string_member(j, "incarnation");
        if (m.incarnation.empty()) throw bad{"\"incarnation\" is empty"};
        m.seq = unsigned_member(j, "seq");
        m.records = count_member(j, "records");
        if (!member(j, "next_deadline").is_null()) m.next_deadline = time_member(j, "next_deadline");
        break;
      }
    }
    return m;
  });
}

std::string encode(const fleet_reply& r) {
  json j{{"request", r.request}, {"member", r.member}, {"part", r.part}, {"last", r.last}};
  if (!r.items.empty()) j["items"] = r.items;
  if (r.last) {
    if (r.error.empty()) {
      j["result"] = r.result;
    } else {
      j["error"] = r.error;
    }
  }
  return j.dump();
}

result<fleet_reply> decode_reply(std::string_view text) {
  return decoding<fleet_reply>("fleet reply", [&]() -> fleet_reply {
    auto j = parse_object(text, "the reply");
    only(j, {"request", "member", "part", "last", "items", "result", "error"});
    fleet_reply r;
    r.request = string_member(j, "request");
    r.member = string_member(j, "member");
    if (r.request.empty() || r.member.empty()) throw bad{"\"request\" and \"member\" must not be empty"};
    const auto part = unsigned_member(j, "part");
    if (part > 0xffffffffULL) throw bad{"\"part\" is too large"};
    r.part = static_cast<std::uint32_t>(part);
    const auto& last = member(j, "last");
    if (!last.is_boolean()) throw bad{"\"last\" is not true or false"};
    r.last = last.get<bool>();
    if (j.contains("items")) {
      const auto& items = j["items"];
      if (!items.is_array()) throw bad{"\"items\" is not an array"};
      r.items.assign(items.begin(), items.end());
    }
    if (r.last) {
      if (j.contains("error")) {
        r.error = string_member(j, "error");
        if (r.error.empty() || j.contains("result")) throw bad{"a last part has a result or a non-empty error"};
      } else {
        r.result = member(j, "result");
      }
    } else if (j.contains("result") || j.contains("error")) {
      throw bad{"only the last part has a result or an error"};
    }
    return r;
  });
}

// --- counters ---

std::string encode_counter(std::uint64_t v) { return std::to_string(v); }

result<std::uint64_t> decode_counter(std::string_view text) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) return failure{"counter: not a decimal number"};
  return v;
}

}  // namespace cdr
