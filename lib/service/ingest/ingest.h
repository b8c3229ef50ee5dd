// The ingest pipeline: Kafka messages -> validation -> one atomic RocksDB
// batch of records and their partitions' next offsets -> group commit.
// Runs on a thread of its own. One class in four files: the loop
// (ingest.cc), the batch (batch.cc), the dead-letter topic
// (dead_letters.cc) and the group's rebalances (rebalance.cc).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "../vault.h"
#include "cdr/core/config.h"
#include "cdr/core/event.h"
#include "cdr/core/identity.h"
#include "cdr/core/ingest.h"
#include "cdr/core/retention.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time_source.h"
#include "cdr/crypto/crypto.h"
#include "cdr/kafka/client.h"
#include "cdr/logging/logging.h"
#include "cdr/metrics/ingest_probe.h"
#include "cdr/store/store.h"
#include "side_seal.h"

namespace cdr::service {

class ingest final : public kafka::rebalance_listener {
 public:
  // `bootstrap`: the brokers to use (the embedded cluster's when embedded).
  // `on_fatal` is called (on the ingest thread) when ingest cannot go on.
  // `holds`: the active legal holds (late events they name are kept).
  // `subject_key`: names subjects in holds; `keys` seals identifiers.
  // `decision_now`: the instant lateness and the future are judged at
  // (the clock guard's: never before the last sweep's). `erased`: the
  // erased subjects and when; an event that names one and occurred before
  // is stored without that identifier. `ids`: how identifiers are written
  // before they are hashed (cdr/core/identity.h).
  ingest(const daemon_config& config, std::string bootstrap, const time_source& time, store::store& store,
         metrics::ingest_probe& probe, std::string subject_key, vault& keys, std::function<void(std::string)> on_fatal,
         std::function<std::shared_ptr<const std::vector<hold>>()> holds, std::function<instant()> decision_now,
         std::function<std::shared_ptr<const erasure_times>()> erased, const identity& ids);
  ~ingest() override;

  void start();
  // Finishes the batch in flight, writes it, commits every assigned
  // partition's offset to the group (again each second until acknowledged,
  // for up to half of kafka.shutdown_timeout), then leaves the group, or
  // abandons the consumer when the group did not answer (abandoned()).
  // False when that took longer than kafka.shutdown_timeout (the thread is
  // detached). `leave_group`: for good (a drain): the member leaves the
  // group so that its partitions move at once, static member or not.
  bool stop(bool leave_group = false);
  // After stop(): whether the group took the offsets of every partition
  // this member owned when it left (if not, their next owners re-read from
  // the group's offsets what this store already holds).
  bool left_committed() const { return left_committed_; }
  // Whether this member has joined the group since it started (a first
  // assignment, even an empty one). A member that leaves before it joined
  // has no member id to leave with: its partitions move only when its
  // earlier run's session times out.
  bool joined() const { return joined_; }
  // After stop(): the group did not answer, so the consumer was abandoned
  // instead of closed; it must never be destroyed (that would wait for the
  // group): the process exits.
  bool abandoned() const { return abandoned_; }

  nlohmann::json status() const;
  std::map<kafka::topic_partition, std::int64_t> lag() const;

  // An erasure's fence: returns true once every batch built with an
  // erased-subject set taken before this call is written or dropped (later
  // batches see the subject the caller added first); false after `timeout`.
  bool fence(microseconds timeout);

 private:
  struct pending_reject {
    std::string topic;
    std::int32_t partition;
    std::int64_t offset;
    reject_reason reason;
    std::string key;
    std::string value;
    bool delivered = false;
    bool failed = false;
  };

  // An accepted event waiting for the batch's id lookup.
  struct staged_event {
    std::string topic;
    record_kind kind;
    std::string id;
    std::string customer;
    partition where;
    lateness late;
    std::uint64_t digest;
    std::string metadata;
    std::string identifiers;
    std::vector<std::string> subjects;  // normalised identifier values
    std::vector<std::string> aliases;   // the same in earlier forms, where they differ
  };

  void run();
  void process(const kafka::message& m);
  // Looks up every staged id at once and decides each event's outcome in
  // (kind, id) order; events of one id stay in consumption order.
  void resolve_staged();
  // Normalises the event's identifiers into st, leaving out (of st's
  // identifiers too) those of subjects erased after it occurred.
  void stage_subjects(staged_event& st, const parsed_event& e);
  // Stores one new event (sealing its identifiers); its outcome.
  ingest_outcome store_event(staged_event& st);
  // Writes the pending batch to the store; false (and consumption paused)
  // when the store or the dead-letter topic cannot take it now.
  bool try_flush();
  void flush();
  // Syncs the WAL when a group of written batches is due (or `now`), then
  // commits their offsets to the group: the group never moves past what a
  // power failure would leave in the store.
  void sync_and_commit(bool now);
  // Sends pending_rejects_[index] to the dead-letter topic, unchanged, with
  // the reason and its source in headers; marks it failed if refused.
  void produce_reject(std::size_t index);
  void deliver_rejects();
  void discard_pending();
  // Drops the dead_lettered_ entries `done` accepts.
  void forget_dead_letters(const std::function<bool(const kafka::topic_partition&, std::int64_t)>& done);
  void pause(std::string_view reason);
  // Drops the pending batch and re-reads every assigned partition from
  // where the store ends (after a pause for `reason`).
  void rewind(std::string_view reason);
  // Where a partition's durable data ends: the store's offset, never before
  // where its assignment started.
  std::optional<std::int64_t> durable_position(const kafka::topic_partition& tp) const;
  // kafka::rebalance_listener
  std::optional<std::int64_t> stored_offset(const kafka::topic_partition& tp) override;
  void assigned(const std::map<kafka::topic_partition, std::int64_t>& start,
                const std::map<kafka::topic_partition, std::int64_t>& ahead) override;
  void revoking(const std::vector<kafka::topic_partition>& partitions, bool lost) override;

