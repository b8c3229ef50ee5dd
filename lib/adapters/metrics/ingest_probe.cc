#include "cdr/metrics/ingest_probe.h"

#include <string>

namespace cdr::metrics {

namespace {
constexpr std::string_view pause_reasons[] = {"write_stall", "no_space", "dead_letter", "rebalance",
                                              "partition_closed"};
}  // namespace

ingest_probe::ingest_probe(prometheus::Registry& r, const std::vector<std::string>& topics)
    : events_(prometheus::BuildCounter()
                  .Name("cdr_retention_events_total")
                  .Help("Consumed events by topic and outcome (stored, duplicate, conflict, stripped_on_ingest, "
                        "dropped_on_ingest, rejected), counted once their batch is durable.")
                  .Register(r)),
      rejected_(prometheus::BuildCounter()
                    .Name("cdr_retention_events_rejected_total")
                    .Help("Rejected events by topic and reason; each went to the dead-letter topic.")
                    .Register(r)),
      pauses_(prometheus::BuildCounter()
                  .Name("cdr_retention_ingest_pauses_total")
                  .Help("Times consumption paused, by reason (write_stall, no_space, dead_letter, rebalance).")
                  .Register(r)),
      paused_(prometheus::BuildGauge()
                  .Name("cdr_retention_ingest_paused")
                  .Help("1 for the reason consumption is paused now (write_stall, no_space, dead_letter, "
                        "rebalance), 0 for the others; all 0 while it runs.")
                  .Register(r)),
      offset_resets_(prometheus::BuildCounter()
                         .Name("cdr_retention_consumer_offset_resets_total")
                         .Help("Times the consumer's position in a partition was beyond what the broker holds and "
                               "was reset to the partition's start: records in between were lost upstream.")
                         .Register(r)),
      batch_seconds_(
          prometheus::BuildHistogram()
              .Name("cdr_retention_ingest_batch_write_seconds")
              .Help("Time to write one consumed batch (dead-letter acks and the RocksDB write, WAL not synced yet).")
              .Register(r)),
      batch_histogram_(
          &batch_seconds_.Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                          0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      batches_(prometheus::BuildCounter()
                   .Name("cdr_retention_ingest_records_written_total")
                   .Help("Records written to the store by ingest.")
                   .Register(r)
                   .Add({})),
      sync_seconds_(prometheus::BuildHistogram()
                        .Name("cdr_retention_ingest_wal_sync_seconds")
                        .Help("Time to make a group of written batches durable (a WAL sync) before their offsets "
                              "are committed to Kafka.")
                        .Register(r)),
      sync_histogram_(&sync_seconds_.Add(
          {}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})) {
  resumed();  // every reason shown, at 0
  for (const auto reason : pause_reasons) pauses_.Add({{"reason", std::string(reason)}});
  for (const auto& topic : topics) {
    for (const auto o : all_ingest_outcomes) events_.Add({{"topic", topic}, {"outcome", std::string(name(o))}});
    for (std::size_t i = 0; i < reject_reason_count; ++i) {
      rejected_.Add({{"topic", topic}, {"reason", std::string(name(static_cast<reject_reason>(i)))}});
    }
    offset_resets_.Add({{"topic", topic}});
  }
}

void ingest_probe::events(std::string_view topic, ingest_outcome outcome, std::uint64_t n) {
  events_.Add({{"topic", std::string(topic)}, {"outcome", std::string(name(outcome))}})
      .Increment(static_cast<double>(n));
}

void ingest_probe::rejected(std::string_view topic, reject_reason reason, std::uint64_t n) {
  rejected_.Add({{"topic", std::string(topic)}, {"reason", std::string(name(reason))}})
      .Increment(static_cast<double>(n));
}

void ingest_probe::paused(std::string_view reason) {
  pauses_.Add({{"reason", std::string(reason)}}).Increment();
  for (const auto r : pause_reasons) paused_.Add({{"reason", std::string(r)}}).Set(r == reason ? 1 : 0);
}

void ingest_probe::resumed() {
  for (const auto r : pause_reasons) paused_.Add({{"reason", std::string(r)}}).Set(0);
}

void ingest_probe::offset_reset(std::string_view topic) {
  offset_resets_.Add({{"topic", std::string(topic)}}).Increment();
}

void ingest_probe::wal_synced(double seconds) { sync_histogram_->Observe(seconds); }

void ingest_probe::batch_written(double seconds, std::uint64_t records) {
  batch_histogram_->Observe(seconds);
  batches_.Increment(static_cast<double>(records));
}

}  // namespace cdr::metrics
