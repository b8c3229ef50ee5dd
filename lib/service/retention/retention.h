// Retention (docs/architecture.md, "Retention"): sweeps on a schedule and on
// demand, legal holds, subject erasure, verification, the audit trail and
// deletion events. This class orders the work of its units, one operation
// at a time:
//
//   sweep_scheduler  when sweeps run             (scheduler.h)
//   sweep_executor   the logical step            (executor.h)
//   subject_erasure  erasure and deferred ones   (erasure.h)
//   key_shredder     key destruction             (shredder.h)
//   purger           the physical step           (purger.h)
//   verifier         verify                      (verifier.h)
//   hold_registry    legal holds                 (holds.h)
//   event_publisher  deletion events to Kafka    (publisher.h)
//
// Every action is two steps: the logical one commits the removal and a
// journal; the physical one makes the ranges gone from disk, then replaces
// the journal by the audit entry and the deletion event. A crash between
// them leaves the journal, which start() finishes.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "../fleet_port.h"
#include "../ledger.h"
#include "cdr/metrics/snapshots.h"
#include "clock_guard.h"
#include "context.h"
#include "erasure.h"
#include "executor.h"
#include "holds.h"
#include "publisher.h"
#include "purger.h"
#include "scheduler.h"
#include "shredder.h"
#include "verifier.h"

namespace cdr::service {

class retention final : public fleet_port {
 public:
  // `subject_key` names subjects in holds and the audit trail; `keys` seals
  // identifiers; `audit_keys` keys the audit chain; `events` receives
  // deletion events (none: they wait in the outbox). The saved state must have been checked (check_all) first.
  retention(const daemon_config& config, const time_source& time, store::store& store, store::saved_state& state,
            metrics::retention_probe& probe, std::string subject_key, vault& keys, audit_keying audit_keys,
            std::unique_ptr<event_sink> events, const identity& ids = identity::digits());
  ~retention();

  // Finishes actions a crash interrupted (recover), then starts the
  // schedule (a sweep now, then every sweep.interval plus jitter) and the
  // event publisher.
  void start();
  // Finishes what earlier runs left: undestroyed keys, journals. Refused
  // (logged) while saved state is unreadable.
  void recover();
  void stop();
  void set_schedule(microseconds interval, microseconds jitter) { scheduler_.set_schedule(interval, jitter); }
  void set_max_clock_jump(microseconds limit) { guard_.set_limit(limit); }

  // The instant ingest decides lateness (and the future) at: never before
  // the last sweep's, whatever the wall clock did since (clock_guard.h).
  instant decision_now() const { return guard_.late_now(); }
  // An operator confirms the wall clock after a jump (audited); the jump
  // it accepted.
  nlohmann::json clock_confirm(std::uint32_t uid);
  // A deliberate move of a simulated clock: accepted without a word.
  void clock_moved_deliberately() {
    guard_.accept();
    arm_purge();
  }
  microseconds interval() const { return scheduler_.interval(); }

  // One sweep now. trigger: "schedule", "startup" or "admin".
  nlohmann::json sweep(std::string_view trigger, std::uint32_t uid);
  // What a sweep at `as_of` would do; changes nothing.
  nlohmann::json forecast(instant as_of) const;
  // Long operations in progress (sweep, purge, verify, checkpoint, export).
  progress& activity() const { return ctx_.activity; }
  // How identifiers are written before they are hashed (cdr/core/identity.h).
  const identity& identities() const { return ctx_.ids; }
  // The forecast view (`plan`): every partition with records and an action
  // to come (next action, deadline, status, holds), those due by the end of
  // `until` only when given, and the records due per month and action;
  // with `customer`, counting that customer's records only (a store scan).
  nlohmann::json plan(std::optional<month> until, const std::optional<std::string>& customer) const;

