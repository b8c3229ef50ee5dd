#include "cdr/core/fleet_auth.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cdr/core/hex.h"

namespace cdr {
namespace {

constexpr std::string_view auth_member = "auth";
constexpr std::string_view domain = "cdr-retention fleet message v1";

void length_prefixed(std::string& out, std::string_view part) {
  const auto n = static_cast<std::uint64_t>(part.size());
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(part);
}

}  // namespace

std::string_view name(control_rejection r) {
  switch (r) {
    case control_rejection::malformed: return "malformed";
    case control_rejection::unsigned_: return "unsigned";
    case control_rejection::unknown_key: return "unknown_key";
    case control_rejection::bad_mac: return "bad_mac";
    case control_rejection::replay: return "replay";
  }
  return "malformed";
}

std::variant<signed_value, control_rejection> split_signed(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return control_rejection::malformed;
  const auto it = j.find(auth_member);
  if (it == j.end()) return control_rejection::unsigned_;
  if (!it->is_string()) return control_rejection::malformed;
  const auto& auth = it->get_ref<const std::string&>();
  const auto colon = auth.find(':');
  if (colon == std::string::npos) return control_rejection::malformed;
  auto id = from_hex(std::string_view(auth).substr(0, colon));
  auto mac = from_hex(std::string_view(auth).substr(colon + 1));
  if (!id || id->size() != fleet_key_id_bytes || !mac || mac->size() != fleet_mac_bytes) {
    return control_rejection::malformed;
  }
  j.erase(it);
  return signed_value{j.dump(), std::move(*id), std::move(*mac)};
}

std::string auth_input(std::string_view topic, std::string_view key, std::string_view body) {
  std::string out(domain);
  length_prefixed(out, topic);
  length_prefixed(out, key);
  length_prefixed(out, body);
  return out;
}

std::string canonical_body(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.contains(auth_member)) {
    throw std::invalid_argument("a fleet message body must be a JSON object without \"auth\"");
  }
  return j.dump();
}

std::string attach_auth(std::string_view canonical, std::string_view key_id, std::string_view mac) {
  auto j = nlohmann::json::parse(canonical);
  j[std::string(auth_member)] = to_hex(key_id) + ":" + to_hex(mac);
  return j.dump();
}

}  // namespace cdr
