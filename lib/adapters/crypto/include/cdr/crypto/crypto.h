// OpenSSL adapter: hashing and keyed hashing.
#pragma once

#include <string>
#include <string_view>

namespace cdr::crypto {

// Raw 32-byte SHA-256 and its lower-case hex form.
std::string sha256(std::string_view data);
std::string sha256_hex(std::string_view data);

// Raw 32-byte HMAC-SHA-256.
std::string hmac_sha256(std::string_view key, std::string_view data);

// Whether two MACs are equal, in time that does not depend on where they
// differ (false for different sizes).
bool same_mac(std::string_view a, std::string_view b);

// HMAC-SHA-256 under one fixed key, with the key's inner and outer pads
// hashed once (about ten times faster than hmac_sha256 per call). Not thread
// safe: one per thread.
class keyed_hasher {
 public:
  explicit keyed_hasher(std::string_view key);
  ~keyed_hasher();
  keyed_hasher(const keyed_hasher&) = delete;
  keyed_hasher& operator=(const keyed_hasher&) = delete;
  // Raw 32-byte HMAC-SHA-256 of data.
  std::string operator()(std::string_view data);

 private:
  struct state;
  state* s_;
};

// Reads a secret key file (at least min_bytes; a trailing newline is part
// of the key). Throws std::runtime_error naming the file (`what` describes
// it: "key file", "master key file"), never the key.
std::string load_key_file(const std::string& path, std::size_t min_bytes = 16, std::string_view what = "key file");

}  // namespace cdr::crypto
