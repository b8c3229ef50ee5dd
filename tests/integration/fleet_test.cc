// Issue "The fleet": three daemons in one consumer group on one mock cluster
// (64 partitions), each with its own store. Holds and erasures published
// through one member act on the records every member stores.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "cdr/admin/client.h"
#include "cdr/store/store.h"
#include "daemon_process.h"
#include "mock_kafka.h"

namespace cdr::test {
namespace {

using namespace std::chrono;

constexpr const char* clock_start = "2025-03-14T10:00:00Z";

class fleet : public ::testing::Test {
 protected:
  fleet() : kafka_(64) {}

  void TearDown() override {
    if (!HasFailure()) return;
    if (const char* keep = std::getenv("CDR_KEEP_LOGS")) {  // whole logs, for a failure's post-mortem
      for (std::size_t i = 0; i < members_.size(); ++i) {
        std::filesystem::copy_file(dirs_[i] / "log", fmt::format("{}/member-{}.log", keep, i + 1),
                                   std::filesystem::copy_options::overwrite_existing);
      }
    }
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const auto log = read_file(dirs_[i] / "log");
      std::cerr << "--- member " << i + 1 << " log (tail) ---\n"
                << log.substr(log.size() > 4000 ? log.size() - 4000 : 0) << "\n";
      // Where each member consumes from (a stalled drain names partitions),
      // and where it stands in the group.
      const auto consumer =
          admin_call(sock(i), "status").value(nlohmann::json::json_pointer("/result/kafka/consumer"), nlohmann::json());
      std::cerr << "--- member " << i + 1 << " assignment ---\n"
                << consumer.value("assignment", nlohmann::json()).dump() << "\n"
                << "--- member " << i + 1 << " group, offsets ---\n"
                << consumer.value("group", nlohmann::json()).dump() << "\n"
                << consumer.value("offsets", nlohmann::json()).dump() << "\n";
    }
  }

  std::string sock(std::size_t i) const { return dirs_[i] / "a.sock"; }

  void start(std::size_t i) {
    std::vector<std::string> args{"--fake-clock", clock_start,
                                  "--set",        "kafka.brokers=" + kafka_.bootstrap(),
                                  "--set",        "kafka.group_id=fleet",
                                  "--set",        fmt::format("kafka.group_instance_id=\"member-{}\"", i + 1),
                                  "--set",        "kafka.batch_linger=20ms",
                                  "--set",        "sweep.interval=\"31d\"",
                                  "--set",        "sweep.jitter=\"1s\""};
    if (std::getenv("CDR_KAFKA_DEBUG") != nullptr) {
      args.insert(args.end(),
                  {"--set", std::string("kafka.properties.debug=\"") + std::getenv("CDR_KAFKA_DEBUG") + "\"", "--set",
                   "log.level=\"debug\""});
    }
    if (!shipped_session_) {
      // A member killed -9 gives its partitions up only when its session
      // times out: 6 s instead of the shipped 45 s keeps such tests short.
      for (const auto* p :
           {"kafka.properties.\"session.timeout.ms\"=6000", "kafka.properties.\"heartbeat.interval.ms\"=500"}) {
        args.insert(args.end(), {"--set", p});
      }
    }
    members_[i] = std::make_unique<daemon_process>(write_test_config(dirs_[i]), args, dirs_[i] / "log");
    ASSERT_TRUE(members_[i]->wait_ready(sock(i))) << members_[i]->log();
  }
  void start_all() {
    for (std::size_t i = 0; i < members_.size(); ++i) start(i);
  }
  // Waits until the group has settled: each member owns some of the 64
  // partitions of `topic` (or, with an empty topic, some of the 128 of cdr
  // and usage: the assignor balances the total, not each topic) and none is owned twice
  // or left out.
  void wait_shared(const std::string& topic = "cdr") {
    const auto deadline = steady_clock::now() + seconds(60);
    const std::size_t partitions = topic.empty() ? 128 : 64;
    std::vector<std::size_t> owned;
    while (steady_clock::now() < deadline) {
      owned.clear();
      for (std::size_t i = 0; i < members_.size(); ++i) {
        const auto a =
            admin_call(sock(i), "status")
                .value(nlohmann::json::json_pointer("/result/kafka/consumer/assignment"), nlohmann::json::object());
        std::size_t n = 0;
        for (const auto& [t, parts] : a.items()) {
          n += (topic.empty() ? t == "cdr" || t == "usage" : t == topic) ? parts.size() : 0;
        }
        owned.push_back(n);
      }
      if (std::count(owned.begin(), owned.end(), 0u) == 0 && owned[0] + owned[1] + owned[2] == partitions) return;
      std::this_thread::sleep_for(milliseconds(100));
    }
    FAIL() << "the group did not share the " << partitions << " partitions among the three members";
  }

