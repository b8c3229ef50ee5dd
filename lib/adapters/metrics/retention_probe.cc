#include "cdr/metrics/retention_probe.h"

#include <string>

namespace cdr::metrics {

retention_probe::retention_probe(prometheus::Registry& registry)
    : duration_(prometheus::BuildHistogram()
                    .Name("cdr_retention_sweep_duration_seconds")
                    .Help("Duration of retention sweeps, physical erasure included, by trigger.")
                    .Register(registry)),
      sweeps_(prometheus::BuildCounter()
                  .Name("cdr_retention_sweeps_total")
                  .Help("Retention sweeps by trigger and result (ok or failed).")
                  .Register(registry)),
      last_success_(prometheus::BuildGauge()
                        .Name("cdr_retention_last_successful_sweep_timestamp_seconds")
                        .Help("When the last sweep that completed succeeded, as Unix time (daemon clock).")
                        .Register(registry)
                        .Add({})),
      stripped_(prometheus::BuildCounter()
                    .Name("cdr_retention_records_stripped_total")
                    .Help("Records whose identifiers a sweep removed, by kind.")
                    .Register(registry)),
      dropped_(prometheus::BuildCounter()
                   .Name("cdr_retention_records_dropped_total")
                   .Help("Records a sweep removed whole, by kind.")
                   .Register(registry)),
      erased_(prometheus::BuildCounter()
                  .Name("cdr_retention_records_erased_total")
                  .Help("Records whose identifiers a subject erasure removed, by kind.")
                  .Register(registry)),
      purge_duration_(prometheus::BuildHistogram()
                          .Name("cdr_retention_erasure_purge_duration_seconds")
                          .Help("Duration of erasure purge passes (erased keys made gone from the files on disk).")
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800})),
      purge_bytes_(prometheus::BuildCounter()
                       .Name("cdr_retention_erasure_purge_bytes_rewritten_total")
                       .Help("Bytes of SST files erasure purge passes rewrote.")
                       .Register(registry)
                       .Add({})) {
  // Every trigger's results from 0: the first failed sweep is an increase.
  for (const auto* trigger : {"startup", "schedule", "admin"}) {
    for (const auto* result : {"ok", "failed"}) sweeps_.Add({{"trigger", trigger}, {"result", result}});
  }
  for (auto k : {record_kind::cdr, record_kind::usage}) {
    const prometheus::Labels l{{"kind", std::string(name(k))}};
    stripped_.Add(l);
    dropped_.Add(l);
    erased_.Add(l);
  }
}

void retention_probe::sweep(std::string_view trigger, double seconds, bool ok, double unix_time) {
  const std::string t(trigger);
  static const prometheus::Histogram::BucketBoundaries buckets{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  duration_.Add({{"trigger", t}}, buckets).Observe(seconds);
  sweeps_.Add({{"trigger", t}, {"result", ok ? "ok" : "failed"}}).Increment();
  if (ok) last_success_.Set(unix_time);
}

void retention_probe::erasure_purge(double seconds, std::uint64_t bytes_rewritten) {
  purge_duration_.Observe(seconds);
  purge_bytes_.Increment(static_cast<double>(bytes_rewritten));
}

void retention_probe::stripped(record_kind kind, std::int64_t records) {
  stripped_.Add({{"kind", std::string(name(kind))}}).Increment(static_cast<double>(records));
}
void retention_probe::dropped(record_kind kind, std::int64_t records) {
  dropped_.Add({{"kind", std::string(name(kind))}}).Increment(static_cast<double>(records));
}
void retention_probe::erased(record_kind kind, std::int64_t records) {
  erased_.Add({{"kind", std::string(name(kind))}}).Increment(static_cast<double>(records));
}

}  // namespace cdr::metrics
