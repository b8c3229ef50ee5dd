// Saved state's codecs: every kind round-trips, decodes what earlier builds
// wrote, and never turns damage into a default.
#include <gtest/gtest.h>

#include "cdr/core/hex.h"
#include "cdr/core/saved_state.h"

namespace cdr {
namespace {

instant at(const char* text) { return parse_rfc3339(text).value(); }
const partition june{record_kind::cdr, month::of(2024, 6), 3};

hold sample_hold() {
  hold h;
  h.id = 7;
  h.customer = "acme";
  h.subject = std::string(32, '\x5a');
  h.from_month = month::of(2024, 1);
  h.to_month = month::of(2024, 12);
  h.kind = record_kind::cdr;
  h.reason = "litigation";
  h.reference = "CASE-1";
  h.created_at = at("2025-01-02T03:04:05.000006Z");
  h.created_by = 1000;
  return h;
}

TEST(saved_state, every_kind_round_trips) {
  const auto h = sample_hold();
  EXPECT_EQ(decode_hold(encode(h)).value(), h);

  const deletion_event partition_event{11, "strip_identifiers", june, std::nullopt, {}, 42, at("2025-07-01T00:00:00Z")};
  const deletion_event subject_event{12,
                                     "erase_subject",
                                     std::nullopt,
                                     to_hex(std::string(32, 'k')),
                                     {month::of(2024, 5), month::of(2024, 6)},
                                     3,
                                     at("2025-07-01T00:00:01Z")};
  EXPECT_EQ(decode_deletion_event(encode(partition_event)).value(), partition_event);
  EXPECT_EQ(decode_deletion_event(encode(subject_event)).value(), subject_event);

  const journal_entry j{{{family::identifiers, partition_range(june)},
                         {family::held, point_range("m\x01xyz")},
                         {family::identifiers, point_range("resealed"), /*older_versions=*/true}},
                        {{"action", "strip_identifiers"}, {"records", 42}},
                        partition_event};
  EXPECT_EQ(decode_journal(encode(j)).value(), j);
  const journal_entry keys_only{{}, {{"action", "destroy_keys"}, {"keys", {"p/cdr/2024-06/3"}}}, std::nullopt};
  EXPECT_EQ(decode_journal(encode(keys_only)).value(), keys_only);
  journal_entry purge = j;
  purge.event.reset();
  purge.purge_by = at("2025-07-02T00:00:00Z");
  EXPECT_EQ(decode_journal(encode(purge)).value(), purge);

  const pending_audit a{9, at("2025-07-01T00:00:00.5Z"), {{"action", "hold_add"}, {"requested_by", 0}}};
  EXPECT_EQ(decode_pending_audit(encode(a)).value(), a);
  const audit_head head{5, std::string(64, 'f')};
  EXPECT_EQ(decode_audit_head(encode(head)).value(), head);
  const identity_state settled{"e164:HR", {"digits"}, std::nullopt};
  EXPECT_EQ(decode_identity_state(encode(settled)).value(), settled);
  const identity_state moving{"digits", {}, identity_state::migration{"e164", std::string("r\0\xff", 3), 42}};
  EXPECT_EQ(decode_identity_state(encode(moving)).value(), moving);
  const deferred_erasure d{at("2025-07-01T00:00:00Z"), {record_key(june, "id-1"), record_key(june, "id-2")}};
  EXPECT_EQ(decode_deferred_erasure(encode(d)).value(), d);
  const erased_subject e{{{family::identifiers, record_key(june, "id-1")},
                          {family::subject_index, "\x01xyz"},
                          {family::identifiers, record_key(june, "id-2"), /*resealed=*/true}}};
  EXPECT_EQ(decode_erased_subject(encode(e)).value(), e);
  EXPECT_EQ(decode_counter(encode_counter(18446744073709551615ULL)).value(), 18446744073709551615ULL);
  const erasure_request r{at("2025-07-01T00:00:00.25Z"), "GDPR art. 17", "DSR-9"};
  EXPECT_EQ(decode_erasure_request(encode(r)).value(), r);
  const erasure_request bare{at("2025-07-01T00:00:00Z"), "", ""};
  EXPECT_EQ(decode_erasure_request(encode(bare)).value(), bare);
  const ledger_entry l{std::string(32, '\x07'),
                       at("2025-07-01T00:00:00Z"),
                       "GDPR art. 17",
                       "DSR-9",
                       {{key_name(key_scope::partition, june), std::string(32, 'a')},
                        {key_name(key_scope::held, june), std::string(32, 'b')}}};
  EXPECT_EQ(decode_ledger_entry(encode(l)).value(), l);
  EXPECT_EQ(encode(l).find('\n'), std::string::npos) << "one line";
  const erasure_request purged{at("2025-07-01T00:00:00Z"), "", "DSR-1", true, at("2025-07-02T00:00:00Z")};
  EXPECT_EQ(decode_erasure_request(encode(purged)).value(), purged);
}

// The JSON earlier builds wrote (retention.cc, audit.cc before the typed
// state) decodes to the same meaning.
TEST(saved_state, decodes_what_earlier_builds_wrote) {
  const auto h =
      decode_hold(R"({"created_at":"2025-05-15T00:00:00Z","created_by":0,"customer":"cust-a","from_month":null,"id":1,)"
                  R"("kind":null,"reason":"litigation","reference":"CASE-1","subject":null,"to_month":null})");
  ASSERT_TRUE(h) << h.error();
  EXPECT_EQ(h->customer, "cust-a");
  EXPECT_FALSE(h->kind.has_value());

  const auto j = decode_journal(
      R"({"audit":{"action":"strip_identifiers","class":0,"deadline":"2025-07-01T00:00:00Z","held":0,"kind":"cdr",)"
      R"("month":"2024-06","records":5,"requested_by":0,"trigger":"admin"},"event":{"action":"strip_identifiers",)"
      R"("class":0,"event_id":4,"kind":"cdr","month":"2024-06","records":5,"time":"2025-07-02T00:00:00Z"},)"
      R"("ranges":[["identifiers","010000612f0000","010000612f0001"]]})");
  ASSERT_TRUE(j) << j.error();
  ASSERT_EQ(j->removals.size(), 1u);
  EXPECT_EQ(j->removals[0].family, family::identifiers);
  EXPECT_EQ(j->event->event_id, 4u);
  EXPECT_EQ(j->event->where->month, month::of(2024, 6));
  EXPECT_TRUE(decode_journal(R"({"audit":{"action":"destroy_keys","keys":[]},"event":null,"ranges":[]})"));

  const auto a =
      decode_pending_audit(R"({"entry":{"action":"subject_export","records":1,"requested_by":0,"subject":"ab"},"op":3,)"
                           R"("time":"2026-11-01T00:00:00Z"})");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->op, 3u);
  EXPECT_TRUE(decode_audit_head(R"({"hash":")" + std::string(64, '0') + R"(","seq":0})"));
  EXPECT_TRUE(decode_deferred_erasure(R"({"records":["010000612f0000696431"],"since":"2026-11-01T00:00:00Z"})"));
  EXPECT_TRUE(decode_erased_subject(R"([["identifiers","010000612f0000696431"],["subject_index","01"]])"));
  EXPECT_TRUE(decode_erased_subject("[]"));
  // Requests saved before "done" was kept were finished in one call.
  const auto r = decode_erasure_request(R"({"at":"2026-11-01T00:00:00Z","reason":null,"reference":"DSR-7"})");
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->done);
  EXPECT_FALSE(r->purged_at);
}

