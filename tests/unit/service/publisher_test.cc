// The deletion-event outbox: sent at least once, removed once acknowledged,
// retried with back-off while the sink refuses, on manual time.
#include <gtest/gtest.h>

#include <thread>

#include "fixture.h"
#include "retention/publisher.h"

namespace cdr::test {
namespace {

using namespace std::chrono_literals;

class publisher : public service_fixture {
 protected:
  void outbox(std::initializer_list<std::uint64_t> ids) {
    store::change c(*store_);
    for (auto id : ids) {
      state_->put_event(
          c,
          {id, "drop_usage", partition{record_kind::usage, month::of(2020, 1), 0}, std::nullopt, {}, 5, time_.now()});
    }
    store_->apply(c);
  }
};

TEST_F(publisher, retries_with_back_off_until_acknowledged_then_empties_the_outbox) {
  outbox({3, 4, 5});
  auto sink = std::make_unique<recording_sink>();
  auto* seen = sink.get();
  seen->refuse = 3;
  service::event_publisher p(time_, *store_, *state_, std::move(sink));
  p.start();
  const auto await_rounds = [&](std::uint64_t n) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (p.rounds() < n) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "round " << n << " did not come";
      std::this_thread::yield();
    }
  };
  p.wake();
  await_rounds(1);
  // Refused: the next round waits 2 s, then 4 s, then 8 s.
  for (const auto wait : {2s, 4s, 8s}) {
    const auto n = p.rounds();
    const auto last = time_.monotonic();
    EXPECT_EQ(p.next_round() - last, wait);
    time_.advance(wait - 1ms);
    EXPECT_EQ(seen->rounds.size(), n) << "retried before " << wait.count() << " s";
    time_.advance(1ms);
    await_rounds(n + 1);
  }
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (state_->events_pending() != 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    std::this_thread::yield();
  }
  p.stop();
  EXPECT_EQ(seen->rounds, (std::vector<std::size_t>{3, 3, 3, 3}));
  ASSERT_EQ(seen->sent.size(), 3u);
  EXPECT_EQ(seen->sent[0].event_id, 3u);
  EXPECT_EQ(seen->sent[2].event_id, 5u);
}

TEST_F(publisher, an_unreadable_event_stays_in_the_outbox_and_is_not_sent) {
  outbox({7});
  close();
  put_raw_saved_state(dir_ / "data", "event/" + be64(8), "{\"event_id\":8");
  open();
  auto sink = std::make_unique<recording_sink>();
  auto* seen = sink.get();
  service::event_publisher p(time_, *store_, *state_, std::move(sink));
  EXPECT_FALSE(p.publish_once()) << "not everything was sent";
  ASSERT_EQ(seen->sent.size(), 1u);
  EXPECT_EQ(seen->sent[0].event_id, 7u);
  EXPECT_EQ(state_->events_pending(), 1u) << "the unreadable one is kept";
  EXPECT_FALSE(state_->healthy());
}

}  // namespace
}  // namespace cdr::test
