// Saved state that does not decode is never skipped: it is named, sweeps and
// erasures are refused while it lasts, nothing it protects is removed, and
// once it is repaired everything runs again.
#include <gtest/gtest.h>

#include "cdr/core/hex.h"
#include "fixture.h"

namespace cdr::test {
namespace {

struct damage {
  std::string key;  // raw saved-state key
  std::string value;
  state_kind kind;
  std::string shown;  // the key as status shows it
};

std::string hex_subject() { return to_hex(std::string(32, 's')); }

std::vector<damage> damages() {
  return {
      {"hold/" + be64(1), R"({"id":1,"customer":"acme")", state_kind::hold, "hold/0000000000000001"},
      {"journal/" + be64(40), R"({"ranges":[["identifiers","zz","00"]],"audit":{"action":"x"},"event":null})",
       state_kind::journal, "journal/0000000000000028"},
      {"event/" + be64(41), R"({"event_id":41,"action":"strip_identifiers"})", state_kind::deletion_event,
       "event/0000000000000029"},
      {"deferred/" + hex_subject(), R"({"since":"2025-01-01T00:00:00Z","records":"oops"})",
       state_kind::deferred_erasure, "deferred/" + hex_subject()},
      {"erased/" + hex_subject(), R"([["identifiers"]])", state_kind::erased_subject, "erased/" + hex_subject()},
      {"request/" + hex_subject(), R"({"at":"yesterday","reason":null,"reference":null})", state_kind::erasure_request,
       "request/" + hex_subject()},
      {"audit/" + be64(42), R"({"op":42,"time":"2025-01-01T00:00:00Z","entry":{}})", state_kind::pending_audit,
       "audit/000000000000002a"},
      {"audit_head", R"({"seq":3})", state_kind::audit_head, "audit_head"},
      {"op_counter", "12x", state_kind::counter, "op_counter"},
      {"a-key-from-the-future", "{}", state_kind::unknown, "a-key-from-the-future"},
  };
}

class unreadable_state : public service_fixture, public ::testing::WithParamInterface<damage> {
 protected:
  unreadable_state() : service_fixture("2025-03-15T00:00:00Z") {}
};

TEST_P(unreadable_state, is_named_refuses_destruction_and_keeps_the_data) {
  const auto& d = GetParam();
  // A hold (id 1) and records of a month whose strip is due (2024-01: 2025-02-01).
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "other"}, {"reason", "r"}, {"reference", "x"}}, 0)));
  fill(month::of(2024, 1), 0, 20, "acme", "+14155550100");
  close();
  put_raw_saved_state(dir_ / "data", d.key, d.value);
  open();

  const auto bad = state_->unreadable();
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].kind, d.kind);
  EXPECT_EQ(bad[0].key, d.shown);
  EXPECT_FALSE(bad[0].reason.empty());
  const auto report = retention_->saved_state_report();
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["unreadable"][0]["key"], d.shown);

  // Destructive work is refused, naming the entry; nothing is removed.
  try {
    retention_->sweep("admin", 0);
    ADD_FAILURE() << "a sweep ran with " << d.shown << " unreadable";
  } catch (const service::state_unreadable& e) {
    EXPECT_NE(std::string(e.what()).find(d.shown), std::string::npos) << e.what();
  }
  EXPECT_THROW(retention_->subject_erase("+14155550100", 0), service::state_unreadable);
  if (d.kind != state_kind::hold) {
    EXPECT_THROW(retention_->hold_release(1, 0, {"case closed", "T-1", std::nullopt, {}}), service::state_unreadable);
  }
  EXPECT_EQ(store_->counts().at({record_kind::cdr, month::of(2024, 1), 0}), 20);
  EXPECT_TRUE(store_->states().empty()) << "no partition was stripped";
  EXPECT_EQ(retention_->subject_records(normalize_identifier("+14155550100")).size(), 20u);
  // Recovery at start is refused too (it would finish journals and destroy keys).
  retention_->recover();
  EXPECT_EQ(state_->unreadable().size(), 1u);

  // Repaired (a valid value written over it, as the runbook does), it all runs.
  close();
  put_raw_saved_state(dir_ / "data", d.key, [&]() -> std::string {
    switch (d.kind) {
      case state_kind::hold:
        return R"({"created_at":"2025-03-15T00:00:00Z","created_by":0,"customer":"other","from_month":null,"id":1,)"
               R"("kind":null,"reason":"r","reference":"x","subject":null,"to_month":null})";
      case state_kind::journal: return R"({"audit":{"action":"repaired"},"event":null,"ranges":[]})";
      case state_kind::deletion_event:
        return R"({"action":"strip_identifiers","class":0,"event_id":41,"kind":"cdr","month":"2023-01","records":0,)"
               R"("time":"2025-01-01T00:00:00Z"})";
      case state_kind::deferred_erasure: return R"({"records":[],"since":"2025-01-01T00:00:00Z"})";
      case state_kind::erased_subject: return "[]";
      case state_kind::erasure_request: return R"({"at":"2025-01-01T00:00:00Z","reason":null,"reference":null})";
      case state_kind::pending_audit: return R"({"entry":{"action":"repaired"},"op":42,"time":"2025-01-01T00:00:00Z"})";
      case state_kind::audit_head: return R"({"hash":")" + std::string(64, '0') + R"(","seq":0})";
      case state_kind::counter: return "45";
      default: return "";
    }
  }());
  open();
  if (d.kind == state_kind::unknown) {
    EXPECT_EQ(state_->unreadable().size(), 1u) << "an unknown key stays reported until removed";
    return;
  }
  EXPECT_TRUE(state_->healthy());
  const auto r = retention_->sweep("admin", 0);
  ASSERT_EQ(r["actions"].size(), 1u) << r.dump();
  EXPECT_EQ(store_->states().at({record_kind::cdr, month::of(2024, 1), 0}), (partition_state{true, false}));
}

