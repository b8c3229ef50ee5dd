#include "common.h"

#include <fmt/format.h>

namespace cdr::service {

void refusals::count(control_rejection why) {
  std::lock_guard lock(mutex_);
  ++counts_[why];
}

std::map<control_rejection, std::uint64_t> refusals::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

void signed_topic::publish(std::string_view message_key, std::string_view body, std::string_view what,
                           std::chrono::milliseconds timeout) const {
  const auto value = body.empty() ? std::string() : key.sign(topic, message_key, body);
  if (const auto error = log.append(topic, message_key, value, timeout)) {
    throw fleet_unavailable(fmt::format("{}: cannot publish to {}: {}", what, topic, *error));
  }
}

void signed_topic::post(std::string_view message_key, std::string_view body) const {
  log.post(topic, message_key, key.sign(topic, message_key, body));
}

std::variant<std::string, control_rejection> signed_topic::verify(const log_record& r) const {
  return key.verify(topic, r.key, r.value);
}

std::string claimed_member(std::string_view value) {
  const auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object()) return {};
  const auto it = j.find("member");
  return it != j.end() && it->is_string() ? it->get<std::string>().substr(0, 200) : std::string();
}

}  // namespace cdr::service
