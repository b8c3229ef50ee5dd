// Data-key generations: a key seals at most storage.max_seals_per_key
// values, reserved in the key store before use; then its partition goes on
// under the next generation. Every generation opens its own values, a
// subject's hash does not change, and destruction takes every generation.
#include "vault.h"

#include <gtest/gtest.h>

#include <map>

#include "cdr/crypto/aead.h"
#include "temp_dir.h"

namespace cdr::service {
namespace {

using cdr::test::temp_dir;

constexpr std::uint64_t limit = 3;
const partition march{record_kind::cdr, month::of(2025, 3), 0};

// The generation a sealed value names (0: no header).
std::uint32_t generation_of(const std::string& sealed) {
  if (sealed.empty() || sealed[0] != 0x02) return 0;
  std::uint32_t g = 0;
  for (std::size_t i = 1; i < 5; ++i) g = (g << 8) | static_cast<unsigned char>(sealed[i]);
  return g;
}

class vault_test : public ::testing::Test {
 protected:
  struct sealed_value {
    std::string ad, plain, sealed, hash;
  };
  sealed_value seal(vault& v, int i, key_scope scope = key_scope::partition) {
    sealed_value s{"key-" + std::to_string(i), "{\"from\":\"+4415550" + std::to_string(i) + "\"}", {}, {}};
    std::vector<std::string> hashes;
    EXPECT_TRUE(v.seal_indexed(scope, march, s.ad, s.plain, {"+441555000"}, s.sealed, hashes));
    s.hash = hashes.at(0);
    return s;
  }
  std::string path() const { return dir_ / "keystore.json"; }
  const std::string master_ = std::string(32, 'm');
  temp_dir dir_;
};

TEST_F(vault_test, a_key_seals_at_most_the_limit_then_its_partition_goes_on_under_the_next_generation) {
  crypto::keystore keys(path(), master_, true);
  vault v(keys, limit);
  std::vector<sealed_value> values;
  for (int i = 0; i < 10; ++i) values.push_back(seal(v, i));
  std::map<std::uint32_t, int> per_generation;
  for (const auto& s : values) ++per_generation[generation_of(s.sealed)];
  EXPECT_EQ(per_generation, (std::map<std::uint32_t, int>{{0, 3}, {1, 3}, {2, 3}, {3, 1}}));
  EXPECT_EQ(v.generations(key_scope::partition, march), 4u);
  for (std::uint32_t g = 0; g < 4; ++g) {
    EXPECT_LE(keys.reserved(key_name(key_scope::partition, march, g)), limit) << g;
  }
  for (const auto& s : values) {
    const auto o = v.open(key_scope::partition, march, s.ad, s.sealed);
    ASSERT_EQ(o.status, vault::open_status::ok);
    EXPECT_EQ(o.plaintext, s.plain);
    EXPECT_EQ(s.hash, values[0].hash) << "a subject's hash does not change with the generation";
  }
  EXPECT_EQ(v.index_hash(key_scope::partition, march, "+441555000"), values[0].hash);
  EXPECT_EQ(v.live().size(), 1u) << "one key, four generations";

  // A value moved to another generation, or with a cut header, never opens.
  auto moved = values[4].sealed;
  moved[4] = 2;
  EXPECT_EQ(v.open(key_scope::partition, march, values[4].ad, moved).status, vault::open_status::unreadable);
  EXPECT_EQ(v.open(key_scope::partition, march, values[4].ad, values[4].sealed.substr(0, 3)).status,
            vault::open_status::unreadable);
  auto absent = values[4].sealed;
  absent[1] = 1;
  EXPECT_EQ(v.open(key_scope::partition, march, values[4].ad, absent).status, vault::open_status::unreadable);

  // A strip destroys every generation; none comes back.
  const auto destroyed = v.destroy({{key_scope::partition, march}});
  EXPECT_EQ(destroyed.size(), 4u);
  EXPECT_EQ(keys.live(), 0u);
  EXPECT_EQ(v.generations(key_scope::partition, march), 0u);
  EXPECT_TRUE(v.destroyed(key_scope::partition, march));
  for (const auto& s : values) {
    EXPECT_EQ(v.open(key_scope::partition, march, s.ad, s.sealed).status, vault::open_status::key_destroyed);
  }
  std::string sealed;
  std::vector<std::string> hashes;
  EXPECT_FALSE(v.seal_indexed(key_scope::partition, march, "k", "x", {}, sealed, hashes));
}

TEST_F(vault_test, after_a_restart_sealing_goes_on_under_the_newest_generation_and_never_past_a_reservation) {
  std::vector<sealed_value> values;
  {
    crypto::keystore keys(path(), master_, true);
    vault v(keys, limit);
    for (int i = 0; i < 4; ++i) values.push_back(seal(v, i));  // generation 1 holds one, reserved three
  }
  crypto::keystore keys(path(), master_, false);
  vault v(keys, limit);
  values.push_back(seal(v, 4));
  // What generation 1 reserved before the restart may have been used: it is
  // never handed out again, so sealing moves on to generation 2.
  EXPECT_EQ(generation_of(values.back().sealed), 2u);
  for (const auto& s : values) {
    EXPECT_EQ(v.open(key_scope::partition, march, s.ad, s.sealed).plaintext, s.plain);
  }
  for (std::uint32_t g = 0; g < 3; ++g) {
    EXPECT_LE(keys.reserved(key_name(key_scope::partition, march, g)), limit);
  }
}

TEST_F(vault_test, a_held_key_rolls_over_too_and_is_created_anew_after_destruction) {
  crypto::keystore keys(path(), master_, true);
  vault v(keys, limit);
  for (int i = 0; i < 5; ++i) seal(v, i, key_scope::held);
  EXPECT_EQ(v.generations(key_scope::held, march), 2u);
  v.destroy({{key_scope::held, march}});
  const auto again = seal(v, 9, key_scope::held);
  EXPECT_EQ(generation_of(again.sealed), 0u) << "a new held key starts at generation 0";
  EXPECT_EQ(v.open(key_scope::held, march, again.ad, again.sealed).plaintext, again.plain);
}

}  // namespace
}  // namespace cdr::service
