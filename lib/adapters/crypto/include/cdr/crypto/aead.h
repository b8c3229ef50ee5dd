// AES-256-GCM under one fixed key (OpenSSL EVP), for identifier values and
// wrapped data keys.
//
// A sealed value is
//   version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | tag (16 bytes)
// and authenticates the caller's associated data (the storage key it is
// written under), so a value moved to another key does not open.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cdr::crypto {

inline constexpr std::size_t aead_key_size = 32;
inline constexpr std::size_t aead_overhead = 1 + 12 + 16;
inline constexpr char aead_version = 0x01;

// n bytes from OpenSSL's CSPRNG; throws std::runtime_error if it fails.
std::string random_bytes(std::size_t n);

// Overwrites a secret in memory (not optimised away).
void cleanse(std::string& secret);

// Not thread safe: one per thread, or guarded by the owner. The key schedule
// is computed once; each call only sets a fresh nonce.
class aead {
 public:
  // key: 32 bytes.
  explicit aead(std::string_view key);
  ~aead();
  aead(const aead&) = delete;
  aead& operator=(const aead&) = delete;

  std::string seal(std::string_view plaintext, std::string_view associated_data);
  // Appends the sealed form to out.
  void seal_to(std::string& out, std::string_view plaintext, std::string_view associated_data);
  // nullopt when the value is not a sealed value of this key and associated
  // data (wrong key, tampered bytes, truncated): never garbage.
  std::optional<std::string> open(std::string_view sealed, std::string_view associated_data);

 private:
  struct state;
  state* s_;
};

}  // namespace cdr::crypto
