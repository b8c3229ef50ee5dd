// Sweep planning and legal holds: when each partition's action becomes due
// (never a microsecond early), what a drop supersedes, what holds defer or
// keep, and the hold request's validation.
#include <gtest/gtest.h>

#include "cdr/core/hex.h"
#include "cdr/core/retention.h"

namespace cdr {
namespace {

instant at(const char* text) { return parse_rfc3339(text).value(); }
partition cdr_of(int y, int m, retention_class c = 0) { return {record_kind::cdr, month::of(y, m), c}; }
partition usage_of(int y, int m) { return {record_kind::usage, month::of(y, m), 0}; }

// A hold of every record of one month (it keeps the partition whole).
hold month_hold(std::uint64_t id, month m) {
  hold h;
  h.id = id;
  h.from_month = m;
  h.to_month = m;
  return h;
}

// A hold of one customer's records (some records of a partition).
hold customer_hold(std::uint64_t id, std::string customer, std::optional<record_kind> kind = std::nullopt) {
  hold h;
  h.id = id;
  h.customer = std::move(customer);
  h.kind = kind;
  return h;
}

std::vector<planned_action> plan(const std::map<partition, std::int64_t>& counts, instant now,
                                 const std::map<partition, partition_state>& states = {},
                                 const std::vector<hold>& holds = {}) {
  return plan_sweep(retention_policy{}, counts, states, holds, now);
}

TEST(sweep_plan, strip_is_due_at_the_first_instant_of_month_plus_13_never_before) {
  const std::map<partition, std::int64_t> counts{{cdr_of(2024, 3), 10}};
  EXPECT_TRUE(plan(counts, at("2025-03-31T23:59:59.999999Z")).empty());
  const auto p = plan(counts, at("2025-04-01T00:00:00Z"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].action, retention_action::strip_identifiers);
  EXPECT_EQ(p[0].deadline, month::of(2025, 4));
  EXPECT_EQ(p[0].records, 10);
  EXPECT_TRUE(plan(counts, at("2025-04-01T00:00:00Z"), {{cdr_of(2024, 3), {true, false}}}).empty())
      << "a stripped partition is not stripped again";
}

TEST(sweep_plan, drop_supersedes_strip_and_follows_it) {
  const std::map<partition, std::int64_t> counts{{cdr_of(2015, 12), 3}, {usage_of(2022, 11), 4}};
  // 1 January 2025: the 2015 CDRs (metadata deadline) and usage of 2022-11
  // (M+36 = 2025-11) are not both due.
  auto p = plan(counts, at("2025-01-01T00:00:00Z"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].action, retention_action::drop_metadata) << "due strip and drop: the drop only";
  EXPECT_TRUE(plan(counts, at("2024-12-31T23:59:59Z"), {{cdr_of(2015, 12), {true, false}}}).empty());
  p = plan(counts, at("2025-11-01T00:00:00Z"), {{cdr_of(2015, 12), {true, true}}});
  ASSERT_EQ(p.size(), 1u) << "dropped partitions are done";
  EXPECT_EQ(p[0].action, retention_action::drop_usage);
  EXPECT_EQ(p[0].where, usage_of(2022, 11));
}

TEST(sweep_plan, oldest_deadline_first_and_states_without_counts_are_planned) {
  const std::map<partition, std::int64_t> counts{{cdr_of(2020, 5), 1}, {cdr_of(2019, 1), 1}};
  const std::map<partition, partition_state> states{{cdr_of(2018, 7), {true, false}}};
  const auto p = plan(counts, at("2029-12-31T00:00:00Z"), states);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].where, cdr_of(2020, 5));  // deadline 2021-06
  EXPECT_EQ(p[0].action, retention_action::strip_identifiers);
  EXPECT_EQ(p[1].where, cdr_of(2018, 7));  // deadline 2028-01
  EXPECT_EQ(p[1].action, retention_action::drop_metadata);
  EXPECT_EQ(p[2].where, cdr_of(2019, 1));  // deadline 2029-01
  EXPECT_EQ(p[2].action, retention_action::drop_metadata);
}

