// prometheus-cpp adapter. Naming convention for every metric of the daemon:
// prefix `cdr_retention_`, base units (seconds, bytes), counters end in
// `_total`, and never an end-user identifier in a label value.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>

#include "cdr/core/config.h"
#include "cdr/metrics/snapshots.h"

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

// Owns the registry and renders a scrape (`/metrics` on the daemon's HTTP
// port, cdr/admin/http.h, serves it).
class endpoint {
 public:
  endpoint();
  ~endpoint();
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  void add(std::shared_ptr<prometheus::Collectable> collectable);
  // Scrape-time figures: `read` is called once per scrape, on the thread
  // that scrapes (collectors.cc builds the families).
  void collect_daemon(std::function<daemon_snapshot()> read);
  void collect_store(std::function<store_snapshot()> read);
  void collect_retention(std::function<retention_snapshot()> read);
  // Every family in the text exposition format (version 0.0.4). Also
  // counts itself: exposer_scrapes_total, exposer_transferred_bytes_total
  // and exposer_request_latencies (the names prometheus-cpp's exposer used).
  std::string scrape();
  static constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> extra_;
  std::mutex scraping_;  // one scrape at a time (collectors need not be reentrant)
  prometheus::Counter& scrapes_;
  prometheus::Counter& bytes_;
  prometheus::Summary& latency_;
};

}  // namespace cdr::metrics
