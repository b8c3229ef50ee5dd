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
  std::optional<std::int64_t> stored_offset(const kafka::topic_partition&) override { return std::nullopt; }
  void assigned(const std::map<kafka::topic_partition, std::int64_t>& start) override {
    for (const auto& [tp, offset] : start) partitions.insert(tp);
  }
  void revoking(const std::vector<kafka::topic_partition>& gone, bool) override {
    for (const auto& tp : gone) partitions.erase(tp);
  }
  std::set<kafka::topic_partition> partitions;
};

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
// know its records were stored.
TEST(kafka_consumer, a_failed_commit_is_made_again_while_the_partition_is_assigned) {
  mock_kafka k(1);
  assignment_recorder listener;
  kafka::consumer_options o;
  o.bootstrap_servers = k.bootstrap();
  o.client_id = "adapter-test";
  o.group_id = "g";
  o.topics = {"cdr"};
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

}  // namespace
}  // namespace cdr::test
