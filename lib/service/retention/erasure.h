// Subject erasure (notice: data subjects can have their identifiers
// erased): finds the subject's records through the subject index of every
// live key, removes their identifiers and every index entry of those
// records, batch by batch (each batch one commit), and defers the records a
// legal hold covers until its release. Memory is bounded by the batch, not
// by how many records the subject has.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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

  // Where a batch-by-batch walk over a subject's records stands.
  struct cursor {
    std::optional<std::tuple<partition, key_scope>> at;  // the index being read
    std::optional<std::string> after;                    // its last id read; none: `at` is done
  };
  // The next record keys after the cursor, at most `limit`; advances it.
  std::vector<std::string> next_records(std::string_view normalized, cursor& cur, std::size_t limit) const;

  // Erases the identifiers of these records (at most batch_records) for the
  // subject with this keyed hash, in one commit, except those a hold covers:
  // those are deferred. trigger: "admin", "deferred" (a sweep retries) or
  // "hold_release". `retry`: the deferred chunk being retried. `note`:
  // members added to the audit entry (the request's reason, reference).
  // `request`: saved in the same commit (the first batch of an erasure).
  nlohmann::json erase(const std::string& subject, const std::vector<std::string>& record_keys, std::uint32_t uid,
                       std::string_view trigger, const std::optional<store::chunk_id>& retry = std::nullopt,
                       const nlohmann::json& note = nlohmann::json::object(), const erasure_request* request = nullptr);
  // Runs every erasure a hold deferred again (those no hold covers now go),
  // one deferred chunk at a time.
  nlohmann::json run_deferred(std::uint32_t uid, std::string_view trigger);

 private:
  // A stored copy of a record's identifiers: in its partition (sealed under
  // the partition key) or in the held family (under the held key).
  struct source {
    family where;
    key_scope scope;
    std::string key;
    std::vector<std::string> normalized;  // its identifiers; none if it does not open
  };
  std::vector<source> sources_of(const partition& p, const std::string& record_key) const;
  bool held_back(const partition& p, const std::string& record_key, const std::string& subject,
                 const std::vector<source>& sources) const;
  // Removes a record's identifier copies and every index entry of them.
  void remove(const partition& p, std::string_view id, const std::vector<source>& sources, store::change& c,
              std::vector<std::pair<family, std::string>>& removed) const;
  // The live keys in (partition, scope) order, CDR partitions only.
  std::vector<std::tuple<partition, key_scope>> indexes() const;

  retention_context& ctx_;
  const hold_registry& holds_;
};

}  // namespace cdr::service
