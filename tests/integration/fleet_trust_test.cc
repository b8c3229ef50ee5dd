// Issue "Fleet trust": whoever can write to the control or replies topic
// is an attacker in scope. Forged, altered, junk, replayed and foreign
// messages are refused, counted, audited and never block; an authentic
// message this build cannot decode blocks until an operator skips it; a
// member is gone only when its own signed heartbeat says so; a forged reply
// never stands in for a member's; a member with another fleet key is
// refused at start.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "cdr/admin/client.h"
#include "cdr/core/fleet_auth.h"
#include "cdr/crypto/crypto.h"
#include "cdr/kafka/client.h"
#include "daemon_process.h"
#include "mock_kafka.h"

namespace cdr::test {
namespace {

using namespace std::chrono;

constexpr const char* clock_start = "2025-03-14T10:00:00Z";
constexpr const char* control_topic = "cdr-retention-control";
constexpr const char* replies_topic = "cdr-retention-replies";
// write_test_config's subject key: the fleet key is derived from it.
constexpr const char* subject_key = "test-subject-key-0123456789abcdef";

// A value signed as a member holding `secret` would sign it.
std::string sign_as(const std::string& secret, const std::string& topic, const std::string& key,
                    const nlohmann::json& body) {
  const auto canonical = canonical_body(body.dump());
  const auto id = crypto::hmac_sha256(secret, "cdr-retention fleet key id v1").substr(0, fleet_key_id_bytes);
  return attach_auth(canonical, id, crypto::hmac_sha256(secret, auth_input(topic, key, canonical)));
}
std::string fleet_secret() { return crypto::hmac_sha256(subject_key, "cdr-retention fleet key v1"); }

double metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

class fleet_trust : public ::testing::Test {
 protected:
  fleet_trust() : kafka_(4) {}

