// prometheus-cpp adapter. Naming convention for every metric of the daemon:
// prefix `cdr_retention_`, base units (seconds, bytes), counters end in
// `_total`, and never an end-user identifier in a label value.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include "cdr/core/config.h"
#include "cdr/metrics/snapshots.h"

namespace prometheus {
class Exposer;
}

namespace cdr::metrics {

// Builds a family with one unlabelled gauge or counter sample.
prometheus::MetricFamily gauge_family(std::string name, std::string help, double value);
prometheus::MetricFamily counter_family(std::string name, std::string help, double value);
// Builds a gauge or counter family with one sample per label set.
prometheus::MetricFamily labelled_gauge_family(std::string name, std::string help,
                                               const std::vector<std::pair<prometheus::Labels, double>>& samples);
prometheus::MetricFamily labelled_counter_family(std::string name, std::string help,
                                                 const std::vector<std::pair<prometheus::Labels, double>>& samples);

// The standard process_* metrics, read from /proc/self at scrape time.
std::shared_ptr<prometheus::Collectable> make_process_collector();

// Owns the registry and the HTTP exposer (`/metrics`).
class endpoint {
 public:
  // Binds config.host:config.port (port 0 picks a free port). Throws
  // std::runtime_error when the address cannot be bound.
  explicit endpoint(const metrics_config& config);
  ~endpoint();
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  void add(std::shared_ptr<prometheus::Collectable> collectable);
  // Scrape-time figures: `read` is called once per scrape, on the HTTP
  // server's thread (collectors.cc builds the families).
  void collect_daemon(std::function<daemon_snapshot()> read);
  void collect_store(std::function<store_snapshot()> read);
  void collect_retention(std::function<retention_snapshot()> read);
  std::uint16_t port() const;
  std::string address() const;  // host:port actually bound

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> extra_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string host_;
};

}  // namespace cdr::metrics
