// The fleet's parts in process (issue "Fleet trust", item 8): the control
// log, membership and queries of real fleet_nodes on one in-memory log,
// manual time and a fake store (fleet_port). Every forgery the fleet trust
// issue names is tried here in milliseconds; tests/integration/
// fleet_trust_test.cc tries them again on daemons and a Kafka cluster.
#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cdr/core/config.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time_source.h"
#include "fleet/node.h"
#include "memory_log.h"

namespace cdr::test {
namespace {

using namespace std::chrono_literals;
using service::fleet_node;

const std::string subject_key(32, 's');
const std::string fleet_secret(32, 'f');
constexpr auto timeout = 3s;

// What a member's store would do, in memory: applies control messages with
// their position, records audit entries and known members.
class fake_keeper final : public service::fleet_port {
 public:
  std::uint64_t control_position() const override {
    std::lock_guard lock(mutex_);
    return position_;
  }
  bool control_applied(std::string_view request) const override {
    std::lock_guard lock(mutex_);
    return requests_.contains(std::string(request));
  }
  std::variant<nlohmann::json, std::string> apply_control(const control_message& m,
                                                          const std::optional<std::string>& identifier,
                                                          std::uint64_t next) override {
    std::lock_guard lock(mutex_);
    if (fail_) return std::string("refused by the test");
    applied_.push_back({m, identifier.value_or(""), next});
    requests_.insert(m.request);
    position_ = next;
    return nlohmann::json{{"applied", m.request}};
  }
  void refuse_control(std::optional<std::uint64_t> next, const audit::record& entry) override {
    std::lock_guard lock(mutex_);
    audited_.push_back(audit::encode(entry));
    if (next) position_ = *next;
  }
  std::pair<std::int64_t, std::optional<instant>> holdings() const override { return {7, std::nullopt}; }
  std::vector<std::string> known_members() const override {
    std::lock_guard lock(mutex_);
    return {known_.begin(), known_.end()};
  }
  void set_known_member(std::string_view name, bool known) override {
    std::lock_guard lock(mutex_);
    if (known) {
      known_.emplace(name);
    } else {
      known_.erase(std::string(name));
    }
  }
  void for_each_handover_event(const std::function<void(std::string_view, const std::string&)>&) const override {}
  nlohmann::json empty_store(const nlohmann::json&, std::uint32_t) override { return nullptr; }

  struct applied {
    control_message message;
    std::string identifier;
    std::uint64_t next = 0;
  };
  std::vector<applied> applied_list() const {
    std::lock_guard lock(mutex_);
    return applied_;
  }
  std::vector<nlohmann::json> audited() const {
    std::lock_guard lock(mutex_);
    return audited_;
  }
  std::set<std::string> known() const {
    std::lock_guard lock(mutex_);
    return known_;
  }
  void set_known(std::set<std::string> k) {
    std::lock_guard lock(mutex_);
    known_ = std::move(k);
  }

