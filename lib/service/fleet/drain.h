// A member's drain before a scale-down (docs/operations.md, "Drain before
// scale-down"): it leaves the consumer group, republishes every record it
// keeps to kafka.topics.handover (which every member consumes with the
// input topics, storing each record idempotently by id), waits until the
// group has stored them all, then empties its store and leaves the fleet.
#pragma once

#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>

#include "cdr/core/config.h"
#include "cdr/core/time_source.h"
#include "node.h"

namespace cdr::service {

struct drain_parts {
  const daemon_config& config;
  const time_source& time;
  std::string bootstrap;
  fleet_node& fleet;
  fleet_port& keeper;
  // The input partitions this member owns now ({topic: {partition: ...}}).
  std::function<nlohmann::json()> assignment;
  // Whether ingest has joined the consumer group since this start.
  std::function<bool()> joined;
  // Leaves the consumer group (ingest stops). Empty when it did, having
  // committed every partition's offset to the group; otherwise why not.
  std::function<std::string()> leave_group;
  // Seals the handed-over records (the fleet's shared subject key).
  std::string_view subject_key;
};

// Runs the drain; what it did, as the reply and the audit entry say.
// Throws fleet_unavailable (nothing emptied; a repeated drain hands the
// records over again, harmlessly) when no other member is live, the
// records cannot be published, or the others do not store them in time;
// also (nothing handed over or emptied) when ingest did not stop or the
// group did not take this member's offsets as it left.
nlohmann::json drain(const drain_parts& p, std::uint32_t uid);

}  // namespace cdr::service