// What a fleet member announces in its heartbeats: the earliest deadline
// among partitions that still hold records (a done strip or drop is not one).
TEST(sweep_plan, earliest_deadline_is_the_next_undone_action_of_any_partition_with_records) {
  const retention_policy policy;
  EXPECT_FALSE(earliest_deadline(policy, {}, {}).has_value());
  std::map<partition, std::int64_t> counts{{cdr_of(2024, 3), 5}, {usage_of(2023, 1), 2}};
  EXPECT_EQ(earliest_deadline(policy, counts, {}), at("2025-04-01T00:00:00Z")) << "2024-03's strip";
  const std::map<partition, partition_state> stripped{{cdr_of(2024, 3), {true, false}}};
  EXPECT_EQ(earliest_deadline(policy, counts, stripped), at("2026-01-01T00:00:00Z")) << "usage 2023-01's drop (M+36)";
  counts[usage_of(2023, 1)] = 0;
  EXPECT_EQ(earliest_deadline(policy, counts, stripped), at("2034-01-01T00:00:00Z"))
      << "2024-03's drop (the January 10 years on)";
  const std::map<partition, partition_state> dropped{{cdr_of(2024, 3), {true, true}}};
  EXPECT_FALSE(earliest_deadline(policy, counts, dropped).has_value());
}

TEST(sweep_plan, override_classes_have_their_own_deadlines) {
  class_rules strict;
  strict.identifiers = {3, anchor::month_end};
  retention_policy policy({}, {{7, "strict", {"acme"}, {}, strict}});
  const std::map<partition, std::int64_t> counts{{cdr_of(2025, 1, 0), 1}, {cdr_of(2025, 1, 7), 1}};
  const auto p = plan_sweep(policy, counts, {}, {}, at("2025-05-01T00:00:00Z"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].where.cls, 7);
}

TEST(sweep_plan, whole_holds_defer_partial_holds_copy_and_overdue_counts_what_is_not_held) {
  const auto whole = month_hold(1, month::of(2024, 1));
  const auto partial = customer_hold(2, "acme", record_kind::cdr);
  const std::map<partition, std::int64_t> counts{{cdr_of(2024, 1), 5}, {cdr_of(2024, 2), 7}, {usage_of(2020, 1), 9}};
  const std::vector<hold> holds{whole, partial};
  const auto p = plan(counts, at("2025-06-01T00:00:00Z"), {}, holds);
  ASSERT_EQ(p.size(), 3u);
  const auto find = [&](const partition& w) {
    return *std::find_if(p.begin(), p.end(), [&](const planned_action& a) { return a.where == w; });
  };
  EXPECT_TRUE(find(cdr_of(2024, 1)).deferred());
  EXPECT_EQ(find(cdr_of(2024, 2)).partial_holds, std::vector<std::uint64_t>{2});
  EXPECT_FALSE(find(cdr_of(2024, 2)).deferred());
  EXPECT_TRUE(find(usage_of(2020, 1)).partial_holds.empty()) << "a cdr-only hold names no usage";
  const auto o = overdue_of(p);
  EXPECT_EQ(o.partitions, 2u);
  EXPECT_EQ(o.records, 16);
}

