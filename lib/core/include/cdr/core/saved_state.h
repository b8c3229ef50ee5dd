// Saved state: what the daemon keeps beside the records (legal holds,
// journals of retention actions in progress, the deletion-event outbox,
// erasures, the audit trail's pending entries and head, counters). Each kind
// is a typed struct with an encoder and a decoder here; the store adapter's
// saved_state (cdr/store/saved_state.h) is the only code that knows where
// they live.
//
// Decoders are strict and return an error, never a default: an unreadable
// hold read as "no hold" would let the next sweep delete what it protects.
// The encodings are the JSON the daemon has always written, so stores
// written by earlier builds decode unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/key_layout.h"
#include "cdr/core/result.h"
#include "cdr/core/retention.h"
#include "cdr/core/time.h"

namespace cdr {

// The kinds of saved state (labels of cdr_retention_saved_state_unreadable).
enum class state_kind : std::uint8_t {
  hold,
  journal,
  deletion_event,
  deferred_erasure,
  erased_subject,
  pending_audit,
  audit_head,
  counter,
  keystore_binding,
  erasure_request,
  identity,  // the subject index's identifier form (cdr/core/identity.h)
  fleet,     // control requests applied, fleet members known (markers, empty values)
  unknown,   // a key this build does not know (written by a newer one?)
};
std::string_view name(state_kind k);
inline constexpr std::array<state_kind, 13> all_state_kinds{state_kind::hold,
                                                            state_kind::journal,
                                                            state_kind::deletion_event,
                                                            state_kind::deferred_erasure,
                                                            state_kind::erased_subject,
                                                            state_kind::pending_audit,
                                                            state_kind::audit_head,
                                                            state_kind::counter,
                                                            state_kind::keystore_binding,
                                                            state_kind::erasure_request,
                                                            state_kind::identity,
                                                            state_kind::fleet,
                                                            state_kind::unknown};

// One deletion event (docs/admin-protocol.md, "Deletion events"), kept in
// an outbox until Kafka acknowledges it.
struct deletion_event {
  std::uint64_t event_id = 0;
  std::string action;                  // a retention_action name, or erase_subject
  std::optional<partition> where;      // the partition of a sweep action
  std::optional<std::string> subject;  // erase_subject: the subject's keyed hash, hex
  std::vector<month> months;           // erase_subject: the months it touched
  std::int64_t records = 0;
  instant time{};
  std::string member;   // the member that carried it out (empty: an earlier build's)
  std::string request;  // the fleet request it carried out (empty: none, e.g. a sweep)
  friend bool operator==(const deletion_event&, const deletion_event&) = default;
};
nlohmann::json to_json(const deletion_event& e);
result<deletion_event> deletion_event_from_json(const nlohmann::json& j);

// A retention action between its logical and its physical step: the key
// ranges it removed, and the audit entry and deletion event that follow once
// they are gone from disk.
struct journal_entry {
  std::vector<removal> removals;
  nlohmann::json audit;                 // an object with a string "action"
  std::optional<deletion_event> event;  // none for actions that send none
  // An erasure's keys: purged by the erasure purge pass (erasure.purge_after),
  // by this deadline; absent: purged by the action itself.
  std::optional<instant> purge_by;
  friend bool operator==(const journal_entry&, const journal_entry&) = default;
};

// An audit entry committed with its action, not yet appended to the trail.
struct pending_audit {
  std::uint64_t op = 0;
  instant time{};
  nlohmann::json entry;  // an object with a string "action"
  friend bool operator==(const pending_audit&, const pending_audit&) = default;
};

// Where the audit trail's hash chain ends.
struct audit_head {
  std::uint64_t seq = 0;
  std::string hash = std::string(64, '0');  // hex hash of the last line
  // The trail file's size after the last complete entry; absent in heads
  // written before it was kept (then counted from the file).
  std::optional<std::uint64_t> bytes;
  friend bool operator==(const audit_head&, const audit_head&) = default;
};

// The identifier form the subject index is written in, the forms it was
// written in before, and a re-index in progress (service/reindex.h).
struct identity_state {
  std::string form;
  std::vector<std::string> earlier;
  struct migration {
    std::string to;
    std::string after;  // the last family key re-indexed (raw bytes); empty: none yet
    std::uint64_t records = 0;
    friend bool operator==(const migration&, const migration&) = default;
  };
  std::optional<migration> moving;
  friend bool operator==(const identity_state&, const identity_state&) = default;
};

// Records of a subject erasure a legal hold deferred, erased at its release.
struct deferred_erasure {
  instant since{};
  std::vector<std::string> record_keys;  // partition prefix + id
  friend bool operator==(const deferred_erasure&, const deferred_erasure&) = default;
};

// A subject's erasure request, kept as long as the store: an event that
// names the subject and occurred before `at` is stored without it.
struct erasure_request {
  instant at{};
  std::string reason;     // empty: none given
  std::string reference;  // empty: none given
  // Every batch of it committed (saved with the first, set by the last): an
  // erasure a stop interrupted is run again at start-up.
  bool done = false;
  std::optional<instant> purged_at;  // its keys' purge pass (the last one)
  friend bool operator==(const erasure_request&, const erasure_request&) = default;
};

// Each erased subject (keyed hash, raw bytes) with the time of its request.
using erasure_times = std::unordered_map<std::string, instant>;

// A key an erasure removed, or re-sealed without the subject's values
// (then only its older versions must be gone).
struct erased_key {
  family where = family::identifiers;
  std::string key;
  bool resealed = false;
  friend bool operator==(const erased_key&, const erased_key&) = default;
};
// Every key an erasure of one subject removed or re-sealed, ever: what verify checks.
struct erased_subject {
  std::vector<erased_key> keys;
  friend bool operator==(const erased_subject&, const erased_subject&) = default;
};

// One line of the erasure ledger (docs/operations.md, "Erasure ledger"):
// kept beside the key store, outside storage.path and its checkpoints, so a
// restored store cannot forget an erasure. `indexes` finds the subject's
// records again without the identifier itself: its index hash under each
// data key that existed (key name -> raw hash), pseudonymous, and useless
// once that key is destroyed.
struct ledger_entry {
  std::string subject;  // keyed hash, raw
  instant at{};
  std::string reason;
  std::string reference;
  std::map<std::string, std::string> indexes;
  friend bool operator==(const ledger_entry&, const ledger_entry&) = default;
};

// One message of the fleet's control topic (kafka.topics.control;
// docs/operations.md, "The fleet"): an action every member applies once, in
// the topic's order. It names no subject in the clear: a hold carries the
// subject's keyed hash, an erasure the identifier sealed under the fleet's
// control key (derived from the shared subject key).
//
// Two kinds change nothing and save no position: a `query` (a fleet-wide
// read every live member answers on the replies topic) and a `heartbeat`
// (how members know each other: docs/operations.md, "Who is in the fleet").
enum class control_kind : std::uint8_t { hold_add, hold_release, subject_erase, query, heartbeat };
std::string_view name(control_kind k);

struct control_message {
  control_kind kind = control_kind::hold_add;
  std::string member;   // the member it was requested on
  std::string request;  // unique in the fleet: "<member>/<random hex>"
  instant at{};
  std::uint32_t uid = 0;  // the requester, on that member
  // hold_add: id 0 (each member numbers it); its creator, creation time and
  // origin are the message's uid, time, member and request, never the body's.
  hold new_hold;
  std::string hold_request;       // hold_release: the origin request of the hold
  std::string sealed_identifier;  // subject_erase: raw sealed bytes
  std::string reason;             // subject_erase, hold_release: what the operator said
  std::string reference;
  // query: the admin command and its arguments (an export's identifier
  // travels sealed, in sealed_identifier, never in `args`).
  std::string command;
  nlohmann::json args = nlohmann::json::object();
  // heartbeat: the member's figures, and whether it is leaving the fleet
  // (drained: nobody waits for it any more).
  bool leaving = false;
  // Which run of the member sent it (random per start) and its number in
  // that run: a replayed heartbeat is older than one already seen.
  std::string incarnation;
  std::uint64_t seq = 0;
  std::int64_t records = 0;
  std::optional<instant> next_deadline;  // the earliest deadline of its records
  friend bool operator==(const control_message&, const control_message&) = default;
};
// The message's key on the topic: "<kind>/<request>", or "heartbeat/<member>"
// (compaction keeps each member's last). Actions' keys are written once, so
// compaction never removes one; a query's is deleted (a tombstone) once
// answered.
std::string control_key(const control_message& m);
// Whether a message changes the store (its position is saved with it).
bool changes_state(control_kind k);

// One message of the replies topic (kafka.topics.replies), keyed by the
// request: a member's answer to a fleet-wide query, in parts (an export's
// records stream over several). The last part carries the result or the
// error; earlier ones carry items.
struct fleet_reply {
  std::string request;
  std::string member;
  std::uint32_t part = 0;
  bool last = false;
  std::vector<nlohmann::json> items;  // streamed items (an export's records)
  nlohmann::json result;              // the last part: the member's result
  std::string error;                  // the last part: why it has none
  friend bool operator==(const fleet_reply&, const fleet_reply&) = default;
};
std::string encode(const fleet_reply& r);
result<fleet_reply> decode_reply(std::string_view text);

// Encoders and strict decoders, one pair per kind.
std::string encode(const ledger_entry& e);  // one line of JSON, no newline
result<ledger_entry> decode_ledger_entry(std::string_view text);
std::string encode(const hold& h);
std::string encode(const control_message& m);
result<control_message> decode_control(std::string_view text);
result<hold> decode_hold(std::string_view text);
std::string encode(const journal_entry& j);
result<journal_entry> decode_journal(std::string_view text);
std::string encode(const deletion_event& e);
result<deletion_event> decode_deletion_event(std::string_view text);
std::string encode(const pending_audit& a);
result<pending_audit> decode_pending_audit(std::string_view text);
std::string encode(const audit_head& h);
result<audit_head> decode_audit_head(std::string_view text);
std::string encode(const identity_state& s);
result<identity_state> decode_identity_state(std::string_view text);
std::string encode(const deferred_erasure& d);
result<deferred_erasure> decode_deferred_erasure(std::string_view text);
std::string encode(const erasure_request& r);
result<erasure_request> decode_erasure_request(std::string_view text);
std::string encode(const erased_subject& e);
result<erased_subject> decode_erased_subject(std::string_view text);
std::string encode_counter(std::uint64_t v);
result<std::uint64_t> decode_counter(std::string_view text);

}  // namespace cdr