  void TearDown() override {
    if (!HasFailure()) return;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i]) continue;
      const auto log = read_file(dirs_[i] / "log");
      std::cerr << "--- member " << i + 1 << " log (tail) ---\n"
                << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
    }
  }

  std::string sock(std::size_t i) const { return dirs_[i] / "a.sock"; }
  std::string name(std::size_t i) const { return fmt::format("member-{}", i + 1); }

  std::unique_ptr<daemon_process> launch(std::size_t i, std::vector<std::string> extra = {},
                                         const std::string& log = "log") {
    std::vector<std::string> args{"--fake-clock", clock_start,
                                  "--set",        "kafka.brokers=" + kafka_.bootstrap(),
                                  "--set",        "kafka.group_id=trust",
                                  "--set",        fmt::format("kafka.group_instance_id=\"{}\"", name(i)),
                                  "--set",        "kafka.control_timeout=\"6s\"",
                                  "--set",        "sweep.interval=\"31d\"",
                                  "--set",        "sweep.jitter=\"1s\""};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<daemon_process>(write_test_config(dirs_[i]), args, dirs_[i] / log);
  }
  void start(std::size_t i) {
    members_[i] = launch(i);
    ASSERT_TRUE(members_[i]->wait_ready(sock(i))) << members_[i]->log();
  }

  nlohmann::json call(std::size_t i, const std::string& command, const nlohmann::json& a = nlohmann::json::object()) {
    auto r = admin_call(sock(i), command, a);
    EXPECT_TRUE(r.value("ok", false)) << name(i) << " " << command << ": " << r.dump();
    return r.value("result", nlohmann::json());
  }
  std::string metrics(std::size_t i) {
    return http_get(call(i, "status")["metrics"]["listen"].get<std::string>(), "/metrics");
  }
  double rejected(std::size_t i, const std::string& reason) {
    return metric(metrics(i), fmt::format("cdr_retention_control_rejected_total{{reason=\"{}\"}}", reason));
  }
  // Waits (up to 30 s) until member i's `series` has the value `v`.
  bool wait_metric(std::size_t i, const std::string& series, double v) {
    const auto deadline = steady_clock::now() + seconds(30);
    while (metric(metrics(i), series) != v) {
      if (steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return true;
  }
  // Waits until member i's count of `reason` reaches n.
  void wait_rejected(std::size_t i, const std::string& reason, double n) {
    const auto deadline = steady_clock::now() + seconds(20);
    while (rejected(i, reason) < n && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(100));
    EXPECT_GE(rejected(i, reason), n) << reason;
  }
  std::int64_t control_end() { return kafka_.end_offsets(control_topic); }
  // Waits until member i applied the control topic up to its end.
  void wait_applied(std::size_t i) {
    const auto end = control_end();
    const auto deadline = steady_clock::now() + seconds(20);
    while (call(i, "status")["kafka"]["fleet"].value("control_position", 0) < end && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  mock_kafka kafka_;
  std::array<temp_dir, 2> dirs_;
  std::array<std::unique_ptr<daemon_process>, 2> members_;
};

// F1, F2, F5 and replays: nothing a producer without the fleet key writes is
// applied, and none of it blocks what comes after.
TEST_F(fleet_trust, forged_altered_junk_and_replayed_control_messages_are_refused_audited_and_never_block) {
  start(0);
  for (const auto* reason : {"malformed", "unsigned", "unknown_key", "bad_mac", "replay"}) {
    EXPECT_EQ(rejected(0, reason), 0) << reason << ": every reason is exported from the start";
  }
  const auto hold = call(0, "hold add", {{"customer", "cust-1"}, {"reason", "litigation"}, {"reference", "CASE-1"}});
  const auto request = hold["fleet"]["request"].get<std::string>();
  ASSERT_FALSE(request.empty()) << hold.dump();
  const auto authentic = kafka_.read_all(control_topic, static_cast<std::size_t>(control_end()));

  // F1: a forged release of that hold, as the kcat line of the report.
  const nlohmann::json release{
      {"type", "hold_release"}, {"member", "intruder"}, {"request", "intruder/1"}, {"at", clock_start}, {"uid", 0},
      {"hold_request", request}};
  kafka_.produce(control_topic, "hold_release/intruder/1", release.dump());
  // F2: a backdated hold impersonating a member, signed under a key no member holds.
  const nlohmann::json add{{"type", "hold_add"},
                           {"member", name(0)},
                           {"request", name(0) + "/forged"},
                           {"at", "2020-01-01T00:00:00Z"},
                           {"uid", 0},
                           {"hold",
                            {{"customer", nullptr},
                             {"subject", nullptr},
                             {"from_month", "2000-01"},
                             {"to_month", "2099-12"},
                             {"kind", nullptr},
                             {"reason", "forged"},
                             {"reference", "X"}}}};
  const auto key = "hold_add/" + name(0) + "/forged";
  kafka_.produce(control_topic, key, sign_as("another fleet's key 0123456789abcdef", control_topic, key, add));
  // The same with this fleet's key id and a MAC that does not match (altered).
  auto altered = nlohmann::json::parse(sign_as(fleet_secret(), control_topic, key, add));
  altered["hold"]["reason"] = "altered after signing";
  kafka_.produce(control_topic, key, altered.dump());
  // F5: junk.
  kafka_.produce(control_topic, "junk", "not a control message at all \x01");
  kafka_.produce(control_topic, "junk", R"({"type":"hold_add","auth":"zz"})");
  // A replay of the authentic hold_add, byte for byte.
  for (const auto& m : authentic) {
    if (m.key.rfind("hold_add/", 0) == 0) kafka_.produce(control_topic, m.key, m.value);
  }
  kafka_.flush();

  // Nothing blocks: a real request after them is applied at once.
  const auto second = call(0, "hold add", {{"customer", "cust-2"}, {"reason", "audit"}, {"reference", "CASE-2"}});
  EXPECT_TRUE(second.contains("id")) << second.dump();
  const auto holds = call(0, "hold list");
  ASSERT_EQ(holds["holds"].size(), 2u) << "the forged release released nothing, the forged hold added nothing: "
                                       << holds.dump();
  for (const auto& h : holds["holds"]) EXPECT_NE(h.value("reason", ""), "forged");
  const auto fleet = call(0, "status")["kafka"]["fleet"];
  EXPECT_FALSE(fleet.contains("blocked")) << fleet.dump();
  EXPECT_EQ(fleet["control_position"], control_end()) << fleet.dump();

  EXPECT_GE(rejected(0, "unsigned"), 1);
  EXPECT_GE(rejected(0, "unknown_key"), 1);
  EXPECT_GE(rejected(0, "bad_mac"), 1);
  EXPECT_GE(rejected(0, "malformed"), 2);
  EXPECT_GE(rejected(0, "replay"), 1);
  const auto trail = read_file(dirs_[0] / "data/audit.jsonl");
  EXPECT_NE(trail.find("\"control_refused\""), std::string::npos);
  EXPECT_NE(trail.find("\"intruder\""), std::string::npos) << "the claimed member is audited";
  EXPECT_TRUE(call(0, "audit verify")["ok"].get<bool>());

  // Still refused after a restart (the position moved past them, audited once).
  members_[0]->stop(SIGTERM);
  start(0);
  EXPECT_EQ(call(0, "hold list")["holds"].size(), 2u);
  EXPECT_EQ(rejected(0, "unsigned"), 0) << "not read again";
}

// An authentic message this build does not understand (a newer member's)
// blocks applying, as it must; an operator can skip that one offset,
// audited.
TEST_F(fleet_trust, an_authentic_message_this_build_cannot_decode_blocks_until_an_operator_skips_it) {
  start(0);
  const auto offset = control_end();
  const nlohmann::json newer{
      {"type", "hold_freeze"}, {"member", "member-9"}, {"request", "member-9/1"}, {"at", clock_start}, {"uid", 0}};
  kafka_.produce(control_topic, "hold_freeze/member-9/1",
                 sign_as(fleet_secret(), control_topic, "hold_freeze/member-9/1", newer));
  kafka_.flush();
  const auto deadline = steady_clock::now() + seconds(20);
  nlohmann::json fleet;
  while (steady_clock::now() < deadline) {
    fleet = call(0, "status")["kafka"]["fleet"];
    if (fleet.contains("blocked")) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(fleet.contains("blocked")) << fleet.dump();
  EXPECT_NE(fleet["blocked"].get<std::string>().find(fmt::format("control skip --offset {}", offset)),
            std::string::npos)
      << fleet.dump();
  EXPECT_EQ(metric(metrics(0), "cdr_retention_control_blocked"), 1);

  const auto wrong = run_command(
      {CDR_RETENTIONCTL_PATH, "--socket", sock(0), "control", "skip", "--offset", std::to_string(offset + 1)});
  EXPECT_EQ(wrong.exit_code, 2) << "the daemon refuses the argument: a usage error\n" << wrong.err;
  const auto skipped =
      run_command({CDR_RETENTIONCTL_PATH, "--socket", sock(0), "control", "skip", "--offset", std::to_string(offset)});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  wait_applied(0);
  EXPECT_FALSE(call(0, "status")["kafka"]["fleet"].contains("blocked"));
  const auto trail = read_file(dirs_[0] / "data/audit.jsonl");
  EXPECT_NE(trail.find("\"control_skip\""), std::string::npos) << trail;
  EXPECT_TRUE(call(0, "hold add", {{"kind", "usage"}, {"reason", "r"}, {"reference", "R-1"}}).contains("id"));
}

// F3: a stopped member stays silent, whatever a forged heartbeat says and
// across a restart of the others; every --fleet answer without it says so
// and exits 6.
TEST_F(fleet_trust, a_stopped_member_stays_silent_until_its_own_signed_heartbeat_says_it_left) {
  start(0);
  start(1);
  ASSERT_TRUE(wait_metric(0, "cdr_retention_fleet_members{state=\"live\"}", 2));
  members_[1]->stop(SIGKILL);
  const nlohmann::json leaving{{"type", "heartbeat"},     {"member", name(1)}, {"request", name(1) + "/heartbeat"},
                               {"at", clock_start},       {"uid", 0},          {"leaving", true},
                               {"incarnation", "ffff"},   {"seq", 999999},     {"records", 0},
                               {"next_deadline", nullptr}};
  const auto key = "heartbeat/" + name(1);
  kafka_.produce(control_topic, key, leaving.dump());
  kafka_.produce(control_topic, key, sign_as("another fleet's key 0123456789abcdef", control_topic, key, leaving));
  kafka_.flush();
  wait_rejected(0, "unsigned", 1);
  wait_rejected(0, "unknown_key", 1);

  const auto silent = "cdr_retention_fleet_members{state=\"silent\"}";
  ASSERT_TRUE(wait_metric(0, silent, 1)) << metrics(0);
  const auto text = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock(0), "verify", "--fleet"});
  EXPECT_EQ(text.exit_code, 6) << text.out << text.err;
  EXPECT_NE(text.err.find("warning: member " + name(1) + " is silent"), std::string::npos) << text.err;
  const auto json = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock(0), "--json", "verify", "--fleet"});
  EXPECT_EQ(json.exit_code, 6);
  EXPECT_EQ(nlohmann::json::parse(json.out)["result"]["complete"], false) << json.out;

  // Known across a restart: still silent, never forgotten.
  members_[0]->stop(SIGTERM);
  start(0);
  ASSERT_TRUE(wait_metric(0, silent, 1)) << metrics(0);
  const auto status = call(0, "status")["kafka"]["fleet"]["members"];
  EXPECT_NE(status.dump().find(name(1)), std::string::npos) << status.dump();

  // Its own signed leaving heartbeat (a drain) ends it.
  auto own = leaving;
  own["incarnation"] = "0123456789abcdef";
  own["seq"] = 1;
  kafka_.produce(control_topic, key, sign_as(fleet_secret(), control_topic, key, own));
  EXPECT_TRUE(wait_metric(0, silent, 0)) << metrics(0);
  // A replay of it is refused.
  kafka_.produce(control_topic, key, sign_as(fleet_secret(), control_topic, key, own));
  wait_rejected(0, "replay", 1);
}