 private:
  mutable std::mutex mutex_;
  std::uint64_t position_ = 0;
  std::set<std::string> requests_;
  std::vector<applied> applied_;
  std::vector<nlohmann::json> audited_;
  std::set<std::string> known_;
  bool fail_ = false;
};

// Waits (real time, bounded) until `ready` holds: the parts run threads.
bool eventually(const std::function<bool()>& ready) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class fleet_parts : public ::testing::Test {
 protected:
  fleet_parts() : time_(parse_rfc3339("2025-03-01T00:00:00Z").value()), log_(time_) {}

  struct member {
    fake_keeper keeper;
    std::unique_ptr<fleet_node> node;
  };
  daemon_config config_of(const std::string& name) const {
    auto parsed = parse_config(default_config_toml, "defaults",
                               {"kafka.group_instance_id=\"" + name + "\"", "kafka.control_timeout=\"3s\""});
    return std::get<daemon_config>(std::move(parsed));
  }
  // A member started on the shared log (its config outlives it).
  member& join(const std::string& name, std::string secret = fleet_secret) {
    configs_.push_back(std::make_unique<daemon_config>(config_of(name)));
    auto m = std::make_unique<member>();
    m->node = std::make_unique<fleet_node>(*configs_.back(), std::make_unique<memory_log_view>(log_), time_,
                                           subject_key, service::fleet_key(std::move(secret)), m->keeper);
    m->node->start();
    members_.push_back(std::move(m));
    // Its first heartbeat is out: what a test appends next comes after it.
    EXPECT_TRUE(eventually([&] { return offset_of("heartbeat/" + name) >= 0; }));
    return *members_.back();
  }
  // Appends `body` to the control topic under `key`, signed as `k` signs.
  void put(const std::string& key, const nlohmann::json& body, const service::fleet_key* k) {
    const auto topic = configs_.front()->kafka.topic_control;
    log_.append(topic, key, k ? k->sign(topic, key, body.dump()) : body.dump(), timeout);
  }
  // The offset of the first record under `key` (heartbeats interleave).
  std::int64_t offset_of(const std::string& key) {
    for (const auto& r : control_records()) {
      if (r.key == key) return r.offset;
    }
    return -1;
  }
  std::vector<service::log_record> control_records() { return log_.records(configs_.front()->kafka.topic_control); }
  static control_message hold_release(const std::string& hold_request) {
    control_message m;
    m.kind = control_kind::hold_release;
    m.uid = 1000;
    m.hold_request = hold_request;
    return m;
  }
  static control_message hold_add() {
    control_message m;
    m.kind = control_kind::hold_add;
    m.uid = 1000;
    m.new_hold.customer = "acme";
    m.new_hold.reason = "litigation";
    m.new_hold.from_month = month::of(2024, 1);
    m.new_hold.to_month = month::of(2024, 12);
    return m;
  }
  // Moves the clock on until `f` is ready (whenever the wait began).
  template <typename T>
  T advance_until(std::future<T>& f) {
    while (f.wait_for(2ms) != std::future_status::ready) time_.advance(1s);
    return f.get();
  }
  // An action through member n, as an admin command runs it. Applied at
  // once here; when it is not (a broken build), the clock moves on so that
  // it times out: a failure, never a hang.
  std::variant<nlohmann::json, std::string> act(fleet_node& n, control_message m) {
    auto f = std::async(std::launch::async, [&n, m = std::move(m)]() mutable { return n.control().act(std::move(m)); });
    if (f.wait_for(5s) == std::future_status::ready) return f.get();
    return advance_until(f);
  }
  static std::uint64_t refused(fleet_node& n, std::string_view why) {
    metrics::retention_snapshot f;
    n.figures(f);
    return static_cast<std::uint64_t>(f.control_rejected[std::string(why)]);
  }

  manual_time time_;
  memory_log log_;
  const service::fleet_key key_{fleet_secret};
  const service::fleet_key foreign_{std::string(32, 'x')};
  std::vector<std::unique_ptr<daemon_config>> configs_;
  std::vector<std::unique_ptr<member>> members_;
};

TEST_F(fleet_parts, an_action_is_applied_once_by_every_member_in_the_topics_order) {
  auto& a = join("a");
  auto& b = join("b");
  const auto added = act(*a.node, hold_add());
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(added)) << std::get<std::string>(added);
  const auto request = std::get<nlohmann::json>(added)["fleet"]["request"].get<std::string>();
  const auto released = act(*b.node, hold_release(request));
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(released));

