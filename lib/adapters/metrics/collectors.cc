// Scrape-time metric families built from the service's snapshots.
#include <string>

#include "cdr/metrics/metrics.h"

namespace cdr::metrics {
namespace {

using families = std::vector<prometheus::MetricFamily>;

families of(const daemon_snapshot& d) {
  return {
      gauge_family("cdr_retention_clock_simulated",
                   "1 when the daemon runs on a simulated clock (--fake-clock), else 0.", d.clock_simulated ? 1 : 0),
      gauge_family("cdr_retention_clock_time_seconds", "The daemon's notion of now, as Unix time in seconds.",
                   d.clock_seconds),
      gauge_family("cdr_retention_admin_connections", "Open admin socket connections.", d.admin_connections)};
}

families of(const store_snapshot& s) {
  std::vector<std::pair<prometheus::Labels, double>> records, bytes, lag;
  for (const auto& [kind, n] : s.records_by_kind) records.push_back({{{"kind", kind}}, n});
  for (const auto& [f, b] : s.bytes_by_family) bytes.push_back({{{"column_family", f}}, static_cast<double>(b)});
  for (const auto& l : s.lag) {
    lag.push_back({{{"topic", l.topic}, {"partition", std::to_string(l.partition)}}, static_cast<double>(l.messages)});
  }
  return {
      labelled_gauge_family("cdr_retention_records", "Records stored, by kind.", records),
      labelled_gauge_family("cdr_retention_store_bytes", "Bytes of live SST files and memtables, by column family.",
                            bytes),
      gauge_family("cdr_retention_store_write_stopped", "1 while RocksDB stops writes, else 0.",
                   s.write_stopped ? 1 : 0),
      counter_family("cdr_retention_store_write_stall_seconds_total",
                     "Time RocksDB delayed or stopped writes, in seconds.", static_cast<double>(s.stall_micros) / 1e6),
      labelled_gauge_family("cdr_retention_consumer_lag_messages",
                            "Messages between the consumer's position and the partition's end (librdkafka statistics).",
                            lag),
      counter_family("cdr_retention_store_corrupt_entries_total",
                     "Stored entries met that do not decode (id index entries), since start; never fatal.",
                     static_cast<double>(s.corrupt_entries))};
}

families of(const retention_snapshot& r) {
  std::vector<std::pair<prometheus::Labels, double>> due_30d;
  for (const auto& [action, n] : r.records_due_30d) due_30d.push_back({{{"action", action}}, static_cast<double>(n)});
  std::vector<std::pair<prometheus::Labels, double>> due_by_month;
  for (const auto& [key, n] : r.records_due_by_month) {
    due_by_month.push_back({{{"month", key.first}, {"action", key.second}}, static_cast<double>(n)});
  }
  std::vector<std::pair<prometheus::Labels, double>> unreadable;
  for (const auto& [kind, n] : r.saved_state_unreadable) {
    unreadable.push_back({{{"kind", kind}}, static_cast<double>(n)});
  }
  families out{
      gauge_family("cdr_retention_overdue_partitions",
                   "Partitions past a deadline, not yet swept and not held (0 when healthy).",
                   static_cast<double>(r.overdue_partitions)),
      gauge_family("cdr_retention_overdue_records", "Records in overdue partitions (0 when healthy).",
                   static_cast<double>(r.overdue_records)),
      gauge_family("cdr_retention_holds_active", "Active legal holds.", static_cast<double>(r.holds_active)),
      gauge_family("cdr_retention_records_held", "Records kept past their deadline in the held store by legal holds.",
                   static_cast<double>(r.records_held)),
      gauge_family("cdr_retention_deletion_events_pending",
                   "Deletion events in the outbox, not yet acknowledged by Kafka.",
                   static_cast<double>(r.events_pending)),
      gauge_family("cdr_retention_keys_live", "Data keys in the key store now.", static_cast<double>(r.keys_live)),
      counter_family("cdr_retention_keys_destroyed_total",
                     "Data keys destroyed since the key store was created (crypto-shredding).",
                     static_cast<double>(r.keys_destroyed)),
      gauge_family("cdr_retention_next_deadline_timestamp_seconds",
                   "The earliest retention deadline a stored partition still has to meet, as Unix time (past "
                   "when overdue); 0 when no partition has one.",
                   r.next_deadline_seconds),
      labelled_gauge_family("cdr_retention_records_due_30d",
                            "Records whose strip or drop falls due within 30 days (those already due included), "
                            "by action.",
                            due_30d),
      labelled_gauge_family("cdr_retention_records_due_by_month",
                            "Records whose strip or drop falls due in a month (this month, with those already "
                            "due, and the next 12), by month and action: `cdr-retentionctl plan` as a series.",
                            due_by_month),
      gauge_family("cdr_retention_audit_last_verification_timestamp_seconds",
                   "When the audit trail's hash chain was last verified (at start and by `audit verify`), as Unix "
                   "time.",
                   r.audit_verified_at_seconds),
      gauge_family("cdr_retention_audit_chain_ok",
                   "1 when the audit trail's hash chain held at its last verification, 0 when it was broken.",
                   r.audit_chain_ok ? 1 : 0),
      counter_family("cdr_retention_decrypt_failures_total",
                     "Identifier values that did not decrypt (tampered or corrupt), since start.",
                     static_cast<double>(r.decrypt_failures)),
      gauge_family("cdr_retention_clock_jump_seconds",
                   "How far the wall clock moved beyond the monotonic clock since the last sweep, the start or a "
                   "confirmation (negative: backwards).",
                   r.clock_jump_seconds),
      gauge_family("cdr_retention_clock_jump_suspected",
                   "1 while destructive sweeps wait for `cdr-retentionctl clock confirm` after a forward jump "
                   "beyond sweep.max_clock_jump, else 0.",
                   r.sweeps_paused_clock ? 1 : 0),
      gauge_family("cdr_retention_erasures_pending_purge",
                   "Erased subjects whose removed keys wait for the erasure purge pass (hidden, not yet purged).",
                   static_cast<double>(r.erasures_pending_purge)),
      gauge_family("cdr_retention_erasure_purge_oldest_age_seconds",
                   "Age of the oldest erasure not yet purged from the files on disk (0 when none).",
                   r.erasure_purge_oldest_age_seconds),
      gauge_family("cdr_retention_erasure_purge_forecast_seconds",
                   "How long the next erasure purge pass is forecast to take: the bytes it rewrites over the last "
                   "measured pass rate (0 when no erasure is pending).",
                   r.erasure_purge_forecast_seconds),
      gauge_family("cdr_retention_erasure_purge_forecast_bytes",
                   "Bytes the next erasure purge pass is forecast to rewrite: the files the pending erasures' keys "
                   "fall on (0 when none is pending).",
                   r.erasure_purge_forecast_bytes),
      gauge_family("cdr_retention_erasure_purge_forecast_late_seconds",
                   "How far past the earliest pending purge deadline (erasure.purge_after) the next pass is "
                   "forecast to end; 0 when it ends in time.",
                   r.erasure_purge_forecast_late_seconds),
      gauge_family("cdr_retention_erasures_purge_overdue",
                   "Erased subjects still unpurged an hour past their purge deadline (erasure.purge_after); 0 "
                   "when healthy.",
                   static_cast<double>(r.erasures_purge_overdue)),
      labelled_gauge_family("cdr_retention_saved_state_unreadable",
                            "Saved-state entries (holds, journals, outbox events, erasures, pending audit "
                            "entries) that do not decode, by kind; sweeps and erasures are refused while any is.",
                            unreadable)};
  if (r.control_position) {
    out.push_back(gauge_family("cdr_retention_control_position",
                               "The next offset of the fleet's control topic (kafka.topics.control) this member "
                               "applies.",
                               static_cast<double>(*r.control_position)));
    out.push_back(gauge_family("cdr_retention_control_blocked",
                               "1 while a control-topic message cannot be applied here (status: kafka.fleet.blocked); "
                               "sweeps wait meanwhile. 0 when healthy.",
                               r.control_blocked ? 1 : 0));
    std::vector<std::pair<prometheus::Labels, double>> rejected;
    for (const auto& [reason, n] : r.control_rejected)
      rejected.push_back({{{"reason", reason}}, static_cast<double>(n)});
    out.push_back(labelled_counter_family(
        "cdr_retention_control_rejected_total",
        "Messages on the fleet's control and replies topics refused since start, by reason: malformed, unsigned, "
        "unknown_key (signed under a key this member does not hold), bad_mac (forged or altered), replay. Never "
        "applied; each is logged and audited.",
        rejected));
    out.push_back(labelled_gauge_family(
        "cdr_retention_fleet_members",
        "Fleet members this one knows from the control topic's heartbeats: live (heard within three heartbeat "
        "intervals) or silent (not heard since; drained members are forgotten).",
        {{{{"state", "live"}}, static_cast<double>(r.fleet_members_live)},
         {{{"state", "silent"}}, static_cast<double>(r.fleet_members_silent)}}));
    out.push_back(gauge_family("cdr_retention_fleet_silent_members_past_deadline",
                               "Silent fleet members whose records (by their last heartbeat) are past a retention "
                               "deadline: nobody sweeps them. 0 when healthy.",
                               static_cast<double>(r.fleet_silent_members_past_deadline)));
  }
  return out;
}

template <class Snapshot>
class snapshot_collector final : public prometheus::Collectable {
 public:
  explicit snapshot_collector(std::function<Snapshot()> read) : read_(std::move(read)) {}
  families Collect() const override { return of(read_()); }

 private:
  std::function<Snapshot()> read_;
};

}  // namespace

void endpoint::collect_daemon(std::function<daemon_snapshot()> read) {
  add(std::make_shared<snapshot_collector<daemon_snapshot>>(std::move(read)));
}
void endpoint::collect_store(std::function<store_snapshot()> read) {
  add(std::make_shared<snapshot_collector<store_snapshot>>(std::move(read)));
}
void endpoint::collect_retention(std::function<retention_snapshot()> read) {
  add(std::make_shared<snapshot_collector<retention_snapshot>>(std::move(read)));
}

}  // namespace cdr::metrics
