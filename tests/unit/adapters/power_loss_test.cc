// The power-loss model (tests/support/power_loss.h) on hand-written ledgers:
// what a real disk can lose is lost, what was made durable stays.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "power_loss.h"
#include "temp_dir.h"

namespace cdr::test {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

class power_loss_model : public ::testing::Test {
 protected:
  std::string ledger() const { return dir_ / "sync.ledger"; }
  void note(const std::string& line) { std::ofstream(ledger(), std::ios::app) << line << "\n"; }
  power_loss apply() { return apply_power_loss(ledger(), rng_); }
  temp_dir dir_;
  std::mt19937_64 rng_{7};
};

TEST_F(power_loss_model, unsynced_bytes_are_torn_and_synced_ones_stay) {
  const auto f = dir_ / "wal";
  write(f, "durable|unsynced tail");
  note("create " + f);
  note("sync " + f + " 8");
  note("dirsync " + dir_.path());
  std::size_t shortest = 100, longest = 0;
  for (int i = 0; i < 40; ++i) {
    write(f, "durable|unsynced tail");
    note("sync " + f + " 8");
    apply();
    const auto got = read(f);
    ASSERT_EQ(got.substr(0, 8), "durable|");
    shortest = std::min(shortest, got.size());
    longest = std::max(longest, got.size());
  }
  EXPECT_EQ(shortest, 8u) << "sometimes every unsynced byte is lost";
  EXPECT_GT(longest, 8u) << "sometimes some survive (a torn tail)";
}

TEST_F(power_loss_model, a_file_whose_directory_was_never_synced_is_gone) {
  const auto f = dir_ / "new.sst";
  write(f, "synced but never linked durably");
  note("create " + f);
  note("sync " + f + " 31");
  const auto cut = apply();
  EXPECT_FALSE(fs::exists(f));
  EXPECT_EQ(cut.files_removed, 1u);
}

TEST_F(power_loss_model, a_rename_without_a_directory_sync_is_undone_and_the_replaced_file_returns) {
  const auto target = dir_ / "keystore.json", tmp = dir_ / "keystore.json.tmp";
  fs::create_directories(ledger() + ".shadow");
  write(target, "old");
  write(tmp, "new");
  note("create " + tmp);
  note("sync " + tmp + " 3");
  fs::create_hard_link(target, ledger() + ".shadow/1");
  fs::rename(tmp, target);
  note("rename " + tmp + " " + target + " " + ledger() + ".shadow/1");
  const auto cut = apply();
  EXPECT_EQ(read(target), "old") << "the rename never reached the disk";
  EXPECT_FALSE(fs::exists(tmp)) << "nor did the temporary file's name";
  EXPECT_EQ(cut.undone, 1u);
  EXPECT_FALSE(fs::exists(ledger() + ".shadow"));
}

TEST_F(power_loss_model, a_rename_followed_by_a_directory_sync_stays) {
  const auto target = dir_ / "CURRENT", tmp = dir_ / "000012.dbtmp";
  write(target, "MANIFEST-000001\n");
  write(tmp, "MANIFEST-000009\n");
  note("create " + tmp);
  note("sync " + tmp + " 16");
  fs::rename(tmp, target);
  note("rename " + tmp + " " + target + " -");
  note("dirsync " + dir_.path());
  apply();
  EXPECT_EQ(read(target), "MANIFEST-000009\n");
}

TEST_F(power_loss_model, a_delete_without_a_directory_sync_is_undone) {
  const auto f = dir_ / "000007.log";
  write(f, "records");
  note("sync " + f + " 7");
  fs::create_directories(ledger() + ".shadow");
  fs::create_hard_link(f, ledger() + ".shadow/1");
  fs::remove(f);
  note("delete " + f + " " + ledger() + ".shadow/1");
  apply();
  EXPECT_EQ(read(f), "records");
}

}  // namespace
}  // namespace cdr::test
