// The sweep schedule and its retries on manual time: a simulated year in a
// fraction of a second, no sleeps.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "retention/scheduler.h"

namespace cdr::test {
namespace {

using namespace std::chrono_literals;

struct run {
  mono_time at;
  std::string trigger;
};

class schedule : public ::testing::Test {
 protected:
  // Waits (without sleeping) until the scheduler has run n sweeps and
  // planned the next.
  void await(service::sweep_scheduler& s, std::uint64_t n) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (s.sweeps_run() < n) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the scheduler did not run sweep " << n;
      std::this_thread::yield();
    }
  }
  std::vector<run> runs() {
    std::lock_guard lock(mutex_);
    return runs_;
  }
  service::sweep_scheduler::sweep_fn recorder(int failures = 0) {
    return [this, failures](std::string_view trigger) mutable {
      std::lock_guard lock(mutex_);
      runs_.push_back({time_.monotonic(), std::string(trigger)});
      return failures-- <= 0;
    };
  }

  manual_time time_{parse_rfc3339("2025-01-01T00:00:00Z").value()};
  std::mutex mutex_;
  std::vector<run> runs_;
};

TEST_F(schedule, a_simulated_year_runs_every_interval_plus_jitter) {
  service::sweep_scheduler s(time_, 1h, 5min, 42, recorder());
  s.start();
  await(s, 1);
  const auto start = time_.monotonic();
  while (time_.monotonic() - start < std::chrono::hours(24 * 365)) {
    const auto n = s.sweeps_run();
    time_.advance_to(s.next_due() - 1us);
    ASSERT_EQ(s.sweeps_run(), n) << "nothing runs a microsecond early";
    time_.advance_to(s.next_due());
    await(s, n + 1);
  }
  s.stop();
  const auto r = runs();
  EXPECT_EQ(r.front().trigger, "startup");
  EXPECT_EQ(r.front().at, start) << "the first sweep runs at start";
  EXPECT_GE(r.size(), 365u * 24 * 60 / 65);
  EXPECT_LE(r.size(), 365u * 24 + 1);
  std::set<std::int64_t> jitters;
  for (std::size_t i = 1; i < r.size(); ++i) {
    EXPECT_EQ(r[i].trigger, "schedule");
    const auto gap = r[i].at - r[i - 1].at;
    ASSERT_GE(gap, 1h) << "sweep " << i;
    ASSERT_LE(gap, 1h + 5min) << "sweep " << i;
    jitters.insert(std::chrono::duration_cast<std::chrono::seconds>(gap - 1h).count());
  }
  EXPECT_GT(jitters.size(), 100u) << "the jitter varies";
}

TEST_F(schedule, a_failed_sweep_is_retried_with_back_off_up_to_the_interval) {
  service::sweep_scheduler s(time_, 10min, 0us, 1, recorder(5));
  s.start();
  for (std::uint64_t n = 1; n <= 8; ++n) {
    await(s, n);
    time_.advance_to(s.next_due());
  }
  await(s, 9);
  s.stop();
  const auto r = runs();
  std::vector<std::chrono::minutes> gaps;
  for (std::size_t i = 1; i < r.size(); ++i) {
    gaps.push_back(std::chrono::duration_cast<std::chrono::minutes>(r[i].at - r[i - 1].at));
  }
  // Five failures: 1, 2, 4, 8 minutes, then capped at the 10-minute interval;
  // after the first success the interval again.
  const std::vector<std::chrono::minutes> expected{1min, 2min, 4min, 8min, 10min, 10min, 10min, 10min};
  EXPECT_EQ(gaps, expected);
}

TEST_F(schedule, a_new_schedule_applies_from_the_last_sweep) {
  service::sweep_scheduler s(time_, 1h, 0us, 1, recorder());
  s.start();
  await(s, 1);
  const auto first = time_.monotonic();
  time_.advance(10min);
  s.set_schedule(15min, 0us);
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (s.next_due() != first + 15min) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    std::this_thread::yield();
  }
  EXPECT_EQ(s.interval(), 15min);
  time_.advance_to(s.next_due());
  await(s, 2);
  s.stop();
  EXPECT_EQ(runs().back().at - first, 15min);
}

}  // namespace
}  // namespace cdr::test
