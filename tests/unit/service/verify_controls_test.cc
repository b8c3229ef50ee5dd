// Negative controls for `verify` (issue "Checks that can fail"): each
// planted violation of what verify proves is caught and named, key and
// file. A verify that always said ok would fail every test here.
#include <gtest/gtest.h>

#include "cdr/core/hex.h"
#include "cdr/core/key_layout.h"
#include "fixture.h"

namespace cdr::test {
namespace {

class verify_controls : public service_fixture {
 protected:
  verify_controls() : service_fixture("2025-01-15T00:00:00Z") {}

  const month stripped = month::of(2023, 12);  // identifiers due 2025-01-01: due now

  // A month stripped by a sweep, verified clean first.
  void strip() {
    fill(stripped, 0, 10);
    retention_->sweep("admin", 0);
    const auto v = retention_->verify();
    ASSERT_TRUE(v["ok"].get<bool>()) << v.dump();
  }
  // Writes `key` back into `f` through the store, as a bug that forgot a
  // removal would.
  void plant(family f, const std::string& key) {
    store::change c(*store_);
    c.put(f, key, "planted");
    store_->apply(c);
  }
  // The residue verify reports for `key`, if any.
  static std::optional<nlohmann::json> residue(const nlohmann::json& v, const std::string& key) {
    for (const auto& r : v["residues"]) {
      if (r["key"] == to_hex(key)) return r;
    }
    return std::nullopt;
  }
};

TEST_F(verify_controls, a_stripped_key_left_in_a_wal_record_and_then_in_an_sst_file_is_named) {
  strip();
  const auto key = record_key({record_kind::cdr, stripped, 0}, "id-1000003");
  plant(family::identifiers, key);
  auto v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>()) << v.dump();
  auto r = residue(v, key);
  ASSERT_TRUE(r.has_value()) << v.dump();
  EXPECT_EQ((*r)["family"], "identifiers");
  EXPECT_TRUE((*r)["file"].get<std::string>().ends_with(".log")) << r->dump() << ": found in the WAL";
  store_->settle();  // flushed: now in an SST file
  v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>());
  r = residue(v, key);
  ASSERT_TRUE(r.has_value()) << v.dump();
  EXPECT_TRUE((*r)["file"].get<std::string>().ends_with(".sst")) << r->dump();
  bool named = false;
  for (const auto& p : v["partitions"]) {
    if (p["month"] == "2023-12" && p["keys_on_disk"].get<int>() == 1 && !p["ok"].get<bool>()) named = true;
  }
  EXPECT_TRUE(named) << "the partition is named: " << v["partitions"].dump();
}

TEST_F(verify_controls, an_erased_subjects_key_left_on_disk_is_named) {
  fill(month::of(2024, 10), 0, 3, "acme", "+491511299999");
  retention_->subject_erase("+491511299999", 0);
  retention_->subject_purge("admin", 0);
  auto v = retention_->verify();
  ASSERT_TRUE(v["ok"].get<bool>()) << v.dump();
  ASSERT_EQ(v["subjects"].size(), 1u) << v.dump();
  // One of the keys the erasure removed, back on disk.
  std::optional<erased_key> removed;
  state_->for_each_erased([&](const store::chunk_id&, const erased_subject& e) {
    if (!removed && !e.keys.empty()) removed = e.keys.front();
  });
  ASSERT_TRUE(removed.has_value());
  plant(removed->where, removed->key);
  store_->settle();
  v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>()) << v.dump();
  EXPECT_TRUE(residue(v, removed->key).has_value()) << v.dump();
  EXPECT_EQ(v["subjects"][0]["keys_on_disk"], 1) << v.dump();
  EXPECT_FALSE(v["subjects"][0]["ok"].get<bool>());
}

