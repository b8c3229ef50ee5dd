// What every retention unit works with (docs/architecture.md, "Retention"):
// the configuration, time, the store and its saved state, the keys, the
// audit trail and the probe, plus the helpers they share.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../audit.h"
#include "../progress.h"
#include "../vault.h"
#include "cdr/core/audit_record.h"
#include "cdr/core/config.h"
#include "cdr/core/identity.h"
#include "cdr/core/retention.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time_source.h"
#include "cdr/metrics/retention_probe.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"

namespace cdr::service {

// Saved state the daemon cannot read: destructive work is refused until an
// operator repairs it (docs/operations.md, "CdrRetentionSavedStateUnreadable").
class state_unreadable : public std::runtime_error {
 public:
  explicit state_unreadable(const std::vector<store::unreadable_entry>& entries);
};

// Numbers retention operations: audit entries, journals, deletion events.
class op_sequence {
 public:
  explicit op_sequence(store::saved_state& state);
  // The next number, recorded in c. Throws state_unreadable when the stored
  // counter did not decode (numbers could repeat).
  std::uint64_t next(store::change& c);

 private:
  store::saved_state& state_;
  std::optional<std::uint64_t> last_;  // nullopt: unreadable
};

// The journals in progress, in memory (loaded from the store at start-up,
// kept by journal() and the purger): the erasures waiting for the purge
// pass (subject, when, deadline) and the other actions' journals, so that
// finishing one kind never reads the other.
class pending_purges {
 public:
  // An erasure is overdue when its keys are still unpurged this long after
  // its deadline (the pass itself, a restart).
  static constexpr microseconds grace = std::chrono::hours(1);

  struct entry {
    std::string subject;  // keyed hash, raw
    instant erased_at{};
    instant purge_by{};
    // The partitions its keys sit in, per family: where the pass rewrites;
    // and how many keys.
    std::vector<removal> spans{};
    std::uint64_t keys = 0;
  };
  // The partition-wide ranges of what `removals` name, each once.
  static std::vector<removal> spans_of(const std::vector<removal>& removals);

  // Also the last measured pass rate (counter_name::purge_rate).
  void load(store::saved_state& state);
  void add(std::uint64_t op, entry e);
  // A journal of another action (a sweep's, a key destruction's).
  void add_action(std::uint64_t op);
  std::vector<std::uint64_t> actions() const;
  void remove(std::uint64_t op);
  std::map<std::uint64_t, entry> all() const;
  // The entry with the earliest deadline.
  std::optional<entry> first_due() const;
  // Distinct subjects pending, and those overdue at `now`.
  std::size_t subjects() const;
  std::size_t overdue_subjects(instant now) const;
  // One subject's pending erasures and their earliest deadline.
  std::pair<std::size_t, std::optional<instant>> of_subject(const std::string& subject) const;

  // The next erasure purge pass's forecast (cdr/core/retention.h); nullopt
  // while no erasure is pending.
  struct outlook {
    purge_forecast_input in;
    purge_forecast forecast;
  };
  std::optional<outlook> forecast(const store::store& s, instant now) const;
  // A pass starts and ends (a large one's rate is the forecast's from then
  // on; the caller saves it).
  void pass_started(instant at);
  // Returns the new measured rate (bytes/s) when this pass set it.
  std::optional<std::uint64_t> pass_ended(std::uint64_t bytes, double seconds);

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, entry> by_op_;
  std::set<std::uint64_t> actions_;
  double rate_ = 0;  // bytes/s; 0: none measured yet
  std::optional<instant> running_since_;
  // The pending erasures' spans, each with how many entries name it, and
  // their keys: kept as entries come and go, so a forecast (after every
  // erasure) costs the spans, not the entries.
  void count(const entry& e, bool in);
  std::map<std::pair<family, std::string>, std::pair<key_range, std::size_t>> spans_;
  std::uint64_t keys_ = 0;
};

// A control message applied (fleet/control_log.h): the control position saved
// in the same batch as its effect, and its request, recorded as applied so
// that a replay of it is not applied again.
struct control_step {
  std::uint64_t next = 0;
  std::string request;
};

struct retention_context {
  const daemon_config& config;
  const time_source& time;
  store::store& store;
  store::saved_state& state;
  vault& keys;
  audit_trail& audit;
  metrics::retention_probe& probe;
  std::string subject_key;  // names subjects in holds and the audit trail (keyed hash)
  const identity& ids;      // how identifiers are written before they are hashed
  op_sequence ops;
  pending_purges journals{};
  // This member's name in the fleet (fleet/member.h), in every audit entry
  // and deletion event.
  std::string member{};
  // Long operations in progress (`status`, sd_notify, the CLI's line).
  progress activity{time};

  // Throws state_unreadable while any saved state does not decode.
  void require_readable_state() const;
  // The keyed hashes holds and the audit trail name these normalised
  // identifiers by.
  std::vector<std::string> subject_hashes(const std::vector<std::string>& normalized) const;
  // The normalised values of an opened identifiers object in every form the
  // store was written in (the subject index takes the current one; holds
  // and erasure records made under an earlier form name it by that).
  std::vector<std::string> identifier_forms(std::string_view identifiers_json) const;
  // The same in the current form only: what the subject index is written in.
  std::vector<std::string> normalized_identifiers(std::string_view identifiers_json) const;
  // Opens a sealed identifiers value stored under `key` in family f (the
  // partition's key, or its held key for the held family); logs a value
  // that does not decrypt.
  vault::opened open_identifiers(family f, const partition& p, std::string_view key, std::string_view sealed) const;
  // Stages the logical record of one action: the next operation number and
  // a journal entry naming what it removed, the audit entry and the event
  // (its id and time set here) that follow the physical step. Returns the
  // operation number. purge_by: an erasure's, purged by the erasure purge
  // pass (purger.h).
  std::uint64_t journal(store::change& c, std::vector<removal> removals, const audit::record& entry,
                        std::optional<deletion_event> event, std::optional<instant> purge_by = std::nullopt);
  // Stages an audit entry and its deletion event (none: only the entry)
  // now, under the next operation number; returns it.
  std::uint64_t record(store::change& c, const audit::record& entry, std::optional<deletion_event> event);
};

nlohmann::json partition_json(const partition& p);
// The family a record kind's records live in.
family record_family(record_kind k);

}  // namespace cdr::service
