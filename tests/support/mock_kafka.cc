#include "mock_kafka.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace cdr::test {

mock_kafka::mock_kafka(int partitions)
    : cluster_(1, {{"cdr", partitions},
                   {"usage", partitions},
                   {"cdr-retention-dlq", 1},
                   {"cdr-retention-events", 1},
                   {"cdr-retention-control", 1},
                   {"cdr-retention-replies", 1},
                   {"cdr-retention-handover", 8}}) {
  producer_ = std::make_unique<kafka::producer>(
      kafka::client_options{cluster_.bootstrap_servers(),
                            "test-producer",
                            {{"message.timeout.ms", "120000"}, {"socket.timeout.ms", "5000"}}},
      [this](std::uint64_t, bool ok, std::string_view) {
        if (!ok) ++failed_;
      });
}

mock_kafka::~mock_kafka() { producer_.reset(); }

void mock_kafka::produce(const std::string& topic, const std::string& key, const std::string& value) {
  std::string error;
  while (!producer_->produce(topic, key, value, {}, 0, &error)) {
    producer_->flush(std::chrono::milliseconds(100));  // local queue full: drain
  }
}

void mock_kafka::flush() {
  while (!producer_->flush(std::chrono::seconds(10))) {
  }
  if (failed_ != 0) throw std::runtime_error("test producer: messages were not delivered");
}

namespace {

// A consumer handle on the cluster and the partition count of `topic`.
rd_kafka_t* open_reader(const std::string& bootstrap, const std::string& topic, int* partitions,
                        const std::string& group = "test-reader") {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_poll_set_consumer(rk);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  rd_kafka_metadata(rk, 0, t, &md, 10000);
  *partitions = md != nullptr ? md->topics[0].partition_cnt : 0;
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  return rk;
}

}  // namespace

std::int64_t mock_kafka::end_offsets(const std::string& topic) {
  int partitions = 0;
  rd_kafka_t* rk = open_reader(bootstrap(), topic, &partitions);
  std::int64_t total = 0;
  for (int i = 0; i < partitions; ++i) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), i, &low, &high, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_destroy(rk);
      throw std::runtime_error("cannot read the end offsets of " + topic);
    }
    total += high;
  }
  rd_kafka_destroy(rk);
  return total;
}

std::int64_t mock_kafka::committed(const std::string& group, const std::string& topic) {
  int partitions = 0;
  rd_kafka_t* rk = open_reader(bootstrap(), topic, &partitions, group);
  auto* list = rd_kafka_topic_partition_list_new(partitions);
  for (int i = 0; i < partitions; ++i) rd_kafka_topic_partition_list_add(list, topic.c_str(), i);
  const auto err = rd_kafka_committed(rk, list, 10000);
  std::int64_t total = 0;
  for (int i = 0; i < list->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    total += std::max<std::int64_t>(0, list->elems[i].offset);  // none committed: RD_KAFKA_OFFSET_INVALID
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("cannot read group " + group + "'s offsets of " + topic + ": " + rd_kafka_err2str(err));
  }
  return total;
}

std::vector<read_message> mock_kafka::read_all(const std::string& topic, std::size_t count,
                                               std::chrono::milliseconds timeout) {
  // Every partition, from the beginning.
  int partitions = 0;
  rd_kafka_t* rk = open_reader(bootstrap(), topic, &partitions);
  auto* list = rd_kafka_topic_partition_list_new(1);
  for (int i = 0; i < partitions; ++i) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), i)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);

  std::vector<read_message> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      read_message r;
      r.topic = topic;
      r.partition = m->partition;
      r.offset = m->offset;
      if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
          r.headers[name] = std::string(static_cast<const char*>(value), size);
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

}  // namespace cdr::test
