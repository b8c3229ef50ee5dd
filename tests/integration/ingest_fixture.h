// The ingest suites' fixture: the real daemon binary consuming generated
// traffic from librdkafka's mock cluster, hosted by the test on its own
// handle so it outlives a killed daemon, and an expectation of the final
// store computed here independently of the daemon's code.
#pragma once

#include <gtest/gtest.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "cdr/admin/client.h"
#include "cdr/core/event_generator.h"
#include "cdr/core/hex.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"
#include "cdr/store/store.h"
#include "daemon_process.h"
#include "mock_kafka.h"
#include "store_census.h"

namespace cdr::test {

using namespace std::chrono;

// The daemon's simulated now; the generator's events happen before it.
constexpr const char* now_text = "2025-03-14T10:26:53Z";

struct expected_record {
  record_kind kind;
  bool identifiers;
};

// Independent model of retention.md's defaults: first instants of M+13,
// 1 January of year(M)+10, and M+36, compared with "now".
struct model {
  sys_days now = floor<days>(sys_seconds{seconds{1'741'948'013}});

  static year_month month_of(const std::string& json) {
    const auto at = json.find("\"occurred_at\":\"");
    const int y = std::stoi(json.substr(at + 15, 4));
    const unsigned m = static_cast<unsigned>(std::stoi(json.substr(at + 20, 2)));
    return year{y} / std::chrono::month{m};
  }
  bool due(year_month deadline) const { return sys_days{deadline / 1} <= now; }

  // nullopt: not stored (dropped on ingest).
  std::optional<expected_record> outcome(const generated_event& e) const {
    const auto m = month_of(e.json);
    if (e.kind == record_kind::usage) {
      if (due(m + months{36})) return std::nullopt;
      // Its account user, IP address and user agent are sealed.
      return expected_record{record_kind::usage, true};
    }
    if (due(year{static_cast<int>(m.year()) + 10} / January)) return std::nullopt;
    return expected_record{record_kind::cdr, !due(m + months{13})};
  }
};

class ingest : public ::testing::Test {
 protected:
  ingest() : kafka_(8) {}

  std::vector<std::string> daemon_args(const std::string& group = "cdr-retention") const {
    return {"--fake-clock", now_text,
            "--set",        "kafka.brokers=" + kafka_.bootstrap(),
            "--set",        "kafka.group_id=" + group,
            "--set",        "kafka.batch_linger=20ms",
            "--set",        "kafka.properties.\"session.timeout.ms\"=6000",
            "--set",        "kafka.properties.\"heartbeat.interval.ms\"=500",
            "--set",        "storage.compression=none"};
  }

  std::unique_ptr<daemon_process> start(const temp_dir& dir, const std::string& group = "cdr-retention",
                                        const std::vector<std::string>& env = {},
                                        const std::vector<std::string>& more_args = {}) {
    auto args = daemon_args(group);
    args.insert(args.end(), more_args.begin(), more_args.end());
    auto d = std::make_unique<daemon_process>(write_test_config(dir), args, dir / "log", env);
    EXPECT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
    return d;
  }

  // Generates n events; 5% of them are sent twice, 1% malformed, 1% late.
  void produce(std::size_t n, std::uint64_t seed) {
    generator_options o;
    o.seed = seed;
    o.malformed_fraction = 0.01;
    o.late_fraction = 0.01;
    event_generator gen(o);
    std::mt19937_64 rng(seed);
    std::vector<std::pair<std::string, generated_event>> redeliver;
    for (std::size_t i = 0; i < n; ++i) {
      auto e = gen.next();
      const std::string topic = e.kind == record_kind::usage ? "usage" : "cdr";
      kafka_.produce(topic, e.id, e.json);
      ++messages_;
      if (e.expected_reject) {
        malformed_[e.json] = std::string(name(*e.expected_reject));
      } else if (auto r = model_.outcome(e)) {
        expected_[std::string(name(e.kind)) + "/" + e.id] = *r;
      }
      if (rng() % 100 < 5) redeliver.emplace_back(topic, e);
      // Redeliveries come later, in a different order.
      if (redeliver.size() > 50 || (i + 1 == n && !redeliver.empty())) {
        std::shuffle(redeliver.begin(), redeliver.end(), rng);
        for (const auto& [t, r] : redeliver) {
          kafka_.produce(t, r.id, r.json);
          ++messages_;
          if (r.expected_reject) ++duplicate_rejects_;
        }
        redeliver.clear();
      }
    }
    kafka_.flush();
  }

  // Sums events_total over outcomes from the status of each daemon.
  static std::uint64_t consumed(const std::string& socket) {
    try {
      const auto s = admin_call(socket, "status");
      std::uint64_t n = 0;
      const auto events =
          s.value(nlohmann::json::json_pointer("/result/kafka/consumer/events"), nlohmann::json::object());
      for (const auto& [k, v] : events.items()) n += v.get<std::uint64_t>();
      return n;
    } catch (const std::exception&) {
      return 0;
    }
  }

  void wait_consumed(const std::vector<std::string>& sockets, std::uint64_t base = 0, seconds timeout = seconds(180)) {
    const auto deadline = steady_clock::now() + timeout;
    std::uint64_t n = 0;
    while (steady_clock::now() < deadline) {
      n = base;
      for (const auto& s : sockets) n += consumed(s);
      if (n >= messages_) break;
      std::this_thread::sleep_for(milliseconds(200));
    }
    ASSERT_EQ(n, messages_) << "every produced message is accounted for exactly once";
  }

  // Waits until the offsets a daemon has stored cover every produced message
  // (for tests where restarts reset the daemon's own event counts).
  void wait_offsets(const std::string& socket, seconds timeout = seconds(180)) {
    const auto deadline = steady_clock::now() + timeout;
    std::uint64_t total = 0;
    while (steady_clock::now() < deadline) {
      total = stored_offsets(socket);
      if (total >= messages_) break;
      std::this_thread::sleep_for(milliseconds(300));
    }
    ASSERT_EQ(total, messages_) << "stored offsets cover every message";
  }

  // The records in a stopped daemon's store.
  // The stopped daemon's store by a raw scan (store_census.h): a record
  // stored twice, under two keys or twice under one, fails here.
  static std::map<std::string, expected_record> stored(const temp_dir& dir) {
    const auto census = take_census(dir / "data");
    EXPECT_TRUE(census.twice.empty()) << "stored twice: " << fmt::format("{}", fmt::join(census.twice, ", "));
    EXPECT_TRUE(census.miscounted.empty())
        << "written twice under one key: " << fmt::format("{}", fmt::join(census.miscounted, "; "));
    std::map<std::string, expected_record> out;
    for (const auto& [key, ids] : census.records) {
      out[key] = {key.starts_with("cdr/") ? record_kind::cdr : record_kind::usage, ids};
    }
    return out;
  }

  void expect_exactly(const std::map<std::string, expected_record>& got) {
    EXPECT_EQ(got.size(), expected_.size());
    std::size_t missing = 0, extra = 0, wrong = 0;
    for (const auto& [k, v] : expected_) {
      auto it = got.find(k);
      if (it == got.end()) {
        if (++missing <= 5) ADD_FAILURE() << "missing " << k;
      } else if (it->second.identifiers != v.identifiers) {
        if (++wrong <= 5)
          ADD_FAILURE() << k << " identifiers " << it->second.identifiers << " expected " << v.identifiers;
      }
    }
    for (const auto& [k, v] : got) {
      if (!expected_.contains(k) && ++extra <= 5) ADD_FAILURE() << "unexpected " << k;
    }
    EXPECT_EQ(missing + extra + wrong, 0u);
  }

  // Every malformed message reached the dead-letter topic, with its reason
  // and source, exactly once; after a kill -9 (`kills`), at least once: a
  // reject acknowledged by the topic whose offset the kill kept from the
  // store is sent again (docs/events.md, "Bad input").
  // A dead letter's original value, opened as docs/data-protection.md
  // describes (independently of the daemon's code): the key from the
  // subject key, the source as associated data, "<key length>:" key value.
  // Empty when it does not open.
  static std::string open_dead_letter(const read_message& m) {
    const auto j = nlohmann::json::parse(m.value, nullptr, false);
    if (!j.is_object() || j.value("format", "") != "cdr-retention dead letter v1") return "";
    crypto::aead seal(crypto::hmac_sha256("test-subject-key-0123456789abcdef", "cdr-retention dead letter seal v1"));
    const auto& s = j["source"];
    const auto framed = seal.open(from_hex(j["sealed"].get<std::string>()).value_or(""),
                                  fmt::format("cdr-retention dead letter v1|{}|{}|{}", s["topic"].get<std::string>(),
                                              s["partition"].get<int>(), s["offset"].get<std::int64_t>()));
    if (!framed) return "";
    const auto colon = framed->find(':');
    return framed->substr(colon + 1 + std::stoul(framed->substr(0, colon)));
  }

  void expect_dead_letters(int kills = 0) {
    if (kills > 0) {
      const auto end = static_cast<std::size_t>(kafka_.end_offsets("cdr-retention-dlq"));
      const auto dlq = kafka_.read_all("cdr-retention-dlq", end);
      std::map<std::string, std::size_t> seen;
      for (const auto& m : dlq) {
        const auto value = open_dead_letter(m);
        ASSERT_TRUE(malformed_.contains(value)) << "not a malformed message: " << m.value;
        ++seen[value];
      }
      EXPECT_EQ(seen.size(), malformed_.size()) << "every malformed message reached the dead-letter topic";
      std::cout << "dead letters after " << kills << " kill(s): " << dlq.size() << " for " << malformed_.size()
                << " malformed messages\n";
      return;
    }
    const auto dlq = kafka_.read_all("cdr-retention-dlq", malformed_.size() + duplicate_rejects_);
    std::map<std::string, std::size_t> seen;
    for (const auto& m : dlq) {
      const auto value = open_dead_letter(m);
      ++seen[value];
      ASSERT_TRUE(malformed_.contains(value)) << "not a malformed message (or it does not open): " << m.value;
      EXPECT_EQ(m.headers.at("cdr-retention-reason"), malformed_.at(value));
      // Nothing of the original in clear: its value, or any "+" number in it.
      EXPECT_EQ(m.value.find(value), std::string::npos) << m.value;
      for (auto at = value.find('+'); at != std::string::npos && at + 8 <= value.size(); at = value.find('+', at + 1)) {
        EXPECT_EQ(m.value.find(value.substr(at, 8)), std::string::npos) << "a number in clear: " << m.value;
        EXPECT_EQ(m.key.find(value.substr(at, 8)), std::string::npos) << "a number in the key: " << m.key;
      }
      EXPECT_TRUE(m.headers.contains("cdr-retention-source-topic"));
      EXPECT_TRUE(m.headers.contains("cdr-retention-source-partition"));
      EXPECT_TRUE(m.headers.contains("cdr-retention-source-offset"));
    }
    EXPECT_EQ(seen.size(), malformed_.size()) << "every malformed message reached the dead-letter topic";
    EXPECT_EQ(dlq.size(), malformed_.size() + duplicate_rejects_);
    EXPECT_EQ(kafka_.end_offsets("cdr-retention-dlq"),
              static_cast<std::int64_t>(malformed_.size() + duplicate_rejects_))
        << "no message reached the dead-letter topic twice";
  }

  mock_kafka kafka_;
  model model_;
  std::uint64_t messages_ = 0;
  std::uint64_t duplicate_rejects_ = 0;
  std::map<std::string, expected_record> expected_;
  std::map<std::string, std::string> malformed_;  // message -> reason
};

}  // namespace cdr::test