// Issue "Erasure, exact and at scale": a record that named two subjects
// keeps the other's value, re-sealed under the same key; the version that
// held the erased value is what must be gone. Left on disk under the new
// one (a compaction that kept it), verify names the key.
TEST_F(verify_controls, an_erased_subjects_old_version_under_a_resealed_key_is_named) {
  const month m = month::of(2024, 10);
  fill(m, 0, 1, "acme", "+491511277777", "+491511266666");
  const auto key = record_key({record_kind::cdr, m, 0}, "id-1000000");
  const auto before = store_->value(family::identifiers, key);
  ASSERT_TRUE(before.has_value());
  retention_->subject_erase("+491511277777", 0);
  retention_->subject_purge("admin", 0);
  const auto after = store_->value(family::identifiers, key);
  ASSERT_TRUE(after.has_value()) << "the other subject's value stays";
  ASSERT_NE(*after, *before);
  auto v = retention_->verify();
  ASSERT_TRUE(v["ok"].get<bool>()) << "the re-sealed version is no residue: " << v.dump();
  const auto put = [&](const std::string& value) {
    store::change c(*store_);
    c.put(family::identifiers, key, value);
    store_->apply(c);
    store_->settle();  // each version in an SST file of its own
  };
  put(*before);
  put(*after);
  ASSERT_EQ(store_->value(family::identifiers, key), after) << "reads see the re-sealed version";
  v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>()) << v.dump();
  const auto r = residue(v, key);
  ASSERT_TRUE(r.has_value()) << v.dump();
  EXPECT_TRUE((*r)["file"].get<std::string>().ends_with(".sst")) << r->dump();
  EXPECT_EQ(v["subjects"][0]["keys_on_disk"], 1) << v.dump();
}

TEST_F(verify_controls, a_live_data_key_for_a_stripped_partition_is_named) {
  strip();
  // The month's key, back in the key store (a restored key store file, a
  // bug that recreated it).
  ASSERT_TRUE(keystore_->get_or_create("p/cdr/2023-12/0", /*reuse=*/true).has_value());
  close();
  open();
  const auto v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["keystore"]["stripped_partitions_with_live_keys"], 1) << v.dump();
  bool named = false;
  for (const auto& p : v["partitions"]) named = named || (p["month"] == "2023-12" && p["key"] == "live");
  EXPECT_TRUE(named) << v["partitions"].dump();
}

TEST_F(verify_controls, a_purge_past_its_deadline_is_named) {
  fill(month::of(2024, 10), 0, 3, "acme", "+491511288888");
  retention_->subject_erase("+491511288888", 0);
  auto v = retention_->verify();
  EXPECT_TRUE(v["ok"].get<bool>()) << "pending, not late: " << v.dump();
  time_.advance(config_.erasure.purge_after + std::chrono::hours(2));  // past the deadline and its grace
  v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["purges_overdue"], 1) << v.dump();
  ASSERT_EQ(v["pending_purges"].size(), 1u);
  EXPECT_TRUE(v["pending_purges"][0]["overdue"].get<bool>());
}

// A hold whose record is lost from the store (the audit trail shows it added
// and never released) is named: the next sweep would remove what it keeps.
TEST_F(verify_controls, a_hold_record_deleted_from_the_store_is_named) {
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "acme"}, {"reason", "litigation"}, {"reference", "L-1"}}, 0)));
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
      retention_->hold_add({{"customer", "beta"}, {"reason", "audit"}, {"reference", "A-1"}}, 0)));
  ASSERT_TRUE(retention_->hold_release(2, 0, {"case closed", "T-1", std::nullopt, {}}).has_value());
  auto v = retention_->verify();
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_TRUE(v["holds_missing"].empty()) << "a released hold is not missing";
  store::change c(*store_);
  state_->remove_hold(c, 1);  // behind the registry's back
  store_->apply(c);
  v = retention_->verify();
  EXPECT_FALSE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["holds_missing"], nlohmann::json::array({1})) << v.dump();
}

}  // namespace
}  // namespace cdr::test
