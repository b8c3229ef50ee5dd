// The start-up re-index (service/reindex.h): a store written in the first
// builds' "digits" form is brought to E.164 with a default region, resumes
// after a crash without leaving a record under both forms or neither, and
// holds made under the old form still hold.
#include "reindex.h"

#include <filesystem>

#include "cdr/phone/phone.h"
#include "failpoint.h"
#include "fixture.h"
#include "ledger.h"

namespace cdr::test {
namespace {

const month june = month::of(2023, 6);

class reindex : public service_fixture {
 protected:
  std::pair<identity, service::reindex_report> bring(std::size_t batch = 1000,
                                                     const std::function<service::ledger_indexes()>& ledgered = {}) {
    return service::bring_to_form(*store_, *state_, *vault_, phone::parser(), "e164:HR", ledgered, batch,
                                  [this](std::uint64_t records) { progress_.push_back(records); });
  }
  std::vector<std::uint64_t> progress_;  // records read, told after each batch (the start's health)
  std::size_t entries(family f, const key_range& r) const {
    std::size_t n = 0;
    store_->scan(f, r, [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  }
  std::size_t index_entries() const { return entries(family::subject_index, {"", ""}); }
};

TEST_F(reindex, a_digits_store_moves_to_e164_and_resumes_after_a_crash) {
  fill(june, 0, 50, "acme", "091 123 4567");  // national spelling: "0911234567" in digits
  fill(june, 50, 30);                         // "+49..." numbers: the same in both forms
  ASSERT_EQ(retention_->subject_records("0911234567").size(), 50u);
  ASSERT_EQ(index_entries(), 80u);

  service::arm_failpoint("after_reindex_batch");
  EXPECT_THROW(bring(10), service::simulated_crash);
  service::arm_failpoint("");
  const auto midway = state_->identity();
  ASSERT_TRUE(midway && *midway);
  ASSERT_TRUE(midway->value().moving) << "the crash left a re-index in progress";
  EXPECT_EQ(midway->value().moving->records, 10u);
  EXPECT_EQ(retention_->subject_records("0911234567").size(), 40u) << "10 moved, atomically with the position";
  EXPECT_EQ(retention_->subject_records("385911234567").size(), 10u);

  reopen();
  progress_.clear();
  auto [ids, report] = bring(10);
  EXPECT_EQ(progress_, (std::vector<std::uint64_t>{20, 30, 40, 50, 60, 70, 80})) << "after each batch";
  EXPECT_TRUE(report.resumed);
  EXPECT_EQ(report.from, "digits");
  EXPECT_EQ(report.records, 80u) << "counted across the crash";
  EXPECT_EQ(report.moved, 40u);
  EXPECT_EQ(ids.form(), "e164:HR");
  EXPECT_EQ(ids.earlier(), std::vector<std::string>{"digits"});
  EXPECT_EQ(retention_->subject_records("385911234567").size(), 50u);
  EXPECT_TRUE(retention_->subject_records("0911234567").empty()) << "no entry left under the old form";
  EXPECT_EQ(index_entries(), 80u) << "one entry per identifier, none twice";

  // Done: recorded, and the next start does nothing.
  const auto done = state_->identity();
  ASSERT_TRUE(done && *done);
  EXPECT_EQ(done->value(), (identity_state{"e164:HR", {"digits"}, std::nullopt}));
  auto [again, nothing] = bring();
  EXPECT_EQ(nothing.records, 0u);
  EXPECT_FALSE(nothing.resumed);

  // Every spelling now finds the subject's records.
  ids_ = again;
  build_retention();
  for (const char* spelling : {"+385 91 123 4567", "00385911234567", "091 123 4567"}) {
    EXPECT_EQ(retention_->subject_records(ids_.normalize(spelling)).size(), 50u) << spelling;
  }
}

TEST_F(reindex, a_hold_made_under_the_old_form_still_holds) {
  fill(june, 0, 20, "acme", "091 123 4567");
  fill(june, 20, 10);
  auto placed = retention_->hold_add({{"subject", "091 123 4567"}, {"reason", "case 7"}, {"reference", "C-7"}}, 0);
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(placed)) << std::get<std::string>(placed);

  auto [ids, report] = bring();
  EXPECT_EQ(report.moved, 20u);
  ids_ = ids;
  build_retention();
  // June 2023's identifiers are due (12 months after the month's end).
  retention_->sweep("admin", 0);
  EXPECT_EQ(entries(family::held, held_range(held_tag::identifiers)), 20u)
      << "the hold names the subject by its old form; the sweep kept its records";
  EXPECT_EQ(entries(family::held, held_range(held_tag::subject)), 20u)
      << "held copies are indexed in the current form only";
}

// An erasure made under the old form, then a store restored from before
// it: the re-index keeps the old entries the ledger names, so the erasure
// applied again at recovery finds every record and removes both forms.
TEST_F(reindex, an_erasure_from_before_the_reindex_is_applied_again_to_a_restored_store) {
  fill(june, 0, 20, "acme", "091 123 4567");
  fill(june, 20, 10);
  close();
  std::filesystem::copy(dir_ / "data", dir_ / "backup", std::filesystem::copy_options::recursive);
  open();
  ASSERT_EQ(retention_->subject_erase("091 123 4567", 0)["erased"], 20);

  close();  // the store is restored from before the erasure; the ledger is not
  std::filesystem::remove_all(dir_ / "data");
  std::filesystem::rename(dir_ / "backup", dir_ / "data");
  open();
  ASSERT_EQ(retention_->subject_records("0911234567").size(), 20u) << "the restore brought them back";
  const service::erasure_ledger ledger(service::erasure_ledger::beside(config_.storage.keystore_path), *keystore_);
  auto [ids, report] = bring(1000, [&] { return ledger.index_hashes(); });
  EXPECT_EQ(report.moved, 20u);
  EXPECT_EQ(report.kept, 20u);
  ids_ = ids;
  build_retention();
  retention_->recover();
  EXPECT_TRUE(retention_->subject_records(ids_.normalize("091 123 4567")).empty());
  EXPECT_TRUE(retention_->subject_records("0911234567").empty()) << "no entry of either form is left";
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(store_->value(family::identifiers,
                               record_key({record_kind::cdr, june, 0}, "id-" + std::to_string(1000000 + i))))
        << i;
  }
  EXPECT_EQ(retention_->subject_records(ids_.normalize("+49 151 12100025")).size(), 1u) << "others are untouched";
}

TEST_F(reindex, a_new_store_starts_in_the_configured_form) {
  auto [ids, report] = bring();
  EXPECT_TRUE(report.from.empty());
  EXPECT_EQ(ids.form(), "e164:HR");
  EXPECT_TRUE(ids.earlier().empty());
  const auto recorded = state_->identity();
  ASSERT_TRUE(recorded && *recorded);
  EXPECT_EQ(recorded->value().form, "e164:HR");
}

TEST_F(reindex, a_form_that_does_not_decode_stops_the_start) {
  fill(june, 0, 5);
  close();
  put_raw_saved_state(dir_ / "data", "identity", R"({"form":"e164:hr","earlier":[]})");
  open();
  EXPECT_THROW(bring(), std::runtime_error);
  EXPECT_EQ(state_->unreadable().size(), 1u) << "and it is listed as unreadable saved state";
}

}  // namespace
}  // namespace cdr::test