  nlohmann::json call(std::size_t i, const std::string& command, const nlohmann::json& a = nlohmann::json::object()) {
    auto r = admin_call(sock(i), command, a);
    EXPECT_TRUE(r.value("ok", false)) << "member " << i + 1 << " " << command << ": " << r.dump();
    return r.value("result", nlohmann::json());
  }

  // A CDR of `month` (YYYY-MM) keyed by its id, so the 64 partitions and
  // the three members share them.
  void send(const std::string& id, const std::string& month, const std::string& customer, const std::string& from) {
    kafka_.produce("cdr", id,
                   R"({"type":"cdr","id":")" + id + R"(","customer_id":")" + customer + R"(","occurred_at":")" + month +
                       R"(-10T09:00:00Z","channel":"sms","from":")" + from + R"("})");
    ++messages_;
  }

  // Waits until the members' stored offsets together cover every message.
  void wait_stored() {
    kafka_.flush();
    const auto deadline = steady_clock::now() + seconds(120);
    std::uint64_t total = 0;
    while (steady_clock::now() < deadline) {
      total = 0;
      for (std::size_t i = 0; i < members_.size(); ++i) total += stored_offsets(sock(i));
      if (total >= messages_) return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    FAIL() << "stored offsets " << total << " of " << messages_;
  }

  // `subject export --fleet` through member i: the ids streamed (each once)
  // and the final result.
  std::pair<std::multiset<std::string>, nlohmann::json> fleet_export(std::size_t i, const std::string& identifier) {
    std::multiset<std::string> ids;
    admin::client c(sock(i), seconds(60));
    auto r = c.call("subject export", {{"identifier", identifier}, {"fleet", true}},
                    [&](const nlohmann::json& item) { ids.insert(item.value("id", "")); });
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    return {ids, r.value("result", nlohmann::json())};
  }

  // Which member stores record `id`, and whether it shows its `from`.
  struct where {
    std::size_t member = 0;
    bool identifiers = false;
  };
  std::optional<where> find(const std::string& id) {
    std::optional<where> out;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const auto r = admin_call(sock(i), "record get", {{"id", id}});
      if (!r.value("ok", false)) continue;
      EXPECT_FALSE(out.has_value()) << id << " stored by two members";
      const auto& ids = r["result"]["identifiers"];
      out = where{i, ids.is_object() && ids.contains("from")};
    }
    return out;
  }

  // Per input partition, the furthest next offset any member stored, summed:
  // every message is stored somewhere once this reaches messages_.
  std::uint64_t covered() {
    std::map<std::string, std::int64_t> furthest;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      nlohmann::json r;
      try {
        r = admin_call(sock(i), "status");
      } catch (const std::exception&) {
        continue;  // not running
      }
      const auto offsets =
          r.value(nlohmann::json::json_pointer("/result/kafka/consumer/offsets"), nlohmann::json::object());
      for (const auto& [topic, parts] : offsets.items()) {
        for (const auto& [p, next] : parts.items()) {
          auto& f = furthest[topic + "/" + p];
          f = std::max(f, next.get<std::int64_t>());
        }
      }
    }
    std::uint64_t n = 0;
    for (const auto& [tp, next] : furthest) n += static_cast<std::uint64_t>(next);
    return n;
  }

  // The record ids in a stopped member's store; none twice.
  std::set<std::string> stored(std::size_t i) {
    storage_config sc;
    sc.path = dirs_[i] / "data";
    sc.block_cache_bytes = 8 << 20;
    store::store s(sc);
    std::set<std::string> out;
    s.for_each_record(record_kind::cdr, [&](const partition&, std::string_view id, bool) {
      EXPECT_TRUE(out.emplace(id).second) << id << " stored twice by member " << i + 1;
    });
    return out;
  }

  mock_kafka kafka_;
  // The shipped 45 s session timeout and heartbeat; only a test that kills
  // members -9 shortens them (their partitions move when the session ends).
  bool shipped_session_ = true;
  std::array<temp_dir, 3> dirs_;
  std::array<std::unique_ptr<daemon_process>, 3> members_;
  std::uint64_t messages_ = 0;
};

