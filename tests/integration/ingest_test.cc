// Ingest end to end: the real daemon binary consuming from librdkafka's mock
// cluster, hosted by the test on its own handle so it outlives a killed
// daemon. Every test compares the final store, id by id, with an
// expectation computed here independently of the daemon's code.
#include <gtest/gtest.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "cdr/admin/client.h"
#include "cdr/core/event_generator.h"
#include "cdr/store/store.h"
#include "daemon_process.h"
#include "mock_kafka.h"

namespace cdr::test {
namespace {

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
      return expected_record{record_kind::usage, false};
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
                                        const std::vector<std::string>& env = {}) {
    auto d = std::make_unique<daemon_process>(write_test_config(dir), daemon_args(group), dir / "log", env);
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
  static std::map<std::string, expected_record> stored(const temp_dir& dir) {
    storage_config sc;
    sc.path = dir / "data";
    sc.block_cache_bytes = 8 << 20;
    store::store s(sc);
    std::map<std::string, expected_record> out;
    for (auto kind : {record_kind::cdr, record_kind::usage}) {
      s.for_each_record(kind, [&](const partition&, std::string_view id, bool ids) {
        const auto key = std::string(name(kind)) + "/" + std::string(id);
        EXPECT_FALSE(out.contains(key)) << key << " stored twice";
        out[key] = {kind, ids};
      });
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

  void expect_dead_letters() {
    const auto dlq = kafka_.read_all("cdr-retention-dlq", malformed_.size() + duplicate_rejects_);
    std::map<std::string, std::size_t> seen;
    for (const auto& m : dlq) {
      ++seen[m.value];
      ASSERT_TRUE(malformed_.contains(m.value)) << "not a malformed message: " << m.value;
      EXPECT_EQ(m.headers.at("cdr-retention-reason"), malformed_.at(m.value));
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

TEST_F(ingest, fifty_thousand_events_with_redeliveries_malformed_and_late) {
  temp_dir dir;
  auto d = start(dir);
  produce(50'000, 11);
  wait_consumed({dir / "a.sock"});
  const auto status = admin_call(dir / "a.sock", "status")["result"];
  const auto events = status.value(nlohmann::json::json_pointer("/kafka/consumer/events"), nlohmann::json::object());
  EXPECT_GT(events.value("duplicate", 0), 2000);
  EXPECT_GT(events.value("stripped_on_ingest", 0), 100);
  EXPECT_GT(events.value("dropped_on_ingest", 0), 10);
  EXPECT_EQ(events.value("rejected", 0), malformed_.size() + duplicate_rejects_);
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, graceful_restart_in_the_middle_loses_and_doubles_nothing) {
  temp_dir dir;
  auto d = start(dir);
  produce(10'000, 21);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  const auto before = consumed(dir / "a.sock");  // gone: 0
  EXPECT_EQ(before, 0u);
  d = start(dir);
  produce(10'000, 22);
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, kill_9_at_five_random_moments_loses_and_doubles_nothing) {
  temp_dir dir;
  std::mt19937 rng(5);
  auto d = start(dir);
  for (int round = 0; round < 5; ++round) {
    produce(4'000, 100 + static_cast<std::uint64_t>(round));
    std::this_thread::sleep_for(milliseconds(200 + rng() % 1500));
    EXPECT_EQ(d->stop(SIGKILL), -SIGKILL);
    d = start(dir);
  }
  produce(2'000, 200);
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
}

TEST_F(ingest, broker_down_and_request_errors_lose_nothing) {
  temp_dir dir;
  auto d = start(dir);
  produce(5'000, 31);
  wait_consumed({dir / "a.sock"});
  const auto before = messages_;
  rd_kafka_mock_broker_set_down(kafka_.cluster().mock(), 1);
  std::this_thread::sleep_for(seconds(5));
  rd_kafka_mock_broker_set_up(kafka_.cluster().mock(), 1);
  // Fetch and commit requests fail a few times more.
  rd_kafka_mock_push_request_errors(kafka_.cluster().mock(), 1 /* Fetch */, 3,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  rd_kafka_mock_push_request_errors(kafka_.cluster().mock(), 8 /* OffsetCommit */, 2,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
  produce(5'000, 32);
  EXPECT_GT(messages_, before);
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, an_unwritable_dead_letter_topic_pauses_consumption_instead_of_skipping) {
  temp_dir dir;
  auto d = start(dir);
  auto* mock = kafka_.cluster().mock();
  rd_kafka_mock_topic_set_error(mock, "cdr-retention-dlq", RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  produce(3'000, 51);
  // The batch holding the first malformed message cannot be made durable:
  // consumption pauses and no offset moves past it.
  const auto deadline = steady_clock::now() + seconds(60);
  nlohmann::json consumer;
  while (steady_clock::now() < deadline) {
    consumer = admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"];
    if (consumer.value("pause_reason", "") == "dead_letter") break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_EQ(consumer.value("pause_reason", ""), "dead_letter") << consumer.dump();
  EXPECT_LT(consumed(dir / "a.sock"), messages_);
  rd_kafka_mock_topic_set_error(mock, "cdr-retention-dlq", RD_KAFKA_RESP_ERR_NO_ERROR);
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"].value("state", ""), "running");
  EXPECT_NE(d->log().find("ingest resumed (was paused: dead_letter)"), std::string::npos);
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, a_batch_refused_after_its_dead_letters_were_sent_does_not_send_them_twice) {
  // A batch a sweep closed a partition under is dropped and read again
  // (`stale`); the failpoint refuses the first batch holding a rejected
  // message that way, after its dead-letter copies were acknowledged.
  temp_dir dir;
  auto d = start(dir, "cdr-retention", {"CDR_RETENTION_FAILPOINT=refuse_batch_as_stale"});
  ASSERT_FALSE(HasFailure());
  produce(3'000, 61);
  wait_consumed({dir / "a.sock"});
  EXPECT_NE(d->log().find("failpoint refuse_batch_as_stale reached"), std::string::npos) << d->log();
  EXPECT_NE(d->log().find("refused by a failpoint; re-reading the batch"), std::string::npos) << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, subject_export_and_record_get_find_a_subject_by_its_keyed_hash) {
  temp_dir dir;
  auto d = start(dir);
  const auto cdr = [](const std::string& id, const std::string& at, const std::string& ids) {
    return R"({"type":"cdr","id":")" + id + R"(","customer_id":"acme","occurred_at":")" + at +
           R"(","channel":"sms","route":{"country":"HR"})" + ids + "}";
  };
  // Three records of the subject (two months, both directions, different
  // spellings), one of another subject, and one too old to keep identifiers.
  const std::vector<std::pair<std::string, std::string>> events{
      {"s-1", cdr("s-1", "2025-03-01T10:00:00Z", R"(,"to":"+385 91 555 0001")")},
      {"s-2", cdr("s-2", "2025-02-11T10:00:00+01:00", R"(,"from":"00385915550001","to":"+447700900123")")},
      {"s-3", cdr("s-3", "2025-03-02T10:00:00Z", R"(,"to":"Jane.Doe@Example.com","msisdn":"+385915550001")")},
      {"other", cdr("other", "2025-03-02T10:00:00Z", R"(,"to":"+385915550002")")},
      {"old", cdr("old", "2023-01-05T10:00:00Z", R"(,"to":"+385915550001")")},
  };
  for (const auto& [id, json] : events) {
    kafka_.produce("cdr", id, json);
    ++messages_;
  }
  kafka_.flush();
  wait_consumed({dir / "a.sock"});

  std::vector<nlohmann::json> items;
  admin::client c(dir / "a.sock", std::chrono::seconds(10));
  const auto done = c.call("subject export", {{"identifier", "+385-91-555-0001"}},
                           [&](const nlohmann::json& item) { items.push_back(item); });
  ASSERT_EQ(done["ok"], true) << done.dump();
  EXPECT_EQ(done["result"]["records"], 3);
  std::set<std::string> ids;
  for (const auto& item : items) {
    ids.insert(item["id"]);
    EXPECT_EQ(item["kind"], "cdr");
    EXPECT_FALSE(item["identifiers"].is_null()) << item.dump();
  }
  EXPECT_EQ(ids, (std::set<std::string>{"s-1", "s-2", "s-3"}));
  EXPECT_EQ(done["result"]["subject"].get<std::string>().size(), 64u) << "the keyed hash, never the identifier";
  EXPECT_EQ(done.dump().find("5550001"), std::string::npos);

  // E-mail addresses match case-insensitively.
  items.clear();
  const auto mail = c.call("subject export", {{"identifier", "jane.doe@example.COM"}},
                           [&](const nlohmann::json& item) { items.push_back(item); });
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["id"], "s-3");

  // The CLI writes the records as JSON lines.
  const auto cli = run_command(
      {CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "subject", "export", "--identifier", "+385915550001"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(std::count(cli.out.begin(), cli.out.end(), '\n'), 3) << cli.out;

  auto r = admin_call(dir / "a.sock", "record get", {{"id", "s-2"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["result"]["month"], "2025-02");
  EXPECT_EQ(r["result"]["metadata"]["route"]["country"], "HR");
  EXPECT_EQ(r["result"]["identifiers"]["from"], "00385915550001") << "identifiers are kept as sent";
  r = admin_call(dir / "a.sock", "record get", {{"id", "old"}, {"kind", "cdr"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_TRUE(r["result"]["identifiers"].is_null()) << "stored without identifiers: past its strip deadline";
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "nope"}})["error"]["code"], "not_found");
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "s-1"}, {"kind", "fax"}})["error"]["code"],
            "invalid_argument");
  EXPECT_EQ(d->stop(SIGTERM), 0);
}

// A full disk: the store lives on a small tmpfs. The daemon pauses with
// reason no_space, commits no offset past what it stored, and resumes when
// the filesystem grows.
TEST_F(ingest, a_full_disk_pauses_consumption_and_resumes_when_space_returns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  temp_dir dir;
  const auto small = dir / "small";
  std::filesystem::create_directories(small);
  if (run_command({"/bin/mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", small}).exit_code != 0) {
    GTEST_SKIP() << "cannot mount tmpfs here";
  }
  struct unmount {
    std::string path;
    ~unmount() { run_command({"/bin/umount", "-l", path}); }
  } guard{small};
  auto args = daemon_args();
  args.insert(args.end(), {"--set", "storage.path=" + small + "/data"});
  auto d = std::make_unique<daemon_process>(write_test_config(dir), args, dir / "log");
  ASSERT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
  produce(20'000, 61);

  const auto deadline = steady_clock::now() + seconds(90);
  nlohmann::json consumer;
  while (steady_clock::now() < deadline && !d->wait_exit(milliseconds(0))) {
    try {
      consumer = admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"];
    } catch (const std::exception&) {
    }
    if (consumer.value("pause_reason", "") == "no_space") break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_EQ(consumer.value("pause_reason", ""), "no_space") << consumer.dump() << d->log();
  EXPECT_LT(consumed(dir / "a.sock"), messages_);
  const auto metrics = http_get(admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"], "/metrics");
  EXPECT_NE(metrics.find("cdr_retention_ingest_pauses_total{reason=\"no_space\"}"), std::string::npos);

  ASSERT_EQ(run_command({"/bin/mount", "-o", "remount,size=256m", small}).exit_code, 0);
  wait_consumed({dir / "a.sock"});
  EXPECT_NE(d->log().find("ingest resumed (was paused: no_space)"), std::string::npos) << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  // stored() opens dir/data: point it at the tmpfs store.
  std::filesystem::create_symlink(small + "/data", dir / "data");
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, two_consumers_of_one_group_store_each_record_exactly_once) {
  temp_dir a_dir, b_dir;
  auto a = start(a_dir, "shared");
  produce(6'000, 41);
  auto b = start(b_dir, "shared");  // joins: a rebalance moves partitions to b
  produce(6'000, 42);
  wait_consumed({a_dir / "a.sock", b_dir / "a.sock"});
  EXPECT_EQ(a->stop(SIGTERM), 0) << a->log();
  EXPECT_EQ(b->stop(SIGTERM), 0) << b->log();
  auto in_a = stored(a_dir);
  const auto in_b = stored(b_dir);
  EXPECT_FALSE(in_b.empty()) << "the second consumer got partitions";
  for (const auto& [k, v] : in_b) {
    EXPECT_FALSE(in_a.contains(k)) << k << " stored by both consumers";
    in_a[k] = v;
  }
  expect_exactly(in_a);
}

}  // namespace
}  // namespace cdr::test

namespace cdr::test {
namespace {

std::string cdr_event(const std::string& id, const std::string& occurred_at, const std::string& customer) {
  return R"({"type":"cdr","id":")" + id + R"(","customer_id":")" + customer + R"(","occurred_at":")" + occurred_at +
         R"(","channel":"sms","from":"+385911234567"})";
}

// Finding 3 of "Hardening": "0000-01-01T00:00:00+00:01" is valid RFC 3339
// in year -1. With a hold on its customer it was stored under a broken key;
// its redelivery threw through a librdkafka callback, and every restart
// aborted again. Now it is rejected with a reason of its own, each time.
TEST_F(ingest, an_event_in_year_minus_1_is_rejected_and_never_crash_loops) {
  temp_dir dir;
  auto d = start(dir);
  ASSERT_EQ(admin_call(dir / "a.sock", "hold add", {{"customer", "acme"}, {"reason", "r"}, {"reference", "C-1"}})["ok"],
            true);
  const auto bad = cdr_event("year-minus-one", "0000-01-01T00:00:00+00:01", "acme");
  malformed_[bad] = "occurred_at_out_of_range";
  for (int i = 0; i < 2; ++i) {  // sent, then redelivered
    kafka_.produce("cdr", "k", bad);
    ++messages_;
  }
  ++duplicate_rejects_;
  kafka_.produce("cdr", "k", cdr_event("after-it", "2025-03-01T00:00:00Z", "acme"));
  ++messages_;
  expected_["cdr/after-it"] = {record_kind::cdr, true};
  kafka_.flush();
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  // A restart reads on from where it was: no loop, no abort.
  d = start(dir);
  EXPECT_EQ(admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"]["state"], "running");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

// A stored entry that does not decode (here an id index entry, damaged on
// disk) is counted and reported, never fatal: a redelivery of that id is
// stored again over it and ingest goes on.
TEST_F(ingest, a_corrupt_id_index_entry_is_counted_and_never_aborts) {
  temp_dir dir;
  auto d = start(dir);
  const auto event = cdr_event("id-damaged", "2025-03-01T00:00:00Z", "acme");
  kafka_.produce("cdr", "k", event);
  ++messages_;
  kafka_.flush();
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0);
  // The ids family: kind byte 0x01 (cdr) + the id -> a value that is no entry.
  std::string key_hex = "0x01";
  for (const char c : std::string("id-damaged")) key_hex += fmt::format("{:02X}", static_cast<unsigned char>(c));
  const auto put = run_command({"/usr/bin/ldb", "--db=" + (dir / "data"), "--column_family=ids", "--key_hex",
                                "--value_hex", "put", key_hex, "0xFF"});
  ASSERT_EQ(put.exit_code, 0) << put.out << put.err;
  d = start(dir);
  const auto got = admin_call(dir / "a.sock", "record get", {{"id", "id-damaged"}});
  EXPECT_EQ(got["error"]["code"], "internal") << got.dump();
  EXPECT_NE(got["error"]["message"].get<std::string>().find("does not decode"), std::string::npos);
  kafka_.produce("cdr", "k", event);  // redelivered
  kafka_.produce("cdr", "k", cdr_event("id-next", "2025-03-02T00:00:00Z", "acme"));
  messages_ += 2;
  kafka_.flush();
  wait_offsets(dir / "a.sock");
  const auto status = admin_call(dir / "a.sock", "status")["result"];
  EXPECT_GE(status["storage"]["corrupt_entries"].get<int>(), 1) << status.dump();
  const auto body = http_get(status["metrics"]["listen"], "/metrics");
  EXPECT_EQ(body.find("cdr_retention_store_corrupt_entries_total 0"), std::string::npos) << body;
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "id-damaged"}})["ok"], true) << "repaired";
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "id-next"}})["ok"], true);
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
}

}  // namespace
}  // namespace cdr::test
