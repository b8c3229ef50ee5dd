// The erasure ledger's integrity (issue "Fleet trust", F6): deleted,
// replaced by a symbolic link, edited, cut short or stripped of its final
// newline, it never lets the daemon start as if nothing had happened. Only
// an unacknowledged partial last line is cut, and kept aside.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "cdr/crypto/keystore.h"
#include "cdr/service/daemon.h"
#include "ledger.h"
#include "temp_dir.h"

namespace cdr::test {
namespace {

using service::erasure_ledger;

class ledger_test : public ::testing::Test {
 protected:
  ledger_test() { keys_ = open_keys(); }

  std::unique_ptr<crypto::keystore> open_keys() {
    return std::make_unique<crypto::keystore>(dir_ / "keystore.json", std::string(32, 'm'), true);
  }
  std::string path() const { return dir_ / "erasures.jsonl"; }
  ledger_entry entry(int n) const {
    return {std::string(32, static_cast<char>('a' + n)),
            instant{std::chrono::seconds(1'700'000'000 + n)},
            "art. 17",
            "DSR-" + std::to_string(n),
            {}};
  }
  // Three erasures, acknowledged.
  void three() {
    erasure_ledger l(path(), *keys_);
    for (int i = 0; i < 3; ++i) l.append(entry(i));
  }
  // The start's verdict: empty when the ledger opens, else the refusal.
  std::string opens() {
    try {
      erasure_ledger l(path(), *keys_);
      return {};
    } catch (const service::start_refused& e) {
      return e.what();
    }
  }

  temp_dir dir_;
  std::unique_ptr<crypto::keystore> keys_;
};

TEST_F(ledger_test, entries_are_chained_recorded_in_the_key_store_and_read_back) {
  three();
  erasure_ledger l(path(), *keys_);
  EXPECT_EQ(l.entries(), 3u);
  std::vector<ledger_entry> read;
  l.for_each([&](ledger_entry&& e) { read.push_back(std::move(e)); });
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(read[2], entry(2));
  const auto record = keys_->record(erasure_ledger::record_name);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->substr(0, 2), "3:");
  // The record survives the key store's reopening (sealed under the master key).
  keys_ = open_keys();
  EXPECT_EQ(keys_->record(erasure_ledger::record_name), record);
  EXPECT_EQ(opens(), "");
}

TEST_F(ledger_test, a_deleted_ledger_stops_the_start) {
  three();
  std::filesystem::remove(path());
  const auto why = opens();
  EXPECT_NE(why.find("is missing, but the key store records 3 erasure(s)"), std::string::npos) << why;
  EXPECT_NE(why.find(path()), std::string::npos) << "names the file";
  EXPECT_NE(why.find("docs/operations.md"), std::string::npos) << "names the remedy";
}

TEST_F(ledger_test, a_ledger_replaced_by_a_symbolic_link_stops_the_start) {
  three();
  std::filesystem::remove(path());
  ASSERT_EQ(::symlink("/dev/null", path().c_str()), 0);
  EXPECT_NE(opens().find("is not a regular file"), std::string::npos);
  // Even with no erasure recorded: a ledger must be a file of its own.
  temp_dir other;
  ASSERT_EQ(::symlink("/dev/null", (other / "erasures.jsonl").c_str()), 0);
  crypto::keystore fresh(other / "keystore.json", std::string(32, 'm'), true);
  EXPECT_THROW(erasure_ledger(other / "erasures.jsonl", fresh), service::start_refused);
}

TEST_F(ledger_test, an_entry_edited_to_other_valid_json_stops_the_start) {
  three();
  auto text = read_file(path());
  const auto at = text.find("DSR-1");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 5, "DSR-9");  // still a valid entry, the hash unchanged
  write_file(path(), text);
  const auto why = opens();
  EXPECT_NE(why.find("line 2: its hash does not verify"), std::string::npos) << why;
}

TEST_F(ledger_test, a_line_removed_stops_the_start) {
  three();
  auto text = read_file(path());
  text.erase(text.rfind('\n', text.size() - 2) + 1);  // the last line gone, the rest intact
  write_file(path(), text);
  const auto why = opens();
  EXPECT_NE(why.find("holds 2 erasure(s), 1 fewer than the key store records"), std::string::npos) << why;
}

TEST_F(ledger_test, a_complete_last_line_without_its_newline_is_kept) {
  three();
  auto text = read_file(path());
  text.pop_back();
  write_file(path(), text);
  erasure_ledger l(path(), *keys_);
  EXPECT_EQ(l.entries(), 3u) << "an acknowledged erasure is never cut";
  EXPECT_EQ(read_file(path()).back(), '\n') << "the newline is put back";
  l.append(entry(3));
  EXPECT_EQ(erasure_ledger(path(), *keys_).entries(), 4u);
}

TEST_F(ledger_test, an_unacknowledged_partial_last_line_is_cut_and_kept_aside) {
  three();
  const auto before = read_file(path());
  write_file(path(), before + R"({"seq":4,"prev":"00)");  // a crash during the fourth append
  erasure_ledger l(path(), *keys_);
  EXPECT_EQ(l.entries(), 3u);
  EXPECT_EQ(read_file(path()), before);
  std::size_t aside = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_.path())) {
    if (f.path().filename().string().rfind("erasures.jsonl.cut-line4-", 0) == 0) {
      ++aside;
      EXPECT_EQ(read_file(f.path()), R"({"seq":4,"prev":"00)");
    }
  }
  EXPECT_EQ(aside, 1u);
}

TEST_F(ledger_test, an_acknowledged_last_line_cut_short_stops_the_start) {
  three();
  auto text = read_file(path());
  text.resize(text.size() - 10);
  write_file(path(), text);
  const auto why = opens();
  EXPECT_NE(why.find("line 3 is damaged"), std::string::npos) << why;
  EXPECT_NE(why.find("acknowledged"), std::string::npos) << why;
}

TEST_F(ledger_test, a_ledger_of_an_earlier_build_is_chained_once_and_never_again) {
  write_file(path(), encode(entry(0)) + "\n" + encode(entry(1)) + "\n");
  {
    erasure_ledger l(path(), *keys_);
    EXPECT_EQ(l.entries(), 2u);
  }
  EXPECT_NE(read_file(path()).find("\"hash\""), std::string::npos);
  EXPECT_EQ(opens(), "");
  // Once chained, an unchained line is damage.
  write_file(path(), read_file(path()) + encode(entry(2)) + "\n");
  EXPECT_NE(opens().find("line 3: not a chained ledger line"), std::string::npos);
}

}  // namespace
}  // namespace cdr::test
