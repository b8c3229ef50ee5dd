// The subject index's crash window: its entries are written in the same
// atomic batch as their records, and until a flush they exist only in the
// WAL and a memtable. A writer killed there leaves them to the WAL's
// recovery; read back, they are whole, exported and erased like any other.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "fixture.h"

namespace cdr::test {
namespace {

const month june = month::of(2023, 6);
constexpr std::string_view phone = "+385911234567";

class subject_index : public service_fixture {
 protected:
  std::vector<std::string> records_of(std::string_view identifier) const {
    return retention_->subject_records(normalize_identifier(identifier));
  }
  std::size_t index_entries() const {
    std::size_t n = 0;
    store_->scan(family::subject_index, {"", ""}, [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  }
  static bool sorted_and_unique(const std::vector<std::string>& v) {
    return std::is_sorted(v.begin(), v.end()) && std::adjacent_find(v.begin(), v.end()) == v.end();
  }
};

TEST_F(subject_index, entries_only_in_the_wal_survive_a_kill_and_are_found_exported_and_erased) {
  close();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The writer: 30 batches, the subject's records spread among others,
    // nothing flushed (6,000 records stay far below a memtable), then a kill
    // with no destructor run.
    open();
    for (int b = 0; b < 30; ++b) {
      fill(june, b * 200, 100, "acme", std::string(phone));
      fill(june, b * 200 + 100, 100);
    }
    raise(SIGKILL);
    _exit(3);  // not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer did not reach its kill: " << status;

  open();
  const auto found = records_of(phone);
  EXPECT_EQ(found.size(), 3000u) << "every entry of the subject, recovered from the WAL";
  EXPECT_TRUE(sorted_and_unique(found));
  EXPECT_EQ(index_entries(), 6000u) << "one entry per record, none twice";
  // The id index came back with them: the same ids again are duplicates.
  for (const int i : {0, 99, 100, 2999, 5999}) {
    EXPECT_TRUE(store_->find_id(record_kind::cdr, "id-" + std::to_string(1000000 + i)).has_value()) << i;
  }

  const auto erased = retention_->subject_erase(phone, 0);
  EXPECT_EQ(erased["erased"], 3000) << erased.dump();
  EXPECT_TRUE(records_of(phone).empty());
  EXPECT_EQ(index_entries(), 3000u);
  EXPECT_TRUE(retention_->verify()["ok"].get<bool>());
}

}  // namespace
}  // namespace cdr::test