// The forecast: each partition's next action and the one after, by
// deadline; statuses at an instant; totals per month of action up to a
// horizon, the later action of a partition included.
TEST(forecast, next_and_then_actions_statuses_and_totals_per_month) {
  const auto whole = month_hold(4, month::of(2024, 1));
  const auto partial = customer_hold(5, "acme");
  const std::map<partition, std::int64_t> counts{{cdr_of(2024, 1), 5},  {cdr_of(2024, 2), 7}, {usage_of(2023, 6), 9},
                                                 {cdr_of(2016, 12), 2}, {cdr_of(2025, 1), 0}, {cdr_of(2015, 3), 1}};
  const std::map<partition, partition_state> states{{cdr_of(2024, 2), {true, false}}, {cdr_of(2015, 3), {true, true}}};
  const std::vector<hold> holds{whole, partial};
  const auto rows = plan_partitions(retention_policy{}, counts, states, holds);
  ASSERT_EQ(rows.size(), 4u) << "empty and dropped partitions have nothing to come";
  // 2016-12's strip (2018-01) was never done: due first, then its drop
  // (2026-01).
  EXPECT_EQ(rows[0].where, cdr_of(2016, 12));
  EXPECT_EQ(rows[0].next, retention_action::strip_identifiers);
  EXPECT_EQ(rows[0].deadline, month::of(2018, 1));
  EXPECT_EQ(rows[0].then, retention_action::drop_metadata);
  EXPECT_EQ(rows[0].then_deadline, month::of(2026, 1)) << "January of year(M)+10";
  EXPECT_EQ(rows[1].where, cdr_of(2024, 1));
  EXPECT_EQ(rows[1].deadline, month::of(2025, 2));
  EXPECT_EQ(rows[1].whole_holds, std::vector<std::uint64_t>{4});
  EXPECT_EQ(rows[1].partial_holds, std::vector<std::uint64_t>{5});
  EXPECT_EQ(rows[2].where, usage_of(2023, 6));
  EXPECT_EQ(rows[2].next, retention_action::drop_usage);
  EXPECT_EQ(rows[2].deadline, month::of(2026, 6));
  EXPECT_FALSE(rows[2].then.has_value());
  EXPECT_EQ(rows[3].where, cdr_of(2024, 2));
  EXPECT_EQ(rows[3].next, retention_action::drop_metadata) << "stripped already";
  EXPECT_EQ(rows[3].deadline, month::of(2034, 1));

  const auto now = at("2025-06-01T00:00:00Z");
  EXPECT_EQ(to_json(rows[0], now)["status"], "overdue");
  EXPECT_EQ(to_json(rows[1], now)["status"], "deferred");
  EXPECT_EQ(to_json(rows[2], now)["status"], "scheduled");
  EXPECT_EQ(to_json(rows[3], now)["state"], "stripped");
  EXPECT_EQ(to_json(rows[0], now)["then_deadline"], "2026-01-01T00:00:00Z");

  const auto totals = due_by_month(rows, month::of(2027, 1));
  ASSERT_EQ(totals.size(), 4u);
  EXPECT_EQ(totals.at(month::of(2018, 1)).at(retention_action::strip_identifiers), 2);
  EXPECT_EQ(totals.at(month::of(2025, 2)).at(retention_action::strip_identifiers), 5);
  EXPECT_EQ(totals.at(month::of(2026, 6)).at(retention_action::drop_usage), 9);
  EXPECT_EQ(totals.at(month::of(2026, 1)).at(retention_action::drop_metadata), 2) << "the later action too";
  EXPECT_FALSE(totals.contains(month::of(2034, 1))) << "beyond the horizon";
}

TEST(holds, cover_by_customer_subject_month_and_kind) {
  hold h;
  h.customer = "acme";
  h.subject = std::string(32, 'x');
  h.from_month = month::of(2024, 3);
  const std::vector<std::string> with{std::string(32, 'y'), std::string(32, 'x')};
  const std::vector<std::string> without{std::string(32, 'y')};
  EXPECT_TRUE(h.covers(cdr_of(2024, 3), "acme", with));
  EXPECT_FALSE(h.covers(cdr_of(2024, 2), "acme", with)) << "before from_month";
  EXPECT_FALSE(h.covers(cdr_of(2024, 3), "other", with));
  EXPECT_FALSE(h.covers(cdr_of(2024, 3), "acme", without));
  EXPECT_FALSE(h.whole());
  EXPECT_TRUE(any_covers(std::vector<hold>{h}, cdr_of(2030, 1), "acme", with));
  hold whole_month;
  whole_month.id = 7;
  whole_month.from_month = whole_month.to_month = month::of(2030, 1);
  h.id = 3;
  const std::vector<hold> both{h, whole_month};
  EXPECT_EQ(covering_holds(both, cdr_of(2030, 1), "acme", with), (std::vector<std::uint64_t>{3, 7}));
  EXPECT_EQ(covering_holds(both, cdr_of(2030, 1), "other", with), std::vector<std::uint64_t>{7});
  EXPECT_TRUE(covering_holds(both, cdr_of(2030, 2), "other", with).empty());
}