  ASSERT_TRUE(eventually([&] { return a.keeper.applied_list().size() == 2 && b.keeper.applied_list().size() == 2; }));
  for (auto* m : {&a, &b}) {
    const auto applied = m->keeper.applied_list();
    EXPECT_EQ(applied[0].message.kind, control_kind::hold_add);
    EXPECT_EQ(applied[0].message.member, "a") << "the envelope names the requesting member";
    EXPECT_EQ(applied[0].message.new_hold.created_at, applied[0].message.at) << "created_at is the envelope's time";
    EXPECT_EQ(applied[1].message.kind, control_kind::hold_release);
    EXPECT_EQ(applied[1].message.hold_request, request);
    EXPECT_LT(applied[0].next, applied[1].next) << "in the topic's order, each with its position";
    EXPECT_TRUE(eventually([&] { return m->node->control().position() >= applied[1].next; }));
  }
  a.node->control().catch_up();  // nothing left to apply: returns at once
}

TEST_F(fleet_parts, forged_altered_foreign_and_junk_messages_are_refused_audited_and_never_block) {
  auto& a = join("a");
  auto release = hold_release("a/0123");
  release.member = "intruder";
  release.request = "intruder/1";
  release.at = time_.now();
  const auto body = nlohmann::json::parse(encode(release));
  const auto key = control_key(release);
  put(key, body, nullptr);    // unsigned (kcat)
  put(key, body, &foreign_);  // signed under a key members do not hold
  auto altered = nlohmann::json::parse(key_.sign(configs_.front()->kafka.topic_control, key, body.dump()));
  altered["uid"] = 0;
  put(key, altered, nullptr);  // signed, then altered
  log_.append(configs_.front()->kafka.topic_control, "junk", "\x01not json", timeout);

  const auto added = act(*a.node, hold_add());  // applied after them: nothing blocks
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(added));
  const auto applied = a.keeper.applied_list();
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].message.kind, control_kind::hold_add);

  EXPECT_EQ(refused(*a.node, "unsigned"), 1u);
  EXPECT_EQ(refused(*a.node, "unknown_key"), 1u);
  EXPECT_EQ(refused(*a.node, "bad_mac"), 1u);
  EXPECT_EQ(refused(*a.node, "malformed"), 1u);
  const auto audited = a.keeper.audited();
  ASSERT_EQ(audited.size(), 1u) << "one entry for the run of refusals";
  EXPECT_EQ(audited[0]["action"], "control_refused");
  EXPECT_EQ(audited[0]["messages"], 4);
  EXPECT_EQ(audited[0]["first_offset"], offset_of(key));
  EXPECT_EQ(audited[0]["last_offset"], offset_of("junk"));
  EXPECT_EQ(audited[0]["claimed_members"], nlohmann::json::array({"intruder"}));
}

TEST_F(fleet_parts, a_replayed_action_is_refused_and_applied_once) {
  auto& a = join("a");
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(act(*a.node, hold_add())));
  const auto original = control_records().back();
  log_.append(configs_.front()->kafka.topic_control, original.key, original.value, timeout);  // byte for byte
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(act(*a.node, hold_release("a/x"))));
  const auto applied = a.keeper.applied_list();
  ASSERT_EQ(applied.size(), 2u) << "the replay between them is not applied";
  EXPECT_EQ(applied[1].message.kind, control_kind::hold_release);
  EXPECT_EQ(refused(*a.node, "replay"), 1u);
  ASSERT_EQ(a.keeper.audited().size(), 1u);
  EXPECT_EQ(a.keeper.audited()[0]["reasons"], nlohmann::json({{"replay", 1}}));
}

