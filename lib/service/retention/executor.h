// The logical step of a sweep (docs/architecture.md, "Retention"): one
// atomic, synced store change per action that removes a partition's ranges,
// copies what partial holds name to the held family, marks the partition's
// state and journals what the physical step (purger) must make gone; and
// the release of held copies no hold names any more.
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
  sweep_executor(retention_context& ctx, const hold_registry& holds) : ctx_(ctx), holds_(holds) {}

  // Removes one planned partition; its audit entry as the report.
  nlohmann::json remove_partition(const planned_action& a, std::string_view trigger, std::uint32_t uid);
  // Removes held copies no active hold names any more, once their deadline
  // has passed; one report per (partition, action).
  nlohmann::json release_held(std::uint32_t uid);

 private:
  // A record's copies in the held family, gathered by record key.
  struct held_record {
    bool record = false;
    std::string metadata;                    // when record
    std::optional<std::string> identifiers;  // sealed under the held key
    std::vector<std::string> hashes;         // of its held subject entries
  };
  std::map<std::string, held_record> held_records() const;
  // Copies the records of partition p that the partial holds name to the
  // held family (the whole record too when `drop`); returns how many.
  std::int64_t copy_held(const partition& p, const std::vector<hold>& partial, bool drop, store::change& c);

  retention_context& ctx_;
  const hold_registry& holds_;
};

}  // namespace cdr::service