// F4: a forged reply that arrives before the member's own does not replace it.
TEST_F(fleet_trust, a_forged_reply_never_stands_in_for_a_members_answer) {
  start(0);
  const auto from = control_end();
  auto answer = std::async(std::launch::async, [&] { return admin_call(sock(0), "verify", {{"fleet", true}}); });
  // Watch for the query and answer it first, as the member.
  kafka::reader watch({kafka_.bootstrap(), "forger", {}}, control_topic, 0, from);
  std::string request;
  const auto deadline = steady_clock::now() + seconds(20);
  while (request.empty() && steady_clock::now() < deadline) {
    auto m = watch.poll(milliseconds(50));
    if (m && m.error().empty() && m.key().rfind("query/", 0) == 0) request = std::string(m.key().substr(6));
  }
  ASSERT_FALSE(request.empty());
  const nlohmann::json forged{{"request", request},
                              {"member", name(0)},
                              {"part", 0},
                              {"last", true},
                              {"result", {{"ok", true}, {"forged", true}}}};
  kafka_.produce(replies_topic, request, forged.dump());
  kafka_.produce(replies_topic, request,
                 sign_as("another fleet's key 0123456789abcdef", replies_topic, request, forged));
  kafka_.flush();
  const auto r = answer.get();
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_FALSE(r["result"]["members"][name(0)].contains("forged")) << r.dump();
  EXPECT_TRUE(r["result"]["complete"].get<bool>()) << r.dump();
  EXPECT_GE(rejected(0, "unsigned") + rejected(0, "unknown_key"), 1);
}