// A hold through member 1 protects the records members 2 and 3 store, at
// the sweep each runs right after the hold is acknowledged (the race: a
// sweep first applies the control topic up to where it ended); its release
// through member 3 lets them go at the next sweeps.
TEST_F(fleet, a_hold_through_one_member_protects_every_members_records_until_released_through_another) {
  start_all();
  wait_shared();
  constexpr int n = 384;
  for (int i = 0; i < n; ++i) {
    send(fmt::format("h-{}", i), "2024-03", i % 2 == 0 ? "held-co" : "free-co", fmt::format("+3859100{:05}", i));
  }
  wait_stored();
  std::set<std::size_t> holders;
  for (int i = 0; i < n; i += 7) {
    const auto w = find(fmt::format("h-{}", i));
    ASSERT_TRUE(w.has_value());
    EXPECT_TRUE(w->identifiers);
    holders.insert(w->member);
  }
  EXPECT_EQ(holders.size(), 3u) << "every member stores some of the records";

  // 2024-03's identifiers are due on 2025-04-01.
  for (std::size_t i = 0; i < 3; ++i) call(i, "debug advance-clock", {{"duration", "20d"}});
  const auto added = call(0, "hold add", {{"customer", "held-co"}, {"reason", "litigation"}, {"reference", "L-9"}});
  ASSERT_TRUE(added.contains("fleet")) << added.dump();
  const std::string request = added["fleet"]["request"];
  EXPECT_EQ(added["origin"]["request"], request);
  // The fleet's view before the sweeps: the hold on every member, and the
  // forecast's totals over the three stores.
  const auto listed = call(1, "hold list", {{"fleet", true}});
  ASSERT_EQ(listed["members"].size(), 3u) << listed.dump();
  for (const auto& [member, r] : listed["members"].items()) {
    ASSERT_EQ(r["holds"].size(), 1u) << member << ": " << listed.dump();
    EXPECT_EQ(r["holds"][0]["origin"]["request"], request) << member;
  }
  const auto forecast = call(2, "sweep", {{"dry_run", true}, {"fleet", true}});
  EXPECT_TRUE(forecast["complete"].get<bool>()) << forecast.dump();
  EXPECT_EQ(forecast["records"]["strip_identifiers"], n) << forecast.dump();
  const auto statuses = call(0, "status", {{"fleet", true}});
  std::int64_t stored_cdrs = 0;
  for (const auto& [member, r] : statuses["members"].items())
    stored_cdrs += r["storage"]["records"]["cdr"].get<std::int64_t>();
  EXPECT_EQ(stored_cdrs, n) << statuses.dump();
  for (std::size_t i : {std::size_t{1}, std::size_t{2}}) {
    const auto swept = call(i, "sweep");
    ASSERT_EQ(swept["actions"].size(), 1u) << swept.dump();
    EXPECT_GT(swept["actions"][0]["held"].get<int>(), 0) << "member " << i + 1 << ": " << swept.dump();
  }
  call(0, "sweep");
  for (std::size_t i = 0; i < 3; ++i) {
    const auto holds = call(i, "hold list")["holds"];
    ASSERT_EQ(holds.size(), 1u) << holds.dump();
    EXPECT_EQ(holds[0]["origin"]["request"], request) << "the same hold on every member";
  }
  for (int i = 0; i < n; ++i) {
    const auto w = find(fmt::format("h-{}", i));
    ASSERT_TRUE(w.has_value()) << i;
    EXPECT_EQ(w->identifiers, i % 2 == 0) << "h-" << i << " on member " << w->member + 1;
  }

  // Released through member 3: the held records go at each member's next sweep.
  const auto id = call(2, "hold list")["holds"][0]["id"];
  const auto released =
      call(2, "hold release", {{"id", id}, {"reason", "litigation settled"}, {"reference", "CASE-77"}});
  EXPECT_EQ(released["released"]["origin"]["request"], request) << released.dump();
  for (std::size_t i = 0; i < 3; ++i) {
    call(i, "sweep");
    EXPECT_TRUE(call(i, "hold list")["holds"].empty());
  }
  for (int i = 0; i < n; i += 3) {
    const auto w = find(fmt::format("h-{}", i));
    ASSERT_TRUE(w.has_value());
    EXPECT_FALSE(w->identifiers) << "h-" << i;
  }
  for (std::size_t i = 0; i < 3; ++i) {
    const auto v = call(i, "verify");
    EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
    const auto trail = read_file(dirs_[i] / "data/audit.jsonl");
    EXPECT_NE(trail.find(request), std::string::npos) << "member " << i + 1 << "'s audit trail names the request";
    // Every member's release entry says why and for what, as the requester did.
    EXPECT_NE(trail.find(R"("reason":"litigation settled","reference":"CASE-77")"), std::string::npos)
        << "member " << i + 1 << ": " << trail;
    EXPECT_NE(trail.find(fmt::format("\"member\":\"member-{}\"", i + 1)), std::string::npos);
  }
}

