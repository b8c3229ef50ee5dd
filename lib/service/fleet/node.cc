#include "node.h"

#include <algorithm>

#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

using namespace std::chrono_literals;

std::chrono::milliseconds timeout_of(const daemon_config& c) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.kafka.control_timeout);
}

// A heartbeat every third of the control timeout, within [1 s, 10 s].
std::chrono::milliseconds heartbeat_of(const daemon_config& c) {
  return std::clamp<std::chrono::milliseconds>(timeout_of(c) / 3, 1s, 10s);
}

std::string seal_key_of(std::string_view subject_key) {
  return crypto::hmac_sha256(subject_key, "cdr-retention control seal v1");
}

}  // namespace

fleet_node::fleet_node(const daemon_config& config, std::unique_ptr<fleet_log> log, const time_source& time,
                       std::string_view subject_key, fleet_key key, fleet_port& keeper)
    : key_(std::move(key)),
      log_(std::move(log)),
      membership_(time, member_name(config.kafka), heartbeat_of(config),
                  signed_topic{*log_, key_, config.kafka.topic_control}, keeper, timeout_of(config)),
      control_(time, member_name(config.kafka), signed_topic{*log_, key_, config.kafka.topic_control}, keeper, refused_,
               seal_key_of(subject_key), timeout_of(config),
               [this](const control_message& m, const log_record& r) {
                 if (m.kind == control_kind::heartbeat) return membership_.note(m, r.age);
                 queries_.note(m, r);
                 return true;
               }),
      queries_(time, signed_topic{*log_, key_, config.kafka.topic_control},
               signed_topic{*log_, key_, config.kafka.topic_replies}, membership_, keeper, refused_,
               seal_key_of(subject_key), control_.end_at_start(), timeout_of(config)) {}

fleet_node::~fleet_node() { stop(); }

void fleet_node::start() {
  membership_.start();
  queries_.start();
  control_.start();
}

void fleet_node::stop() {
  control_.stop();
  queries_.stop();
  membership_.stop();
}

void fleet_node::figures(metrics::retention_snapshot& out) const {
  membership_.figures(out);
  out.control_position = control_.position();
  out.control_blocked = !control_.blocked().empty();
  const auto counts = refused_.counts();
  for (const auto why : all_control_rejections) {
    const auto it = counts.find(why);
    out.control_rejected[std::string(name(why))] = it == counts.end() ? 0 : it->second;
  }
}

nlohmann::json fleet_node::report() const {
  nlohmann::json out{{"member", member()},
                     {"left", membership_.left()},
                     {"control_topic", control_.topic()},
                     {"control_position", control_.position()},
                     {"heartbeat_interval_ms", membership_.interval().count()},
                     {"fleet_key", key_.id()},
                     {"members", membership_.report()}};
  nlohmann::json refused = nlohmann::json::object();
  for (const auto& [why, n] : refused_.counts()) refused[std::string(name(why))] = n;
  out["refused"] = std::move(refused);
  if (const auto why = control_.blocked(); !why.empty()) out["blocked"] = why;
  return out;
}

}  // namespace cdr::service