TEST(holds, requests_are_validated_and_subjects_kept_as_hashes_only) {
  const auto hasher = [](std::string_view s) { return "H(" + std::string(s) + ")"; };
  auto ok = hold_from_request({{"subject", "+1 415"},
                               {"from_month", "2024-01"},
                               {"to_month", "2024-12"},
                               {"kind", "cdr"},
                               {"reason", "r"},
                               {"reference", "x-1"}},
                              hasher);
  ASSERT_TRUE(std::holds_alternative<hold>(ok)) << std::get<std::string>(ok);
  const auto& h = std::get<hold>(ok);
  EXPECT_EQ(h.subject, "H(+1 415)");
  const auto j = to_json(h);
  EXPECT_EQ(j["subject"], to_hex("H(+1 415)"));
  // The stored form's round trip: saved_state_test.

  const std::vector<std::pair<nlohmann::json, std::string>> bad{
      {{{"reason", "r"}, {"reference", "x"}}, "at least one selector"},
      {{{"customer", "a"}, {"reference", "x"}}, "\"reason\" is required"},
      {{{"customer", "a"}, {"reason", "r"}}, "\"reference\" is required"},
      {{{"from_month", "2024-13"}, {"reason", "r"}, {"reference", "x"}}, "YYYY-MM"},
      {{{"from_month", "2024-05"}, {"to_month", "2024-04"}, {"reason", "r"}, {"reference", "x"}}, "after"},
      {{{"kind", "sms"}, {"reason", "r"}, {"reference", "x"}}, "cdr or usage"},
      {{{"customer", 5}, {"reason", "r"}, {"reference", "x"}}, "must be a string"},
      {{{"colour", "red"}, {"reason", "r"}, {"reference", "x"}}, "unknown argument"},
  };
  for (const auto& [args, message] : bad) {
    const auto r = hold_from_request(args, hasher);
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << args.dump();
    EXPECT_NE(std::get<std::string>(r).find(message), std::string::npos) << std::get<std::string>(r);
  }
}

TEST(stored_records, customer_and_identifier_values) {
  EXPECT_EQ(customer_of(R"({"type":"cdr","customer_id":"acme-eu-1","id":"x"})"), "acme-eu-1");
  EXPECT_EQ(customer_of("not json"), "");
  EXPECT_EQ(identifier_values(R"({"from":"+1415","to":"a@b.c","meta":{"n":1},"n":3})"),
            (std::vector<std::string>{"+1415", "a@b.c"}));
  // At any depth, as the parser indexed them.
  EXPECT_EQ(identifier_values(R"({"to":["+1","+2"],"cc":[{"a":"x@y.z"},["+3"]],"c":{"d":{"e":"+4"}}})"),
            (std::vector<std::string>{"+4", "x@y.z", "+3", "+1", "+2"}));  // members in key order
}

TEST(stored_records, without_identifiers_takes_out_what_it_names_at_any_depth) {
  const auto erased = [](std::string_view v) { return v == "+2" || v == "x@y.z"; };
  EXPECT_EQ(
      without_identifiers(R"({"from":"+1","to":["+2","+3"],"cc":[{"a":"x@y.z","b":"k"}],"c":{"d":"+2"}})", erased),
      R"({"c":{},"cc":[{"b":"k"}],"from":"+1","to":["+3"]})");
  EXPECT_EQ(without_identifiers(R"({"from":"+2"})", erased), "") << "nothing left";
  EXPECT_EQ(without_identifiers(R"({"from":"+1"})", erased), R"({"from":"+1"})");
}