// An erasure through member 2 removes the subject from all three stores
// (hidden at once, then purged); the union of the members' exports equals
// the model before and after; a restarted member does not apply it twice.
TEST_F(fleet, an_erasure_through_one_member_removes_the_subject_from_every_store) {
  start_all();
  wait_shared();
  const std::string x = "+447700900123";
  constexpr int n = 130;  // 10 a month over 13 months
  for (int i = 0; i < n; ++i) {
    const int m = 2 + i % 13;  // 2024-03 ... 2025-03: none due yet
    const auto month = fmt::format("{}-{:02}", 2024 + m / 12, m % 12 + 1);
    send(fmt::format("x-{}", i), month, "cust-x", x);
    send(fmt::format("o-{}", i), month, "cust-x", fmt::format("+4477008{:05}", i));
  }
  wait_stored();
  std::size_t exported = 0;
  std::set<std::size_t> holders;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto e = call(i, "subject export", {{"identifier", x}});
    exported += e["records"].get<std::size_t>();
    if (e["records"].get<std::size_t>() > 0) holders.insert(i);
  }
  EXPECT_EQ(exported, static_cast<std::size_t>(n)) << "the union of the exports is the model";
  EXPECT_EQ(holders.size(), 3u);
  // The fleet export through member 3 is the model exactly, every member answering.
  std::multiset<std::string> model;
  for (int i = 0; i < n; ++i) model.insert(fmt::format("x-{}", i));
  {
    const auto [ids, result] = fleet_export(2, x);
    EXPECT_EQ(ids, model);
    EXPECT_EQ(result["records"], n) << result.dump();
    EXPECT_TRUE(result["complete"].get<bool>()) << result.dump();
    EXPECT_EQ(result["members"].size(), 3u) << result.dump();
    EXPECT_TRUE(result["missing"].empty() && result["silent"].empty()) << result.dump();
  }

  const auto receipt = call(1, "subject erase", {{"identifier", x}, {"reason", "art. 17"}, {"reference", "DSR-3"}});
  ASSERT_TRUE(receipt.contains("fleet")) << receipt.dump();
  const std::string request = receipt["fleet"]["request"];
  // Every member applies it; the others may still be at it when member 2 answers.
  for (std::size_t i = 0; i < 3; ++i) {
    const auto deadline = steady_clock::now() + seconds(30);
    std::string state;
    while (steady_clock::now() < deadline) {
      state = call(i, "subject status", {{"identifier", x}})["state"];
      if (state == "hidden") break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_EQ(state, "hidden") << "member " << i + 1;
    EXPECT_EQ(call(i, "subject export", {{"identifier", x}})["records"], 0) << "member " << i + 1;
  }
  {
    const auto [ids, result] = fleet_export(2, x);
    EXPECT_TRUE(ids.empty()) << "erased from the whole fleet";
    EXPECT_EQ(result["records"], 0);
    EXPECT_TRUE(result["complete"].get<bool>()) << result.dump();
  }
  for (int i = 0; i < n; i += 5) {
    const auto w = find(fmt::format("x-{}", i));
    ASSERT_TRUE(w.has_value());
    EXPECT_FALSE(w->identifiers);
    const auto o = find(fmt::format("o-{}", i));
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(o->identifiers) << "other subjects keep theirs";
  }

  // A restart re-reads the control topic from its saved position: nothing
  // is applied twice.
  ASSERT_EQ(members_[2]->stop(SIGTERM), 0);
  start(2);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto purged = call(i, "subject purge");
    EXPECT_EQ(purged["erasures"], 1) << "member " << i + 1 << ": " << purged.dump();
    EXPECT_EQ(call(i, "subject status", {{"identifier", x}})["state"], "purged");
    const auto v = call(i, "verify");
    EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
    const auto trail = read_file(dirs_[i] / "data/audit.jsonl");
    std::size_t entries = 0;
    for (auto at = trail.find("\"action\":\"erase_subject\""); at != std::string::npos;
         at = trail.find("\"action\":\"erase_subject\"", at + 1)) {
      ++entries;
    }
    EXPECT_EQ(entries, 1u) << "member " << i + 1 << " applied the erasure once";
    EXPECT_NE(trail.find(request), std::string::npos);
  }
  const auto fleet_verify = call(0, "verify", {{"fleet", true}});
  EXPECT_TRUE(fleet_verify["ok"].get<bool>()) << fleet_verify.dump();
  EXPECT_EQ(fleet_verify["members"].size(), 3u) << fleet_verify.dump();
  const auto dels = kafka_.read_all("cdr-retention-events", 3);
  std::size_t naming = 0;
  for (const auto& m : dels) naming += m.value.find(request) != std::string::npos ? 1u : 0u;
  EXPECT_EQ(naming, 3u) << "each member's deletion event names the request";
}

