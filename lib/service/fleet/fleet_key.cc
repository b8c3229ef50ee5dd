#include "fleet_key.h"

#include <algorithm>

#include "cdr/core/hex.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

constexpr std::size_t min_key_bytes = 32;

}  // namespace

fleet_key::secret_key fleet_key::make(std::string secret) {
  auto id = crypto::hmac_sha256(secret, "cdr-retention fleet key id v1").substr(0, fleet_key_id_bytes);
  return {std::move(secret), std::move(id)};
}

fleet_key::fleet_key(std::string signing, std::vector<std::string> accepted) {
  keys_.push_back(make(std::move(signing)));
  for (auto& a : accepted) {
    auto k = make(std::move(a));
    if (!knows(k.id)) keys_.push_back(std::move(k));
  }
}

fleet_key fleet_key::load(const kafka_config& k, std::string_view subject_key) {
  auto signing = k.fleet_key_file.empty() ? crypto::hmac_sha256(subject_key, "cdr-retention fleet key v1")
                                          : crypto::load_key_file(k.fleet_key_file, min_key_bytes, "fleet key file");
  std::vector<std::string> accepted;
  for (const auto& f : k.fleet_accept_key_files) {
    accepted.push_back(crypto::load_key_file(f, min_key_bytes, "accepted fleet key file"));
  }
  return fleet_key(std::move(signing), std::move(accepted));
}

std::string fleet_key::sign(std::string_view topic, std::string_view message_key, std::string_view body) const {
  const auto canonical = canonical_body(body);
  const auto& k = keys_.front();
  return attach_auth(canonical, k.id, crypto::hmac_sha256(k.secret, auth_input(topic, message_key, canonical)));
}

std::variant<std::string, control_rejection> fleet_key::verify(std::string_view topic, std::string_view message_key,
                                                               std::string_view value) const {
  auto split = split_signed(value);
  if (auto* r = std::get_if<control_rejection>(&split)) return *r;
  auto& s = std::get<signed_value>(split);
  const auto k = std::find_if(keys_.begin(), keys_.end(), [&](const auto& e) { return e.id == s.key_id; });
  if (k == keys_.end()) return control_rejection::unknown_key;
  const auto mac = crypto::hmac_sha256(k->secret, auth_input(topic, message_key, s.body));
  if (!crypto::same_mac(mac, s.mac)) return control_rejection::bad_mac;
  return std::move(s.body);
}

std::string fleet_key::id() const { return to_hex(keys_.front().id); }

std::vector<std::string> fleet_key::accepted_ids() const {
  std::vector<std::string> out;
  for (const auto& k : keys_) out.push_back(to_hex(k.id));
  return out;
}

bool fleet_key::knows(std::string_view raw_id) const {
  return std::any_of(keys_.begin(), keys_.end(), [&](const auto& k) { return k.id == raw_id; });
}

}  // namespace cdr::service
