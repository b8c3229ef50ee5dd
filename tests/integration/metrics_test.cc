// The metrics endpoint: scraped over HTTP and checked with promtool.
#include <gtest/gtest.h>

#include <signal.h>

#include "daemon_process.h"

namespace cdr::test {
namespace {

TEST(metrics, scrape_passes_promtool_and_follows_the_naming_convention) {
  temp_dir dir;
  daemon_process d(write_test_config(dir), {"--fake-clock=2025-03-01T00:00:00Z"}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  const std::string listen = admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"];
  admin_call(dir / "a.sock", "config");
  const auto body = http_get(listen, "/metrics");

  for (auto expected :
       {"cdr_retention_build_info{revision=\"", "cdr_retention_clock_simulated 1",
        "cdr_retention_clock_time_seconds 1740787200", "process_resident_memory_bytes ", "process_cpu_seconds_total ",
        "process_open_fds ", "process_start_time_seconds ",
        "cdr_retention_admin_requests_total{command=\"config\",outcome=\"ok\"} 1", "cdr_retention_keys_live ",
        "cdr_retention_keys_destroyed_total ", "cdr_retention_ingest_paused{reason=\"write_stall\"} 0",
        "cdr_retention_next_deadline_timestamp_seconds ", "cdr_retention_records_due_30d{action=\"drop_usage\"} 0",
        "cdr_retention_audit_chain_ok 1", "cdr_retention_audit_last_verification_timestamp_seconds 17407872"}) {
    EXPECT_NE(body.find(expected), std::string::npos) << expected << "\n" << body;
  }
  // Every family of ours carries the prefix, and counters end in _total.
  std::size_t pos = 0;
  while ((pos = body.find("# TYPE ", pos)) != std::string::npos) {
    const auto end = body.find('\n', pos);
    const auto line = body.substr(pos + 7, end - pos - 7);
    const auto name = line.substr(0, line.find(' '));
    const auto type = line.substr(line.find(' ') + 1);
    if (name.rfind("process_", 0) != 0 && name.rfind("exposer_", 0) != 0) {
      EXPECT_EQ(name.rfind("cdr_retention_", 0), 0u) << name;
    }
    if (type == "counter") {
      EXPECT_EQ(name.substr(name.size() - 6), "_total") << name;
    }
    pos = end;
  }

  write_file(dir / "scrape.txt", body);
  const auto r = run_command({"/bin/sh", "-c", "promtool check metrics < " + (dir / "scrape.txt")});
  EXPECT_EQ(r.exit_code, 0) << "promtool check metrics:\n" << r.out << r.err;
  EXPECT_EQ(r.out + r.err, "") << "promtool reports no findings";
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test
