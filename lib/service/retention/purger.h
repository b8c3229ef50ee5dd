// The physical step (docs/architecture.md, "Retention"): makes every
// journalled range gone from the files on disk (store::purge), then replaces
// each journal, in one change, by its audit entry and its deletion event.
#pragma once

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class purger {
 public:
  explicit purger(retention_context& ctx) : ctx_(ctx) {}

  // Finishes every journalled action; a summary (empty when there was none).
  nlohmann::json finish();

 private:
  retention_context& ctx_;
};

}  // namespace cdr::service
