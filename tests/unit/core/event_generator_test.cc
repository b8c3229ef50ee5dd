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

}  // namespace
}  // namespace cdr
