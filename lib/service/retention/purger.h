// The physical step (docs/architecture.md, "Retention"): makes every
// journalled range gone from the files on disk (one store::purge_pass), then
// replaces each journal by its audit entry and its deletion event. Journals
// are read one at a time, three times (collect, check, finish), so memory
// does not grow with how many keys they name (an erasure of a million
// records journals a few million keys).
#pragma once

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class purger {
 public:
  explicit purger(retention_context& ctx) : ctx_(ctx) {}

  // Finishes every journalled action; a summary (empty when there was none).
  nlohmann::json finish();

  // Journals finished per commit.
  static constexpr std::size_t journals_per_commit = 100;

 private:
  retention_context& ctx_;
};

}  // namespace cdr::service
