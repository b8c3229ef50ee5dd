#include "cdr/crypto/keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "cdr/core/hex.h"
#include "cdr/crypto/aead.h"
#include "temp_dir.h"

namespace cdr::crypto {
namespace {

using cdr::test::read_file;
using cdr::test::temp_dir;
using cdr::test::write_file;

std::string unhex(std::string_view h) { return *cdr::from_hex(h); }

// The GCM specification's test case 16 (AES-256, 60-byte plaintext, 20
// bytes of associated data), in this module's sealed layout.
TEST(aead, opens_the_gcm_specification_vector) {
  aead gcm(unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"));
  const auto ad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const auto sealed = std::string(1, aead_version) + unhex("cafebabefacedbaddecaf888") +
                      unhex(
                          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7"
                          "b08b1056828838c5f61e63"
                          "93ba7a0abcc9f662") +
                      unhex("76fc6ece0f4e1768cddf8853bb2d551b");
  const auto plain = gcm.open(sealed, ad);
  ASSERT_TRUE(plain);
  EXPECT_EQ(to_hex(*plain),
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
            "b16aedf5"
            "aa0de657ba637b39");
}

TEST(aead, round_trips_and_never_opens_anything_altered) {
  const auto key = random_bytes(32);
  aead gcm(key);
  const std::string plain = R"({"from":"+4915112345678","to":"alice@example.org"})";
  const auto sealed = gcm.seal(plain, "record-key");
  ASSERT_EQ(sealed.size(), plain.size() + aead_overhead);
  EXPECT_EQ(sealed.find("4915112345678"), std::string::npos);
  EXPECT_EQ(gcm.open(sealed, "record-key"), plain);
  EXPECT_NE(gcm.seal(plain, "record-key"), sealed) << "a fresh nonce per seal";
  EXPECT_FALSE(gcm.open(sealed, "other-key")) << "moved to another key";
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    auto flipped = sealed;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    EXPECT_FALSE(gcm.open(flipped, "record-key")) << "byte " << i;
  }
  EXPECT_FALSE(gcm.open(sealed.substr(0, sealed.size() - 1), "record-key"));
  EXPECT_FALSE(gcm.open(sealed.substr(0, 5), "record-key"));
  EXPECT_FALSE(gcm.open("", "record-key"));
  aead other(random_bytes(32));
  EXPECT_FALSE(other.open(sealed, "record-key"));
  EXPECT_EQ(gcm.open(gcm.seal("", "k"), "k"), "");
  EXPECT_THROW(aead("short"), std::invalid_argument);
}

TEST(aead, nonces_do_not_repeat) {
  aead gcm(random_bytes(32));
  std::set<std::string> nonces;
  for (int i = 0; i < 5000; ++i) nonces.insert(gcm.seal("x", "").substr(1, 12));  // spans buffer refills
  EXPECT_EQ(nonces.size(), 5000u);
}

class keystore_test : public ::testing::Test {
 protected:
  std::string path() const { return dir_ / "keystore.json"; }
  const std::string master_ = std::string(32, 'm');
  temp_dir dir_;
};

TEST_F(keystore_test, keys_persist_wrapped_and_the_file_is_private) {
  data_key a;
  {
    keystore ks(path(), master_, true);
    EXPECT_EQ(ks.live(), 0u);
    a = *ks.get_or_create("p/cdr/2025-03/0", false);
    EXPECT_EQ(a.cipher.size(), 32u);
    EXPECT_EQ(a.index.size(), 32u);
    EXPECT_NE(a.cipher, a.index);
    EXPECT_EQ(ks.get_or_create("p/cdr/2025-03/0", false)->cipher, a.cipher) << "created once";
  }
  const auto text = read_file(path());
  EXPECT_EQ(text.find(to_hex(a.cipher)), std::string::npos) << "wrapped, never in the clear";
  EXPECT_EQ(text.find(to_hex(a.index)), std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  keystore again(path(), master_, false);
  ASSERT_TRUE(again.get("p/cdr/2025-03/0"));
  EXPECT_EQ(again.get("p/cdr/2025-03/0")->cipher, a.cipher);
  EXPECT_EQ(again.get("p/cdr/2025-03/0")->index, a.index);
  EXPECT_FALSE(again.get("p/cdr/2025-04/0"));
}

TEST_F(keystore_test, a_wrong_master_key_is_refused_and_changes_nothing) {
  keystore(path(), master_, true).get_or_create("p/cdr/2025-03/0", false);
  const auto before = read_file(path());
  try {
    keystore ks(path(), std::string(32, 'x'), false);
    FAIL() << "opened with the wrong master key";
  } catch (const keystore_error& e) {
    EXPECT_NE(std::string(e.what()).find("master key does not open"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path()), before);
  EXPECT_THROW(keystore((dir_ / "absent.json"), master_, false), keystore_error) << "not created unless asked";
  write_file(dir_ / "short.key", "0123456789");
  EXPECT_THROW(load_master_key(dir_ / "short.key"), keystore_error);
  EXPECT_THROW(load_master_key(dir_ / "missing.key"), keystore_error);
  write_file(dir_ / "bad.json", "{\"format\":1}");
  EXPECT_THROW(keystore((dir_ / "bad.json"), master_, false), keystore_error);
}

TEST_F(keystore_test, destroying_a_key_removes_its_wrapped_bytes_from_the_file_for_good) {
  keystore ks(path(), master_, true);
  ks.get_or_create("p/cdr/2025-03/0", false);
  ks.get_or_create("p/cdr/2025-04/0", false);
  const auto before = read_file(path());
  const auto wrapped_of = [](const std::string& text, const std::string& name) {
    const auto at = text.find("\"" + name + "\":\"");
    if (at == std::string::npos) return std::string();
    const auto start = at + name.size() + 4;
    return text.substr(start, text.find('"', start) - start);
  };
  const auto gone = wrapped_of(before, "p/cdr/2025-03/0");
  const auto kept = wrapped_of(before, "p/cdr/2025-04/0");
  ASSERT_GT(gone.size(), 64u);
  EXPECT_EQ(ks.destroy({"p/cdr/2025-03/0", "p/cdr/2019-01/0"}), std::vector<std::string>{"p/cdr/2025-03/0"});
  const auto after = read_file(path());
  EXPECT_EQ(after.find(gone), std::string::npos);
  EXPECT_NE(after.find(kept), std::string::npos);
  EXPECT_FALSE(ks.get("p/cdr/2025-03/0"));
  EXPECT_TRUE(ks.destroyed("p/cdr/2025-03/0"));
  EXPECT_FALSE(ks.get_or_create("p/cdr/2025-03/0", false)) << "a destroyed key never comes back";
  EXPECT_EQ(ks.live(), 1u);
  EXPECT_EQ(ks.destroyed_total(), 1u);
  keystore reopened(path(), master_, false);
  EXPECT_FALSE(reopened.get("p/cdr/2025-03/0"));
  EXPECT_TRUE(reopened.destroyed("p/cdr/2025-03/0"));
  EXPECT_EQ(reopened.destroyed_total(), 1u);
  // A held key may be created anew: a different key, so old copies stay shut.
  const auto h1 = *reopened.get_or_create("h/cdr/2025-03/0", true);
  reopened.destroy({"h/cdr/2025-03/0"});
  const auto h2 = reopened.get_or_create("h/cdr/2025-03/0", true);
  ASSERT_TRUE(h2);
  EXPECT_NE(h2->cipher, h1.cipher);
  EXPECT_EQ(reopened.destroyed_total(), 2u);
}

TEST_F(keystore_test, rewrap_changes_the_master_key_but_not_the_data_keys) {
  data_key a;
  {
    keystore ks(path(), master_, true);
    a = *ks.get_or_create("p/cdr/2025-03/0", false);
    ks.rewrap(std::string(40, 'n'));
  }
  EXPECT_THROW(keystore(path(), master_, false), keystore_error);
  keystore ks(path(), std::string(40, 'n'), false);
  EXPECT_EQ(ks.get("p/cdr/2025-03/0")->cipher, a.cipher);
}

TEST_F(keystore_test, reservations_persist_never_pass_the_limit_and_must_parse) {
  {
    keystore ks(path(), master_, true);
    EXPECT_THROW(ks.reserve("p/cdr/2025-03/0", 1, 10), keystore_error) << "no such key";
    ks.get_or_create("p/cdr/2025-03/0", false);
    EXPECT_EQ(ks.reserve("p/cdr/2025-03/0", 4, 10), 4u);
    EXPECT_EQ(ks.reserve("p/cdr/2025-03/0", 4, 10), 4u);
    EXPECT_EQ(ks.reserve("p/cdr/2025-03/0", 4, 10), 2u) << "only what is left under the limit";
    EXPECT_EQ(ks.reserve("p/cdr/2025-03/0", 4, 10), 0u);
  }
  keystore again(path(), master_, false);
  EXPECT_EQ(again.reserved("p/cdr/2025-03/0"), 10u) << "written before it is granted";
  EXPECT_EQ(again.reserve("p/cdr/2025-03/0", 1, 10), 0u);
  // A reservation that does not parse stops the start: never read as 0.
  auto text = read_file(path());
  const auto at = text.find("\"reserved\":{\"p/cdr/2025-03/0\":10}");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 33, "\"reserved\":{\"p/cdr/2025-03/0\":-1}");
  write_file(path(), text);
  EXPECT_THROW(keystore(path(), master_, false), keystore_error);
  text.replace(at, 33, "\"reserved\":{\"p/cdr/2025-09/0\":10}");
  write_file(path(), text);
  EXPECT_THROW(keystore(path(), master_, false), keystore_error) << "names an unknown key";
}

}  // namespace
}  // namespace cdr::crypto