TEST_F(fleet_parts, an_authentic_message_this_build_cannot_decode_blocks_until_an_operator_skips_it) {
  auto& a = join("a");
  put("hold_teleport/b/1", {{"type", "hold_teleport"}, {"member", "b"}, {"request", "b/1"}}, &key_);
  ASSERT_TRUE(eventually([&] { return !a.node->control().blocked().empty(); }));
  const auto at = static_cast<std::uint64_t>(offset_of("hold_teleport/b/1"));
  EXPECT_NE(a.node->control().blocked().find(fmt::format("control skip --offset {}", at)), std::string::npos)
      << a.node->control().blocked();

  auto caught_up = std::async(std::launch::async, [&] { a.node->control().catch_up(); });
  EXPECT_THROW(advance_until(caught_up), service::fleet_unavailable) << "a sweep waits for the blocked message";

  const auto wrong = a.node->control().skip(at + 5, 1000);
  ASSERT_TRUE(std::holds_alternative<std::string>(wrong));
  EXPECT_EQ(std::get<std::string>(wrong), fmt::format("applying is stuck at offset {}, not {}", at, at + 5));
  const auto skipped = a.node->control().skip(at, 1000);
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(skipped)) << std::get<std::string>(skipped);
  EXPECT_TRUE(a.node->control().blocked().empty());
  const auto audited = a.keeper.audited();
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0]["action"], "control_skip");
  EXPECT_EQ(audited[0]["requested_by"], 1000);
  EXPECT_EQ(audited[0]["offset"], at);
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(act(*a.node, hold_add())));
}

TEST_F(fleet_parts, a_member_is_gone_only_when_its_own_signed_leaving_heartbeat_says_so) {
  auto& a = join("a");
  auto& b = join("b");
  const auto live = [&](const std::string& name) {
    for (const auto& m : a.node->membership().members()) {
      if (m.name == name) return m.live;
    }
    return false;
  };
  const auto listed = [&](const std::string& name) {
    for (const auto& m : a.node->membership().members()) {
      if (m.name == name) return true;
    }
    return false;
  };
  ASSERT_TRUE(eventually([&] { return live("b"); }));
  EXPECT_EQ(a.keeper.known(), (std::set<std::string>{"a", "b"}));
  const auto b_heartbeat = control_records().back();

  // Forged leaving heartbeats for b: unsigned, and under a foreign key.
  control_message leaving;
  leaving.kind = control_kind::heartbeat;
  leaving.member = "b";
  leaving.request = "b/heartbeat";
  leaving.at = time_.now();
  leaving.leaving = true;
  leaving.incarnation = "ffff";
  leaving.seq = 99;
  put(control_key(leaving), nlohmann::json::parse(encode(leaving)), nullptr);
  put(control_key(leaving), nlohmann::json::parse(encode(leaving)), &foreign_);
  ASSERT_TRUE(eventually([&] { return refused(*a.node, "unsigned") == 1 && refused(*a.node, "unknown_key") == 1; }));
  EXPECT_TRUE(listed("b"));

  // b stops without a drain: silent, still known.
  b.node->stop();
  time_.advance(10s);
  ASSERT_TRUE(eventually([&] { return !live("b") && listed("b"); }));
  EXPECT_TRUE(a.keeper.known().contains("b"));
  metrics::retention_snapshot f;
  a.node->figures(f);
  EXPECT_EQ(f.fleet_members_silent, 1);

  // Its own signed leaving heartbeat ends it; a replay of an earlier one
  // does not bring it back.
  b.node->membership().leave();
  ASSERT_TRUE(eventually([&] { return !listed("b"); }));
  EXPECT_FALSE(a.keeper.known().contains("b"));
  log_.append(configs_.front()->kafka.topic_control, b_heartbeat.key, b_heartbeat.value, timeout);
  ASSERT_TRUE(eventually([&] { return refused(*a.node, "replay") == 1; }));
  EXPECT_FALSE(listed("b"));
}

