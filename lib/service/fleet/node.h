// This member's part in the fleet (docs/operations.md, "The fleet"): the
// control log (control_log.h), membership (membership.h) and fleet-wide
// queries (queries.h), all on one fleet_log and signed under one fleet key.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../fleet_port.h"
#include "cdr/core/config.h"
#include "cdr/core/time_source.h"
#include "cdr/metrics/snapshots.h"
#include "common.h"
#include "control_log.h"
#include "fleet_key.h"
#include "log.h"
#include "membership.h"
#include "queries.h"

namespace cdr::service {

class fleet_node {
 public:
  // `subject_key`: the fleet's shared subject key; identifiers in erasures
  // and queries travel sealed under a key derived from it. Throws
  // fleet_refused when the control topic's recent messages are all signed
  // under keys this member does not hold.
  fleet_node(const daemon_config& config, std::unique_ptr<fleet_log> log, const time_source& time,
             std::string_view subject_key, fleet_key key, fleet_port& keeper);
  ~fleet_node();
  fleet_node(const fleet_node&) = delete;
  fleet_node& operator=(const fleet_node&) = delete;

  void start();
  void stop();

  control_log& control() { return control_; }
  fleet_membership& membership() { return membership_; }
  fleet_queries& queries() { return queries_; }
  const std::string& member() const { return membership_.member(); }

  // For status: the member, the control position, why applying is stuck,
  // the members and the refusals.
  nlohmann::json report() const;
  // For metrics: the control position, whether applying is stuck,
  // refusals by reason, and the members known, live and silent.
  void figures(metrics::retention_snapshot& out) const;

 private:
  const fleet_key key_;
  const std::unique_ptr<fleet_log> log_;
  refusals refused_;
  fleet_membership membership_;
  control_log control_;  // hands heartbeats and queries to the others
  fleet_queries queries_;
};

}  // namespace cdr::service
