// What the probes and systemd are told (health.h), on manual time.
#include "health.h"

#include <gtest/gtest.h>

namespace cdr::service {
namespace {

using namespace std::chrono;

class health_test : public ::testing::Test {
 protected:
  manual_time time_{instant{}};
  health h_{time_, {minutes(5), seconds(30)}};
};

TEST_F(health_test, a_start_is_alive_while_it_progresses_and_not_ready_until_it_serves) {
  h_.step("re-indexing identifiers");
  EXPECT_TRUE(h_.alive().ok);
  EXPECT_FALSE(h_.ready().ok);
  EXPECT_EQ(h_.ready().body["phase"], "starting");
  time_.advance(minutes(4));
  h_.advance(1000, 0, "records read");
  EXPECT_EQ(h_.line(), "re-indexing identifiers: 1000 records read");
  time_.advance(minutes(4));
  EXPECT_TRUE(h_.progressing()) << "4 minutes since the last progress";
  EXPECT_TRUE(h_.alive().ok);
  time_.advance(minutes(2));
  EXPECT_FALSE(h_.progressing());
  const auto v = h_.alive();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.body["status"], "failing");
  EXPECT_EQ(v.body["step"], "re-indexing identifiers: 1000 records read");
  EXPECT_EQ(v.body["reason"], "the start made no progress for 360 s");
  h_.step("starting ingest");  // progress again
  EXPECT_TRUE(h_.alive().ok);
}

TEST_F(health_test, serving_is_ready_and_alive_while_the_loop_ticks) {
  h_.serving();
  EXPECT_TRUE(h_.ready().ok);
  EXPECT_EQ(h_.ready().body, (nlohmann::json{{"status", "ok"}, {"phase", "serving"}}));
  time_.advance(seconds(29));
  EXPECT_TRUE(h_.alive().ok);
  time_.advance(seconds(2));
  EXPECT_FALSE(h_.alive().ok);
  EXPECT_EQ(h_.alive().body["reason"], "the main loop has not run for 31 s");
  EXPECT_TRUE(h_.ready().ok) << "liveness decides about a stuck loop";
  h_.tick();
  EXPECT_TRUE(h_.alive().ok);
}

TEST_F(health_test, a_stopping_daemon_is_not_ready_but_alive) {
  h_.serving();
  h_.stopping();
  EXPECT_FALSE(h_.ready().ok);
  EXPECT_EQ(h_.ready().body["phase"], "stopping");
  EXPECT_TRUE(h_.alive().ok);
}

}  // namespace
}  // namespace cdr::service
