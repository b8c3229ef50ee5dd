// The audit trail's entries as types (docs/operations.md, "Audit"): one
// record per kind of action, encoded here, beside the other codecs, into
// the JSON object each line of the trail carries under "entry". The
// field names are the trail's public format: regulators' tooling reads them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/key_layout.h"
#include "cdr/core/month.h"
#include "cdr/core/policy.h"
#include "cdr/core/retention.h"
#include "cdr/core/time.h"

namespace cdr::audit {

// The fleet request an action carried out (the control topic's member and
// request id).
struct origin {
  std::string member;
  std::string request;
  friend bool operator==(const origin&, const origin&) = default;
};

// What a subject request's requester said, and where the request came from.
struct request_note {
  std::string reason;
  std::string reference;
  std::optional<origin> from;  // a fleet request
  std::string reapplied_from;  // an erasure applied again from this ledger file
  friend bool operator==(const request_note&, const request_note&) = default;
};

// A sweep's (or a hold release's) action on a whole partition.
struct partition_action {
  retention_action action = retention_action::strip_identifiers;
  partition where;
  std::int64_t records = 0;
  std::optional<std::int64_t> held;  // records kept by holds (a sweep's)
  std::optional<instant> deadline;   // the deadline acted on (a sweep's)
  std::string trigger;               // "schedule", "admin", "hold_release", ...
  std::uint32_t requested_by = 0;
};
struct hold_added {
  hold h;  // its origin, creator and creation time inside
  std::uint32_t requested_by = 0;
};
struct hold_released {
  hold h;
  std::uint32_t requested_by = 0;
  request_note note;  // why, for what request, and the fleet request it came in
};
struct subject_erased {
  std::string subject;  // the keyed hash, hex
  std::int64_t records = 0;
  std::int64_t values = 0;  // the subject's values those records lost
  std::int64_t deferred = 0;
  std::map<month, std::int64_t> months;
  std::set<std::uint64_t> holds;  // that deferred records
  std::string trigger;
  std::uint32_t requested_by = 0;
  std::optional<instant> purge_deadline;  // when anything was erased
  request_note note;
};
struct erasure_purged {
  std::string subject;
  std::int64_t records = 0;
  instant erased_at{};
  std::string trigger;
};
struct subject_exported {
  std::string subject;
  std::uint64_t records = 0;
  std::uint32_t requested_by = 0;
  request_note note;
};
// A dead letter opened (its message may hold personal data): which one.
struct dead_letter_opened {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::uint32_t requested_by = 0;
};
struct keys_destroyed {
  std::vector<std::string> keys;
  std::string trigger;
  std::uint32_t requested_by = 0;
};
struct clock_confirmed {
  instant wall_clock{};
  double jump_seconds = 0;
  std::uint32_t requested_by = 0;
};
// A run of control or replies messages refused (forged, junk, replayed).
struct control_refused {
  std::string topic;
  std::uint64_t first_offset = 0;
  std::uint64_t last_offset = 0;
  std::uint64_t messages = 0;
  std::map<std::string, std::uint64_t> reasons;
  std::set<std::string> claimed_members;  // as the messages named them (never believed)
};
// An authentic control message this build cannot apply, skipped by an operator.
struct control_skipped {
  std::string topic;
  std::uint64_t offset = 0;
  std::string why;
  std::uint32_t requested_by = 0;
};
// A drained member's store emptied; `report`: what the drain handed over.
struct store_drained {
  nlohmann::json report = nlohmann::json::object();
  std::int64_t records_removed = 0;
  std::int64_t held_copies_removed = 0;
  std::uint32_t requested_by = 0;
};
// The trail itself: a legacy (unkeyed) chain re-keyed, a partial tail cut.
struct audit_rekeyed {
  std::uint64_t entries = 0;
  std::string legacy_head;
};
struct audit_tail_repaired {
  std::uint64_t truncated_bytes = 0;
  std::uint64_t after_seq = 0;
};

using record = std::variant<partition_action, hold_added, hold_released, subject_erased, erasure_purged,
                            subject_exported, keys_destroyed, clock_confirmed, control_refused, control_skipped,
                            store_drained, audit_rekeyed, audit_tail_repaired, dead_letter_opened>;

// The entry's "action": a retention action's name, or the record's own.
std::string action_of(const record& r);
// The JSON object the trail writes; `member`: the member that carried it
// out (omitted when empty).
nlohmann::json encode(const record& r, std::string_view member = {});
// The fleet request the record carried out, if any.
std::optional<origin> origin_of(const record& r);

// A subject request's note as the admin protocol and the ledger carry it
// ({"reason", "reference"} and, in the trail, "origin" and "reapplied_from").
void write_note(nlohmann::json& entry, const request_note& n);

}  // namespace cdr::audit
