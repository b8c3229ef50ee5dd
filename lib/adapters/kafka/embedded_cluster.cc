#include "cdr/kafka/embedded_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cdr::kafka {

void log_to_spdlog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
  const auto lvl = level <= 3   ? spdlog::level::err
                   : level == 4 ? spdlog::level::warn
                   : level <= 6 ? spdlog::level::info
                                : spdlog::level::debug;
  spdlog::log(lvl, "kafka {} {}: {}", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

void route_logs_to_spdlog(rd_kafka_conf_t* conf) { rd_kafka_conf_set_log_cb(conf, &log_to_spdlog); }

embedded_cluster::embedded_cluster(int brokers, const std::vector<topic_spec>& topics) : brokers_(brokers) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  // The handle only hosts the mock cluster: it has no brokers of its own to
  // warn about.
  if (rd_kafka_conf_set(conf, "client.id", "cdr-retention-embedded-broker", err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(err);
  }
  route_logs_to_spdlog(conf);
  handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (handle_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(fmt::format("cannot create the embedded broker's handle: {}", err));
  }
  mock_ = rd_kafka_mock_cluster_new(handle_, brokers);
  if (mock_ == nullptr) {
    rd_kafka_destroy(handle_);
    throw std::runtime_error("cannot start librdkafka's mock cluster");
  }
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(mock_);
  for (const auto& t : topics) {
    const auto e = rd_kafka_mock_topic_create(mock_, t.name.c_str(), t.partitions, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_mock_cluster_destroy(mock_);
      rd_kafka_destroy(handle_);
      throw std::runtime_error(fmt::format("cannot create topic {}: {}", t.name, rd_kafka_err2str(e)));
    }
  }
}

embedded_cluster::~embedded_cluster() {
  rd_kafka_mock_cluster_destroy(mock_);
  rd_kafka_destroy(handle_);
}

}  // namespace cdr::kafka
