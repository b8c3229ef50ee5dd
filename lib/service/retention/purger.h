// The physical step (docs/architecture.md, "Retention"): makes every
// journalled range gone from the files on disk (one store::purge_pass), then
// replaces each journal by its audit entry and its deletion event. Journals
// are read one at a time, three times (collect, check, finish), so memory
// does not grow with how many keys they name (an erasure of a million
// records journals a few million keys).
//
// A subject erasure's journals wait: their keys are hidden at once (removed
// from what reads see) and purged from the files by one pass over every
// pending erasure, due when the oldest is erasure.purge_after old
// (docs/operations.md, "Erasure"). pending_purges is their summary in
// memory (subject, when, deadline), loaded from the journals at start-up.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class pending_purges {
 public:
  // An erasure is overdue when its keys are still unpurged this long after
  // its deadline (the pass itself, a restart).
  static constexpr microseconds grace = std::chrono::hours(1);

  struct entry {
    std::string subject;  // keyed hash, raw
    instant erased_at{};
    instant purge_by{};
  };
  // Reads the erasure journals (the others are not pending purges).
  void load(store::saved_state& state);
  void add(std::uint64_t op, entry e);
  void remove(std::uint64_t op);
  std::map<std::uint64_t, entry> all() const;
  bool contains(std::uint64_t op) const;
  // The entry with the earliest deadline.
  std::optional<entry> first_due() const;
  // Distinct subjects pending, and those overdue at `now`.
  std::size_t subjects() const;
  std::size_t overdue_subjects(instant now) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, entry> by_op_;
};

class purger {
 public:
  purger(retention_context& ctx, pending_purges& pending) : ctx_(ctx), pending_(pending) {}

  // Finishes every journalled action, and every pending erasure's with
  // `erasures` (the erasure purge pass); a summary (empty when there was
  // nothing to finish).
  nlohmann::json finish(bool erasures);
  // Whether the oldest pending erasure's deadline has come.
  bool erasures_due() const;

  // Journals finished per commit.
  static constexpr std::size_t journals_per_commit = 100;

 private:
  retention_context& ctx_;
  pending_purges& pending_;
};

}  // namespace cdr::service