TEST(hex, round_trip_and_rejects) {
  EXPECT_EQ(to_hex(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(from_hex("00FF10"), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
}

TEST(key_layout, be64_round_trips_in_numeric_order) {
  EXPECT_EQ(be64(0x0102030405060708ULL), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(read_be64(be64(18'446'744'073'709'551'615ULL)), 18'446'744'073'709'551'615ULL);
  EXPECT_LT(be64(255), be64(256));
}

TEST(key_layout, point_prefix_and_held_ranges) {
  const auto p = point_range("ab");
  EXPECT_EQ(p.begin, "ab");
  EXPECT_EQ(p.end, std::string("ab\0", 3));
  EXPECT_EQ(prefix_range("ab").end, "ac");
  EXPECT_EQ(prefix_range("a\xff").end, "b");
  EXPECT_EQ(prefix_range("\xff").end, "") << "unbounded";
  EXPECT_EQ(held_key(held_tag::identifiers, "k"), "ik");
}

}  // namespace
}  // namespace cdr

namespace cdr {
namespace {

// deadlines_passed against a std::chrono model of the notice: for every
// month of 2000-2040, one microsecond before and at each default deadline.
TEST(retention_rules, deadlines_passed_match_a_calendar_model_and_are_never_early) {
  using namespace std::chrono;
  const retention_policy policy;
  const auto first_instant = [](year_month ym) { return instant{sys_days{ym / 1}}; };
  for (int y = 2000; y <= 2040; ++y) {
    for (unsigned mo = 1; mo <= 12; ++mo) {
      const year_month ym{year{y}, std::chrono::month{mo}};
      const auto strip = first_instant(ym + months{13});
      const auto drop = first_instant(year{y + 10} / January);
      const auto usage = first_instant(ym + months{36});
      const partition c{record_kind::cdr, cdr::month::of(y, static_cast<int>(mo)), 0};
      const partition u{record_kind::usage, c.month, 0};
      for (const auto t : {strip - microseconds{1}, strip, drop - microseconds{1}, drop}) {
        const auto got = deadlines_passed(policy, c, t);
        EXPECT_EQ(got.drop, t >= drop) << c.to_string() << " at " << format_rfc3339(t);
        EXPECT_EQ(got.strip, t >= strip || t >= drop) << c.to_string() << " at " << format_rfc3339(t);
      }
      for (const auto t : {usage - microseconds{1}, usage}) {
        const auto got = deadlines_passed(policy, u, t);
        EXPECT_EQ(got.drop, t >= usage) << u.to_string();
        EXPECT_EQ(got.strip, got.drop) << "a usage record's sealed members go with it";
      }
    }
  }
}

TEST(retention_rules, each_action_clears_its_families_and_verify_checks_the_same) {
  const partition c{record_kind::cdr, month::of(2024, 3), 2};
  const partition u{record_kind::usage, month::of(2024, 3), 0};
  using fams = std::vector<family>;
  const auto of = [](retention_action a) {
    const auto s = families_cleared(a);
    return fams(s.begin(), s.end());
  };
  EXPECT_EQ(of(retention_action::strip_identifiers), (fams{family::identifiers, family::subject_index}));
  EXPECT_EQ(of(retention_action::drop_metadata), (fams{family::metadata, family::identifiers, family::subject_index}));
  EXPECT_EQ(of(retention_action::drop_usage), (fams{family::usage, family::identifiers, family::subject_index}));
  for (const auto& r : removals_of(retention_action::drop_metadata, c)) EXPECT_EQ(r.range, partition_range(c));
  EXPECT_EQ(action_done(c, {true, false}), retention_action::strip_identifiers);
  EXPECT_EQ(action_done(c, {true, true}), retention_action::drop_metadata);
  EXPECT_EQ(action_done(u, {true, true}), retention_action::drop_usage);
  EXPECT_EQ(action_done(c, {}), std::nullopt);
  // The sweep's action and verify's view of the state it leaves agree.
  const auto now = parse_rfc3339("2040-01-01T00:00:00Z").value();
  for (const auto& p : {c, u}) {
    const auto a = due_action(retention_policy{}, p, {}, now).value();
    EXPECT_EQ(action_done(p, {true, a != retention_action::strip_identifiers}), a);
  }
  EXPECT_EQ(due_action(retention_policy{}, c, {true, true}, now), std::nullopt) << "dropped: done";
}

TEST(purge_forecast, starts_early_enough_to_end_before_the_deadline) {
  // Keys on every file: 80 MiB at the measured 8 MiB/s, 10 s, started 15 s
  // before the deadline.
  purge_forecast_input in{
      at("2031-01-01T00:00:00Z"), at("2031-01-02T00:00:00Z"), 10, 80ULL << 20, 100'000, 8.0 * (1 << 20), {}};
  auto f = forecast_purge(in);
  EXPECT_EQ(f.bytes, 80ULL << 20);
  EXPECT_EQ(f.duration, std::chrono::seconds(10));
  EXPECT_EQ(f.starts_at, at("2031-01-01T23:59:45Z"));
  EXPECT_EQ(f.finishes_at, at("2031-01-01T23:59:55Z"));
  EXPECT_EQ(f.late_by, microseconds(0));
  EXPECT_TRUE(to_json(f, in)["on_time"].get<bool>());
  EXPECT_EQ(to_json(f, in)["rate"], "measured");

  // Without a measured rate the assumed one applies: 4x the bytes, 40 s.
  in.bytes_per_second = 0;
  in.bytes = 320ULL << 20;
  f = forecast_purge(in);
  EXPECT_EQ(f.duration, std::chrono::seconds(40));
  EXPECT_EQ(f.starts_at, at("2031-01-01T23:59:00Z"));
  EXPECT_EQ(to_json(f, in)["rate"], "assumed");

  // Few keys over many files: only the files they fall on, 20 keys on 246
  // files of 1 MiB each hit 246 x (1 - e^(-20/246)) = 19.2 of them.
  in.files = 246;
  in.bytes = 246ULL << 20;
  in.keys = 20;
  f = forecast_purge(in);
  EXPECT_NEAR(static_cast<double>(f.bytes) / (1 << 20), 19.2, 0.05);
  EXPECT_EQ(to_json(f, in)["month_bytes"], 246ULL << 20);
  in.keys = 0;
  EXPECT_EQ(forecast_purge(in).bytes, 0u);
}

TEST(purge_forecast, a_pass_longer_than_the_time_left_is_late_before_the_deadline) {
  // 30 hours of rewriting for a deadline a day away: it starts now and is
  // forecast 6 h late while the deadline is still 24 h off.
  const double rate = 1 << 20;
  purge_forecast_input in{at("2031-01-01T00:00:00Z"),
                          at("2031-01-02T00:00:00Z"),
                          1,
                          static_cast<std::uint64_t>(rate * 30 * 3600),
                          1'000,
                          rate,
                          {}};
  auto f = forecast_purge(in);
  EXPECT_EQ(f.starts_at, in.now);
  EXPECT_EQ(f.late_by, std::chrono::hours(6));
  EXPECT_FALSE(to_json(f, in)["on_time"].get<bool>());
  EXPECT_DOUBLE_EQ(to_json(f, in)["late_by_seconds"].get<double>(), 6 * 3600.0);

  // A running pass ends at its start plus its duration; one running longer
  // than forecast ends no sooner than now.
  in.bytes = static_cast<std::uint64_t>(rate * 3600);
  in.running_since = at("2031-01-01T22:00:00Z");
  in.now = at("2031-01-01T22:30:00Z");
  f = forecast_purge(in);
  EXPECT_EQ(f.finishes_at, at("2031-01-01T23:00:00Z"));
  EXPECT_EQ(f.late_by, microseconds(0));
  in.now = at("2031-01-02T00:20:00Z");
  f = forecast_purge(in);
  EXPECT_EQ(f.finishes_at, in.now);
  EXPECT_EQ(f.late_by, std::chrono::minutes(20));
}

}  // namespace
}  // namespace cdr
