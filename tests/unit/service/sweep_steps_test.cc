// The two steps of a sweep, in process: a crash after the logical step
// leaves journals that recovery finishes, physically and in the audit trail.
#include <gtest/gtest.h>

#include "failpoint.h"
#include "fixture.h"

namespace cdr::test {
namespace {

class sweep_steps : public service_fixture {
 protected:
  sweep_steps() : service_fixture("2025-01-15T00:00:00Z") {}
  ~sweep_steps() override { service::arm_failpoint(""); }

  std::size_t with_identifiers(month m) {
    std::size_t n = 0;
    store_->for_each_record(record_kind::cdr, [&](const partition& p, std::string_view, bool ids) {
      if (p.month == m && ids) ++n;
    });
    return n;
  }
};

TEST_F(sweep_steps, a_crash_between_the_logical_and_the_physical_step_is_finished_by_recovery) {
  const auto nov = month::of(2023, 11);  // strip due 2024-12-01
  const auto dec = month::of(2023, 12);  // strip due 2025-01-01
  const auto feb = month::of(2024, 2);   // not due
  fill(nov, 0, 40);
  fill(dec, 40, 40);
  fill(feb, 80, 40);
  service::arm_failpoint("after_logical_step");
  EXPECT_THROW(retention_->sweep("admin", 0), service::simulated_crash);
  service::arm_failpoint("");
  reopen();  // the crash

  // The logical step committed: nothing is readable any more, and journals
  // name what must still go from disk; no audit entry says it is done.
  EXPECT_EQ(with_identifiers(nov), 0u);
  EXPECT_EQ(with_identifiers(dec), 0u);
  EXPECT_EQ(with_identifiers(feb), 40u);
  EXPECT_EQ(state_->journals().items.size(), 3u) << "two strips and the key destruction";
  EXPECT_EQ(read_file(retention_->audit().path()).find("strip_identifiers"), std::string::npos);

  retention_->recover();
  EXPECT_TRUE(state_->journals().items.empty());
  const auto trail = read_file(retention_->audit().path());
  EXPECT_NE(trail.find("\"action\":\"strip_identifiers\""), std::string::npos) << trail;
  EXPECT_NE(trail.find("\"purge_seconds\""), std::string::npos);
  EXPECT_TRUE(retention_->audit().verify().ok);
  EXPECT_EQ(state_->events().items.size(), 2u) << "one deletion event per strip";
  const auto v = retention_->verify();
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["partitions"].size(), 2u);
  // Nothing left to do; a second sweep changes nothing.
  const auto again = retention_->sweep("admin", 0);
  EXPECT_TRUE(again["actions"].empty()) << again.dump();
  EXPECT_EQ(with_identifiers(feb), 40u);
}

TEST_F(sweep_steps, held_records_survive_the_strip_and_go_after_release) {
  const auto nov = month::of(2023, 11);
  fill(nov, 0, 10, "acme");
  fill(nov, 10, 10, "other");
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "acme"}, {"reason", "litigation"}, {"reference", "C-1"}}, 0)));
  const auto r = retention_->sweep("admin", 0);
  ASSERT_EQ(r["actions"].size(), 1u) << r.dump();
  EXPECT_EQ(r["actions"][0]["held"], 10);
  EXPECT_EQ(retention_->figures().records_held, 10);
  ASSERT_TRUE(retention_->hold_release(1, 0, {"case closed", "T-1", std::nullopt, {}}).has_value());
  const auto after = retention_->sweep("admin", 0);
  ASSERT_EQ(after["released"].size(), 1u) << after.dump();
  EXPECT_EQ(after["released"][0]["records"], 10);
  EXPECT_EQ(retention_->figures().records_held, 0);
  EXPECT_TRUE(retention_->verify()["ok"].get<bool>());
}

