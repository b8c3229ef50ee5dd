#include "cdr/metrics/daemon_probe.h"

#include <string>

#include <prometheus/gauge.h>

namespace cdr::metrics {

daemon_probe::daemon_probe(prometheus::Registry& r, std::string_view version, std::string_view revision)
    : admin_requests_(prometheus::BuildCounter()
                          .Name("cdr_retention_admin_requests_total")
                          .Help("Admin socket requests by command and outcome (ok or an error code).")
                          .Register(r)),
      reloads_(prometheus::BuildCounter()
                   .Name("cdr_retention_config_reloads_total")
                   .Help("SIGHUP configuration reloads by result (applied or refused).")
                   .Register(r)) {
  for (const auto* result : {"applied", "refused"}) reloads_.Add({{"result", result}});
  prometheus::BuildGauge()
      .Name("cdr_retention_build_info")
      .Help("Build information; the value is always 1.")
      .Register(r)
      .Add({{"version", std::string(version)}, {"revision", std::string(revision)}})
      .Set(1);
}

void daemon_probe::admin_request(std::string_view command, std::string_view outcome) {
  admin_requests_.Add({{"command", std::string(command)}, {"outcome", std::string(outcome)}}).Increment();
}

void daemon_probe::reload(bool applied) { reloads_.Add({{"result", applied ? "applied" : "refused"}}).Increment(); }

}  // namespace cdr::metrics
