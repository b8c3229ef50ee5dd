#include "cdr/crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace cdr::crypto {
namespace {

constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;

auto* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }
const auto* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(bytes(out), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the random number generator failed");
  }
  return out;
}

void cleanse(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

struct aead::state {
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  // Nonces are drawn from the CSPRNG a buffer at a time.
  std::array<unsigned char, nonce_size * 256> nonces{};
  std::size_t used = nonces.size();
  ~state() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }
  const unsigned char* next_nonce() {
    if (used == nonces.size()) {
      if (RAND_bytes(nonces.data(), static_cast<int>(nonces.size())) != 1) {
        throw std::runtime_error("the random number generator failed");
      }
      used = 0;
    }
    const auto* n = nonces.data() + used;
    used += nonce_size;
    return n;
  }
};

aead::aead(std::string_view key) : s_(new state) {
  if (key.size() != aead_key_size) {
    delete s_;
    throw std::invalid_argument("an AES-256-GCM key has 32 bytes");
  }
  if (s_->enc == nullptr || s_->dec == nullptr ||
      EVP_EncryptInit_ex(s_->enc, EVP_aes_256_gcm(), nullptr, bytes(key), nullptr) != 1 ||
      EVP_DecryptInit_ex(s_->dec, EVP_aes_256_gcm(), nullptr, bytes(key), nullptr) != 1) {
    delete s_;
    throw std::runtime_error("cannot set up AES-256-GCM");
  }
}

aead::~aead() { delete s_; }

std::string aead::seal(std::string_view plaintext, std::string_view associated_data) {
  std::string out;
  seal_to(out, plaintext, associated_data);
  return out;
}

void aead::seal_to(std::string& out, std::string_view plaintext, std::string_view associated_data) {
  const auto at = out.size();
  out.resize(at + aead_overhead + plaintext.size());
  auto* p = bytes(out) + at;
  p[0] = static_cast<unsigned char>(aead_version);
  const auto* nonce = s_->next_nonce();
  std::copy(nonce, nonce + nonce_size, p + 1);
  int len = 0;
  bool ok =
      EVP_EncryptInit_ex(s_->enc, nullptr, nullptr, nullptr, p + 1) == 1 &&
      EVP_EncryptUpdate(s_->enc, nullptr, &len, bytes(associated_data), static_cast<int>(associated_data.size())) == 1;
  auto* c = p + 1 + nonce_size;
  int written = 0;
  ok = ok && EVP_EncryptUpdate(s_->enc, c, &written, bytes(plaintext), static_cast<int>(plaintext.size())) == 1;
  ok = ok && EVP_EncryptFinal_ex(s_->enc, c + written, &len) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(s_->enc, EVP_CTRL_GCM_GET_TAG, tag_size, c + plaintext.size()) == 1;
  if (!ok) {
    out.resize(at);
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
}

std::optional<std::string> aead::open(std::string_view sealed, std::string_view associated_data) {
  if (sealed.size() < aead_overhead || sealed[0] != aead_version) return std::nullopt;
  const auto* p = bytes(sealed);
  const auto n = sealed.size() - aead_overhead;
  std::string out(n, '\0');
  int len = 0;
  std::array<unsigned char, tag_size> tag{};
  std::copy(p + 1 + nonce_size + n, p + sealed.size(), tag.begin());
  bool ok = EVP_DecryptInit_ex(s_->dec, nullptr, nullptr, nullptr, p + 1) == 1 &&
            EVP_DecryptUpdate(s_->dec, nullptr, &len, bytes(associated_data),
                              static_cast<int>(associated_data.size())) == 1 &&
            EVP_DecryptUpdate(s_->dec, bytes(out), &len, p + 1 + nonce_size, static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(s_->dec, EVP_CTRL_GCM_SET_TAG, tag_size, tag.data()) == 1;
  int tail = 0;
  ok = ok && EVP_DecryptFinal_ex(s_->dec, bytes(out) + len, &tail) == 1;
  if (!ok) {
    cleanse(out);
    return std::nullopt;
  }
  return out;
}

}  // namespace cdr::crypto
