// Metrics of the daemon itself: build information, admin requests and
// configuration reloads. The wiring layer calls plain methods.
#pragma once

#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

namespace cdr::metrics {

class daemon_probe {
 public:
  daemon_probe(prometheus::Registry& registry, std::string_view version, std::string_view revision);

  // outcome: "ok" or an admin error code.
  void admin_request(std::string_view command, std::string_view outcome);
  void reload(bool applied);

 private:
  prometheus::Family<prometheus::Counter>& admin_requests_;
  prometheus::Family<prometheus::Counter>& reloads_;
};

}  // namespace cdr::metrics