  // Holds. Errors are messages for the requester.
  std::variant<nlohmann::json, std::string> hold_add(const nlohmann::json& args, std::uint32_t uid);
  // A hold from an admin request (not stored; for the control topic).
  std::variant<hold, std::string> hold_from(const nlohmann::json& args) const;
  // The active hold with this id: nullopt when there is none.
  std::optional<hold> hold_of(std::uint64_t id) const;
  // Every active hold; with an identifier, those that keep any of its
  // records (each with "subject_records": how many).
  nlohmann::json hold_list(std::optional<std::string_view> identifier = std::nullopt) const;
  // nullopt: no hold has that id.
  std::optional<nlohmann::json> hold_release(std::uint64_t id, std::uint32_t uid, const audit::request_note& note);
  // What late events are matched against at ingest.
  std::shared_ptr<const std::vector<hold>> holds() const { return holds_.snapshot(); }
  // The erased subjects and when: ingest strips them from events that
  // occurred before.
  std::shared_ptr<const erasure_times> erased_subjects() const { return requests_.snapshot(); }

  // `note`: what the operator said about the request (`reason`,
  // `reference`; either may be absent), recorded in its audit entries.
  // Hides the subject at once and returns the receipt: its keyed hash,
  // records erased per month, records deferred by holds (and which), the
  // purge deadline, and the audit entry's sequence and hash.
  // `fleet`: a control message's erasure (requested at its time; the
  // control position saved with its last commit).
  struct fleet_erasure {
    instant at;
    control_step control_next;
  };
  nlohmann::json subject_erase(std::string_view identifier, std::uint32_t uid, const audit::request_note& note = {},
                               std::optional<fleet_erasure> fleet = std::nullopt);

  // The fleet's control topic (fleet/control_log.h): the next offset to apply,
  // and one message applied with that position saved in the same batch as
  // its effect (`identifier`: a subject_erase's, opened). What the
  // requester is told, or an error message.
  std::uint64_t control_position() const override;
  // What a fleet member announces in its heartbeats: the records it
  // stores, and the earliest deadline among them (past ones included).
  std::pair<std::int64_t, std::optional<instant>> holdings() const override;
  // The partitions' states as the deadlines see them: a partition whose
  // due action has nothing left to remove (its late records were stripped
  // or dropped on arrival) counts as done. Only what is due is looked at.
  std::map<partition, partition_state> effective_states(const std::map<partition, std::int64_t>& counts,
                                                        std::span<const hold> active) const;
  // Throws state_unreadable while saved state does not decode (what a
  // member checks before it publishes an erasure or a release it could not
  // apply itself).
  void require_readable_state() const { ctx_.require_readable_state(); }
  std::variant<nlohmann::json, std::string> apply_control(const control_message& m,
                                                          const std::optional<std::string>& identifier,
                                                          std::uint64_t next) override;
  // Whether a control request was applied here before (a replay).
  bool control_applied(std::string_view request) const override;
  // Audits `entry` about control or replies messages refused (forged,
  // junk, a replay, or skipped by an operator), with the control position
  // moved past them (`next`; none for replies).
  void refuse_control(std::optional<std::uint64_t> next, const audit::record& entry) override;
  // The fleet members this one has heard of and that have not left.
  std::vector<std::string> known_members() const override { return ctx_.state.fleet_members(); }
  void set_known_member(std::string_view name, bool known) override;
  // A sweep's barrier: called before a sweep removes anything (throws to
  // refuse the sweep). The fleet sets it: every control message published
  // before the sweep started is applied first.
  void set_sweep_barrier(std::function<void()> barrier) { barrier_ = std::move(barrier); }
  // An erasure's fence (ingest::fence): called after the subject joins the
  // erased set and before its records are looked up, so a record ingest
  // writes meanwhile is either found or stored without the identifier.
  // Set before start().
  void set_erasure_fence(std::function<bool()> fence) { fence_ = std::move(fence); }
  // The erasure purge pass now, over every pending erasure (trigger:
  // "admin" or "deadline").
  nlohmann::json subject_purge(std::string_view trigger, std::uint32_t uid);
  // Where a subject's erasure stands: none, in_progress, hidden (purge
  // pending), deferred (some records held), purged.
  nlohmann::json subject_status(std::string_view identifier) const;
  // Audits an export (the subject as its keyed hash).
  void dead_letter_opened(const audit::dead_letter_opened& what);
  void subject_exported(std::string_view hash, std::size_t records, std::uint32_t uid,
                        const audit::request_note& note = {});
  std::vector<std::string> subject_records(std::string_view normalized) const {
    return erasure_.records_of(normalized);
  }
  void for_each_subject_record(std::string_view normalized,
                               const std::function<void(const partition&, std::string_view id)>& fn) const {
    erasure_.for_each_record_of(normalized, fn);
  }

