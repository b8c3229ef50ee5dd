// Legal holds and sweep planning (docs/retention.md): which partitions a
// sweep strips or drops at a given instant, which it must leave alone, and
// which records inside a partition a hold keeps. Pure: the caller supplies
// the counts, the partitions' states, the holds and the time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/key_layout.h"
#include "cdr/core/month.h"
#include "cdr/core/policy.h"
#include "cdr/core/time.h"

namespace cdr {

// A legal hold (notice §11): records it names survive every sweep until it
// is released. At least one selector is set.
struct hold {
  std::uint64_t id = 0;
  std::optional<std::string> customer;
  std::optional<std::string> subject;  // keyed hash (raw 32 bytes) of the normalised identifier
  std::optional<month> from_month;     // inclusive
  std::optional<month> to_month;       // inclusive
  std::optional<record_kind> kind;
  std::string reason;
  std::string reference;
  instant created_at{};
  std::uint32_t created_by = 0;  // uid of the requester
  // A hold added through the fleet's control topic: the member it was
  // requested on and the request id, the same on every member (what a
  // release names). Empty: a hold of one member only (an earlier build's).
  std::string origin_member;
  std::string origin_request;

  // Whether the hold names records of this partition at all.
  bool covers_partition(const partition& p) const;
  // Whether it names every record of the partitions it covers (no customer
  // or subject selector): those partitions are left whole.
  bool whole() const { return !customer && !subject; }
  // Whether it names one record of partition p with this customer and these
  // subject hashes (raw).
  bool covers(const partition& p, std::string_view customer_id, std::span<const std::string> subject_hashes) const;