// kill -9 of member 2 during ingest: its partitions move to members 1 and
// 3 (after the session timeout: static membership keeps them for a restart
// that comes in time), nothing is lost, nothing is stored twice within a
// store, and the union of the stores is exactly what was sent. Member 2,
// restarted, gets partitions again and keeps its store.
TEST_F(fleet, a_member_killed_during_ingest_loses_nothing_and_doubles_nothing_within_a_store) {
  shipped_session_ = false;
  start_all();
  wait_shared();
  std::set<std::string> sent;
  const auto produce = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const auto id = fmt::format("k-{}", i);
      send(id, fmt::format("2025-0{}", 1 + i % 3), "cust-k", fmt::format("+3859200{:05}", i));
      sent.insert(id);
    }
    kafka_.flush();
  };
  produce(0, 3'000);
  // Killed while it ingests: once it has stored some of its partitions'.
  const auto joined = steady_clock::now() + seconds(60);
  while (stored_offsets(sock(1)) == 0 && steady_clock::now() < joined) std::this_thread::sleep_for(milliseconds(20));
  ASSERT_GT(stored_offsets(sock(1)), 0u) << "member 2 got partitions";
  produce(3'000, 3'500);
  ASSERT_EQ(members_[1]->stop(SIGKILL), -SIGKILL);
  produce(3'500, 6'000);
  std::this_thread::sleep_for(seconds(8));  // past the 6 s session timeout: the partitions move
  produce(6'000, 8'000);
  const auto wait_covered = [&] {
    const auto deadline = steady_clock::now() + seconds(120);
    while (covered() < messages_ && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(200));
    return covered();
  };
  ASSERT_EQ(wait_covered(), messages_) << "members 1 and 3 took member 2's partitions and stored everything";
  start(1);
  wait_shared("");  // member 2, restarted, gets partitions again (and is not stopped mid-join)
  produce(8'000, 9'000);
  ASSERT_EQ(wait_covered(), messages_) << "every message stored by some member";
  for (auto& m : members_) ASSERT_EQ(m->stop(SIGTERM), 0);
  std::set<std::string> all;
  std::size_t total = 0;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const auto ids = stored(i);
    EXPECT_FALSE(ids.empty()) << "member " << i + 1 << " stored records";
    total += ids.size();
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all, sent) << "the union of the stores is exactly what was sent";
  std::cout << "stored " << total << " records for " << sent.size() << " sent (" << total - sent.size()
            << " also in a second store: written by member 2 after its last commit)\n";
}

