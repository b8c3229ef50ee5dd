// What the metrics say when something is wrong upstream or late: a
// partition whose late records were stripped on arrival is not overdue, the
// next deadline is the one still to meet, and a consumer position the
// broker no longer holds is counted (records lost upstream).
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "daemon_process.h"
#include "mock_kafka.h"

namespace cdr::test {
namespace {

using namespace std::chrono;

// The value of the sample that starts with `prefix` in a scrape, or -1.
double sample(const std::string& body, const std::string& prefix) {
  const auto at = body.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + 1 + prefix.size()));
}

std::vector<std::string> args_for(const mock_kafka& k) {
  return {"--fake-clock", "2025-03-14T10:00:00Z",    "--set", "kafka.brokers=" + k.bootstrap(),
          "--set",        "kafka.batch_linger=20ms", "--set", "sweep.interval=\"31d\"",
          "--set",        "sweep.jitter=\"1s\""};
}

void send(mock_kafka& k, int n, const std::string& month, const std::string& prefix) {
  for (int i = 0; i < n; ++i) {
    const auto id = fmt::format("{}-{}", prefix, i);
    k.produce("cdr", id,
              R"({"type":"cdr","id":")" + id + R"(","customer_id":"c","occurred_at":")" + month +
                  R"(-10T09:00:00Z","channel":"sms","from":"+38591555)" + fmt::format("{:04}", i) + R"("})");
  }
  k.flush();
}

bool wait_for(const std::function<bool()>& ready) {
  const auto deadline = steady_clock::now() + seconds(60);
  while (!ready()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return true;
}

TEST(monitoring, late_records_stripped_on_arrival_are_not_overdue_and_a_lost_position_is_counted) {
  temp_dir dir;
  auto first = std::make_unique<mock_kafka>(4);
  auto d = std::make_unique<daemon_process>(write_test_config(dir), args_for(*first), dir / "log");
  ASSERT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
  // 2023-01's identifiers were due on 2024-02-01: stripped on arrival.
  // 2025-02's are due on 2026-03-01.
  send(*first, 20, "2023-01", "late");
  send(*first, 20, "2025-02", "fresh");
  ASSERT_TRUE(wait_for([&] { return stored_offsets(dir / "a.sock") >= 40; })) << d->log();
  const std::string listen = admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"];
  auto body = http_get(listen, "/metrics");
  EXPECT_EQ(sample(body, "cdr_retention_overdue_partitions "), 0) << "nothing left to strip in 2023-01\n" << body;
  EXPECT_EQ(admin_call(dir / "a.sock", "status")["result"]["retention"]["overdue_partitions"], 0);
  // 2026-03-01T00:00:00Z: 2025-02's strip (2023-01's next is its drop in 2033).
  EXPECT_EQ(sample(body, "cdr_retention_next_deadline_timestamp_seconds "), 1772323200) << body;
  EXPECT_EQ(sample(body, "cdr_retention_records_due_30d{action=\"strip_identifiers\"} "), 0) << body;
  EXPECT_EQ(sample(body, "cdr_retention_ingest_paused{reason=\"no_space\"} "), 0) << body;
  EXPECT_EQ(sample(body, "cdr_retention_audit_chain_ok "), 1) << body;
  EXPECT_GT(sample(body, "cdr_retention_audit_last_verification_timestamp_seconds "), 1.7e9) << body;
  // Eleven months on, 2025-02's strip is within 30 days.
  admin_call(dir / "a.sock", "debug advance-clock", {{"duration", "330d"}});
  body = http_get(listen, "/metrics");
  EXPECT_EQ(sample(body, "cdr_retention_records_due_30d{action=\"strip_identifiers\"} "), 20) << body;
  ASSERT_EQ(d->stop(SIGTERM), 0);

  // The broker no longer holds the stored positions (a topic recreated, or
  // its retention deleted the records during an outage): the position is
  // reset to the start, counted and logged as records lost upstream.
  first.reset();
  mock_kafka second(4);
  d = std::make_unique<daemon_process>(write_test_config(dir), args_for(second), dir / "log2");
  ASSERT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
  const std::string listen2 = admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"];
  EXPECT_TRUE(wait_for([&] {
    return http_get(listen2, "/metrics").find("cdr_retention_consumer_offset_resets_total{topic=\"cdr\"}") !=
           std::string::npos;
  })) << d->log();
  EXPECT_NE(d->log().find("records in between are gone upstream"), std::string::npos) << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test
