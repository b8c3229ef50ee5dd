// The saved state kept in the store's system family (cdr/core/saved_state.h
// has the types and codecs): the only code that knows its keys.
//
// Reads decode strictly. An entry that does not decode is never taken for an
// absent one: it is returned in `unreadable`, logged once, and kept on a
// list (unreadable()) until a later read finds it readable or gone. The
// service refuses sweeps and erasures while that list is not empty.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cdr/core/result.h"
#include "cdr/core/saved_state.h"
#include "cdr/store/store.h"

namespace cdr::store {

struct unreadable_entry {
  state_kind kind = state_kind::unknown;
  std::string key;  // as people read it, e.g. "hold/0000000000000007"
  std::string reason;
  friend bool operator==(const unreadable_entry&, const unreadable_entry&) = default;
};

// The entries of one kind in key order, and those of the kind that did not decode.
template <class K, class T>
struct entries_of {
  std::vector<std::pair<K, T>> items;
  std::vector<unreadable_entry> unreadable;
};

// Erasure records come in chunks, one per erasure batch: a subject's keyed
// hash (raw bytes) and the batch's operation number (0: the single record
// of a build before chunks).
struct chunk_id {
  std::string subject;
  std::uint64_t chunk = 0;
  auto operator<=>(const chunk_id&) const = default;
};

enum class counter_name : std::uint8_t {
  operations,  // numbers retention actions (audit entries, deletion events)
  holds,       // numbers legal holds
  control,     // the next offset of the fleet's control topic to apply
  purge_rate,  // bytes/s of the last erasure purge pass large enough to measure
};

class saved_state {
 public:
  explicit saved_state(store& s) : store_(s) {}
  saved_state(const saved_state&) = delete;
  saved_state& operator=(const saved_state&) = delete;

  // Reads every entry; records and returns those that do not decode.
  std::vector<unreadable_entry> check_all();
  // The entries found unreadable by the reads so far.
  std::vector<unreadable_entry> unreadable() const;
  bool healthy() const;

  // Absent: 0.
  result<std::uint64_t> counter(counter_name n);
  // The last sweep's instant, in microseconds since the epoch; nullopt
  // before the first (cdr/service clock guard).
  std::optional<result<std::uint64_t>> clock_mark();
  void put_clock_mark(change& c, std::uint64_t micros);
  void put_counter(change& c, counter_name n, std::uint64_t v);

  entries_of<std::uint64_t, hold> holds();
  // nullopt: no hold has that id.
  std::optional<result<hold>> hold_by_id(std::uint64_t id);
  void put_hold(change& c, const hold& h);
  void remove_hold(change& c, std::uint64_t id);

  entries_of<std::uint64_t, journal_entry> journals();
  // One journal at a time; returns the ones that do not decode.
  std::vector<unreadable_entry> for_each_journal(const std::function<void(std::uint64_t, journal_entry&&)>& fn);
  // nullopt: no journal has that number.
  std::optional<result<journal_entry>> journal(std::uint64_t op);
  void put_journal(change& c, std::uint64_t op, const journal_entry& j);
  void remove_journal(change& c, std::uint64_t op);

  // The deletion-event outbox, by event id.
  entries_of<std::uint64_t, deletion_event> events();
  std::size_t events_pending() const;
  void put_event(change& c, const deletion_event& e);
  void remove_event(change& c, std::uint64_t event_id);

  // Erasure records, read one chunk at a time (memory does not grow with
  // them); each returns the chunks that do not decode.
  std::vector<unreadable_entry> for_each_deferred(
      const std::function<void(const chunk_id&, const deferred_erasure&)>& fn);
  std::optional<result<deferred_erasure>> deferred(const chunk_id& id);
  void put_deferred(change& c, const chunk_id& id, const deferred_erasure& d);
  void remove_deferred(change& c, const chunk_id& id);
  std::vector<unreadable_entry> for_each_erased(const std::function<void(const chunk_id&, const erased_subject&)>& fn);
  void put_erased(change& c, const chunk_id& id, const erased_subject& e);
  // Erasure requests, by subject (keyed hash, raw bytes): one per subject,
  // the latest request's.
  std::vector<unreadable_entry> for_each_erasure_request(
      const std::function<void(const std::string& subject, const erasure_request&)>& fn);
  // nullopt: no request names that subject.
  std::optional<result<erasure_request>> erasure_request_of(std::string_view subject);
  void put_erasure_request(change& c, std::string_view subject, const erasure_request& r);

  entries_of<std::uint64_t, pending_audit> pending_audit_entries();
  void put_pending_audit(change& c, const pending_audit& a);
  void remove_pending_audit(change& c, std::uint64_t op);
  // Absent: an empty chain.
  result<audit_head> head();
  void put_head(change& c, const audit_head& h);

  // The id (hex) of the key store the records are sealed under; nullopt
  // for a store that was never bound.
  std::optional<result<std::string>> keystore_binding();
  void put_keystore_binding(change& c, std::string_view id_hex);

  // The fleet (service/fleet/control_log.h). Whether a control request was
  // applied here (a replay of it is not applied again); the control
  // position saved with the request it applied (empty: a position only).
  result<bool> control_applied(std::string_view request);
  void put_control_step(change& c, std::uint64_t next, std::string_view request);
  // The members this one has heard of and that have not left the fleet:
  // silent until heard again, whatever this member's position.
  std::vector<std::string> fleet_members();
  void put_fleet_member(change& c, std::string_view name);
  void remove_fleet_member(change& c, std::string_view name);

  // The identifier form the subject index is written in; nullopt for a
  // store written before forms were recorded.
  std::optional<result<identity_state>> identity();
  void put_identity(change& c, const identity_state& s);

 private:
  template <class K, class T, class Decode, class Key>
  entries_of<K, T> read_all(std::string_view prefix, state_kind kind, Decode decode, Key key_of);
  // Decodes each entry under prefix and hands the readable ones to fn, one
  // at a time; notes and returns the unreadable.
  template <class K, class T, class Decode, class Key, class Fn>
  std::vector<unreadable_entry> stream_all(std::string_view prefix, state_kind kind, Decode decode, Key key_of,
                                           Fn&& fn);
  template <class T, class Decode>
  std::optional<result<T>> read_one(const std::string& key, state_kind kind, Decode decode);
  void note(const std::string& key, state_kind kind, const std::string& reason);
  void clear(const std::string& key);
  // Forgets unreadable entries under `prefix` that are not in `still_bad`.
  void forget_except(std::string_view prefix, const std::map<std::string, std::string>& still_bad);

  store& store_;
  mutable std::mutex mutex_;
  std::map<std::string, unreadable_entry> unreadable_;  // by raw key
};

}  // namespace cdr::store