// A member whose fleet key differs from the fleet's is refused at start
// (exit 2) with the remedy.
TEST_F(fleet_trust, a_member_with_another_fleet_key_is_refused_at_start) {
  start(0);
  const auto deadline = steady_clock::now() + seconds(20);
  while (control_end() < 2 && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(100));
  write_file(dirs_[1] / "fleet.key", "a different fleet key, 32 bytes or more");
  auto other = launch(1, {"--set", "kafka.fleet_key_file=\"" + (dirs_[1] / "fleet.key") + "\""});
  const auto code = other->wait_exit(seconds(30));
  ASSERT_TRUE(code.has_value()) << other->log();
  EXPECT_EQ(*code, 2) << other->log();
  EXPECT_NE(other->log().find("kafka.fleet_key_file"), std::string::npos) << other->log();
  // A key file too short to be a key: refused at start (exit 2), named.
  write_file(dirs_[1] / "fleet.key", "short");
  auto shorter = launch(1, {"--set", "kafka.fleet_key_file=\"" + (dirs_[1] / "fleet.key") + "\""}, "log-short");
  EXPECT_EQ(shorter->wait_exit(seconds(30)), std::optional<int>(2)) << shorter->log();
  EXPECT_NE(shorter->log().find("needs at least 32 random bytes"), std::string::npos) << shorter->log();
  // With the fleet's key in a file of its own, it joins.
  write_file(dirs_[1] / "fleet.key", fleet_secret());
  members_[1] = launch(1, {"--set", "kafka.fleet_key_file=\"" + (dirs_[1] / "fleet.key") + "\""});
  ASSERT_TRUE(members_[1]->wait_ready(sock(1))) << members_[1]->log();
}

// F9: a SIGTERM at any point of the start and the first group join ends
// with exit 0, never an abort (CDR_TEST_SEED repeats a run).
TEST_F(fleet_trust, a_stop_at_any_point_of_the_first_join_exits_0) {
  const auto seed = test_seed(std::random_device{}());
  std::mt19937_64 random(seed);
  for (int round = 0; round < 20; ++round) {
    const auto after = milliseconds(std::uniform_int_distribution<int>(0, 3000)(random));
    // A log of its own: the wait below reads this run's first line only.
    auto d = launch(0, {}, fmt::format("log-{}", round));
    // From the daemon's first line (before it, the dynamic loader runs: no
    // program can handle a signal yet).
    const auto deadline = steady_clock::now() + seconds(10);
    while (d->log().find("starting") == std::string::npos && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    std::this_thread::sleep_for(after);
    const auto code = d->stop(SIGTERM, seconds(60));
    EXPECT_EQ(code, 0) << "round " << round << ", SIGTERM " << after.count() << " ms after the start (seed " << seed
                       << ")\n"
                       << d->log().substr(d->log().size() > 3000 ? d->log().size() - 3000 : 0);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace cdr::test