  // --- Drain (handover.cc): a member leaving the fleet ---
  // Every record this store keeps (its partitions' and the held copies),
  // as the event that stores it again: its metadata and its identifiers,
  // opened (none when stripped or erased). The receiving member's ingest
  // makes of it what it made of the original: same id, same content digest.
  void for_each_handover_event(
      const std::function<void(std::string_view id, const std::string& event)>& fn) const override;
  // Empties the store once its records are handed over: every partition
  // dropped and purged from disk, the held copies removed, every data key
  // destroyed, and one audit entry ("drain") carrying `report` (where each
  // partition went). Returns what it removed.
  nlohmann::json empty_store(const nlohmann::json& report, std::uint32_t uid) override;

  nlohmann::json verify() const;
  // A record's identifiers, opened; status says why they are absent.
  struct identifiers_view {
    std::optional<std::string> json;
    std::string_view status;  // "present", "none" (none sent or stripped), "key_destroyed", "unreadable"
  };
  identifiers_view identifiers_of(const store::stored_record& r) const;
  // A consistent copy of the store and the audit trail in a new directory
  // `name` under storage.checkpoint_dir (checkpoint.h): restorable by
  // pointing storage.path at it. Throws checkpoint_refused for a bad name.
  nlohmann::json checkpoint(const std::string& name, std::uint32_t uid);
  audit_trail& audit() { return audit_; }
  // Checks the audit trail's chain (audit verify; also once at start) and
  // keeps the outcome and its time for the metrics.
  audit_trail::verdict verify_audit();

  // Scrape-time figures (also what `status` shows of retention).
  metrics::retention_snapshot figures() const;
  // Whether saved state is readable, and which entries are not.
  nlohmann::json saved_state_report() const;
  // The clock guard's view: the last sweep's instant, the jump, a pause.
  nlohmann::json clock_report() const;
  // The next erasure purge pass's forecast (`plan`, `status`); null while
  // no erasure is pending.
  nlohmann::json purge_forecast_report() const;

 private:
  // Drains the audit trail (returns what it appended), wakes the publisher
  // and sets the purge timer.
  std::vector<audit_trail::appended> after_change();
  // Sets the purge timer to the oldest pending erasure's deadline.
  void arm_purge();
  // Every batch of one erasure, then its last commit (the audit entry, the
  // request done); the receipt's counts.
  nlohmann::json erase_all(const std::string& subject, const subject_erasure::index_hash_fn& hash_of,
                           const erasure_request& request, std::uint32_t uid, std::string_view trigger,
                           const audit::request_note& note, std::optional<control_step> control_next = std::nullopt);
  // What follows a release (lock held): the erasures the hold deferred,
  // key destruction, journals; the reply.
  nlohmann::json after_release(const std::optional<hold>& released, std::uint32_t uid);
  // Applies again every ledger entry the store does not show as done (a
  // restored store); how many.
  std::size_t reapply_ledger();

  audit_trail audit_;
  erasure_ledger ledger_;
  mutable retention_context ctx_;
  clock_guard guard_;
  hold_registry holds_;
  sweep_executor executor_;
  subject_erasure erasure_;
  erasure_requests requests_;
  key_shredder shredder_;
  purger purger_;
  verifier verifier_;
  std::unique_ptr<event_publisher> publisher_;
  sweep_scheduler scheduler_;
  deadline_timer purge_timer_;
  std::function<void()> barrier_;
  std::function<bool()> fence_;
  mutable std::mutex ops_;  // one retention operation at a time
  // The audit chain's last verification: when (Unix seconds, 0: never) and
  // whether it held.
  // A scheduled sweep verifies the audit chain again once this old.
  static constexpr double audit_reverify_seconds = 24 * 3600;
  std::atomic<double> audit_verified_at_{0};
  std::atomic<bool> audit_ok_{true};
};

}  // namespace cdr::service