// Each kind, damaged in the ways a disk or a hand edit damages it, is an
// error naming what is wrong: never a default, never a partial value.
TEST(saved_state, damage_is_an_error_never_a_default) {
  const auto fails = [](const auto& r, std::string_view why) {
    EXPECT_FALSE(r.ok()) << "decoded although " << why;
    EXPECT_FALSE(r.error().empty());
  };
  auto good = to_json(sample_hold());
  for (const auto& [mutate, why] : std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>>{
           {[](auto& j) { j.erase("reason"); }, "no reason"},
           {[](auto& j) { j["id"] = 0; }, "id 0"},
           {[](auto& j) { j["id"] = "7"; }, "id a string"},
           {[](auto& j) { j["subject"] = "zz"; }, "subject not hex"},
           {[](auto& j) { j["subject"] = "abcd"; }, "subject too short"},
           {[](auto& j) { j["from_month"] = "2024-13"; }, "bad month"},
           {[](auto& j) { j["kind"] = "sms"; }, "bad kind"},
           {[](auto& j) { j["created_at"] = "yesterday"; }, "bad time"},
           {[](auto& j) { j["extra"] = 1; }, "unknown member"},
           {[](auto& j) {
              for (auto k : {"customer", "subject", "from_month", "to_month", "kind"}) j[k] = nullptr;
            },
            "no selector"}}) {
    auto j = good;
    mutate(j);
    fails(decode_hold(j.dump()), why);
  }
  const auto text = encode(sample_hold());
  fails(decode_hold(text.substr(0, text.size() / 2)), "truncated");
  fails(decode_hold(""), "empty");
  fails(decode_hold("[]"), "an array");

  fails(decode_journal(R"({"audit":{"action":"x"},"event":null,"ranges":[["nope","00","01"]]})"), "unknown family");
  fails(decode_journal(R"({"audit":{"action":"x"},"event":null,"ranges":[["held","0g","01"]]})"), "range not hex");
  fails(decode_journal(R"({"audit":{},"event":null,"ranges":[]})"), "audit without action");
  fails(decode_journal(R"({"audit":{"action":"x"},"event":{"event_id":1},"ranges":[]})"), "event incomplete");
  fails(decode_journal(R"({"audit":{"action":"x"},"ranges":[]})"), "event missing");
  fails(decode_deletion_event(
            R"({"action":"x","event_id":1,"records":-1,"time":"2025-01-01T00:00:00Z","subject":"ab","months":[]})"),
        "negative records");
  fails(decode_deletion_event(R"({"action":"x","event_id":1,"records":1,"time":"2025-01-01T00:00:00Z"})"),
        "neither partition nor subject");
  fails(decode_pending_audit(R"({"entry":{"action":"x"},"op":-3,"time":"2025-01-01T00:00:00Z"})"), "negative op");
  fails(decode_pending_audit(R"({"entry":"x","op":3,"time":"2025-01-01T00:00:00Z"})"), "entry not an object");
  fails(decode_audit_head(R"({"hash":"abc","seq":1})"), "short hash");
  fails(decode_identity_state(R"({"form":"e164:hr","earlier":[]})"), "unknown form");
  fails(decode_identity_state(R"({"form":"e164"})"), "no earlier forms");
  fails(decode_identity_state(R"({"form":"e164","earlier":["digits",3]})"), "earlier form not a string");
  fails(decode_identity_state(R"({"form":"e164","earlier":[],"moving":{"to":"e164:HR","after":"zz","records":1}})"),
        "position not hexadecimal");
  fails(decode_deferred_erasure(R"({"records":["ff"],"since":"2025-01-01T00:00:00Z"})"), "key without partition");
  fails(decode_erased_subject(R"([["identifiers"]])"), "pair missing its key");
  fails(decode_erased_subject(R"({})"), "not an array");
  fails(decode_erased_subject(R"([["identifiers","01","kept"]])"), "unknown key mark");
  fails(decode_journal(R"({"audit":{"action":"x"},"event":null,"ranges":[["held","00","01",true]]})"),
        "unknown range mark");
  fails(decode_erasure_request(R"({"at":"soon","reason":null,"reference":null})"), "request time not RFC 3339");
  fails(decode_erasure_request(R"({"reason":null,"reference":null})"), "request without time");
  fails(decode_erasure_request(R"({"at":"2025-01-01T00:00:00Z","reason":1,"reference":null})"), "reason a number");
  fails(decode_erasure_request(R"({"at":"2025-01-01T00:00:00Z","reason":null,"reference":null,"done":"yes"})"),
        "done not a boolean");
  fails(decode_erasure_request(R"({"at":"2025-01-01T00:00:00Z","reason":null,"reference":null,"x":1})"),
        "unknown member");
  const std::string subject(64, 'a');
  fails(decode_ledger_entry(R"({"subject":"ab","at":"2025-01-01T00:00:00Z","reason":"","reference":"","indexes":{}})"),
        "ledger subject not a keyed hash");
  fails(decode_ledger_entry(R"({"subject":")" + subject +
                            R"(","at":"2025-01-01T00:00:00Z","reason":"","reference":"",)"
                            R"("indexes":{"nonsense":"00"}})"),
        "ledger index naming no key");
  fails(decode_ledger_entry(R"({"subject":")" + subject +
                            R"(","at":"2025-01-01T00:00:00Z","reason":"","reference":"",)"
                            R"("indexes":{"p/cdr/2025-01/0":"zz"}})"),
        "ledger index hash not hex");
  fails(decode_ledger_entry(R"({"subject":")" + subject + R"(","reason":"","reference":"","indexes":{}})"),
        "ledger entry without time");
  fails(
      decode_ledger_entry(R"({"subject":")" + subject + R"(","at":"2025-01-01T00:00:00Z","reason":"","reference":"",)"),
      "ledger line cut short");
  fails(decode_counter(""), "empty counter");
  fails(decode_counter("12x"), "trailing garbage");
  fails(decode_counter("-1"), "negative counter");
  fails(decode_counter("99999999999999999999"), "overflow");
}

