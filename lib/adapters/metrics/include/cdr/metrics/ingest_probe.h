// Metrics of the ingest path. The ingest code calls plain methods; only this
// probe knows prometheus-cpp. Labels are topic names, outcomes and reasons:
// never an identifier.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "cdr/core/event.h"
#include "cdr/core/ingest.h"

namespace cdr::metrics {

class ingest_probe {
 public:
  // Every series of `topics` (the consumed ones) starts at 0, so that an
  // alert on increase() sees the first event.
  ingest_probe(prometheus::Registry& registry, const std::vector<std::string>& topics);

  void events(std::string_view topic, ingest_outcome outcome, std::uint64_t n);
  void rejected(std::string_view topic, reject_reason reason, std::uint64_t n);
  // Consumption paused: "write_stall", "no_space", "dead_letter", or
  // "rebalance" (a batch had to be dropped and its partitions re-read).
  void paused(std::string_view reason);
  void resumed();
  // The consumer's position in a partition of `topic` was reset to the
  // partition's start: the broker no longer held the records in between.
  void offset_reset(std::string_view topic);
  void batch_written(double seconds, std::uint64_t records);
  // The WAL was synced for a group of written batches.
  void wal_synced(double seconds);

 private:
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& pauses_;
  prometheus::Family<prometheus::Gauge>& paused_;
  prometheus::Family<prometheus::Counter>& offset_resets_;
  prometheus::Family<prometheus::Histogram>& batch_seconds_;
  prometheus::Histogram* batch_histogram_;
  prometheus::Counter& batches_;
  prometheus::Family<prometheus::Histogram>& sync_seconds_;
  prometheus::Histogram* sync_histogram_;
};

}  // namespace cdr::metrics
