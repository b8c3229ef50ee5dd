// The fleet key (issue "Fleet trust"): what one member signs another with
// the same key verifies; anything altered, moved to another topic or key,
// unsigned or signed under another key is refused, with its reason.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cdr/core/fleet_auth.h"
#include "fleet/fleet_key.h"

namespace cdr::test {
namespace {

using service::fleet_key;

const std::string body = R"({"type":"hold_release","member":"m-1","request":"m-1/ab","at":"2025-01-01T00:00:00Z",)"
                         R"("uid":1000,"hold_request":"m-2/cd"})";

control_rejection refused(const fleet_key& k, std::string_view topic, std::string_view key, std::string_view value) {
  auto v = k.verify(topic, key, value);
  EXPECT_TRUE(std::holds_alternative<control_rejection>(v)) << value;
  return std::holds_alternative<control_rejection>(v) ? std::get<control_rejection>(v) : control_rejection::malformed;
}

TEST(fleet_key, a_signed_message_verifies_under_the_same_key_only) {
  const fleet_key a(std::string(32, 'a'));
  const fleet_key same(std::string(32, 'a'));
  const auto value = a.sign("control", "hold_release/m-1/ab", body);
  const auto ok = same.verify("control", "hold_release/m-1/ab", value);
  ASSERT_TRUE(std::holds_alternative<std::string>(ok));
  EXPECT_EQ(nlohmann::json::parse(std::get<std::string>(ok)), nlohmann::json::parse(body));
  EXPECT_EQ(a.id(), same.id());

  const fleet_key other(std::string(32, 'b'));
  EXPECT_NE(other.id(), a.id());
  EXPECT_EQ(refused(other, "control", "hold_release/m-1/ab", value), control_rejection::unknown_key);
  // Rotation: a member that also accepts the old key verifies it.
  const fleet_key rotating(std::string(32, 'b'), {std::string(32, 'a')});
  EXPECT_TRUE(std::holds_alternative<std::string>(rotating.verify("control", "hold_release/m-1/ab", value)));
  EXPECT_EQ(rotating.accepted_ids().size(), 2u);
}

TEST(fleet_key, altered_moved_unsigned_and_junk_messages_are_refused_with_their_reason) {
  const fleet_key k(std::string(32, 'k'));
  const auto value = k.sign("control", "hold_release/m-1/ab", body);
  EXPECT_EQ(refused(k, "replies", "hold_release/m-1/ab", value), control_rejection::bad_mac) << "another topic";
  EXPECT_EQ(refused(k, "control", "hold_release/m-1/zz", value), control_rejection::bad_mac) << "another key";
  auto altered = nlohmann::json::parse(value);
  altered["uid"] = 0;
  EXPECT_EQ(refused(k, "control", "hold_release/m-1/ab", altered.dump()), control_rejection::bad_mac);
  EXPECT_EQ(refused(k, "control", "hold_release/m-1/ab", body), control_rejection::unsigned_);
  EXPECT_EQ(refused(k, "control", "x", "not json"), control_rejection::malformed);
  EXPECT_EQ(refused(k, "control", "x", R"({"auth":"00:11"})"), control_rejection::malformed);
  EXPECT_EQ(refused(k, "control", "x", R"({"auth":7})"), control_rejection::malformed);
  EXPECT_EQ(refused(k, "control", "x", "[1,2]"), control_rejection::malformed);
}

TEST(fleet_key, the_signature_covers_the_canonical_body_whatever_its_spacing) {
  const fleet_key k(std::string(32, 'k'));
  const auto value = k.sign("control", "k", R"({ "b" : 1, "a" : "x" })");
  // Re-serialised by a proxy (members reordered, spaces): still authentic.
  auto j = nlohmann::json::parse(value);
  EXPECT_TRUE(std::holds_alternative<std::string>(k.verify("control", "k", j.dump(2))));
  EXPECT_THROW(static_cast<void>(k.sign("control", "k", "[1]")), std::invalid_argument) << "only objects are signed";
}

}  // namespace
}  // namespace cdr::test