// The fleet's control messages (issue "The fleet"): every kind round-trips,
// a hold keeps its origin, and damage or a newer build's kind is an error.
TEST(saved_state, control_messages_round_trip_and_refuse_damage) {
  control_message add;
  add.kind = control_kind::hold_add;
  add.member = "member-1";
  add.request = "member-1/00112233aabbccdd";
  add.at = at("2025-04-01T10:00:00Z");
  add.uid = 1000;
  add.new_hold = sample_hold();
  add.new_hold.id = 0;
  add.new_hold.origin_member = add.member;
  add.new_hold.origin_request = add.request;
  add.new_hold.created_at = add.at;
  add.new_hold.created_by = add.uid;
  EXPECT_EQ(decode_control(encode(add)).value(), add);
  // Who made a hold and when is the (signed) message's own uid and time:
  // a body cannot claim another creator or date.
  auto claimed = add;
  claimed.new_hold.created_at = at("2020-01-01T00:00:00Z");
  claimed.new_hold.created_by = 0;
  EXPECT_EQ(decode_control(encode(claimed)).value(), add);
  EXPECT_EQ(control_key(add), "hold_add/member-1/00112233aabbccdd");
  EXPECT_EQ(nlohmann::json::parse(encode(add))["hold"].count("id"), 0u) << "each member numbers the hold";

  control_message release = add;
  release.kind = control_kind::hold_release;
  release.new_hold = {};
  release.hold_request = add.request;
  EXPECT_EQ(decode_control(encode(release)).value(), release);

  control_message erase = release;
  erase.kind = control_kind::subject_erase;
  erase.hold_request.clear();
  erase.sealed_identifier = std::string("\x01\x02sealed", 8);
  erase.reason = "art. 17";
  erase.reference = "DSR-1";
  EXPECT_EQ(decode_control(encode(erase)).value(), erase);

  // A hold with its origin is kept with it; one without decodes as before.
  auto held = sample_hold();
  held.origin_member = "member-2";
  held.origin_request = "member-2/ff";
  EXPECT_EQ(decode_hold(encode(held)).value(), held);
  deletion_event e{9,          "erase_subject", std::nullopt, "ab", {month::of(2024, 6)}, 3, at("2025-01-01T00:00:00Z"),
                   "member-2", "member-2/ff"};
  EXPECT_EQ(decode_deletion_event(encode(e)).value(), e);

  const auto fails = [](std::string text, std::string_view why) {
    const auto r = decode_control(text);
    EXPECT_FALSE(r.ok()) << "decoded although " << why << ": " << text;
  };
  auto j = nlohmann::json::parse(encode(add));
  for (const auto& [mutate, why] : std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>>{
           {[](auto& m) { m["type"] = "drain"; }, "a kind this build does not know"},
           {[](auto& m) { m.erase("request"); }, "no request"},
           {[](auto& m) { m["member"] = ""; }, "empty member"},
           {[](auto& m) { m["uid"] = -1; }, "uid not a uid"},
           {[](auto& m) { m["hold"].erase("reason"); }, "a hold without reason"},
           {[](auto& m) { m["hold_request"] = "x"; }, "a member of another kind"},
           {[](auto& m) { m["hold"]["created_by"] = 0; }, "a hold that names its creator"},
           {[](auto& m) { m["hold"]["created_at"] = "2020-01-01T00:00:00Z"; }, "a hold that names its date"},
           {[](auto& m) { m["at"] = "soon"; }, "bad time"}}) {
    auto copy = j;
    mutate(copy);
    fails(copy.dump(), why);
  }
  auto k = nlohmann::json::parse(encode(erase));
  k["identifier"] = "zz";
  fails(k.dump(), "identifier not hex");
  fails("[]", "not an object");
}