TEST_F(fleet_parts, a_forged_reply_never_stands_in_for_a_members_answer) {
  auto& a = join("a");
  auto& b = join("b");
  ASSERT_TRUE(eventually([&] { return a.node->membership().members().size() == 2; }));
  a.node->queries().set_answerer([](const control_message&, const std::optional<std::string>&) -> admin::reply {
    return nlohmann::json{{"who", "a"}};
  });
  // b answers only after a forger has answered for it, faster.
  const auto replies = configs_.front()->kafka.topic_replies;
  b.node->queries().set_answerer([&](const control_message& q, const std::optional<std::string>&) -> admin::reply {
    const fleet_reply forged{q.request, "b", 0, true, {}, nlohmann::json{{"who", "forger"}}, {}};
    log_.append(replies, q.request, encode(forged), timeout);
    log_.append(replies, q.request, foreign_.sign(replies, q.request, encode(forged)), timeout);
    return nlohmann::json{{"who", "b"}};
  });
  const auto answers = a.node->queries().gather("status", nlohmann::json::object(), {}, [](auto&&, auto&&) {});
  EXPECT_EQ(answers.results.at("a"), nlohmann::json({{"who", "a"}}));
  EXPECT_EQ(answers.results.at("b"), nlohmann::json({{"who", "b"}}));
  EXPECT_TRUE(answers.missing.empty());
  EXPECT_EQ(refused(*a.node, "unsigned"), 1u);
  EXPECT_EQ(refused(*a.node, "unknown_key"), 1u);
  const auto audited = a.keeper.audited();
  ASSERT_EQ(audited.size(), 2u);
  EXPECT_EQ(audited[0]["topic"], replies);
  EXPECT_EQ(audited[0]["claimed_members"], nlohmann::json::array({"b"}));
}

TEST_F(fleet_parts, a_live_member_that_does_not_answer_is_missing_and_one_without_an_answerer_errs) {
  auto& a = join("a");
  auto& b = join("b");
  ASSERT_TRUE(eventually([&] { return a.node->membership().members().size() == 2; }));
  a.node->queries().set_answerer(
      [](const control_message&, const std::optional<std::string>&) -> admin::reply { return nlohmann::json(1); });
  const auto errs = a.node->queries().gather("status", nlohmann::json::object(), {}, [](auto&&, auto&&) {});
  EXPECT_EQ(errs.errors.at("b"), "unavailable: this member does not answer queries");

  b.node->stop();  // live by its last heartbeat, but it answers nothing
  auto gathered = std::async(std::launch::async, [&] {
    return a.node->queries().gather("status", nlohmann::json::object(), {}, [](auto&&, auto&&) {});
  });
  ASSERT_TRUE(eventually([&] { return log_.records(configs_.front()->kafka.topic_replies).size() >= 2; }))
      << "a's own answer to the second query";
  const auto answers = advance_until(gathered);
  EXPECT_EQ(answers.missing, std::vector<std::string>{"b"});
  EXPECT_TRUE(answers.results.contains("a"));
}

TEST_F(fleet_parts, a_member_whose_key_differs_from_the_fleets_is_refused_at_start) {
  join("a");
  ASSERT_TRUE(eventually([&] { return !control_records().empty(); }));  // a's heartbeat
  try {
    join("b", std::string(32, 'o'));
    FAIL() << "a member with another fleet key started";
  } catch (const service::fleet_refused& e) {
    EXPECT_NE(std::string(e.what()).find("kafka.fleet_key_file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(by a)"), std::string::npos) << e.what();
  }
  // Junk and forgeries alone refuse nobody.
  log_.append(configs_.front()->kafka.topic_control, "junk", "junk", timeout);
  join("c");
}

TEST_F(fleet_parts, a_dead_broker_is_an_unavailable_fleet_not_a_lost_action) {
  auto& a = join("a");
  log_.down = true;
  EXPECT_THROW(act(*a.node, hold_add()), service::fleet_unavailable);
  EXPECT_THROW(a.node->control().catch_up(), service::fleet_unavailable);
  EXPECT_THROW(a.node->queries().gather("status", nlohmann::json::object(), {}, [](auto&&, auto&&) {}),
               service::fleet_unavailable);
  log_.down = false;
  EXPECT_TRUE(a.keeper.applied_list().empty());
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(act(*a.node, hold_add())));
}

}  // namespace
}  // namespace cdr::test
