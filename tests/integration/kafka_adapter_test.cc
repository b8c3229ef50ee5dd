// The Kafka adapter against librdkafka's mock cluster: what the daemon's
// tests cannot provoke on cue.
#include <gtest/gtest.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <set>
#include <thread>

#include "cdr/kafka/client.h"
#include "mock_kafka.h"

namespace cdr::test {
namespace {

using namespace std::chrono_literals;

class assignment_recorder final : public kafka::rebalance_listener {
 public:
  std::optional<std::int64_t> stored_offset(const kafka::topic_partition&) override { return store; }
  void assigned(const std::map<kafka::topic_partition, std::int64_t>& start,
                const std::map<kafka::topic_partition, std::int64_t>& a) override {
    for (const auto& [tp, offset] : start) partitions.insert(tp);
    starts.insert(start.begin(), start.end());
    ahead.insert(a.begin(), a.end());
  }
  void revoking(const std::vector<kafka::topic_partition>& gone, bool) override {
    for (const auto& tp : gone) partitions.erase(tp);
  }
  std::optional<std::int64_t> store;  // what the "store" says for every partition
  std::set<kafka::topic_partition> partitions;
  std::map<kafka::topic_partition, std::int64_t> starts;
  std::map<kafka::topic_partition, std::int64_t> ahead;
};

kafka::consumer_options options(const mock_kafka& k) {
  kafka::consumer_options o;
  o.bootstrap_servers = k.bootstrap();
  o.client_id = "adapter-test";
  o.group_id = "g";
  o.topics = {"cdr"};
  return o;
}

// Polls until `done` or `limit` passes.
void poll_until(kafka::consumer& c, const std::function<bool()>& done, std::chrono::seconds limit) {
  for (auto deadline = std::chrono::steady_clock::now() + limit;
       !done() && std::chrono::steady_clock::now() < deadline;) {
    c.poll(100ms);
  }
}

std::int64_t committed(const mock_kafka& k, int partition) {
  const auto progress = kafka::group_progress({k.bootstrap(), "progress-reader", {}}, "g", "cdr", 5s);
  if (!progress) return -2;
  for (const auto& p : *progress) {
    if (p.partition == partition) return p.committed;
  }
  return -2;
}

// A commit the group refused (here "rebalance in progress", as during a
// member's departure) is made again while the partition stays assigned,
// without waiting for another message: a drain reads the group's offsets to
// know its records were stored. Not while the rebalance runs, though (it
// would fail with the old generation): once it has reached this member,
// or, as here where none does, after a session timeout.
TEST(kafka_consumer, a_failed_commit_is_made_again_while_the_partition_is_assigned) {
  mock_kafka k(1);
  assignment_recorder listener;
  auto o = options(k);
  o.properties["session.timeout.ms"] = "6000";
  kafka::consumer c(o, listener);
  k.produce("cdr", "k", "v");
  std::optional<std::int64_t> offset;
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       !offset && std::chrono::steady_clock::now() < deadline;) {
    auto m = c.poll(100ms);
    if (m && m.error().empty()) offset = m.offset();
  }
  ASSERT_TRUE(offset.has_value()) << "no message within 30 s";
  const kafka::topic_partition tp{"cdr", 0};
  ASSERT_TRUE(listener.partitions.contains(tp));

  rd_kafka_mock_push_request_errors(k.cluster().mock(), 8 /* OffsetCommit */, 2,
                                    RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  c.commit({{tp, *offset + 1}}, false);
  for (int i = 0; i < 10; ++i) c.poll(100ms);
  std::int64_t seen = committed(k, 0);
  for (auto deadline = std::chrono::steady_clock::now() + 20s;
       seen != *offset + 1 && std::chrono::steady_clock::now() < deadline; seen = committed(k, 0)) {
    for (int i = 0; i < 5; ++i) c.poll(100ms);
  }
  EXPECT_EQ(seen, *offset + 1) << "the refused commit was never made again";
}

// A store that holds more than the group knows (a commit refused, then the
// assignment lost before it was made again) is reported as ahead, so the
// owner commits it: otherwise the group's offset stays behind until a new
// message arrives, and a drain waiting on it waits in vain.
TEST(kafka_consumer, an_assignment_reports_where_the_store_is_ahead_of_the_group) {
  mock_kafka k(2);
  const kafka::topic_partition p0{"cdr", 0}, p1{"cdr", 1};
  auto o = options(k);
  o.properties["session.timeout.ms"] = "6000";
  o.properties["heartbeat.interval.ms"] = "500";
  {
    // The group has partition 1 up to offset 2, and nothing of partition 0.
    assignment_recorder first;
    kafka::consumer c(o, first);
    poll_until(
        c, [&] { return first.partitions.size() == 2; }, 30s);
    ASSERT_EQ(first.partitions.size(), 2u) << "not assigned within 30 s";
    c.commit({{p1, 2}}, true);
    ASSERT_EQ(committed(k, 1), 2);
  }
  assignment_recorder listener;
  listener.store = 2;  // the store holds both partitions up to offset 2
  kafka::consumer c(o, listener);
  poll_until(
      c, [&] { return listener.partitions.size() == 2; }, 30s);
  ASSERT_EQ(listener.partitions.size(), 2u) << "not assigned within 30 s";
  EXPECT_EQ(listener.starts[p0], 2) << "starts where the store is";
  EXPECT_EQ(listener.starts[p1], 2);
  EXPECT_EQ(listener.ahead, (std::map<kafka::topic_partition, std::int64_t>{{p0, 2}}))
      << "only partition 0's store is ahead of the group";
}

// Leaving: a commit the group refuses while it rebalances is made again,
// serving the group in between, until it is taken; after the limit the
// caller is told; an offset the group already holds is not sent again.
TEST(kafka_consumer, the_commit_before_leaving_is_retried_until_the_group_takes_it) {
  mock_kafka k(1);
  k.produce("cdr", "k", "v");
  k.flush();
  assignment_recorder listener;
  kafka::consumer c(options(k), listener);
  const kafka::topic_partition tp{"cdr", 0};
  poll_until(
      c, [&] { return listener.partitions.contains(tp); }, 30s);
  ASSERT_TRUE(listener.partitions.contains(tp)) << "not assigned within 30 s";

  rd_kafka_mock_push_request_errors(k.cluster().mock(), 8 /* OffsetCommit */, 3,
                                    RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
                                    RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  EXPECT_EQ(c.commit_before_leaving({{tp, 1}}, 20s), kafka::consumer::leaving::taken);
  EXPECT_EQ(committed(k, 0), 1);

  std::vector<rd_kafka_resp_err_t> refusals(200, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(k.cluster().mock(), 8, refusals.size(), refusals.data());
  EXPECT_EQ(c.commit_before_leaving({{tp, 2}}, 2s), kafka::consumer::leaving::no_answer) << "refused throughout";
  EXPECT_EQ(committed(k, 0), 1);
  EXPECT_EQ(c.commit_before_leaving({{tp, 1}}, 2s), kafka::consumer::leaving::taken) << "the group has it already";
}

}  // namespace
}  // namespace cdr::test
