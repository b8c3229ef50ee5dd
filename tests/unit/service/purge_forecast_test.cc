// The erasure purge pass's forecast (issue "Erasure, exact and at scale",
// item 3): a pass starts early enough to end by the earliest pending
// deadline; one that cannot is forecast late (plan, status, the metric the
// alert reads) while there is still time, and starts at once. The rate is
// the last large pass's, kept across restarts.
#include <gtest/gtest.h>

#include "fixture.h"

namespace cdr::test {
namespace {

class purge_forecast : public service_fixture {
 protected:
  purge_forecast() : service_fixture("2025-01-15T00:00:00Z") {}

  const std::string subject = "+491511233333";

  // A month in SST files with 20 of the subject's records among 4,000, and
  // the subject erased: one erasure pending.
  void erase_one() {
    fill(month::of(2024, 10), 0, 20, "acme", subject);
    fill(month::of(2024, 10), 20, 4000);
    store_->settle();
    retention_->subject_erase(subject, 0);
  }
  void set_rate(std::uint64_t bytes_per_second) {
    store::change c(*store_);
    state_->put_counter(c, store::counter_name::purge_rate, bytes_per_second);
    store_->apply(c);
  }
};

TEST_F(purge_forecast, a_pass_starts_so_as_to_end_by_the_earliest_deadline) {
  EXPECT_TRUE(retention_->purge_forecast_report().is_null()) << "nothing pending";
  erase_one();
  const auto f = retention_->purge_forecast_report();
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f["deadline"], "2025-01-16T00:00:00Z") << f.dump();
  EXPECT_EQ(f["rate"], "assumed");
  EXPECT_EQ(f["subjects"], 1);
  EXPECT_GT(f["bytes"].get<std::uint64_t>(), 0u) << "the month's identifiers and index files";
  EXPECT_TRUE(f["on_time"].get<bool>());
  EXPECT_EQ(f["late_by_seconds"], 0.0);
  const auto starts = parse_rfc3339(f["starts_at"].get<std::string>()).value();
  const auto deadline = parse_rfc3339(f["deadline"].get<std::string>()).value();
  const auto lead = std::chrono::duration<double>(deadline - starts).count();
  EXPECT_NEAR(lead, 1.5 * f["seconds"].get<double>(), 1e-3) << f.dump();
  EXPECT_EQ(retention_->figures().erasure_purge_forecast_late_seconds, 0.0);
  EXPECT_EQ(retention_->figures().erasure_purge_forecast_bytes, f["bytes"].get<double>());

  // A sweep before the start leaves the erasure pending; at the start it
  // runs the pass.
  time_.advance(starts - std::chrono::seconds(1) - time_.now());
  retention_->sweep("admin", 0);
  EXPECT_FALSE(retention_->purge_forecast_report().is_null()) << "not yet";
  time_.advance(starts - time_.now());
  retention_->sweep("admin", 0);
  EXPECT_TRUE(retention_->purge_forecast_report().is_null()) << "purged";
  EXPECT_EQ(retention_->figures().erasure_purge_forecast_seconds, 0.0);
}

TEST_F(purge_forecast, a_pass_that_cannot_end_in_time_is_late_before_its_deadline_and_starts_at_once) {
  // A measured rate of 1 byte/s, saved by an earlier run: the month's files
  // take longer than the 24 h left.
  set_rate(1);
  reopen();
  erase_one();
  const auto f = retention_->purge_forecast_report();
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f["rate"], "measured") << f.dump();
  EXPECT_EQ(f["bytes_per_second"], 1);
  EXPECT_FALSE(f["on_time"].get<bool>()) << f.dump();
  EXPECT_EQ(f["starts_at"], "2025-01-15T00:00:00Z") << "now";
  const double late = f["late_by_seconds"].get<double>();
  EXPECT_NEAR(late, f["seconds"].get<double>() - 86400.0, 1e-3) << f.dump();
  EXPECT_GT(late, 0.0);
  EXPECT_EQ(retention_->figures().erasure_purge_forecast_late_seconds, late) << "the alert's metric";
  EXPECT_FALSE(retention_->plan(std::nullopt, std::nullopt)["erasure_purge"]["on_time"].get<bool>());

  // Not inside the erasure request (the purge timer runs it): at the next
  // look, at once rather than at the deadline.
  retention_->sweep("admin", 0);
  EXPECT_TRUE(retention_->purge_forecast_report().is_null()) << "started at once, not at the deadline";
  EXPECT_EQ(state_->counter(store::counter_name::purge_rate).value(), 1u)
      << "a pass this small does not measure the rate";
}

// A large pass's rate is the forecast's from then on; a small one's is not;
// a running pass ends no sooner than now.
TEST_F(purge_forecast, the_rate_is_the_last_large_passs) {
  service::pending_purges j;
  const auto now = parse_rfc3339("2025-01-15T00:00:00Z").value();
  j.add(7, {"s", now, now + std::chrono::hours(24), {{family::identifiers, prefix_range("\x01")}}});
  EXPECT_EQ(j.forecast(*store_, now)->in.bytes_per_second, 0.0) << "none measured: assumed";
  j.pass_started(now);
  EXPECT_EQ(j.forecast(*store_, now)->in.running_since, now);
  EXPECT_EQ(j.pass_ended(purge_rate_min_bytes - 1, 1.0), std::nullopt);
  EXPECT_FALSE(j.forecast(*store_, now)->in.running_since.has_value());
  EXPECT_EQ(j.pass_ended(purge_rate_min_bytes, 4.0), purge_rate_min_bytes / 4);
  EXPECT_EQ(j.forecast(*store_, now)->in.bytes_per_second, static_cast<double>(purge_rate_min_bytes / 4));
  j.remove(7);
  EXPECT_FALSE(j.forecast(*store_, now).has_value());

  // Spans and keys follow the entries as they come and go.
  const removal oct{family::identifiers, partition_range({record_kind::cdr, month::of(2024, 10), 0})};
  const removal nov{family::identifiers, partition_range({record_kind::cdr, month::of(2024, 11), 0})};
  j.add(8, {"s", now, now + std::chrono::hours(24), {oct}, 5});
  j.add(9, {"t", now, now + std::chrono::hours(20), {oct, nov}, 7});
  auto o = j.forecast(*store_, now);
  EXPECT_EQ(o->in.keys, 12u);
  EXPECT_EQ(o->in.deadline, now + std::chrono::hours(20));
  j.remove(9);
  o = j.forecast(*store_, now);
  EXPECT_EQ(o->in.keys, 5u);
  EXPECT_EQ(o->in.deadline, now + std::chrono::hours(24));
}

// The spans a pass rewrites: each partition once per family, held keys
// under their tag.
TEST(purge_spans, each_partition_once_per_family_held_keys_under_their_tag) {
  const partition p{record_kind::cdr, month::of(2024, 10), 0};
  const auto a = record_key(p, "a");
  const auto b = record_key(p, "b");
  const auto spans = service::pending_purges::spans_of({{family::identifiers, point_range(a)},
                                                        {family::identifiers, point_range(b)},
                                                        {family::subject_index, point_range(a)},
                                                        {family::held, point_range(held_key(held_tag::identifiers, a))},
                                                        {family::held, point_range("?")}});
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0], (removal{family::identifiers, partition_range(p)}));
  EXPECT_EQ(spans[1], (removal{family::subject_index, partition_range(p)}));
  const auto r = partition_range(p);
  EXPECT_EQ(spans[2], (removal{family::held, {"i" + r.begin, "i" + r.end}}));
}

}  // namespace
}  // namespace cdr::test
