#include <gtest/gtest.h>

#include <set>
#include <string>

#include "cdr/core/hex.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"

namespace cdr::crypto {
namespace {

// RFC 4231 test case 2 and a key longer than the block (test case 6).
TEST(crypto, hmac_sha256_matches_rfc_4231) {
  EXPECT_EQ(cdr::to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string long_key(131, '\xaa');
  const std::string msg = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(cdr::to_hex(hmac_sha256(long_key, msg)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  keyed_hasher jefe("Jefe");
  keyed_hasher big(long_key);
  EXPECT_EQ(jefe("what do ya want for nothing?"), hmac_sha256("Jefe", "what do ya want for nothing?"));
  EXPECT_EQ(big(msg), hmac_sha256(long_key, msg));
  EXPECT_EQ(jefe("again"), hmac_sha256("Jefe", "again")) << "reusable";
}

// AES-GCM under one key must never reuse a nonce (a reuse reveals the XOR
// of two plaintexts and lets tags be forged): every seal, across more than
// one refill of the nonce buffer, draws a fresh one.
TEST(crypto, every_seal_draws_a_fresh_nonce) {
  aead a(std::string(aead_key_size, 'k'));
  std::set<std::string> nonces, sealed;
  constexpr int n = 1000;  // the nonce buffer holds 256
  for (int i = 0; i < n; ++i) {
    const auto v = a.seal("the same plaintext", "the same context");
    ASSERT_EQ(v.size(), aead_overhead + 18);
    nonces.insert(v.substr(1, 12));
    sealed.insert(v);
  }
  EXPECT_EQ(nonces.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(sealed.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(a.open(*sealed.begin(), "the same context"), std::optional<std::string>("the same plaintext"));
}

TEST(crypto, sha256_hex) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace cdr::crypto
