// librdkafka's mock cluster, hosted in-process: the daemon's "embedded"
// broker (kafka.brokers = "embedded") and the integration tests' broker.
#pragma once

#include <string>
#include <utility>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace cdr::kafka {

struct topic_spec {
  std::string name;
  int partitions = 1;
};

class embedded_cluster {
 public:
  // Starts `brokers` mock brokers on loopback (ephemeral ports) and creates
  // the topics. Throws std::runtime_error on failure.
  embedded_cluster(int brokers, const std::vector<topic_spec>& topics);
  ~embedded_cluster();
  embedded_cluster(const embedded_cluster&) = delete;
  embedded_cluster& operator=(const embedded_cluster&) = delete;

  // The bootstrap list, e.g. "127.0.0.1:40123,127.0.0.1:40125".
  const std::string& bootstrap_servers() const { return bootstraps_; }
  rd_kafka_mock_cluster_s* mock() const { return mock_; }
  int brokers() const { return brokers_; }

 private:
  rd_kafka_s* handle_ = nullptr;
  rd_kafka_mock_cluster_s* mock_ = nullptr;
  std::string bootstraps_;
  int brokers_ = 0;
};

// Routes librdkafka's log lines of a configuration to spdlog.
void route_logs_to_spdlog(struct rd_kafka_conf_s* conf);
// One librdkafka log line to spdlog (what route_logs_to_spdlog installs).
void log_to_spdlog(const struct rd_kafka_s* rk, int level, const char* fac, const char* buf);

}  // namespace cdr::kafka