INSTANTIATE_TEST_SUITE_P(each_kind, unreadable_state, ::testing::ValuesIn(damages()),
                         [](const ::testing::TestParamInfo<damage>& p) { return std::string(name(p.param.kind)); });

class unreadable_hold : public service_fixture {
 protected:
  unreadable_hold() : service_fixture("2025-03-15T00:00:00Z") {}
};

// An unreadable hold is a hold over everything for what ingest decides: a
// late event it might name is kept whole, never stripped or dropped.
TEST_F(unreadable_hold, stands_for_a_hold_over_everything) {
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "acme"}, {"reason", "litigation"}, {"reference", "C-1"}}, 0)));
  close();
  put_raw_saved_state(dir_ / "data", "hold/" + be64(1), "{\"id\":1,");
  open();
  const auto matched = retention_->holds();
  ASSERT_EQ(matched->size(), 1u);
  EXPECT_EQ((*matched)[0].id, 0u);
  EXPECT_TRUE((*matched)[0].whole());
  EXPECT_TRUE(any_covers(*matched, {record_kind::cdr, month::of(2014, 1), 0}, "anyone", {}));
  const auto list = retention_->hold_list();
  EXPECT_TRUE(list["holds"].empty());
  EXPECT_EQ(list["unreadable"], 1);
  EXPECT_THROW(retention_->hold_release(1, 0, {"case closed", "T-1", std::nullopt, {}}), service::state_unreadable);
}

class unreadable_audit : public service_fixture {};

// A pending audit entry that does not decode stops the trail where it is:
// nothing after it is appended, nothing is dropped.
TEST_F(unreadable_audit, stops_appending_and_loses_nothing) {
  close();
  put_raw_saved_state(dir_ / "data", "audit/" + be64(99), "not json");
  open();
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "acme"}, {"reason", "r"}, {"reference", "x"}}, 0)));
  EXPECT_EQ(read_file(retention_->audit().path()), "") << "nothing appended around the damaged entry";
  const auto pending = state_->pending_audit_entries();
  EXPECT_EQ(pending.items.size(), 1u) << "the hold's entry waits";
  EXPECT_EQ(pending.unreadable.size(), 1u);
}

}  // namespace
}  // namespace cdr::test
