// Deadlines of the default rules (retention.md) across month ends, year ends,
// leap years and UTC offsets, checked against an independent oracle built on
// std::chrono's calendar instead of the month type.
#include <gtest/gtest.h>

#include "cdr/core/month.h"
#include "cdr/core/policy.h"
#include "cdr/core/time.h"

namespace cdr {
namespace {

using namespace std::chrono;

instant at(const char* rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(instant{});
}

struct deadline_case {
  const char* occurred_at;  // as the producer sends it
  const char* month;        // UTC month of communication
  const char* strip;        // identifiers leave at
  const char* drop;         // metadata leaves at
  const char* usage;        // usage data leaves at
};

void PrintTo(const deadline_case& c, std::ostream* os) { *os << c.occurred_at; }

class default_deadlines : public ::testing::TestWithParam<deadline_case> {};

TEST_P(default_deadlines, match_the_notice) {
  const auto& c = GetParam();
  const retention_policy policy;
  const auto m = month::containing(at(c.occurred_at));
  EXPECT_EQ(m.to_string(), c.month);
  EXPECT_EQ(format_rfc3339(policy.deadline(retention_action::strip_identifiers, m, 0).start()), c.strip);
  EXPECT_EQ(format_rfc3339(policy.deadline(retention_action::drop_metadata, m, 0).start()), c.drop);
  EXPECT_EQ(format_rfc3339(policy.deadline(retention_action::drop_usage, m, 0).start()), c.usage);
}

INSTANTIATE_TEST_SUITE_P(table, default_deadlines,
                         ::testing::Values(
                             // The spec's example: 23:30 at -02:00 on 31 January is February in UTC.
                             deadline_case{"2025-01-31T23:30:00-02:00", "2025-02", "2026-03-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-02-01T00:00:00Z"},
                             deadline_case{"2025-03-14T09:26:53.589Z", "2025-03", "2026-04-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-03-01T00:00:00Z"},
                             // Month ends and year ends.
                             deadline_case{"2024-12-31T23:59:59.999999Z", "2024-12", "2026-01-01T00:00:00Z",
                                           "2034-01-01T00:00:00Z", "2027-12-01T00:00:00Z"},
                             deadline_case{"2025-01-01T00:00:00Z", "2025-01", "2026-02-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-01-01T00:00:00Z"},
                             deadline_case{"2025-11-30T23:59:59Z", "2025-11", "2026-12-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-11-01T00:00:00Z"},
                             // Leap years: 29 February 2024 and 2028, and the offsets that reach it.
                             deadline_case{"2024-02-29T12:00:00Z", "2024-02", "2025-03-01T00:00:00Z",
                                           "2034-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
                             deadline_case{"2024-03-01T01:00:00+02:00", "2024-02", "2025-03-01T00:00:00Z",
                                           "2034-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
                             deadline_case{"2024-02-29T23:30:00-01:00", "2024-03", "2025-04-01T00:00:00Z",
                                           "2034-01-01T00:00:00Z", "2027-03-01T00:00:00Z"},
                             deadline_case{"2028-02-29T00:00:00Z", "2028-02", "2029-03-01T00:00:00Z",
                                           "2038-01-01T00:00:00Z", "2031-02-01T00:00:00Z"},
                             deadline_case{"2023-03-01T01:00:00+02:00", "2023-02", "2024-03-01T00:00:00Z",
                                           "2033-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
                             // Offsets from -12:00 to +14:00 that cross a month or a year.
                             deadline_case{"2025-12-31T12:00:00-12:00", "2026-01", "2027-02-01T00:00:00Z",
                                           "2036-01-01T00:00:00Z", "2029-01-01T00:00:00Z"},
                             deadline_case{"2025-12-31T11:59:59-12:00", "2025-12", "2027-01-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-12-01T00:00:00Z"},
                             deadline_case{"2026-01-01T13:59:59+14:00", "2025-12", "2027-01-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-12-01T00:00:00Z"},
                             deadline_case{"2026-01-01T14:00:00+14:00", "2026-01", "2027-02-01T00:00:00Z",
                                           "2036-01-01T00:00:00Z", "2029-01-01T00:00:00Z"},
                             deadline_case{"2025-05-01T05:29:59+05:30", "2025-04", "2026-05-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-04-01T00:00:00Z"},
                             deadline_case{"2025-06-30T20:00:00-09:30", "2025-07", "2026-08-01T00:00:00Z",
                                           "2035-01-01T00:00:00Z", "2028-07-01T00:00:00Z"},
                             deadline_case{"1999-12-31T23:59:59-00:01", "2000-01", "2001-02-01T00:00:00Z",
                                           "2010-01-01T00:00:00Z", "2003-01-01T00:00:00Z"}));

// Every month from 1970 to 2100, against std::chrono arithmetic.
TEST(default_deadlines, agree_with_an_independent_calendar_for_every_month) {
  const retention_policy policy;
  for (int y = 1970; y <= 2100; ++y) {
    for (unsigned mo = 1; mo <= 12; ++mo) {
      const year_month ym{year{y}, std::chrono::month{mo}};
      const auto m = month::of(y, static_cast<int>(mo));
      const auto first_day = [](year_month v) { return instant{sys_days{v / 1}}; };
      ASSERT_EQ(m.start(), first_day(ym));
      ASSERT_EQ(policy.deadline(retention_action::strip_identifiers, m, 0).start(), first_day(ym + months{13}));
      ASSERT_EQ(policy.deadline(retention_action::drop_metadata, m, 0).start(),
                instant{sys_days{year{y + 10} / January / 1}});
      ASSERT_EQ(policy.deadline(retention_action::drop_usage, m, 0).start(), first_day(ym + months{36}));
      // The last instant of the month belongs to it; the next one does not.
      ASSERT_EQ(month::containing(first_day(ym + months{1}) - microseconds{1}), m);
      ASSERT_EQ(month::containing(first_day(ym + months{1})), m.plus(1));
    }
  }
}

TEST(retention_rule, anchors_and_periods) {
  const auto m = month::of(2025, 3);
  EXPECT_EQ((retention_rule{0, anchor::month_start}.deadline(m)), month::of(2025, 3));
  EXPECT_EQ((retention_rule{0, anchor::month_end}.deadline(m)), month::of(2025, 4));
  EXPECT_EQ((retention_rule{0, anchor::year_start}.deadline(m)), month::of(2025, 1));
  EXPECT_EQ((retention_rule{0, anchor::year_end}.deadline(m)), month::of(2026, 1));
  EXPECT_EQ((retention_rule{6, anchor::month_end}.deadline(m)), month::of(2025, 10));
  EXPECT_EQ((retention_rule{84, anchor::year_end}.deadline(m)), month::of(2033, 1));
  EXPECT_EQ((retention_rule{25, anchor::month_start}.deadline(month::of(2024, 12))), month::of(2027, 1));
}

TEST(retention_rule, periods_parse_in_months_and_years) {
  EXPECT_EQ(parse_period_months("12 months"), 12);
  EXPECT_EQ(parse_period_months("1 month"), 1);
  EXPECT_EQ(parse_period_months("10 years"), 120);
  EXPECT_EQ(parse_period_months("1 year"), 12);
  EXPECT_EQ(parse_period_months("0 months"), 0);
  EXPECT_EQ(parse_period_months("36months"), 36);
  EXPECT_FALSE(parse_period_months("12"));
  EXPECT_FALSE(parse_period_months("-1 months"));
  EXPECT_FALSE(parse_period_months("12 weeks"));
  EXPECT_FALSE(parse_period_months("ten years"));
  EXPECT_EQ(format_period(120), "10 years");
  EXPECT_EQ(format_period(13), "13 months");
}

TEST(retention_policy, overrides_resolve_once_into_classes) {
  class_rules kr;
  kr.metadata = {60, anchor::year_end};
  class_rules vip;
  vip.identifiers = {3, anchor::month_end};
  const retention_policy policy({}, {{7, "kr-5y", {}, {"kr"}, kr}, {9, "vip", {"acme-1"}, {}, vip}});
  EXPECT_EQ(policy.classify("someone", "HR"), 0);
  EXPECT_EQ(policy.classify("someone", "KR"), 7);
  EXPECT_EQ(policy.classify("someone", "kr"), 7);
  EXPECT_EQ(policy.classify("acme-1", "KR"), 9) << "a customer override wins over a country override";
  EXPECT_EQ(policy.classify("acme-1", ""), 9);
  const auto m = month::of(2025, 3);
  EXPECT_EQ(policy.deadline(retention_action::drop_metadata, m, 7), month::of(2031, 1));
  EXPECT_EQ(policy.deadline(retention_action::strip_identifiers, m, 7), month::of(2026, 4));
  EXPECT_EQ(policy.deadline(retention_action::strip_identifiers, m, 9), month::of(2025, 7));
  // A class whose override was removed keeps the default rules.
  EXPECT_EQ(policy.deadline(retention_action::drop_metadata, m, 42), month::of(2035, 1));
}

TEST(month, parses_and_formats) {
  EXPECT_EQ(month::parse("2025-03"), month::of(2025, 3));
  EXPECT_EQ(month::parse("0001-12")->to_string(), "0001-12");
  EXPECT_FALSE(month::parse("2025-13"));
  EXPECT_FALSE(month::parse("2025-00"));
  EXPECT_FALSE(month::parse("2025-3"));
  EXPECT_FALSE(month::parse("2025/03"));
  EXPECT_FALSE(month::parse("20a5-03"));
  EXPECT_LT(month::of(2024, 12), month::of(2025, 1));
  EXPECT_EQ(month::of(2024, 11).plus(2), month::of(2025, 1));
  EXPECT_EQ(month::of(2025, 1).plus(-1), month::of(2024, 12));
}

}  // namespace
}  // namespace cdr
