#include <gtest/gtest.h>

#include "cdr/core/ingest.h"

namespace cdr {
namespace {

TEST(ingest_rules, lateness_follows_the_deadlines_never_early) {
  const retention_policy policy;
  const auto m = month::of(2024, 2);
  const auto strip_at = *parse_rfc3339("2025-03-01T00:00:00Z");
  const auto drop_at = *parse_rfc3339("2034-01-01T00:00:00Z");
  const microseconds tick{1};
  EXPECT_EQ(lateness_of(policy, record_kind::cdr, m, 0, strip_at - tick), lateness::on_time);
  EXPECT_EQ(lateness_of(policy, record_kind::cdr, m, 0, strip_at), lateness::strip);
  EXPECT_EQ(lateness_of(policy, record_kind::cdr, m, 0, drop_at - tick), lateness::strip);
  EXPECT_EQ(lateness_of(policy, record_kind::cdr, m, 0, drop_at), lateness::drop);
  const auto usage_at = *parse_rfc3339("2027-02-01T00:00:00Z");
  EXPECT_EQ(lateness_of(policy, record_kind::usage, m, 0, usage_at - tick), lateness::on_time);
  EXPECT_EQ(lateness_of(policy, record_kind::usage, m, 0, usage_at), lateness::drop);
}

TEST(ingest_rules, content_digest_is_stable_and_sensitive) {
  // Values are on disk: these must never change.
  EXPECT_EQ(content_digest("{\"a\":1}", "{\"to\":\"+1\"}"), content_digest("{\"a\":1}", "{\"to\":\"+1\"}"));
  EXPECT_NE(content_digest("{\"a\":1}", "{\"to\":\"+1\"}"), content_digest("{\"a\":1}", "{\"to\":\"+2\"}"));
  EXPECT_NE(content_digest("ab", "c"), content_digest("a", "bc"));
  EXPECT_EQ(content_digest(""), content_digest("", ""));
  // Pinned: a change of the function (or of the byte order it reads) would
  // make every stored digest disagree with a redelivery's.
  EXPECT_EQ(content_digest("{\"a\":1}", "{\"to\":\"+1\"}"), 0x8c008fbc60f9c188ULL);
  EXPECT_EQ(content_digest(""), 0x986f7c44047a1328ULL);
  EXPECT_EQ(content_digest("{\"type\":\"cdr\",\"id\":\"r-1\"}", "{\"from\":\"+385915550000\"}"), 0x6bfe1b9aa8fdce05ULL);
  EXPECT_EQ(name(ingest_outcome::stripped_on_ingest), "stripped_on_ingest");
}

}  // namespace
}  // namespace cdr
