// The retention suites' fixture: the real daemon binary on a simulated
// clock, consuming crafted events from librdkafka's mock cluster (hosted by
// the test), and the model of what the notice says about each record.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "daemon_process.h"
#include "mock_kafka.h"

namespace cdr::test {

using namespace std::chrono;
namespace fs = std::filesystem;

inline std::string ym_text(year_month ym) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(ym.year()), static_cast<unsigned>(ym.month()));
  return buf;
}
inline std::string at(year_month ym, int day, int hour) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%sT%02d:00:00Z",
                (ym_text(ym) + "-" + (day < 10 ? "0" : "") + std::to_string(day)).c_str(), hour);
  return buf;
}
inline unsigned days_in(year_month ym) {
  return static_cast<unsigned>((sys_days{(ym + months{1}) / 1} - sys_days{ym / 1}).count());
}

// One record the test sent, and what the notice says about it.
struct sent {
  std::string id;
  bool usage = false;
  year_month month;
  std::string customer;
  std::string phone;  // the identifier planted in it (CDRs)

  year_month strip_at() const { return month + months{13}; }
  year_month drop_at() const {
    return usage ? month + months{36} : year{static_cast<int>(month.year()) + 10} / January;
  }
  // At the first instant of month `now`.
  bool present(year_month now) const { return now < drop_at(); }
  // A usage record's personal members (sealed) go with the record.
  bool identifiers(year_month now) const { return present(now) && (usage || now < strip_at()); }
};

class retention_fixture : public ::testing::Test {
 protected:
  retention_fixture() : kafka_(2) {}
  void TearDown() override {
    if (HasFailure()) {
      const auto log = read_file(dir_ / "log");
      std::cerr << "--- daemon log (tail) ---\n" << log.substr(log.size() > 6000 ? log.size() - 6000 : 0) << "\n";
    }
  }

  std::vector<std::string> args(const std::string& clock) const {
    std::vector<std::string> a{"--fake-clock", clock,
                               "--set",        "kafka.brokers=" + kafka_.bootstrap(),
                               "--set",        "kafka.batch_linger=20ms",
                               "--set",        "kafka.properties.\"session.timeout.ms\"=6000",
                               "--set",        "kafka.properties.\"heartbeat.interval.ms\"=500",
                               "--set",        "storage.compression=none"};
    a.insert(a.end(), extra_args_.begin(), extra_args_.end());
    return a;
  }
  std::unique_ptr<daemon_process> start(const std::string& clock, const std::vector<std::string>& env = {}) {
    auto d = std::make_unique<daemon_process>(write_test_config(dir_), args(clock), dir_ / "log", env);
    EXPECT_TRUE(d->wait_ready(sock())) << d->log();
    return d;
  }
  std::string sock() const { return dir_ / "a.sock"; }

  // A second daemon on the store at `store_path` (a checkpoint), with its own
  // socket (other / "a.sock") and log, and this daemon's key store and master
  // key: a checkpoint carries neither.
  std::unique_ptr<daemon_process> start_second(const temp_dir& other, const std::string& store_path,
                                               const std::string& clock) {
    auto d = std::make_unique<daemon_process>(
        write_test_config(other),
        std::vector<std::string>{"--fake-clock", clock, "--set", "storage.path=" + store_path, "--set",
                                 "storage.keystore_path=" + (dir_ / "keys/keystore.json"), "--set",
                                 "storage.master_key_file=" + (dir_ / "master.key")},
        other / "log");
    EXPECT_TRUE(d->wait_ready(other / "a.sock")) << d->log();
    return d;
  }

  nlohmann::json call(const std::string& command, const nlohmann::json& a = nlohmann::json::object()) {
    auto r = admin_call(sock(), command, a);
    EXPECT_TRUE(r.value("ok", false)) << command << ": " << r.dump();
    return r.value("result", nlohmann::json());
  }

  const sent& send_cdr(year_month m, const std::string& when, const std::string& customer, const std::string& phone) {
    sent s{"c-" + std::to_string(++ids_), false, m, customer, phone};
    kafka_.produce("cdr", s.id,
                   R"({"type":"cdr","id":")" + s.id + R"(","customer_id":")" + customer + R"(","occurred_at":")" +
                       when + R"(","channel":"sms","from":")" + phone + R"(","to":"someone)" + std::to_string(ids_) +
                       R"(@example.org"})");
    ++messages_;
    return sent_.emplace_back(std::move(s));
  }
  const sent& send_usage(year_month m, const std::string& when, const std::string& customer) {
    sent s{"u-" + std::to_string(++ids_), true, m, customer, ""};
    kafka_.produce("usage", s.id,
                   R"({"type":"usage","id":")" + s.id + R"(","customer_id":")" + customer + R"(","occurred_at":")" +
                       when + R"(","account_user":"jane@acme.example","ip":"203.0.113.7"})");
    ++messages_;
    return sent_.emplace_back(std::move(s));
  }

  // Waits until the daemon's stored offsets cover every message sent.
  void wait_stored() {
    kafka_.flush();
    const auto deadline = steady_clock::now() + seconds(120);
    std::uint64_t total = 0;
    while (steady_clock::now() < deadline) {
      total = stored_offsets(sock());
      if (total >= messages_) return;
      std::this_thread::sleep_for(milliseconds(30));
    }
    FAIL() << "stored offsets " << total << " of " << messages_;
  }

  // What `record get` shows: nullopt when absent, else whether it shows
  // the planted identifier (a usage record: its sealed members). A record
  // of an erased subject that arrived (again) after the erasure keeps its
  // other identifiers, without the erased one: that counts as without.
  std::optional<bool> get(const sent& s) {
    const auto r = admin_call(sock(), "record get", {{"id", s.id}, {"kind", s.usage ? "usage" : "cdr"}});
    if (!r.value("ok", false)) {
      EXPECT_EQ(r["error"]["code"], "not_found") << r.dump();
      return std::nullopt;
    }
    if (s.usage) return r["result"]["record"].contains("account_user");
    const auto& ids = r["result"]["identifiers"];
    if (ids.is_null() || !ids.contains("from")) return false;
    EXPECT_EQ(ids["from"], s.phone) << "identifiers come back byte-exact";
    return true;
  }

  void expect_model(const sent& s, year_month now) {
    const auto got = get(s);
    EXPECT_EQ(got.has_value(), s.present(now)) << s.id << " of " << ym_text(s.month) << " at " << ym_text(now);
    if (got) {
      EXPECT_EQ(*got, s.identifiers(now)) << s.id << " identifiers, of " << ym_text(s.month) << " at " << ym_text(now);
    }
  }

  // Every file under the data directory, searched for raw bytes.
  std::size_t occurrences(const std::string& needle) const {
    std::size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "data")) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (auto pos = bytes.find(needle); pos != std::string::npos; pos = bytes.find(needle, pos + 1)) ++n;
    }
    return n;
  }

  std::vector<std::string> extra_args_;  // appended to every start's arguments
  temp_dir dir_;
  mock_kafka kafka_;
  std::vector<sent> sent_;
  std::uint64_t messages_ = 0;
  std::uint64_t ids_ = 0;
};

}  // namespace cdr::test
