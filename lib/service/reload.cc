#include "reload.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "cdr/service/secrets.h"

namespace cdr::service {
namespace {

// "a.b.c" -> value, for comparing two effective configurations.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j;
  }
}

}  // namespace

config_reloader::config_reloader(const daemon_options& options, const daemon_config& config, std::string digest)
    : options_(options), digest_(std::move(digest)), effective_(nlohmann::json::parse(config.effective_json)) {}

nlohmann::json config_reloader::effective() const {
  std::lock_guard lock(mutex_);
  return effective_;
}

nlohmann::json config_reloader::status() const {
  std::lock_guard lock(mutex_);
  return {{"path", options_.config_path}, {"digest", "sha256:" + digest_}, {"restart_needed_for", restart_needed_}};
}

std::optional<daemon_config> config_reloader::reload() {
  std::ifstream file(options_.config_path);
  std::stringstream text;
  text << file.rdbuf();
  auto parsed = file ? parse_config(text.str(), options_.config_path, options_.overrides, &system_secrets())
                     : std::variant<daemon_config, config_error>(
                           config_error{options_.config_path, 0, "", "cannot read the file"});
  if (auto* err = std::get_if<config_error>(&parsed)) {
    spdlog::error("configuration reload refused, the running configuration stays: {}", err->to_string());
    return std::nullopt;
  }
  auto next = std::get<daemon_config>(std::move(parsed));
  std::map<std::string, nlohmann::json> before, after;
  flatten(effective(), "", before);
  flatten(nlohmann::json::parse(next.effective_json), "", after);
  std::vector<std::string> applied, restart;
  for (const auto& [key, value] : after) {
    const auto it = before.find(key);
    if (it != before.end() && it->second == value) continue;
    (is_reloadable_key(key) ? applied : restart).push_back(key);
  }
  for (const auto& [key, value] : before) {
    if (after.count(key) == 0) restart.push_back(key);
  }
  {
    std::lock_guard lock(mutex_);
    for (const auto& key : applied) {
      std::string pointer = "/" + key;
      std::replace(pointer.begin(), pointer.end(), '.', '/');
      effective_[nlohmann::json::json_pointer(pointer)] = after[key];
    }
    restart_needed_ = restart;
  }
  spdlog::warn("configuration reloaded from {}: applied [{}]; needs a restart: [{}]", options_.config_path,
               fmt::join(applied, ", "), fmt::join(restart, ", "));
  return next;
}

}  // namespace cdr::service