// A subject hold keeps the subject's records whole through the strip (their
// identifiers to the held family) and through the metadata's drop years
// later, when the partition's own identifiers are long gone: the drop finds
// the subject's records by their held identifiers, and copies only those.
TEST_F(sweep_steps, a_subject_hold_keeps_its_records_through_the_strip_and_the_later_drop) {
  const auto nov = month::of(2023, 11);
  const std::string subject = "+4917000111222";
  fill(nov, 0, 3, "acme", subject);
  fill(nov, 3, 5, "acme");
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"subject", subject}, {"reason", "litigation"}, {"reference", "C-3"}}, 0)));
  const auto strip = retention_->sweep("admin", 0);
  ASSERT_EQ(strip["actions"].size(), 1u) << strip.dump();
  EXPECT_EQ(strip["actions"][0]["held"], 3);

  time_.set_wall(parse_rfc3339("2034-01-02T00:00:00Z").value());  // 2023's metadata is due
  time_.advance(std::chrono::seconds(0));
  retention_->clock_moved_deliberately();
  const auto drop = retention_->sweep("admin", 0);
  ASSERT_EQ(drop["actions"].size(), 1u) << drop.dump();
  EXPECT_EQ(drop["actions"][0]["action"], "drop_metadata");
  EXPECT_EQ(drop["actions"][0]["held"], 3) << drop.dump();
  for (int i = 0; i < 8; ++i) {
    const auto id = "id-" + std::to_string(1000000 + i);
    const auto r = store_->get(record_kind::cdr, id);
    EXPECT_EQ(r.has_value(), i < 3) << id;
    if (r) {
      EXPECT_TRUE(r->identifiers_held) << id;
    }
  }
  EXPECT_TRUE(retention_->verify()["ok"].get<bool>());
  // Released, they go whole at the next sweep.
  ASSERT_TRUE(retention_->hold_release(1, 0, {"case closed", "T-1", std::nullopt, {}}).has_value());
  const auto after = retention_->sweep("admin", 0);
  ASSERT_EQ(after["released"].size(), 1u) << after.dump();
  EXPECT_EQ(after["released"][0]["records"], 3);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(store_->get(record_kind::cdr, "id-" + std::to_string(1000000 + i)));
  EXPECT_TRUE(retention_->verify()["ok"].get<bool>());
}

// Found by the fault suite: the compaction filter that forgets a dropped
// partition's ids took held records' ids too, so `record get` no longer
// found a record a legal hold kept. Held entries are marked and outlive the
// partition; a release removes them.
TEST_F(sweep_steps, held_records_of_a_dropped_partition_stay_readable_by_id_through_compactions) {
  time_.set_wall(parse_rfc3339("2034-01-02T00:00:00Z").value());  // 2023 is dropped (1 January 2034)
  time_.advance(std::chrono::seconds(0));
  retention_->clock_moved_deliberately();
  const auto nov = month::of(2023, 11);
  fill(nov, 0, 4, "acme");
  fill(nov, 4, 4, "other");
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "acme"}, {"reason", "litigation"}, {"reference", "C-2"}}, 0)));
  const auto r = retention_->sweep("admin", 0);
  ASSERT_EQ(r["actions"].size(), 1u) << r.dump();
  EXPECT_EQ(r["actions"][0]["action"], "drop_metadata");
  store_->settle(/*compact=*/true);  // runs the ids family's compaction filter
  for (int i = 0; i < 8; ++i) {
    const auto id = "id-" + std::to_string(1000000 + i);
    const auto entry = store_->find_id(record_kind::cdr, id);
    EXPECT_EQ(entry.has_value(), i < 4) << id;
    if (entry) {
      EXPECT_TRUE(entry->held);
      EXPECT_TRUE(store_->get(record_kind::cdr, id)) << id << " readable while held";
    }
  }
  reopen();
  retention_->recover();  // marks nothing more: every held entry is marked
  ASSERT_TRUE(retention_->hold_release(1, 0, {"case closed", "T-1", std::nullopt, {}}).has_value());
  retention_->sweep("admin", 0);
  store_->settle(true);
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(store_->find_id(record_kind::cdr, "id-" + std::to_string(1000000 + i))) << "released for good";
  }
}

}  // namespace
}  // namespace cdr::test