  friend bool operator==(const hold&, const hold&) = default;
};
// As shown by `hold list` and kept in the store (cdr/core/saved_state.h
// decodes it strictly).
nlohmann::json to_json(const hold& h);

// The selectors of a `hold add` request (args as in docs/admin-protocol.md),
// validated; an error message otherwise. `subject_hash` turns an identifier
// into its keyed hash: the raw value is never kept.
std::variant<hold, std::string> hold_from_request(const nlohmann::json& args,
                                                  const std::function<std::string(std::string_view)>& subject_hash);

// Any active hold that covers the record.
bool any_covers(std::span<const hold> holds, const partition& p, std::string_view customer_id,
                std::span<const std::string> subject_hashes);
// The ids of the holds that cover it, in order.
std::vector<std::uint64_t> covering_holds(std::span<const hold> holds, const partition& p, std::string_view customer_id,
                                          std::span<const std::string> subject_hashes);

// The customer_id of a stored record (CDR metadata or usage event); empty
// when it has none.
std::string customer_of(std::string_view record_json);
// Every string in a stored CDR identifiers object, at any depth (what the subject
// index hashes, once normalised).
std::vector<std::string> identifier_values(std::string_view identifiers_json);
// The identifiers object without the strings `drop` names (at any depth:
// an array loses the element, an object the member); empty when nothing is
// left. Used for events naming an erased subject.
std::string without_identifiers(std::string_view identifiers_json, const std::function<bool(std::string_view)>& drop);

// What sweeps have already done to a partition.
struct partition_state {
  bool stripped = false;  // identifiers and their index entries removed
  bool dropped = false;   // the whole records removed
  friend bool operator==(const partition_state&, const partition_state&) = default;
};

// Which of a partition's deadlines have passed at `now` (a deadline is due
// when it is <= now: never before). A CDR partition's drop also removes its
// identifiers, so `strip` holds whenever `drop` does; usage records have only
// the drop.
struct passed_deadlines {
  bool strip = false;
  bool drop = false;
};
passed_deadlines deadlines_passed(const retention_policy& policy, const partition& p, instant now);

// The action a sweep takes on a partition in state `st` at `now`, if any: a
// due drop supersedes the strip; a stripped partition is not stripped again;
// a dropped one is done.
std::optional<retention_action> due_action(const retention_policy& policy, const partition& p, partition_state st,
                                           instant now);

// The action that removes a partition's whole records (drop_metadata for
// CDRs, drop_usage for usage records).
retention_action drop_action(record_kind k);

// The column families an action clears, one whole partition range in each;
// the sweep executor removes them and `verify` checks them alike.
std::span<const family> families_cleared(retention_action a);
std::vector<removal> removals_of(retention_action a, const partition& p);
// The action that left a partition in state `st` (stripped or dropped);
// nullopt for a partition no sweep has acted on.
std::optional<retention_action> action_done(const partition& p, partition_state st);

struct planned_action {
  retention_action action = retention_action::strip_identifiers;
  partition where;
  month deadline = month::of(1970, 1);  // acted on from deadline.start()
  std::int64_t records = 0;             // records the partition holds
  // Holds that name some of its records: those are copied to the held
  // store before the partition is removed.
  std::vector<std::uint64_t> partial_holds;
  // Holds that name the whole partition: the action waits for their release.
  std::vector<std::uint64_t> whole_holds;
  bool deferred() const { return !whole_holds.empty(); }
};

// Every action due at `now` (deadline <= now, never before), oldest deadline
// first. A drop of a CDR partition also removes its identifiers, so a
// partition whose drop is due gets the drop only.
std::vector<planned_action> plan_sweep(const retention_policy& policy, const std::map<partition, std::int64_t>& counts,
                                       const std::map<partition, partition_state>& states, std::span<const hold> holds,
                                       instant now);

// Partitions past their deadline, not done and not held (0 when healthy).
struct overdue_summary {
  std::size_t partitions = 0;
  std::int64_t records = 0;
};
overdue_summary overdue_of(std::span<const planned_action> plan);

// The earliest deadline any partition with records still has to meet (past
// ones included: an overdue partition's), ignoring holds; nullopt when no
// partition has one. A fleet member announces it in its heartbeats, so the
// others can tell when a silent member's records fall due.
std::optional<instant> earliest_deadline(const retention_policy& policy,
                                         const std::map<partition, std::int64_t>& counts,
                                         const std::map<partition, partition_state>& states);

nlohmann::json to_json(const planned_action& a);

// One partition of the forecast (`plan`, docs/retention.md "Forecast"):
// what it holds, the next action a sweep takes on it and when, the action
// after that (a CDR month's drop after its strip), and the holds naming it.
struct partition_plan {
  partition where;
  std::int64_t records = 0;
  partition_state state;
  retention_action next = retention_action::strip_identifiers;
  month deadline = month::of(1970, 1);  // acted on from deadline.start()
  std::optional<retention_action> then;
  month then_deadline = month::of(1970, 1);
  std::vector<std::uint64_t> whole_holds;    // defer the action
  std::vector<std::uint64_t> partial_holds;  // keep some records past it
};

// Every partition with records and an action still to come, by deadline.
std::vector<partition_plan> plan_partitions(const retention_policy& policy,
                                            const std::map<partition, std::int64_t>& counts,
                                            const std::map<partition, partition_state>& states,
                                            std::span<const hold> holds);

// As `plan` shows it: status "overdue" (deadline passed at `now`),
// "deferred" (passed, but a hold keeps the whole partition) or "scheduled".
nlohmann::json to_json(const partition_plan& p, instant now);

// Records due per month of action and action (YYYY-MM -> action -> records)
// for every action, next or after, whose deadline month is `until` or
// earlier; actions a hold defers count all the same (they are due).
std::map<month, std::map<retention_action, std::int64_t>> due_by_month(std::span<const partition_plan> plan,
                                                                       month until);

// The erasure purge pass's forecast (docs/capacity.md, "The erasure purge
// per day"). The pass rewrites the files that hold an erased key: of the
// `files` (`bytes` in all) overlapping the months the pending erasures
// touched, `keys` keys spread at random hit files x (1 - e^(-keys/files)),
// at `bytes_per_second` (the last large pass's measured rate, or
// assumed_purge_rate before one). It is scheduled to start `purge_lead`
// times its duration before the earliest pending deadline, so it ends
// before it; `late_by` > 0 says it will not.
struct purge_forecast_input {
  instant now{};
  instant deadline{};  // the earliest pending erasure's purge deadline
  std::size_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t keys = 0;
  double bytes_per_second = 0;
  std::optional<instant> running_since;  // a pass in progress
};
struct purge_forecast {
  std::uint64_t bytes = 0;  // to rewrite
  microseconds duration{};
  instant starts_at{};
  instant finishes_at{};
  microseconds late_by{};  // finishes_at - deadline when positive, else 0
};
inline constexpr double assumed_purge_rate = 8.0 * (1 << 20);  // bytes/s
inline constexpr double purge_lead = 1.5;
// Passes smaller than this do not set the rate: their fixed costs (opening
// files, the residue check) would make it look slower than it is.
inline constexpr std::uint64_t purge_rate_min_bytes = 64ULL << 20;
purge_forecast forecast_purge(const purge_forecast_input& in);
nlohmann::json to_json(const purge_forecast& f, const purge_forecast_input& in);

}  // namespace cdr
