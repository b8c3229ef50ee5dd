// The physical step (docs/architecture.md, "Retention"): makes every
// journalled range gone from the files on disk (one store::purge_pass), then
// replaces each journal by its audit entry and its deletion event. Journals
// are read one at a time, three times (collect, check, finish); the pass and
// the check hold the erased keys they name (about 100 bytes each: an
// erasure of a million records journals a few million keys), so each file
// is rewritten once and read once.
//
// A subject erasure's journals wait: their keys are hidden at once (removed
// from what reads see) and purged from the files by one pass over every
// pending erasure, started so as to end before the oldest is
// erasure.purge_after old (its forecast: context.h, pending_purges)
// (docs/operations.md, "Erasure"). The journal index (context.h) says which
// journals are which, so finishing the others never reads the erasures'.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class purger {
 public:
  explicit purger(retention_context& ctx) : ctx_(ctx) {}

  // Finishes every journalled action, and every pending erasure's with
  // `erasures` (the erasure purge pass); a summary (empty when there was
  // nothing to finish).
  nlohmann::json finish(bool erasures);
  // Whether the pass should start: its forecast says so, early enough to
  // end by the earliest pending deadline.
  bool erasures_due() const;
  // Whether the earliest pending deadline has come (with
  // erasure.purge_after = 0s, at the end of each erasure).
  bool deadline_reached() const;
  // Finishes the other actions' journals, and the erasures' once due.
  nlohmann::json finish_due() { return finish(erasures_due()); }

  // Journals finished per commit.
  static constexpr std::size_t journals_per_commit = 100;

 private:
  retention_context& ctx_;
};

}  // namespace cdr::service