// Drain of member 3 before a scale-down: it leaves the group, hands every
// record it keeps to members 1 and 2 (stripped ones stay stripped, held ones
// held), waits until they stored them, then empties its store and leaves
// the fleet; verify --fleet is ok with the two that remain.
// With the shipped session timeout (45 s) and static membership: the
// draining member leaves the group at once (issue "Fleet trust", F8).
TEST_F(fleet, a_drained_member_hands_every_record_to_the_others_and_empties_its_store) {
  start_all();
  wait_shared();
  constexpr int n = 240;
  std::set<std::string> sent;
  for (int i = 0; i < n; ++i) {
    const auto id = fmt::format("d-{}", i);
    // 2024-03 (identifiers due 2025-04-01) and 2025-01 (kept).
    send(id, i % 2 == 0 ? "2024-03" : "2025-01", i % 4 == 0 ? "held-co" : "free-co", fmt::format("+3859300{:05}", i));
    sent.insert(id);
  }
  wait_stored();
  for (std::size_t i = 0; i < 3; ++i) call(i, "debug advance-clock", {{"duration", "20d"}});
  call(0, "hold add", {{"customer", "held-co"}, {"reason", "litigation"}, {"reference", "L-10"}});
  for (std::size_t i = 0; i < 3; ++i) call(i, "sweep");
  // d-i: 2024-03 ones stripped unless held (i % 4 == 0); 2025-01 ones whole.
  const auto keeps_identifiers = [](int i) { return i % 2 == 1 || i % 4 == 0; };
  std::size_t on_3 = 0;
  for (int i = 0; i < n; ++i) {
    const auto w = find(fmt::format("d-{}", i));
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->identifiers, keeps_identifiers(i)) << "d-" << i;
    on_3 += w->member == 2 ? 1u : 0u;
  }
  ASSERT_GT(on_3, 0u);
  const std::string x = "+385930000004";  // d-4: held, on some member
  const auto before = fleet_export(0, x);

  admin::client c(sock(2), seconds(180));
  const auto drained = c.call("drain");
  ASSERT_TRUE(drained.value("ok", false)) << drained.dump();
  const auto& report = drained["result"];
  EXPECT_EQ(report["records_handed_over"], on_3) << report.dump();
  EXPECT_EQ(report["store"]["records_removed"], on_3) << report.dump();
  EXPECT_FALSE(report["partitions"].empty()) << report.dump();
  for (const auto& [partition, member] : report["partitions"].items()) {
    EXPECT_TRUE(member == "member-1" || member == "member-2") << partition << " went to " << member;
  }
  EXPECT_EQ(call(2, "status")["storage"]["records"]["cdr"], 0) << "member 3's store is empty";
  // The handover topic carried them sealed: no identifier in clear.
  const auto handed = kafka_.read_all("cdr-retention-handover", on_3);
  EXPECT_EQ(handed.size(), on_3);
  for (const auto& m : handed) {
    EXPECT_EQ(m.value.rfind("cdr-retention handover v1:", 0), 0u) << m.value;
    EXPECT_EQ(m.value.find("+3859300"), std::string::npos) << "an identifier in clear: " << m.value;
  }

  // Every record is on member 1 or 2, as it was: stripped, held or whole,
  // every copy. (A handover partition that moved between them before its
  // offsets were committed leaves a record in both stores, once in each:
  // counted, and bounded by what was handed over.)
  std::size_t in_both = 0;
  for (int i = 0; i < n; ++i) {
    const auto id = fmt::format("d-{}", i);
    std::size_t copies = 0;
    for (std::size_t m = 0; m < 2; ++m) {
      const auto r = admin_call(sock(m), "record get", {{"id", id}});
      if (!r.value("ok", false)) continue;
      ++copies;
      const auto& ids = r["result"]["identifiers"];
      EXPECT_EQ(ids.is_object() && ids.contains("from"), keeps_identifiers(i)) << id << " on member " << m + 1;
    }
    EXPECT_GE(copies, 1u) << id << " is on neither member 1 nor 2";
    EXPECT_EQ(admin_call(sock(2), "record get", {{"id", id}})["ok"], false) << id << " is still on member 3";
    in_both += copies == 2 ? 1 : 0;
  }
  EXPECT_LE(in_both, on_3) << "only handed-over records can be in two stores";
  std::cout << in_both << " handed-over record(s) kept by both remaining members\n";
  EXPECT_EQ(fleet_export(0, x).first, before.first) << "the subject's records, wherever they are now";
  const auto v = call(0, "verify", {{"fleet", true}});
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["members"].size(), 2u) << "member 3 left the fleet: " << v.dump();
  EXPECT_TRUE(v["silent"].empty()) << v.dump();
  EXPECT_TRUE(call(2, "verify")["ok"].get<bool>()) << "member 3's emptied store is gone from disk too";
  const auto trail = read_file(dirs_[2] / "data/audit.jsonl");
  EXPECT_NE(trail.find("\"action\":\"drain\""), std::string::npos);

  for (auto& m : members_) ASSERT_EQ(m->stop(SIGTERM), 0);
  EXPECT_TRUE(stored(2).empty());
  auto all = stored(0);
  const auto two = stored(1);
  all.insert(two.begin(), two.end());
  EXPECT_EQ(all, sent) << "the union of the remaining stores is exactly what was sent";
}