  const daemon_config& config_;
  std::string bootstrap_;
  const time_source& time_;
  store::store& store_;
  metrics::ingest_probe& probe_;
  crypto::keyed_hasher subject_hash_;
  const identity& ids_;
  vault& vault_;
  std::string record_key_;                    // scratch
  std::string sealed_;                        // scratch
  std::vector<std::string> hashes_;           // scratch
  std::optional<std::uint64_t> batch_epoch_;  // the key epoch the batch was sealed in
  std::function<void(std::string)> on_fatal_;
  std::function<std::shared_ptr<const std::vector<hold>>()> holds_;
  std::function<instant()> decision_now_;
  std::function<std::shared_ptr<const erasure_times>()> erased_;
  std::shared_ptr<const erasure_times> batch_erased_;     // the erasures this batch was built with
  std::shared_ptr<const std::vector<hold>> batch_holds_;  // the holds this batch was built with

  std::unique_ptr<kafka::consumer> consumer_;
  std::unique_ptr<kafka::producer> dead_letters_;
  dead_letter_seal dead_letter_seal_;
  handover_seal handover_seal_;
  std::string handover_plain_;  // the opened handover record being parsed
  event_parser parser_;
  parsed_event event_;

  // The batch being built, and everything that becomes true with it.
  store::write_batch batch_;
  std::map<kafka::topic_partition, std::int64_t> pending_next_;
  std::unordered_map<std::string, std::uint64_t> pending_ids_;  // kind byte + id -> digest
  std::vector<pending_reject> pending_rejects_;
  std::vector<staged_event> staged_;
  std::size_t staged_count_ = 0;      // staged_ keeps its strings' capacity across batches
  std::vector<staged_event*> order_;  // staged_ in (kind, id) order
  std::map<std::pair<std::string, ingest_outcome>, std::uint64_t> pending_outcomes_;
  std::map<std::pair<std::string, reject_reason>, std::uint64_t> pending_reasons_;
  std::uint64_t generation_ = 0;  // tells a discarded batch's delivery reports apart
  // Written to the store, not yet synced: the next offsets of their
  // partitions, their bytes, since when.
  std::map<kafka::topic_partition, std::int64_t> unsynced_;
  std::size_t unsynced_bytes_ = 0;
  mono_time unsynced_since_{};
  // Rejected messages whose dead-letter copy is acknowledged but whose
  // offset is not durable yet: re-read after a dropped batch, they are not
  // forwarded again. At most a batch's worth: pruned at each commit and
  // revocation. Tickets of copies in flight map to their message.
  std::set<std::pair<kafka::topic_partition, std::int64_t>> dead_lettered_;
  std::map<std::uint64_t, std::pair<kafka::topic_partition, std::int64_t>> dead_letter_tickets_;
  mono_time batch_started_{};

  // Where each assigned partition resumes after a pause, and where its
  // assignment started (for partitions the store has no offset of yet).
  std::map<kafka::topic_partition, std::int64_t> position_;
  std::map<kafka::topic_partition, std::int64_t> start_;
  bool paused_ = false;
  std::string pause_reason_;
  mono_time retry_at_{};
  std::chrono::milliseconds backoff_{100};

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> leave_group_{false};  // set before stop_requested_
  bool finished_ = false;                 // guarded by done_
  std::atomic<bool> left_committed_{false};
  std::atomic<bool> joined_{false};
  std::atomic<bool> abandoned_{false};
  alarm done_;  // the ingest thread finished
  // The open batch and the fence epoch it took its erased set at; changed
  // in fence_'s notify() only.
  alarm fence_;
  std::uint64_t fence_epoch_ = 0;
  std::uint64_t open_epoch_ = 0;
  bool batch_open_ = false;
  std::thread thread_;
  logging::rate_limiter reject_log_{std::chrono::seconds(5)};
  logging::rate_limiter conflict_log_{std::chrono::seconds(5)};

  mutable std::mutex status_mutex_;
  nlohmann::json status_;
  std::map<kafka::topic_partition, std::int64_t> lag_;
};

}  // namespace cdr::service
