#include <gtest/gtest.h>

#include <set>

#include "cdr/core/event_generator.h"

namespace cdr {
namespace {

TEST(event_generator, is_deterministic_and_valid) {
  generator_options o;
  o.seed = 42;
  o.late_fraction = 0.05;
  o.malformed_fraction = 0.05;
  event_generator a(o), b(o);
  event_parser parser;
  parsed_event e;
  std::set<std::string> ids;
  std::size_t malformed = 0, late = 0, usage = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto x = a.next();
    const auto y = b.next();
    ASSERT_EQ(x.json, y.json);
    EXPECT_TRUE(ids.insert(x.id).second) << "ids are unique: " << x.id;
    const auto got = parser.parse(x.json, o.now, &e);
    if (x.expected_reject) {
      ++malformed;
      ASSERT_EQ(got, x.expected_reject) << x.json;
      continue;
    }
    ASSERT_EQ(got, std::nullopt) << x.json;
    EXPECT_EQ(e.id, x.id);
    EXPECT_EQ(e.kind, x.kind);
    if (x.late) {
      ++late;
      EXPECT_LE(e.month.plus(13), month::containing(o.now));
    }
    if (x.kind == record_kind::usage) ++usage;
  }
  EXPECT_NEAR(static_cast<double>(malformed) / 20000, 0.05, 0.01);
  EXPECT_NEAR(static_cast<double>(late) / 20000, 0.05 * 0.95, 0.01);
  EXPECT_NEAR(static_cast<double>(usage) / 20000, 0.15 * 0.95, 0.02);
}

TEST(event_generator, different_seeds_give_different_ids) {
  generator_options o1, o2;
  o2.seed = 2;
  EXPECT_NE(event_generator(o1).next().id, event_generator(o2).next().id);
}

TEST(event_generator, random_ids_are_uuid_v4_shaped_unique_and_unordered) {
  generator_options o;
  o.random_ids = true;
  event_generator gen(o);
  event_parser parser;
  parsed_event e;
  std::set<std::string> ids;
  std::size_t descending = 0;
  std::string previous;
  for (int i = 0; i < 10000; ++i) {
    const auto x = gen.next();
    ASSERT_EQ(x.id.size(), 36u) << x.id;
    EXPECT_EQ(x.id[8], '-');
    EXPECT_EQ(x.id[14], '4') << "version 4: " << x.id;
    EXPECT_NE(std::string("89ab").find(x.id[19]), std::string::npos) << "RFC 4122 variant: " << x.id;
    EXPECT_TRUE(ids.insert(x.id).second) << x.id;
    ASSERT_EQ(parser.parse(x.json, o.now, &e), std::nullopt) << x.json;
    EXPECT_EQ(e.id, x.id);
    if (x.id < previous) ++descending;
    previous = x.id;
  }
  // Random order: about half the steps go down (ULID-shaped ids never do).
  EXPECT_NEAR(static_cast<double>(descending) / 10000, 0.5, 0.05);
}

}  // namespace
}  // namespace cdr
