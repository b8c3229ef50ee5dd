// manual_time: nothing moves until the test says so; moving time wakes
// whatever waits for it.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "cdr/core/time_source.h"

namespace cdr {
namespace {

using namespace std::chrono_literals;

TEST(manual_time, advance_moves_both_clocks_and_set_wall_only_the_wall) {
  manual_time t(parse_rfc3339("2025-01-01T00:00:00Z").value());
  const auto m0 = t.monotonic();
  t.advance(90s);
  EXPECT_EQ(format_rfc3339(t.now()), "2025-01-01T00:01:30Z");
  EXPECT_EQ(t.monotonic() - m0, 90s);
  t.set_wall(parse_rfc3339("2030-01-01T00:00:00Z").value());
  EXPECT_EQ(format_rfc3339(t.now()), "2030-01-01T00:00:00Z");
  EXPECT_EQ(t.monotonic() - m0, 90s) << "a wall-clock jump does not move monotonic time";
  t.advance_to(m0 + 60s);
  EXPECT_EQ(t.monotonic() - m0, 90s) << "never back";
}

TEST(manual_time, a_waiter_wakes_when_time_reaches_its_deadline_not_before) {
  manual_time t(parse_rfc3339("2025-01-01T00:00:00Z").value());
  alarm a(t);
  const auto deadline = t.monotonic() + 10s;
  auto done = std::async(std::launch::async, [&] { return a.wait_until(deadline, [] { return false; }); });
  t.advance(9s);
  EXPECT_EQ(done.wait_for(50ms), std::future_status::timeout) << "one second early";
  t.advance(1s);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(done.get()) << "the deadline came, not the condition";
}

TEST(manual_time, notify_wakes_a_waiter_whose_condition_now_holds) {
  manual_time t(parse_rfc3339("2025-01-01T00:00:00Z").value());
  alarm a(t);
  bool ready = false;  // guarded by a
  auto done = std::async(std::launch::async, [&] { return a.wait_for(1h, [&] { return ready; }); });
  a.notify([&] { ready = true; });
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(done.get());
}

TEST(manual_time, sleep_for_returns_once_the_test_moved_time_past_it) {
  manual_time t(parse_rfc3339("2025-01-01T00:00:00Z").value());
  auto done = std::async(std::launch::async, [&] { sleep_for(t, 5min); });
  EXPECT_EQ(done.wait_for(50ms), std::future_status::timeout);
  t.advance(10min);
  EXPECT_EQ(done.wait_for(10s), std::future_status::ready);
}

}  // namespace
}  // namespace cdr
