#include <gtest/gtest.h>

#include "cdr/core/time.h"

namespace cdr {
namespace {

using namespace std::chrono;

TEST(rfc3339, converts_offsets_to_utc) {
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2025-01-31T23:30:00-02:00")), "2025-02-01T01:30:00Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2025-03-14T09:26:53.589Z")), "2025-03-14T09:26:53.589000Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2025-03-14t09:26:53z")), "2025-03-14T09:26:53Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2025-03-14T09:26:53.123456789+00:00")), "2025-03-14T09:26:53.123456Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-01-01T13:59:59+14:00")), "2025-12-31T23:59:59Z");
  // A leap second folds into the next second.
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2016-12-31T23:59:60Z")), "2017-01-01T00:00:00Z");
}

TEST(rfc3339, refuses_what_is_not_rfc3339) {
  for (const char* bad :
       {"", "2025-03-14", "2025-03-14T09:26:53", "2025-03-14 09:26:53Z", "2025-3-14T09:26:53Z", "2025-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-03-14T24:00:00Z", "2025-03-14T09:60:00Z",
        "2025-03-14T09:26:61Z", "2025-03-14T09:26:53.Z", "2025-03-14T09:26:53+0200", "2025-03-14T09:26:53+24:00",
        "2025-03-14T09:26:53+02:60", "2025-03-14T09:26:53Zjunk", "2025-03-14T09:26:53 Z", "+2025-03-14T09:26:53Z",
        "２０２５-03-14T09:26:53Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
  EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z").has_value());
}

TEST(duration, parses_the_admin_units) {
  EXPECT_EQ(parse_duration("90s"), seconds{90});
  EXPECT_EQ(parse_duration("45m"), minutes{45});
  EXPECT_EQ(parse_duration("12h"), hours{12});
  EXPECT_EQ(parse_duration("17d"), hours{17 * 24});
  EXPECT_EQ(parse_duration("250ms"), milliseconds{250});
  EXPECT_EQ(format_duration(milliseconds{250}), "250ms");
  for (const char* bad :
       {"", "s", "0s", "-5m", "1.5h", "10", "10w", "1h30m", "99999999999999999d", " 5s", "ms", "5mss"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
  EXPECT_EQ(parse_duration("0s", /*allow_zero=*/true), microseconds{0});
  EXPECT_FALSE(parse_duration("-0s", true).has_value());
  EXPECT_EQ(format_duration(seconds{90}), "90s");
  EXPECT_EQ(format_duration(hours{48}), "2d");
  EXPECT_EQ(format_duration(minutes{45}), "45m");
}

TEST(manual_clock, moves_only_when_told) {
  manual_clock c(*parse_rfc3339("2025-01-01T00:00:00Z"));
  EXPECT_TRUE(c.simulated());
  const auto t0 = c.now();
  EXPECT_EQ(c.now(), t0);
  c.advance(*parse_duration("17d"));
  EXPECT_EQ(format_rfc3339(c.now()), "2025-01-18T00:00:00Z");
}

}  // namespace
}  // namespace cdr
