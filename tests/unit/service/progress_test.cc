// Long operations report their progress while they run (`status`
// "operations", systemd's STATUS= line, the CLI's progress line): each one
// registered while it runs, counting up to its total, gone when it ends.
#include <gtest/gtest.h>

#include <map>

#include "fixture.h"
#include "progress.h"

namespace cdr::test {
namespace {

class progress_report : public service_fixture {
 protected:
  progress_report() : service_fixture("2025-01-15T00:00:00Z") {
    retention_->activity().watch([this](const nlohmann::json& ops) {
      for (const auto& op : ops) {
        auto& s = seen_[op["kind"].get<std::string>()];
        s.updates += 1;
        s.last_done = op["done"].get<std::uint64_t>();
        if (op["total"].is_number()) s.total = op["total"].get<std::uint64_t>();
        s.unit = op["unit"].get<std::string>();
        s.bytes = std::max(s.bytes, op["bytes"].get<std::uint64_t>());
      }
      if (ops.empty()) ++idle_;
    });
  }
  ~progress_report() override { retention_->activity().watch(nullptr); }

  struct seen {
    int updates = 0;
    std::uint64_t last_done = 0;
    std::uint64_t total = 0;
    std::uint64_t bytes = 0;
    std::string unit;
  };
  std::map<std::string, seen> seen_;
  int idle_ = 0;
};

TEST_F(progress_report, sweeps_purges_verify_and_checkpoints_count_up_to_their_totals_and_end) {
  fill(month::of(2023, 11), 0, 40);                           // strip due 2024-12-01
  fill(month::of(2023, 12), 40, 40);                          // strip due 2025-01-01
  fill(month::of(2024, 2), 80, 40, "acme", "+491511299999");  // not due
  retention_->sweep("admin", 0);
  ASSERT_TRUE(seen_.contains("sweep"));
  EXPECT_EQ(seen_["sweep"].unit, "partitions");
  EXPECT_EQ(seen_["sweep"].total, 2u);
  EXPECT_EQ(seen_["sweep"].last_done, 2u);
  ASSERT_TRUE(seen_.contains("sweep purge"));
  EXPECT_EQ(seen_["sweep purge"].unit, "compactions");

  retention_->subject_erase("+491511299999", 0);
  retention_->subject_purge("admin", 0);
  ASSERT_TRUE(seen_.contains("purge"));
  EXPECT_GE(seen_["purge"].last_done, 1u);
  EXPECT_EQ(seen_["purge"].last_done, seen_["purge"].total);

  const auto v = retention_->verify();
  ASSERT_TRUE(seen_.contains("verify"));
  EXPECT_EQ(seen_["verify"].unit, "files");
  EXPECT_EQ(seen_["verify"].last_done, v["sst_files_read"].get<std::uint64_t>());
  EXPECT_EQ(seen_["verify"].total, v["sst_files_read"].get<std::uint64_t>());
  EXPECT_GE(seen_["verify"].updates, 1) << "registered while it ran";

  retention_->checkpoint("cp-1", 0);
  EXPECT_EQ(seen_["checkpoint"].unit, "steps");
  EXPECT_EQ(seen_["checkpoint"].last_done, 3u);
  EXPECT_EQ(seen_["checkpoint"].total, 3u);

  EXPECT_GT(idle_, 0);
  EXPECT_TRUE(retention_->activity().report().empty()) << "nothing left registered";
  EXPECT_EQ(retention_->activity().line(), "");
}

TEST(progress_line, says_each_operation_in_words) {
  manual_time time(parse_rfc3339("2025-01-15T00:00:00Z").value());
  service::progress p(time);
  {
    service::progress::scope verify(p, "verify", "files", 40);
    verify.set(12, 40, 3 * 1024 * 1024 + 200 * 1024);
    time.advance(std::chrono::seconds(4));
    service::progress::scope export_(p, "subject export", "records", 0);
    export_.step(100);
    EXPECT_EQ(p.line(), "verify: 12/40 files, 3.2 MiB, 4 s; subject export: 1 records, 0.0 MiB, 0 s");
    const auto r = p.report();
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0]["started"], "2025-01-15T00:00:00Z");
    EXPECT_EQ(r[1]["total"], nullptr);
  }
  EXPECT_EQ(p.line(), "");
}

}  // namespace
}  // namespace cdr::test
