// The audit trail's entries (cdr/core/audit_record.h): each record encodes
// to the fields the trail has always carried (docs/operations.md, "Audit"),
// so a regulator's tooling reads a trail across builds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cdr/core/audit_record.h"

namespace cdr::test {
namespace {

using nlohmann::json;

const instant t0 = parse_rfc3339("2025-02-01T00:00:00Z").value();

TEST(audit_record, a_sweep_action_names_its_partition_deadline_and_requester) {
  const partition p{record_kind::cdr, month::of(2024, 1), 3};
  const audit::record r = audit::partition_action{retention_action::strip_identifiers, p, 10, 2, t0, "schedule", 0};
  EXPECT_EQ(audit::encode(r, "m-1"), json::parse(R"({"action":"strip_identifiers","kind":"cdr","month":"2024-01",
    "class":3,"records":10,"held":2,"deadline":"2025-02-01T00:00:00Z","trigger":"schedule","requested_by":0,
    "member":"m-1"})"));
  const audit::record released =
      audit::partition_action{retention_action::drop_metadata, p, 4, std::nullopt, std::nullopt, "hold_release", 7};
  EXPECT_EQ(audit::encode(released), json::parse(R"({"action":"drop_metadata","kind":"cdr","month":"2024-01","class":3,
    "records":4,"trigger":"hold_release","requested_by":7})"))
      << "no member, held or deadline when they are not known";
}

TEST(audit_record, holds_carry_the_hold_and_the_fleet_request_they_came_from) {
  hold h;
  h.id = 3;
  h.customer = "acme";
  h.reason = "litigation";
  h.created_at = t0;
  h.created_by = 1000;
  h.origin_member = "m-2";
  h.origin_request = "m-2/ab";
  const auto added = audit::encode(audit::hold_added{h, 1000});
  EXPECT_EQ(added["action"], "hold_add");
  EXPECT_EQ(added["hold"], to_json(h));
  EXPECT_EQ(added["origin"], json::parse(R"({"member":"m-2","request":"m-2/ab"})"));
  EXPECT_EQ(audit::origin_of(audit::hold_added{h, 1000}), (audit::origin{"m-2", "m-2/ab"}));

  const audit::record released =
      audit::hold_released{h, 1001, audit::request_note{"case closed", "F-9", audit::origin{"m-1", "m-1/cd"}, {}}};
  const auto j = audit::encode(released);
  EXPECT_EQ(j["action"], "hold_release");
  EXPECT_EQ(j["requested_by"], 1001);
  EXPECT_EQ(j["origin"]["request"], "m-1/cd");
  EXPECT_EQ(j["reason"], "case closed") << "a release says why, like the hold";
  EXPECT_EQ(j["reference"], "F-9");
  EXPECT_EQ(audit::origin_of(released)->request, "m-1/cd");
  EXPECT_FALSE(audit::encode(audit::hold_released{h, 1001, {}}).contains("origin"));
}

TEST(audit_record, an_erasure_names_the_subject_by_hash_with_its_note_and_purge_deadline) {
  audit::subject_erased e{"ab12", 3,       4,    1,  {{month::of(2024, 5), 3}},
                          {9},    "admin", 1000, t0, audit::request_note{"GDPR art. 17", "ticket-7", std::nullopt, {}}};
  EXPECT_EQ(audit::encode(e),
            json::parse(R"({"action":"erase_subject","subject":"ab12","records":3,"values":4,"deferred":1,
    "months":{"2024-05":3},"holds":[9],"trigger":"admin","requested_by":1000,
    "purge_deadline":"2025-02-01T00:00:00Z","reason":"GDPR art. 17","reference":"ticket-7"})"));
  e.records = 0;
  e.purge_deadline.reset();
  e.note = audit::request_note{{}, {}, audit::origin{"m-1", "m-1/ef"}, "/var/lib/k/erasures.jsonl"};
  const auto j = audit::encode(e);
  EXPECT_FALSE(j.contains("purge_deadline"));
  EXPECT_FALSE(j.contains("reason")) << "an empty reason is left out";
  EXPECT_EQ(j["origin"]["member"], "m-1");
  EXPECT_EQ(j["reapplied_from"], "/var/lib/k/erasures.jsonl");
  EXPECT_EQ(audit::origin_of(e)->request, "m-1/ef");

  EXPECT_EQ(audit::encode(audit::erasure_purged{"ab12", 3, t0, "admin"}),
            json::parse(R"({"action":"erasure_purged","subject":"ab12","records":3,
              "erased_at":"2025-02-01T00:00:00Z","trigger":"admin"})"));
  EXPECT_EQ(audit::encode(audit::subject_exported{"ab12", 5, 1000, {"dsar", "", std::nullopt, {}}}),
            json::parse(R"({"action":"subject_export","subject":"ab12","records":5,"requested_by":1000,
              "reason":"dsar"})"));
}

TEST(audit_record, the_remaining_actions_keep_their_names_and_fields) {
  EXPECT_EQ(audit::encode(audit::keys_destroyed{{"cdr/2024-01"}, "sweep", 0}),
            json::parse(R"({"action":"destroy_keys","keys":["cdr/2024-01"],"trigger":"sweep","requested_by":0})"));
  EXPECT_EQ(audit::encode(audit::clock_confirmed{t0, 86400.5, 0}),
            json::parse(R"({"action":"clock_confirm","wall_clock":"2025-02-01T00:00:00Z","jump_seconds":86400.5,
              "requested_by":0})"));
  EXPECT_EQ(audit::encode(audit::control_refused{"control", 4, 9, 6, {{"unsigned", 5}, {"replay", 1}}, {"intruder"}}),
            json::parse(R"({"action":"control_refused","topic":"control","first_offset":4,"last_offset":9,
              "messages":6,"reasons":{"unsigned":5,"replay":1},"claimed_members":["intruder"]})"));
  EXPECT_EQ(audit::encode(audit::control_skipped{"control", 12, "unknown type", 0}),
            json::parse(R"({"action":"control_skip","topic":"control","offset":12,"why":"unknown type",
              "requested_by":0})"));
  EXPECT_EQ(audit::encode(audit::store_drained{json{{"member", "m-3"}, {"handed_over", 10}}, 10, 2, 0}, "m-3"),
            json::parse(R"({"action":"drain","member":"m-3","handed_over":10,"records_removed":10,
              "held_copies_removed":2,"requested_by":0})"));
  EXPECT_EQ(audit::encode(audit::audit_rekeyed{12, "00ff"}),
            json::parse(R"({"action":"rekey_audit_chain","entries":12,"legacy_head":"00ff"})"));
  EXPECT_EQ(audit::encode(audit::audit_tail_repaired{17, 40}),
            json::parse(R"({"action":"repair_audit_tail","truncated_bytes":17,"after_seq":40})"));
}

}  // namespace
}  // namespace cdr::test
