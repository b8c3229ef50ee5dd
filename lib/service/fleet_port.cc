#include "fleet_port.h"

#include <unistd.h>

#include <fmt/format.h>

namespace cdr::service {

std::string member_name(const kafka_config& k) {
  if (!k.group_instance_id.empty()) return k.group_instance_id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return k.client_id;
  return fmt::format("{}@{}", k.client_id, host);
}

}  // namespace cdr::service
