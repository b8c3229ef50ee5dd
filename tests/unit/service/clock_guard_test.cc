// The clock guard in process, on manual time: a forward jump of the wall
// clock alone pauses destructive sweeps until it comes back or is
// confirmed; a backward jump never makes a swept partition look open; a
// daemon down longer than the limit asks for a confirmation.
#include <gtest/gtest.h>

#include "fixture.h"
#include "retention/clock_guard.h"

namespace cdr::test {
namespace {

using namespace std::chrono_literals;

class clock_guard_test : public service_fixture {
 protected:
  clock_guard_test() : service_fixture("2025-01-15T00:00:00Z") {}

  std::size_t with_identifiers(month m) {
    std::size_t n = 0;
    store_->for_each_record(record_kind::cdr, [&](const partition& p, std::string_view, bool ids) {
      if (p.month == m && ids) ++n;
    });
    return n;
  }
  instant at(const char* text) { return parse_rfc3339(text).value(); }
};

TEST_F(clock_guard_test, a_forward_jump_pauses_sweeps_until_the_clock_comes_back_or_is_confirmed) {
  const auto dec = month::of(2023, 12);  // strip due 2025-01-01: due now
  const auto jun = month::of(2024, 6);   // strip due 2025-07-01: due only after the jump
  fill(dec, 0, 10);
  fill(jun, 10, 10);
  EXPECT_TRUE(retention_->sweep("admin", 0)["actions"].size() == 1u);
  EXPECT_EQ(with_identifiers(dec), 0u);

  // Time passes normally (both clocks): no jump.
  time_.advance(std::chrono::days(30));
  EXPECT_NO_THROW(retention_->sweep("schedule", 0));
  EXPECT_FALSE(retention_->figures().sweeps_paused_clock);

  // The wall clock alone jumps 400 days ahead.
  const auto before = time_.now();
  time_.set_wall(before + std::chrono::days(400));
  EXPECT_THROW(retention_->sweep("schedule", 0), service::clock_jumped);
  EXPECT_EQ(with_identifiers(jun), 10u) << "nothing removed early";
  const auto f = retention_->figures();
  EXPECT_TRUE(f.sweeps_paused_clock);
  EXPECT_NEAR(f.clock_jump_seconds, 400.0 * 86400, 1.0);

  // It comes back (within the limit): sweeps go on, nothing is due.
  time_.set_wall(before + 2h);
  EXPECT_NO_THROW(retention_->sweep("schedule", 0));
  EXPECT_EQ(with_identifiers(jun), 10u);

  // It jumps again and an operator confirms it: the sweep catches up.
  time_.set_wall(before + std::chrono::days(400));
  EXPECT_THROW(retention_->sweep("admin", 0), service::clock_jumped);
  const auto confirmed = retention_->clock_confirm(1000);
  EXPECT_FALSE(retention_->figures().sweeps_paused_clock);
  EXPECT_NO_THROW(retention_->sweep("admin", 0));
  EXPECT_EQ(with_identifiers(jun), 0u);
  const auto trail = read_file(retention_->audit().path());
  EXPECT_NE(trail.find("\"action\":\"clock_confirm\""), std::string::npos) << trail;
  EXPECT_TRUE(retention_->audit().verify().ok);
  (void)confirmed;
}

TEST_F(clock_guard_test, a_backward_jump_never_reopens_a_swept_partition_even_after_a_restart) {
  fill(month::of(2023, 12), 0, 5);
  retention_->sweep("admin", 0);
  const auto swept_at = time_.now();
  time_.set_wall(swept_at - std::chrono::days(60));
  EXPECT_EQ(retention_->decision_now(), swept_at) << "lateness is decided at the last sweep's instant";
  EXPECT_FALSE(retention_->figures().sweeps_paused_clock) << "a backward jump pauses nothing";
  EXPECT_LT(retention_->figures().clock_jump_seconds, 0);
  reopen();
  EXPECT_EQ(retention_->decision_now(), swept_at) << "the mark is persisted with the sweep";
  time_.set_wall(swept_at + std::chrono::days(1));
  EXPECT_EQ(retention_->decision_now(), swept_at + std::chrono::days(1));
}

// Ingest judges lateness at decision_now(): while an 800-day forward jump
// waits for its confirmation, that is the last trusted instant (the
// reference plus the monotonic time since), not the jumped clock.
TEST_F(clock_guard_test, an_unconfirmed_forward_jump_does_not_move_the_instant_ingest_decides_at) {
  const auto start = time_.now();
  time_.advance(std::chrono::hours(5));  // both clocks: trusted
  EXPECT_EQ(retention_->decision_now(), start + std::chrono::hours(5));
  time_.set_wall(time_.now() + std::chrono::days(800));
  EXPECT_TRUE(retention_->figures().sweeps_paused_clock);
  EXPECT_EQ(retention_->decision_now(), start + std::chrono::hours(5)) << "the jump is not trusted";
  time_.advance(std::chrono::minutes(10));  // time goes on while nobody confirms
  EXPECT_EQ(retention_->decision_now(), start + std::chrono::hours(5) + std::chrono::minutes(10));
  retention_->clock_confirm(1000);
  EXPECT_EQ(retention_->decision_now(), time_.now()) << "confirmed: the clock is right";
}

TEST_F(clock_guard_test, downtime_longer_than_the_limit_counts_as_a_jump_and_the_limit_reloads) {
  fill(month::of(2024, 6), 0, 5);
  retention_->sweep("admin", 0);
  const auto swept_at = time_.now();
  reopen();                                         // down ...
  time_.set_wall(swept_at + std::chrono::days(3));  // ... for three days: the monotonic clock saw none of it
  EXPECT_THROW(retention_->sweep("startup", 0), service::clock_jumped);
  retention_->set_max_clock_jump(std::chrono::days(7));
  EXPECT_NO_THROW(retention_->sweep("startup", 0)) << "within the reloaded limit";
  reopen();
  time_.set_wall(swept_at + std::chrono::days(30));
  retention_->set_max_clock_jump(std::chrono::days(1));
  EXPECT_THROW(retention_->sweep("startup", 0), service::clock_jumped);
  retention_->clock_moved_deliberately();  // --fake-clock and debug advance-clock
  EXPECT_NO_THROW(retention_->sweep("startup", 0));
}

}  // namespace
}  // namespace cdr::test
