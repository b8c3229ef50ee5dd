// How the fleet's Kafka messages are authenticated (docs/operations.md,
// "The fleet key"): the pure half; the MAC itself is the crypto adapter's.
//
// Every value a member writes to the control and replies topics is a JSON
// object carrying, beside its own members, "auth": "<key id>:<mac>", both
// hex. The MAC is HMAC-SHA-256 under the fleet key of auth_input(): the
// topic, the message's Kafka key and the object's canonical text without
// "auth". So it covers everything the message says (type, body, member,
// request id, operator uid, time; a reply's request, member and part), and
// a message cannot be moved to another topic or key. The key id names which
// of the keys a member holds signed it (rotation), and says nothing of it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace cdr {

// Why a message on the control or replies topic was refused (labels of
// cdr_retention_control_rejected_total).
enum class control_rejection : std::uint8_t {
  malformed,    // not a JSON object, or an "auth" member that is not "<16 hex>:<64 hex>"
  unsigned_,    // no "auth" member
  unknown_key,  // signed under a key this member does not hold
  bad_mac,      // the MAC does not match: forged or altered
  replay,       // an authentic message applied or seen before
};
std::string_view name(control_rejection r);
inline constexpr std::array<control_rejection, 5> all_control_rejections{
    control_rejection::malformed, control_rejection::unsigned_, control_rejection::unknown_key,
    control_rejection::bad_mac, control_rejection::replay};

// A key id: 8 bytes (16 hex digits); a MAC: 32 bytes.
inline constexpr std::size_t fleet_key_id_bytes = 8;
inline constexpr std::size_t fleet_mac_bytes = 32;

// A value split into what the MAC covers and the MAC.
struct signed_value {
  std::string body;    // the object without "auth", canonical (as json::dump writes it)
  std::string key_id;  // raw
  std::string mac;     // raw
};
std::variant<signed_value, control_rejection> split_signed(std::string_view value);

// The bytes a MAC is computed over: each part length-prefixed, so no two
// (topic, key, body) triples give the same input.
std::string auth_input(std::string_view topic, std::string_view key, std::string_view body);

// `body`'s canonical text (it must be a JSON object's text); throws
// std::invalid_argument otherwise.
std::string canonical_body(std::string_view body);
// The canonical body with "auth" added.
std::string attach_auth(std::string_view canonical, std::string_view key_id, std::string_view mac);

}  // namespace cdr
