// Metrics of sweeps, holds and erasures. Labels are triggers, actions and
// record kinds: never an identifier.
#pragma once

#include <cstdint>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "cdr/core/policy.h"

namespace cdr::metrics {

class retention_probe {
 public:
  explicit retention_probe(prometheus::Registry& registry);

  // A sweep finished (trigger: schedule, startup or admin).
  void sweep(std::string_view trigger, double seconds, bool ok, double unix_time);
  void stripped(record_kind kind, std::int64_t records);
  void dropped(record_kind kind, std::int64_t records);
  void erased(record_kind kind, std::int64_t records);
  // An erasure purge pass finished.
  void erasure_purge(double seconds, std::uint64_t bytes_rewritten);

 private:
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& sweeps_;
  prometheus::Gauge& last_success_;
  prometheus::Family<prometheus::Counter>& stripped_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Counter>& erased_;
  prometheus::Histogram& purge_duration_;
  prometheus::Counter& purge_bytes_;
};

}  // namespace cdr::metrics
