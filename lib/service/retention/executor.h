// The logical step of a sweep (docs/architecture.md, "Retention"): one
// atomic, synced store change per action that removes a partition's ranges,
// marks its state and journals what the physical step (purger) must make
// gone, after the records partial holds name are copied to the held family;
// and the release of held copies no hold names any more. Held records are
// streamed, never loaded whole: memory is bounded by a chunk of them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "context.h"
#include "holds.h"

namespace cdr::service {

class sweep_executor {
 public:
  // Held records copied, or released, per commit.
  static constexpr std::size_t chunk_records = 5000;

  sweep_executor(retention_context& ctx, const hold_registry& holds) : ctx_(ctx), holds_(holds) {}

  // Removes one planned partition; its audit entry as the report.
  nlohmann::json remove_partition(const planned_action& a, std::string_view trigger, std::uint32_t uid);
  // Removes held copies no active hold names any more, once their deadline
  // has passed; one report per (partition, action) and commit.
  nlohmann::json release_held(std::uint32_t uid);
  // Records kept in the held family (a streaming count).
  std::int64_t held_records() const;
  // Marks the id index entry of every held record of a dropped partition
  // (stores written before held entries were marked); returns how many.
  std::size_t mark_held_ids();

 private:
  class releaser;
  // Copies the records of partition p that the partial holds name to the
  // held family (the whole record too when `drop`), committed in chunks;
  // returns how many.
  std::int64_t copy_held(const partition& p, const std::vector<hold>& partial, bool drop);

  retention_context& ctx_;
  const hold_registry& holds_;
};

}  // namespace cdr::service
