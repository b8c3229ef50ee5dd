// A Kafka broker for integration tests: librdkafka's mock cluster hosted on
// the test's own handle (so it outlives a killed daemon), a producer, and a
// reader that drains a topic from the beginning.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cdr/kafka/client.h"
#include "cdr/kafka/embedded_cluster.h"

namespace cdr::test {

struct read_message {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

class mock_kafka {
 public:
  // Topics "cdr" and "usage" with `partitions` each; the dead-letter,
  // deletion-event, control and replies topics with 1, the handover topic
  // with 8.
  explicit mock_kafka(int partitions = 4);
  ~mock_kafka();

  const std::string& bootstrap() const { return cluster_.bootstrap_servers(); }
  kafka::embedded_cluster& cluster() { return cluster_; }

  // Produces and waits for the acknowledgement of everything produced so far.
  void produce(const std::string& topic, const std::string& key, const std::string& value);
  void flush();

  // Reads `topic` from the beginning until `count` messages arrived or the
  // timeout passed.
  std::vector<read_message> read_all(const std::string& topic, std::size_t count,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // The number of messages ever written to a topic (the sum of its
  // partitions' end offsets).
  std::int64_t end_offsets(const std::string& topic);
  // The sum of the offsets consumer group `group` committed on `topic`'s
  // partitions (an offset fetch: the reader does not join the group).
  std::int64_t committed(const std::string& group, const std::string& topic);

 private:
  kafka::embedded_cluster cluster_;
  std::unique_ptr<kafka::producer> producer_;
  std::size_t failed_ = 0;
};

}  // namespace cdr::test
