#include "cdr/crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "cdr/core/hex.h"

namespace cdr::crypto {

std::string sha256(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len, EVP_sha256(), nullptr);
  return out;
}

std::string sha256_hex(std::string_view data) { return cdr::to_hex(sha256(data)); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

struct keyed_hasher::state {
  EVP_MD_CTX* inner = EVP_MD_CTX_new();
  EVP_MD_CTX* outer = EVP_MD_CTX_new();
  EVP_MD_CTX* work = EVP_MD_CTX_new();
  ~state() {
    EVP_MD_CTX_free(inner);
    EVP_MD_CTX_free(outer);
    EVP_MD_CTX_free(work);
  }
};

keyed_hasher::keyed_hasher(std::string_view key) : s_(new state) {
  // RFC 2104: keys longer than the block are hashed first.
  std::string k = key.size() > 64 ? sha256(key) : std::string(key);
  k.resize(64, '\0');
  unsigned char ipad[64];
  unsigned char opad[64];
  for (std::size_t i = 0; i < 64; ++i) {
    ipad[i] = static_cast<unsigned char>(k[i] ^ 0x36);
    opad[i] = static_cast<unsigned char>(k[i] ^ 0x5c);
  }
  EVP_DigestInit_ex(s_->inner, EVP_sha256(), nullptr);
  EVP_DigestUpdate(s_->inner, ipad, sizeof ipad);
  EVP_DigestInit_ex(s_->outer, EVP_sha256(), nullptr);
  EVP_DigestUpdate(s_->outer, opad, sizeof opad);
}

keyed_hasher::~keyed_hasher() { delete s_; }

std::string keyed_hasher::operator()(std::string_view data) {
  unsigned char inner_hash[32];
  unsigned int len = 0;
  std::string out(32, '\0');
  EVP_MD_CTX_copy_ex(s_->work, s_->inner);
  EVP_DigestUpdate(s_->work, data.data(), data.size());
  EVP_DigestFinal_ex(s_->work, inner_hash, &len);
  EVP_MD_CTX_copy_ex(s_->work, s_->outer);
  EVP_DigestUpdate(s_->work, inner_hash, sizeof inner_hash);
  EVP_DigestFinal_ex(s_->work, reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

bool same_mac(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string load_key_file(const std::string& path, std::size_t min_bytes, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read the {} {}: {}", what, path, std::strerror(errno)));
  std::stringstream s;
  s << in.rdbuf();
  auto key = s.str();
  if (key.size() < min_bytes) {
    throw std::runtime_error(
        fmt::format("the {} {} holds {} bytes; it needs at least {} random bytes "
                    "(head -c 32 /dev/urandom > FILE)",
                    what, path, key.size(), min_bytes));
  }
  return key;
}

}  // namespace cdr::crypto
