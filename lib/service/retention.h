// Retention: sweeps (strip identifiers, drop records) on a schedule and on
// demand, legal holds, subject erasure, verification that removed data is
// gone from disk, the audit trail and the deletion-event outbox.
//
// Every action is two steps. The logical step is one atomic, synced store
// change: held records copied to the held family, the partition's key
// ranges removed, its state marked, and a journal entry naming the ranges.
// The physical step (store::purge) makes the ranges gone from every file;
// only then is the journal replaced, in one change, by the audit entry and
// the deletion event. A crash between the steps leaves the journal, which
// recover() finishes at the next start; a second sweep finds nothing due.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit.h"
#include "cdr/core/config.h"
#include "cdr/core/retention.h"
#include "cdr/crypto/crypto.h"
#include "cdr/kafka/client.h"
#include "cdr/metrics/retention_probe.h"
#include "cdr/store/store.h"
#include "vault.h"

namespace cdr::service {

class retention {
 public:
  // `bootstrap`: the brokers the deletion events go to. `subject_key`
  // names subjects in holds and the audit trail; `keys` seals identifiers.
  retention(const daemon_config& config, std::string bootstrap, const clock& time, store::store& store,
            metrics::retention_probe& probe, std::string subject_key, vault& keys);
  ~retention();

  // Finishes actions a crash interrupted, then starts the schedule (a sweep
  // now, then every sweep.interval plus jitter) and the event publisher.
  void start();
  void stop();
  // A new sweep.interval / sweep.jitter (configuration reload): the next
  // scheduled sweep is planned again from the last one.
  void set_schedule(microseconds interval, microseconds jitter);
  microseconds interval() const { return microseconds(interval_us_.load()); }

  // One sweep now. trigger: "schedule", "startup" or "admin".
  nlohmann::json sweep(std::string_view trigger, std::uint32_t uid);
  // What a sweep at `as_of` would do; changes nothing.
  nlohmann::json forecast(instant as_of) const;

  // Holds. Errors are messages for the requester.
  std::variant<nlohmann::json, std::string> hold_add(const nlohmann::json& args, std::uint32_t uid);
  nlohmann::json hold_list() const;
  // nullopt: no active hold has that id.
  std::optional<nlohmann::json> hold_release(std::uint64_t id, std::uint32_t uid);
  // The active holds, shared with ingest (late events a hold names are kept).
  std::shared_ptr<const std::vector<hold>> holds() const;

  nlohmann::json subject_erase(std::string_view identifier, std::uint32_t uid);
  // Audits an export (the subject as its keyed hash).
  void subject_exported(std::string_view hash, std::size_t records, std::uint32_t uid);

  nlohmann::json verify() const;
  // The record keys (partition prefix + id) whose identifiers include this
  // normalised identifier, in live partitions and held copies.
  std::vector<std::string> subject_records(std::string_view normalized) const;
  // A record's identifiers, opened; status says why they are absent.
  struct identifiers_view {
    std::optional<std::string> json;
    std::string_view status;  // "present", "none" (none sent or stripped), "key_destroyed", "unreadable"
  };
  identifiers_view identifiers_of(const store::stored_record& r) const;
  // A consistent copy of the store and the audit trail in `dir` (which must
  // not exist yet): restorable by pointing storage.path at it.
  nlohmann::json checkpoint(const std::string& dir, std::uint32_t uid);
  audit_trail& audit() { return audit_; }

  // Scrape-time figures.
  struct gauges {
    std::size_t overdue_partitions = 0;
    std::int64_t overdue_records = 0;
    std::size_t holds_active = 0;
    std::int64_t records_held = 0;
    std::size_t events_pending = 0;
  };
  gauges figures() const;

 private:
  struct held_record;
  std::uint64_t next_op(store::change& c);
  void load_holds();
  // Logical step of one planned action; returns its report.
  nlohmann::json remove_partition(const planned_action& a, std::string_view trigger, std::uint32_t uid);
  // Removes held copies no active hold names any more, once due.
  nlohmann::json release_held(std::uint32_t uid);
  // Erases the identifiers of these records (for the subject with this
  // keyed hash), except those a hold covers: those are deferred.
  nlohmann::json erase(const std::string& subject, const std::vector<std::string>& record_keys, std::uint32_t uid,
                       std::string_view trigger);
  // Runs every erasure a hold deferred again (those no hold covers now go).
  nlohmann::json erase_deferred(std::uint32_t uid, std::string_view trigger);
  // Tells the publisher thread new deletion events wait in the outbox.
  void wake_publisher();
  // Destroys the data keys that protect nothing any more: partition keys of
  // stripped partitions, held keys without held copies. Journalled and
  // audited; returns the names.
  nlohmann::json destroy_unused_keys(std::string_view trigger, std::uint32_t uid);
  // Opens a sealed identifiers value stored under `key` in family f.
  vault::opened open_identifiers(store::family f, const partition& p, std::string_view key,
                                 std::string_view sealed) const;
  // Physical step of every journalled action, then their audit entries and
  // deletion events.
  nlohmann::json finish_journals();
  void journal(store::change& c, std::uint64_t op, const std::vector<std::pair<store::family, key_range>>& ranges,
               nlohmann::json audit_entry, nlohmann::json event);
  // The keyed hashes (subject_key_) holds and the audit trail name these
  // normalised identifiers by.
  std::vector<std::string> subject_hashes_of(const std::vector<std::string>& normalized) const;

  void schedule_loop();
  void publish_loop();

  const daemon_config& config_;
  std::string bootstrap_;
  const clock& clock_;
  store::store& store_;
  metrics::retention_probe& probe_;
  std::string subject_key_;
  vault& vault_;
  audit_trail audit_;

  mutable std::mutex ops_;  // one retention operation at a time
  std::uint64_t op_counter_ = 0;
  std::uint64_t hold_counter_ = 0;
  mutable std::mutex holds_mutex_;
  std::shared_ptr<const std::vector<hold>> holds_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool publish_now_ = false;
  bool reschedule_ = false;
  std::atomic<std::int64_t> interval_us_;
  std::atomic<std::int64_t> jitter_us_;
  std::thread scheduler_;
  std::thread publisher_;
  std::unique_ptr<kafka::producer> producer_;
  std::set<std::uint64_t> acked_;  // publisher thread only
};

}  // namespace cdr::service
