// What the metrics say when something is wrong upstream or late: a
// partition whose late records were stripped on arrival is not overdue, the
// next deadline is the one still to meet, and a consumer position the
// broker no longer holds is counted (records lost upstream).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "daemon_process.h"
#include "mock_kafka.h"
#include "table_text.h"

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

void send(mock_kafka& k, int n, const std::string& month, const std::string& prefix,
          const std::string& customer = "c") {
  for (int i = 0; i < n; ++i) {
    const auto id = fmt::format("{}-{}", prefix, i);
    k.produce("cdr", id,
              R"({"type":"cdr","id":")" + id + R"(","customer_id":")" + customer + R"(","occurred_at":")" + month +
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
  // Counters with known labels are there from the start, at 0: the first
  // increment is an increase an alert sees.
  EXPECT_EQ(sample(body, "cdr_retention_consumer_offset_resets_total{topic=\"cdr\"} "), 0) << body;
  EXPECT_EQ(sample(body, "cdr_retention_ingest_pauses_total{reason=\"no_space\"} "), 0) << body;
  EXPECT_EQ(sample(body, "cdr_retention_sweeps_total{result=\"failed\",trigger=\"schedule\"} "), 0) << body;
  EXPECT_EQ(sample(body, "cdr_retention_config_reloads_total{result=\"refused\"} "), 0) << body;
  EXPECT_EQ(body.find("cdr_retention_consumer_lag_messages{partition=\"0\",topic=\"cdr\"} -1"), std::string::npos)
      << "unknown lag is absent, not -1";
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
  // librdkafka reports it as an error (auto.offset.reset=error), not a
  // line of its log; the partition is then read from its start: records
  // the new cluster holds below the old positions are stored.
  first.reset();
  mock_kafka second(4);
  send(second, 8, "2025-02", "after-reset");
  d = std::make_unique<daemon_process>(write_test_config(dir), args_for(second), dir / "log2");
  ASSERT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
  const std::string listen2 = admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"];
  EXPECT_TRUE(wait_for([&] {
    return sample(http_get(listen2, "/metrics"), "cdr_retention_consumer_offset_resets_total{topic=\"cdr\"} ") >= 1;
  })) << d->log();
  EXPECT_NE(d->log().find("records in between are gone upstream"), std::string::npos) << d->log();
  EXPECT_NE(d->log().find("Offset out of range"), std::string::npos) << "librdkafka's reason is named" << d->log();
  EXPECT_TRUE(wait_for([&] {
    return admin_call(dir / "a.sock", "status")["result"]["storage"]["records"]["cdr"].get<int>() == 48;
  })) << "the 8 records below the old positions are read after the reset\n"
      << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test

namespace cdr::test {
namespace {

// The forecast: every partition with its next action, deadline, status and
// holds, narrowed by --until and --customer, with totals per month of
// action; the same numbers scraped as cdr_retention_records_due_by_month,
// and the CLI's table carries what the JSON says.
TEST(monitoring, plan_forecasts_every_partition_and_is_scraped) {
  temp_dir dir;
  mock_kafka k(4);
  daemon_process d(write_test_config(dir), args_for(k), dir / "log");
  const std::string sock = dir / "a.sock";
  ASSERT_TRUE(d.wait_ready(sock)) << d.log();
  send(k, 20, "2023-01", "late");          // stripped on arrival; dropped from 2033-01
  send(k, 5, "2025-02", "fresh", "acme");  // stripped from 2026-03, dropped from 2035-01
  send(k, 3, "2025-02", "fresh-g", "globex");
  ASSERT_TRUE(wait_for([&] { return stored_offsets(sock) >= 28; })) << d.log();
  const auto call = [&](const std::string& command, const nlohmann::json& args) {
    const auto r = admin_call(sock, command, args);
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    return r["result"];
  };
  call("hold add", {{"from_month", "2025-02"}, {"to_month", "2025-02"}, {"reason", "audit"}, {"reference", "R-1"}});

  const auto plan = call("plan", nlohmann::json::object());
  EXPECT_EQ(plan["records"], 28);
  const auto expected = nlohmann::json::parse(R"([
    {"kind":"cdr","month":"2025-02","class":0,"records":8,"state":"whole","action":"strip_identifiers",
     "deadline":"2026-03-01T00:00:00Z","status":"scheduled","then":"drop_metadata",
     "then_deadline":"2035-01-01T00:00:00Z","holds":[1],"partial_holds":[]},
    {"kind":"cdr","month":"2023-01","class":0,"records":20,"state":"stripped","action":"drop_metadata",
     "deadline":"2033-01-01T00:00:00Z","status":"scheduled","then":null,"then_deadline":null,"holds":[],
     "partial_holds":[]}])");
  EXPECT_EQ(plan["partitions"], expected) << plan.dump(1);
  EXPECT_EQ(plan["totals"], nlohmann::json::parse(R"([
    {"month":"2026-03","action":"strip_identifiers","records":8},
    {"month":"2033-01","action":"drop_metadata","records":20},
    {"month":"2035-01","action":"drop_metadata","records":8}])"));

  const auto horizon = call("plan", {{"until", "2026-12"}});
  EXPECT_EQ(horizon["partitions"], nlohmann::json::array({expected[0]}));
  EXPECT_EQ(horizon["totals"],
            nlohmann::json::parse(R"([{"month":"2026-03","action":"strip_identifiers","records":8}])"));
  const auto globex = call("plan", {{"customer", "globex"}});
  ASSERT_EQ(globex["partitions"].size(), 1u) << globex.dump();
  EXPECT_EQ(globex["partitions"][0]["records"], 3);
  EXPECT_EQ(globex["records"], 3);
  EXPECT_EQ(admin_call(sock, "plan", {{"until", "2026-13"}})["error"]["code"], "invalid_argument");

  // Scraped: this month (2025-03) and the next 12.
  const std::string listen = call("status", nlohmann::json::object())["metrics"]["listen"];
  const std::string strip_2026_03 =
      "cdr_retention_records_due_by_month{action=\"strip_identifiers\",month=\"2026-03\"} ";
  ASSERT_TRUE(wait_for([&] { return sample(http_get(listen, "/metrics"), strip_2026_03) == 8; }))
      << http_get(listen, "/metrics");
  const auto body = http_get(listen, "/metrics");
  EXPECT_EQ(sample(body, "cdr_retention_records_due_by_month{action=\"drop_usage\",month=\"2025-03\"} "), 0);
  EXPECT_EQ(sample(body, "cdr_retention_records_due_by_month{action=\"strip_identifiers\",month=\"2026-04\"} "), -1)
      << "13 months only";

  const auto text = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock, "plan"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const auto tables = text.out.substr(text.out.find("\npartitions:\n") + 13);
  EXPECT_EQ(table_mismatch(tables.substr(0, tables.find("\n\n") + 1), plan["partitions"]), "") << text.out;
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

// The probes on the metrics port never wait for the admin socket's
// workers: with both held by exports nobody reads, `status` (the probe of
// earlier builds) hangs, /healthz and /readyz answer at once.
TEST(monitoring, probes_answer_while_two_long_commands_hold_every_admin_worker) {
  mock_kafka k(2);
  temp_dir dir;
  const auto sock = dir / "a.sock";
  daemon_process d(write_test_config(dir), args_for(k), dir / "log");
  ASSERT_TRUE(d.wait_ready(sock)) << d.log();
  const auto listen = admin_call(sock, "status")["result"]["metrics"]["listen"].get<std::string>();
  // One subject's 12,000 records: an export of them (4 MB) is more than the
  // reply queue (1 MiB) and a socket's buffers hold, so a worker sending it
  // waits for its reader.
  for (int i = 0; i < 12000; ++i) {
    const auto id = fmt::format("x-{}", i);
    k.produce(
        "cdr", id,
        R"({"type":"cdr","id":")" + id +
            R"(","customer_id":"c","occurred_at":"2025-02-10T09:00:00Z","channel":"sms","from":"+385915550000","to":"+385915550001"})");
  }
  k.flush();
  ASSERT_TRUE(wait_for([&] { return stored_offsets(sock) >= 12000; }));
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string line = R"({"id":1,"command":"subject export","args":{"identifier":"+385915550000"}})"
                             "\n";
    ASSERT_EQ(send(fd, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
    held.push_back(fd);
  }
  auto status = std::async(std::launch::async, [&] { return admin_call(sock, "status"); });
  EXPECT_EQ(status.wait_for(seconds(2)), std::future_status::timeout)
      << "both admin workers are held (else this test proves nothing)";
  const auto healthz = http_request(listen, "/healthz");
  EXPECT_EQ(healthz.status, 200) << healthz.body;
  const auto alive = nlohmann::json::parse(healthz.body);
  EXPECT_EQ(alive["status"], "ok");
  EXPECT_EQ(alive["phase"], "serving");
  EXPECT_LT(alive["seconds_since_loop_tick"].get<double>(), 5.0);
  const auto readyz = http_request(listen, "/readyz");
  EXPECT_EQ(readyz.status, 200) << readyz.body;
  EXPECT_EQ(nlohmann::json::parse(readyz.body)["phase"], "serving");
  EXPECT_NE(http_get(listen, "/metrics").find("cdr_retention_records{kind=\"cdr\"} 12000"), std::string::npos);
  for (const int fd : held) close(fd);
  EXPECT_TRUE(status.get().value("ok", false)) << "the workers are free again";
  kill(d.pid(), SIGTERM);
  EXPECT_EQ(d.wait_exit(seconds(30)), 0);
}

}  // namespace
}  // namespace cdr::test
