// The ingest suite's faults (label faults): kill -9 at random moments, the
// broker down and request errors, an unwritable dead-letter topic, a full
// disk. Each compares the final store, id by id, with the fixture's model.
#include "ingest_fixture.h"

namespace cdr::test {
namespace {

TEST_F(ingest, kill_9_at_five_random_moments_loses_and_doubles_nothing) {
  temp_dir dir;
  std::mt19937 rng(static_cast<std::mt19937::result_type>(test_seed(5)));
  auto d = start(dir);
  for (int round = 0; round < 5; ++round) {
    produce(4'000, 100 + static_cast<std::uint64_t>(round));
    std::this_thread::sleep_for(milliseconds(200 + rng() % 1500));
    EXPECT_EQ(d->stop(SIGKILL), -SIGKILL);
    d = start(dir);
  }
  produce(2'000, 200);
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters(5);
}

TEST_F(ingest, broker_down_and_request_errors_lose_nothing) {
  temp_dir dir;
  auto d = start(dir);
  produce(5'000, 31);
  wait_consumed({dir / "a.sock"});
  const auto before = messages_;
  rd_kafka_mock_broker_set_down(kafka_.cluster().mock(), 1);
  std::this_thread::sleep_for(seconds(5));
  rd_kafka_mock_broker_set_up(kafka_.cluster().mock(), 1);
  // Fetch and commit requests fail a few times more.
  rd_kafka_mock_push_request_errors(kafka_.cluster().mock(), 1 /* Fetch */, 3,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  rd_kafka_mock_push_request_errors(kafka_.cluster().mock(), 8 /* OffsetCommit */, 2,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
  produce(5'000, 32);
  EXPECT_GT(messages_, before);
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

// SIGTERM with the broker gone: the offsets cannot be committed nor the
// group left (librdkafka's close and destroy both wait for the
// coordinator), yet the daemon ends after half of kafka.shutdown_timeout,
// its store whole, and a restart resumes from the store. The session
// outlasts the stop, so the commits' deadline ends it, not a lost
// assignment.
TEST_F(ingest, a_stop_while_the_broker_is_down_ends_in_time_and_loses_nothing) {
  temp_dir dir;
  const std::vector<std::string> long_session{"--set", "kafka.properties.\"session.timeout.ms\"=45000"};
  auto d = start(dir, "cdr-retention", {}, long_session);
  produce(3'000, 33);
  wait_consumed({dir / "a.sock"});
  rd_kafka_mock_broker_set_down(kafka_.cluster().mock(), 1);
  const auto asked = steady_clock::now();
  EXPECT_EQ(d->stop(SIGTERM, seconds(60)), 0) << d->log();
  EXPECT_LE(steady_clock::now() - asked, seconds(25)) << d->log();
  EXPECT_NE(d->log().find("did not take this member's offsets of"), std::string::npos) << d->log();
  EXPECT_NE(d->log().find("\"stopped\""), std::string::npos) << d->log();
  rd_kafka_mock_broker_set_up(kafka_.cluster().mock(), 1);
  d = start(dir, "cdr-retention", {}, long_session);
  produce(1'000, 34);
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, an_unwritable_dead_letter_topic_pauses_consumption_instead_of_skipping) {
  temp_dir dir;
  auto d = start(dir);
  auto* mock = kafka_.cluster().mock();
  rd_kafka_mock_topic_set_error(mock, "cdr-retention-dlq", RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  produce(3'000, 51);
  // The batch holding the first malformed message cannot be made durable:
  // consumption pauses and no offset moves past it.
  const auto deadline = steady_clock::now() + seconds(60);
  nlohmann::json consumer;
  while (steady_clock::now() < deadline) {
    consumer = admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"];
    if (consumer.value("pause_reason", "") == "dead_letter") break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_EQ(consumer.value("pause_reason", ""), "dead_letter") << consumer.dump();
  EXPECT_LT(consumed(dir / "a.sock"), messages_);
  rd_kafka_mock_topic_set_error(mock, "cdr-retention-dlq", RD_KAFKA_RESP_ERR_NO_ERROR);
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"].value("state", ""), "running");
  EXPECT_NE(d->log().find("ingest resumed (was paused: dead_letter)"), std::string::npos);
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, a_full_disk_pauses_consumption_and_resumes_when_space_returns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  temp_dir dir;
  const auto small = dir / "small";
  std::filesystem::create_directories(small);
  if (run_command({"/bin/mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", small}).exit_code != 0) {
    GTEST_SKIP() << "cannot mount tmpfs here";
  }
  struct unmount {
    std::string path;
    ~unmount() { run_command({"/bin/umount", "-l", path}); }
  } guard{small};
  auto args = daemon_args();
  args.insert(args.end(), {"--set", "storage.path=" + small + "/data"});
  auto d = std::make_unique<daemon_process>(write_test_config(dir), args, dir / "log");
  ASSERT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
  produce(20'000, 61);

  const auto deadline = steady_clock::now() + seconds(90);
  nlohmann::json consumer;
  while (steady_clock::now() < deadline && !d->wait_exit(milliseconds(0))) {
    try {
      consumer = admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"];
    } catch (const std::exception&) {
    }
    if (consumer.value("pause_reason", "") == "no_space") break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_EQ(consumer.value("pause_reason", ""), "no_space") << consumer.dump() << d->log();
  EXPECT_LT(consumed(dir / "a.sock"), messages_);
  const auto metrics = http_get(admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"], "/metrics");
  EXPECT_NE(metrics.find("cdr_retention_ingest_pauses_total{reason=\"no_space\"}"), std::string::npos);

  ASSERT_EQ(run_command({"/bin/mount", "-o", "remount,size=256m", small}).exit_code, 0);
  wait_consumed({dir / "a.sock"});
  EXPECT_NE(d->log().find("ingest resumed (was paused: no_space)"), std::string::npos) << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  // stored() opens dir/data: point it at the tmpfs store.
  std::filesystem::create_symlink(small + "/data", dir / "data");
  expect_exactly(stored(dir));
  expect_dead_letters();
}

}  // namespace
}  // namespace cdr::test