// Queries and heartbeats change nothing (no position saved with them); a
// heartbeat's key is its member's, so compaction keeps the last one.
TEST(saved_state, queries_and_heartbeats_round_trip_and_refuse_damage) {
  control_message q;
  q.kind = control_kind::query;
  q.member = "member-3";
  q.request = "member-3/0a0b";
  q.at = at("2025-04-01T10:00:00Z");
  q.command = "subject export";
  q.args = {{"reason", "art. 15"}};
  q.sealed_identifier = std::string("\x05sealed", 7);
  EXPECT_EQ(decode_control(encode(q)).value(), q);
  EXPECT_EQ(control_key(q), "query/member-3/0a0b");
  EXPECT_FALSE(changes_state(q.kind));
  EXPECT_EQ(encode(q).find("art. 15") != std::string::npos, true);

  control_message h;
  h.kind = control_kind::heartbeat;
  h.member = "member-2";
  h.request = "member-2/heartbeat";
  h.at = at("2025-04-01T10:00:05Z");
  h.incarnation = "0123456789abcdef";
  h.seq = 7;
  h.records = 1234;
  h.next_deadline = at("2025-05-01T00:00:00Z");
  EXPECT_EQ(decode_control(encode(h)).value(), h);
  EXPECT_EQ(control_key(h), "heartbeat/member-2");
  h.next_deadline.reset();
  h.leaving = true;
  EXPECT_EQ(decode_control(encode(h)).value(), h);
  EXPECT_FALSE(changes_state(h.kind));
  EXPECT_TRUE(changes_state(control_kind::hold_add));

  for (const auto& [base, mutate] : std::vector<std::pair<control_message, std::function<void(nlohmann::json&)>>>{
           {q, [](auto& m) { m["command"] = ""; }},
           {q, [](auto& m) { m["args"] = "x"; }},
           {q, [](auto& m) { m["identifier"] = ""; }},
           {h, [](auto& m) { m["leaving"] = "yes"; }},
           {h, [](auto& m) { m["records"] = -1; }},
           {h, [](auto& m) { m["incarnation"] = ""; }},
           {h, [](auto& m) { m.erase("seq"); }},
           {h, [](auto& m) { m["next_deadline"] = "later"; }},
           {h, [](auto& m) { m["command"] = "status"; }}}) {
    auto j = nlohmann::json::parse(encode(base));
    mutate(j);
    EXPECT_FALSE(decode_control(j.dump()).ok()) << j.dump();
  }
}

