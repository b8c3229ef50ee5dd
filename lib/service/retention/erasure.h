// Subject erasure (notice: data subjects can have their identifiers
// erased): finds the subject's records through the subject index of every
// live key, removes their identifiers and every index entry of those
// records, batch by batch (each batch one commit), and defers the records a
// legal hold covers until its release. Memory is bounded by the batch, not
// by how many records the subject has.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "context.h"
#include "holds.h"

namespace cdr::service {

// The subjects erasure requests named and when, shared with ingest (a
// snapshot per batch): an event that names one and occurred before its
// request is stored without that identifier. Loaded from the saved state at
// start-up; an entry that does not decode is named there (and refuses
// sweeps and erasures), never taken for absent.
class erasure_requests {
 public:
  explicit erasure_requests(retention_context& ctx) : ctx_(ctx) { load(); }
  void load();
  void add(const std::string& subject, instant at);
  std::shared_ptr<const erasure_times> snapshot() const;

 private:
  retention_context& ctx_;
  mutable std::mutex mutex_;
  std::shared_ptr<const erasure_times> times_ = std::make_shared<erasure_times>();
};

class subject_erasure {
 public:
  // Records an erasure takes per commit.
  static constexpr std::size_t batch_records = 500;

  subject_erasure(retention_context& ctx, const hold_registry& holds) : ctx_(ctx), holds_(holds) {}

  // Calls fn(partition, id) for each record whose identifiers include this
  // normalised identifier, in live partitions and held copies (a record's
  // identifiers sit in one of the two), one index scan at a time.
  void for_each_record_of(std::string_view normalized,
                          const std::function<void(const partition&, std::string_view id)>& fn) const;
  // The same, as record keys (partition prefix + id).
  std::vector<std::string> records_of(std::string_view normalized) const;
  // The active holds that keep records of this subject (by the subject,
  // another subject of the same record, its customer, month or kind: what
  // would defer its erasure), with how many of its records each keeps.
  std::map<std::uint64_t, std::size_t> holds_over(std::string_view normalized, const std::string& subject) const;

  // Where a batch-by-batch walk over a subject's records stands.
  struct cursor {
    std::optional<std::tuple<partition, key_scope>> at;  // the index being read
    std::optional<std::string> after;                    // its last id read; none: `at` is done
  };
  // A subject's hash in the index of (scope, partition); none: no such key.
  using index_hash_fn = std::function<std::optional<std::string>(key_scope, const partition&)>;
  // From the identifier (under the live keys).
  index_hash_fn hashes_of(std::string_view normalized) const;
  // From what the erasure ledger kept (key name -> hash).
  static index_hash_fn hashes_from(const std::map<std::string, std::string>& by_key);
  // The identifier's hash in every live index, by key name (the ledger's).
  std::map<std::string, std::string> index_hashes(std::string_view normalized) const;
  // The next record keys after the cursor, at most `limit`; advances it.
  std::vector<std::string> next_records(const index_hash_fn& hash_of, cursor& cur, std::size_t limit) const;

  // What erasure batches did, added up.
  struct outcome {
    std::int64_t erased = 0;                                 // records that lost the subject's values
    std::int64_t values = 0;                                 // the subject's values they lost
    std::map<month, std::int64_t> months;                    // records erased per month
    std::size_t deferred = 0;                                // records a hold deferred
    nlohmann::json deferred_list = nlohmann::json::array();  // the first max_listed of them
    std::set<std::uint64_t> holds;                           // the holds that deferred any
    static constexpr std::size_t max_listed = 1000;
    void add(const outcome& other);
    nlohmann::json months_json() const;  // {"YYYY-MM": records}
  };

  // Erases the values of the subject with this keyed hash from the
  // identifiers of these records (at most batch_records), in one commit,
  // except in records a hold covers: those are deferred. The rest of a
  // record's identifiers stay, re-sealed without them (a new version of the
  // key; the purge removes the old one), and so do the other subjects'
  // index entries; a record left with no identifiers loses the key. The removed keys are hidden at once and purged from
  // disk by the erasure purge pass (purger.h), by now + erasure.purge_after.
  // trigger: "admin", "fleet" or "ledger" (the audit entry is written by
  // conclude()), "deferred" (a sweep retries) or "hold_release" (audited
  // here). `retry`: the deferred chunk being retried. `request`: saved in the same commit (the
  // first batch of an erasure).
  outcome erase(const std::string& subject, const std::vector<std::string>& record_keys, std::uint32_t uid,
                std::string_view trigger, const std::optional<store::chunk_id>& retry = std::nullopt,
                const erasure_request* request = nullptr);
  // The last commit of an admin erasure: its audit entry (with `note`: the
  // request's reason and reference) and deletion event, and the request
  // marked done. Returns the audit entry's operation number.
  // control_next: the control topic position saved with it (a fleet erasure).
  std::uint64_t conclude(const std::string& subject, erasure_request request, const outcome& total, std::uint32_t uid,
                         std::string_view trigger, const audit::request_note& note,
                         std::optional<control_step> control_next = std::nullopt);
  // Runs every erasure a hold deferred again (those no hold covers now go),
  // one deferred chunk at a time.
  nlohmann::json run_deferred(std::uint32_t uid, std::string_view trigger);

 private:
  // A stored copy of a record's identifiers: in its partition (sealed under
  // the partition key) or in the held family (under the held key).
  struct source {
    // One identifier value, normalised in every form the store was written
    // in, and the keyed hash of each form (what holds and erasures name).
    struct value {
      std::string text;
      std::vector<std::string> forms;
      std::vector<std::string> hashes;
    };
    family where;
    key_scope scope;
    std::string key;
    std::optional<std::string> plaintext;  // the identifiers object, when it opens
    std::vector<value> values;             // its values; none if it does not open
  };
  std::vector<source> sources_of(const partition& p, const std::string& record_key) const;
  // The holds that keep this record's identifiers (none: it may go).
  std::vector<std::uint64_t> holding(const partition& p, const std::string& record_key, const std::string& subject,
                                     const std::vector<source>& sources) const;
  static audit::subject_erased audit_entry(const std::string& subject, const outcome& o, std::string_view trigger,
                                           std::uint32_t uid, instant purge_by, audit::request_note note = {});
  // Takes the subject's values out of a record's identifier copies and
  // their index entries (a copy that does not open goes whole, with every
  // index entry of it). Returns how many values went, or nullopt when
  // nothing of the record named the subject.
  std::optional<std::int64_t> remove(const partition& p, std::string_view id, const std::string& subject,
                                     const std::vector<source>& sources, store::change& c,
                                     std::vector<erased_key>& removed) const;
  // The live keys in (partition, scope) order, CDR partitions only.
  std::vector<std::tuple<partition, key_scope>> indexes() const;

  retention_context& ctx_;
  const hold_registry& holds_;
};

}  // namespace cdr::service
