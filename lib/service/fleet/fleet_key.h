// The fleet key (docs/operations.md, "The fleet key"): signs every message
// this member writes to the control and replies topics, and verifies what
// it reads there (cdr/core/fleet_auth.h has the format).
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cdr/core/config.h"
#include "cdr/core/fleet_auth.h"

namespace cdr::service {

class fleet_key {
 public:
  // `signing`: the key this member signs with (and accepts); `accepted`:
  // further keys it accepts while the fleet key is rotated.
  explicit fleet_key(std::string signing, std::vector<std::string> accepted = {});
  // kafka.fleet_key_file (empty: derived from the subject key) and
  // kafka.fleet_accept_key_files. Throws std::runtime_error naming a file
  // that cannot be read or is too short.
  static fleet_key load(const kafka_config& k, std::string_view subject_key);

  // The value to publish: `body` (a JSON object's text) signed for `topic`
  // and `key`.
  std::string sign(std::string_view topic, std::string_view message_key, std::string_view body) const;
  // The body (canonical text, without "auth") when `value` is authentic
  // for `topic` and `key`; why it is refused otherwise.
  std::variant<std::string, control_rejection> verify(std::string_view topic, std::string_view message_key,
                                                      std::string_view value) const;
  // The signing key's id (hex), and every id this member accepts.
  std::string id() const;
  std::vector<std::string> accepted_ids() const;
  bool knows(std::string_view raw_id) const;

 private:
  struct secret_key {
    std::string secret;
    std::string id;  // raw
  };
  static secret_key make(std::string secret);
  std::vector<secret_key> keys_;  // the signing key first
};

}  // namespace cdr::service