// F8 of "Fleet trust": a drain killed -9 halfway (the member left the group,
// some records handed over) succeeds when run again after the restart,
// with the shipped session timeout and static membership.
TEST_F(fleet, a_drain_killed_halfway_succeeds_when_run_again_after_the_restart) {
  start_all();
  wait_shared();
  constexpr int n = 180;
  for (int i = 0; i < n; ++i) send(fmt::format("k-{}", i), "2025-01", "cust", fmt::format("+3859311{:04}", i));
  wait_stored();
  auto first = std::async(std::launch::async, [&] {
    try {
      return admin::client(sock(2), seconds(180)).call("drain");
    } catch (const std::exception&) {
      return nlohmann::json();  // the connection died with the member
    }
  });
  // Killed once the member has left the group and is handing over.
  const auto deadline = steady_clock::now() + seconds(60);
  while (read_file(dirs_[2] / "log").find("left the consumer group; handing") == std::string::npos &&
         steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_EQ(members_[2]->stop(SIGKILL), -SIGKILL);
  first.get();
  start(2);
  admin::client c(sock(2), seconds(300));
  const auto drained = c.call("drain");
  ASSERT_TRUE(drained.value("ok", false)) << drained.dump();
  EXPECT_EQ(call(2, "status")["storage"]["records"]["cdr"], 0) << "member 3's store is empty";
  for (auto& m : members_) ASSERT_EQ(m->stop(SIGTERM), 0);
  EXPECT_TRUE(stored(2).empty());
  auto all = stored(0);
  const auto two = stored(1);
  all.insert(two.begin(), two.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(n)) << "every record kept by member 1 or 2";
}

}  // namespace
}  // namespace cdr::test
