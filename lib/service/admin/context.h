// What admin command handlers work with: the daemon's running parts, built
// and owned by daemon.cc. Pointers may be null where a part is optional.
#pragma once

#include <functional>
#include <string>

#include "../demo.h"
#include "../fleet/node.h"
#include "../ingest/ingest.h"
#include "../reload.h"
#include "../retention/retention.h"
#include "../system_time.h"
#include "../vault.h"
#include "cdr/core/config.h"
#include "cdr/crypto/keystore.h"
#include "cdr/kafka/embedded_cluster.h"
#include "cdr/store/store.h"

namespace cdr::service {

struct admin_context {
  const daemon_config& config;
  const time_source& time;
  simulated_wall_time* fake_clock = nullptr;  // set with --fake-clock
  instant started{};
  mono_time started_monotonic{};
  const config_reloader& reloader;
  store::store& store;
  retention& keeper;
  const crypto::keystore& keystore;
  const vault& keys;
  std::string metrics_listen;  // host:port of /metrics and the probes
  const kafka::embedded_cluster* embedded = nullptr;
  const ingest* consumer = nullptr;
  const demo_traffic* demo = nullptr;
  fleet_node* fleet = nullptr;  // null: this daemon acts alone
  std::string subject_key;      // names subjects in exports and the audit trail
  // Runs a drain for the requester (set in a fleet only).
  std::function<nlohmann::json(std::uint32_t uid)> drain;
};

}  // namespace cdr::service