TEST(saved_state, fleet_replies_round_trip_and_refuse_damage) {
  fleet_reply part{"member-1/0a", "member-2", 0, false, {{{"id", "r-1"}}, {{"id", "r-2"}}}, nullptr, {}};
  EXPECT_EQ(decode_reply(encode(part)).value(), part);
  fleet_reply last{"member-1/0a", "member-2", 1, true, {}, {{"records", 2}}, {}};
  EXPECT_EQ(decode_reply(encode(last)).value(), last);
  fleet_reply failed{"member-1/0a", "member-3", 0, true, {}, nullptr, "unavailable: stopping"};
  EXPECT_EQ(decode_reply(encode(failed)).value(), failed);
  for (const auto& text : {R"({"request":"r","member":"m","part":0,"last":false,"result":{}})",
                           R"({"request":"r","member":"m","part":0,"last":true})",
                           R"({"request":"r","member":"m","part":0,"last":true,"result":1,"error":"x"})",
                           R"({"request":"","member":"m","part":0,"last":true,"result":1})",
                           R"({"request":"r","member":"m","part":-1,"last":true,"result":1})",
                           R"({"request":"r","member":"m","part":0,"last":true,"result":1,"extra":1})",
                           R"({"request":"r","member":"m","part":0,"last":false,"items":{}})"}) {
    EXPECT_FALSE(decode_reply(text).ok()) << text;
  }
}

}  // namespace
}  // namespace cdr
