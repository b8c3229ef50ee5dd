// Ingest end to end: the real daemon binary consuming from librdkafka's mock
// cluster, hosted by the test on its own handle so it outlives a killed
// daemon. Every test compares the final store, id by id, with an
// expectation computed here independently of the daemon's code.
#include "ingest_fixture.h"

namespace cdr::test {
namespace {

TEST_F(ingest, fifty_thousand_events_with_redeliveries_malformed_and_late) {
  temp_dir dir;
  auto d = start(dir);
  produce(50'000, 11);
  wait_consumed({dir / "a.sock"});
  const auto status = admin_call(dir / "a.sock", "status")["result"];
  const auto events = status.value(nlohmann::json::json_pointer("/kafka/consumer/events"), nlohmann::json::object());
  EXPECT_GT(events.value("duplicate", 0), 2000);
  EXPECT_GT(events.value("stripped_on_ingest", 0), 100);
  EXPECT_GT(events.value("dropped_on_ingest", 0), 10);
  EXPECT_EQ(events.value("rejected", 0), malformed_.size() + duplicate_rejects_);
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, graceful_restart_in_the_middle_loses_and_doubles_nothing) {
  temp_dir dir;
  auto d = start(dir);
  produce(10'000, 21);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  const auto before = consumed(dir / "a.sock");  // gone: 0
  EXPECT_EQ(before, 0u);
  d = start(dir);
  produce(10'000, 22);
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, a_batch_refused_after_its_dead_letters_were_sent_does_not_send_them_twice) {
  // A batch a sweep closed a partition under is dropped and read again
  // (`stale`); the failpoint refuses the first batch holding a rejected
  // message that way, after its dead-letter copies were acknowledged.
  temp_dir dir;
  auto d = start(dir, "cdr-retention", {"CDR_RETENTION_FAILPOINT=refuse_batch_as_stale"});
  ASSERT_FALSE(HasFailure());
  produce(3'000, 61);
  wait_consumed({dir / "a.sock"});
  EXPECT_NE(d->log().find("failpoint refuse_batch_as_stale reached"), std::string::npos) << d->log();
  EXPECT_NE(d->log().find("refused by a failpoint; re-reading the batch"), std::string::npos) << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

TEST_F(ingest, subject_export_and_record_get_find_a_subject_by_its_keyed_hash) {
  temp_dir dir;
  auto d = start(dir);
  const auto cdr = [](const std::string& id, const std::string& at, const std::string& ids) {
    return R"({"type":"cdr","id":")" + id + R"(","customer_id":"acme","occurred_at":")" + at +
           R"(","channel":"sms","route":{"country":"HR"})" + ids + "}";
  };
  // Three records of the subject (two months, both directions, different
  // spellings), one of another subject, and one too old to keep identifiers.
  const std::vector<std::pair<std::string, std::string>> events{
      {"s-1", cdr("s-1", "2025-03-01T10:00:00Z", R"(,"to":"+385 91 555 0001")")},
      {"s-2", cdr("s-2", "2025-02-11T10:00:00+01:00", R"(,"from":"00385915550001","to":"+447700900123")")},
      {"s-3", cdr("s-3", "2025-03-02T10:00:00Z", R"(,"to":"Jane.Doe@Example.com","msisdn":"+385915550001")")},
      {"other", cdr("other", "2025-03-02T10:00:00Z", R"(,"to":"+385915550002")")},
      {"old", cdr("old", "2023-01-05T10:00:00Z", R"(,"to":"+385915550001")")},
  };
  for (const auto& [id, json] : events) {
    kafka_.produce("cdr", id, json);
    ++messages_;
  }
  kafka_.flush();
  wait_consumed({dir / "a.sock"});

  std::vector<nlohmann::json> items;
  admin::client c(dir / "a.sock", std::chrono::seconds(10));
  const auto done = c.call("subject export", {{"identifier", "+385-91-555-0001"}},
                           [&](const nlohmann::json& item) { items.push_back(item); });
  ASSERT_EQ(done["ok"], true) << done.dump();
  EXPECT_EQ(done["result"]["records"], 3);
  std::set<std::string> ids;
  for (const auto& item : items) {
    ids.insert(item["id"]);
    EXPECT_EQ(item["kind"], "cdr");
    EXPECT_FALSE(item["identifiers"].is_null()) << item.dump();
  }
  EXPECT_EQ(ids, (std::set<std::string>{"s-1", "s-2", "s-3"}));
  EXPECT_EQ(done["result"]["subject"].get<std::string>().size(), 64u) << "the keyed hash, never the identifier";
  EXPECT_EQ(done.dump().find("5550001"), std::string::npos);

  // E-mail addresses match case-insensitively.
  items.clear();
  const auto mail = c.call("subject export", {{"identifier", "jane.doe@example.COM"}},
                           [&](const nlohmann::json& item) { items.push_back(item); });
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["id"], "s-3");

  // The CLI writes the records as JSON lines.
  const auto cli = run_command(
      {CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "subject", "export", "--identifier", "+385915550001"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(std::count(cli.out.begin(), cli.out.end(), '\n'), 3) << cli.out;
  EXPECT_EQ(cli.err, "3 records\n");
  const auto one = run_command(
      {CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "subject", "export", "--identifier", "jane.doe@example.com"});
  EXPECT_EQ(one.err, "1 record\n") << "singular";

  auto r = admin_call(dir / "a.sock", "record get", {{"id", "s-2"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["result"]["month"], "2025-02");
  EXPECT_EQ(r["result"]["metadata"]["route"]["country"], "HR");
  EXPECT_EQ(r["result"]["identifiers"]["from"], "00385915550001") << "identifiers are kept as sent";
  r = admin_call(dir / "a.sock", "record get", {{"id", "old"}, {"kind", "cdr"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_TRUE(r["result"]["identifiers"].is_null()) << "stored without identifiers: past its strip deadline";
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "nope"}})["error"]["code"], "not_found");
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "s-1"}, {"kind", "fax"}})["error"]["code"],
            "invalid_argument");
  EXPECT_EQ(d->stop(SIGTERM), 0);
}

TEST_F(ingest, two_consumers_of_one_group_store_each_record_exactly_once) {
  temp_dir a_dir, b_dir;
  auto a = start(a_dir, "shared");
  produce(6'000, 41);
  auto b = start(b_dir, "shared");  // joins: a rebalance moves partitions to b
  produce(6'000, 42);
  wait_consumed({a_dir / "a.sock", b_dir / "a.sock"});
  EXPECT_EQ(a->stop(SIGTERM), 0) << a->log();
  EXPECT_EQ(b->stop(SIGTERM), 0) << b->log();
  auto in_a = stored(a_dir);
  const auto in_b = stored(b_dir);
  EXPECT_FALSE(in_b.empty()) << "the second consumer got partitions";
  for (const auto& [k, v] : in_b) {
    EXPECT_FALSE(in_a.contains(k)) << k << " stored by both consumers";
    in_a[k] = v;
  }
  expect_exactly(in_a);
}

// A store ahead of the group's committed offsets (its commit was refused
// during a rebalance, then the assignment was lost before it was made
// again) is committed when its partitions are assigned, with no new
// message: a drain waits on the group's offsets. Here the group is a new
// one, which knows nothing of what the store holds.
TEST_F(ingest, a_store_ahead_of_the_group_is_committed_when_its_partitions_are_assigned) {
  temp_dir dir;
  auto d = start(dir, "first");
  produce(2'000, 43);
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  d = start(dir, "second");
  const kafka::client_options reader{kafka_.bootstrap(), "progress-reader", {}};
  const auto behind = [&](const std::string& topic) {
    const auto progress = kafka::group_progress(reader, "second", topic, seconds(5));
    std::int64_t n = progress ? 0 : -1;
    for (const auto& p : progress.value_or(std::vector<kafka::partition_progress>{})) {
      n += p.end - std::max<std::int64_t>(p.committed, 0);
    }
    return n;
  };
  const auto deadline = steady_clock::now() + seconds(60);
  while ((behind("cdr") != 0 || behind("usage") != 0) && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(behind("cdr"), 0) << d->log();
  EXPECT_EQ(behind("usage"), 0) << d->log();
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
}

}  // namespace
}  // namespace cdr::test

namespace cdr::test {
namespace {

std::string cdr_event(const std::string& id, const std::string& occurred_at, const std::string& customer) {
  return R"({"type":"cdr","id":")" + id + R"(","customer_id":")" + customer + R"(","occurred_at":")" + occurred_at +
         R"(","channel":"sms","from":"+385911234567"})";
}

// Finding 3 of "Hardening": "0000-01-01T00:00:00+00:01" is valid RFC 3339
// in year -1. With a hold on its customer it was stored under a broken key;
// its redelivery threw through a librdkafka callback, and every restart
// aborted again. Now it is rejected with a reason of its own, each time.
TEST_F(ingest, an_event_in_year_minus_1_is_rejected_and_never_crash_loops) {
  temp_dir dir;
  auto d = start(dir);
  ASSERT_EQ(admin_call(dir / "a.sock", "hold add", {{"customer", "acme"}, {"reason", "r"}, {"reference", "C-1"}})["ok"],
            true);
  const auto bad = cdr_event("year-minus-one", "0000-01-01T00:00:00+00:01", "acme");
  malformed_[bad] = "occurred_at_out_of_range";
  for (int i = 0; i < 2; ++i) {  // sent, then redelivered
    kafka_.produce("cdr", "k", bad);
    ++messages_;
  }
  ++duplicate_rejects_;
  kafka_.produce("cdr", "k", cdr_event("after-it", "2025-03-01T00:00:00Z", "acme"));
  ++messages_;
  expected_["cdr/after-it"] = {record_kind::cdr, true};
  kafka_.flush();
  wait_consumed({dir / "a.sock"});
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  // A restart reads on from where it was: no loop, no abort.
  d = start(dir);
  EXPECT_EQ(admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"]["state"], "running");
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
  expect_exactly(stored(dir));
  expect_dead_letters();
}

// A stored entry that does not decode (here an id index entry, damaged on
// disk) is counted and reported, never fatal: a redelivery of that id is
// stored again over it and ingest goes on.
TEST_F(ingest, a_corrupt_id_index_entry_is_counted_and_never_aborts) {
  temp_dir dir;
  auto d = start(dir);
  const auto event = cdr_event("id-damaged", "2025-03-01T00:00:00Z", "acme");
  kafka_.produce("cdr", "k", event);
  ++messages_;
  kafka_.flush();
  wait_offsets(dir / "a.sock");
  EXPECT_EQ(d->stop(SIGTERM), 0);
  // The ids family: kind byte 0x01 (cdr) + the id -> a value that is no entry.
  std::string key_hex = "0x01";
  for (const char c : std::string("id-damaged")) key_hex += fmt::format("{:02X}", static_cast<unsigned char>(c));
  const auto put = run_command({"/usr/bin/ldb", "--db=" + (dir / "data"), "--column_family=ids", "--key_hex",
                                "--value_hex", "put", key_hex, "0xFF"});
  ASSERT_EQ(put.exit_code, 0) << put.out << put.err;
  d = start(dir);
  const auto got = admin_call(dir / "a.sock", "record get", {{"id", "id-damaged"}});
  EXPECT_EQ(got["error"]["code"], "internal") << got.dump();
  EXPECT_NE(got["error"]["message"].get<std::string>().find("does not decode"), std::string::npos);
  kafka_.produce("cdr", "k", event);  // redelivered
  kafka_.produce("cdr", "k", cdr_event("id-next", "2025-03-02T00:00:00Z", "acme"));
  messages_ += 2;
  kafka_.flush();
  wait_offsets(dir / "a.sock");
  const auto status = admin_call(dir / "a.sock", "status")["result"];
  EXPECT_GE(status["storage"]["corrupt_entries"].get<int>(), 1) << status.dump();
  const auto body = http_get(status["metrics"]["listen"], "/metrics");
  EXPECT_EQ(body.find("cdr_retention_store_corrupt_entries_total 0"), std::string::npos) << body;
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "id-damaged"}})["ok"], true) << "repaired";
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "id-next"}})["ok"], true);
  EXPECT_EQ(d->stop(SIGTERM), 0) << d->log();
}

// A topic the configuration names and the cluster does not have stops the
// start with exit 2 (no restart loop), naming the key, the topic and the
// command that creates it; with the topics there, the same start works.
TEST_F(ingest, a_missing_topic_refuses_the_start_naming_it_and_how_to_create_it) {
  temp_dir dir;
  auto args = daemon_args();
  args.insert(args.end(), {"--set", "kafka.topics.usage=\"usage-typo\"", "--set", "kafka.topics.control=\"no-control\"",
                           "--set", "kafka.topics.replies=\"cdr-retention-replies\"", "--set",
                           "kafka.topics.handover=\"cdr-retention-handover\""});
  daemon_process d(write_test_config(dir), args, dir / "log");
  EXPECT_EQ(d.wait_exit(std::chrono::seconds(30)), 2) << d.log();
  const auto log = d.log();
  EXPECT_NE(log.find("2 topic(s) this configuration uses do not exist on the cluster"), std::string::npos) << log;
  EXPECT_NE(log.find("kafka.topics.usage = \\\"usage-typo\\\": kafka-topics.sh --bootstrap-server " +
                     kafka_.bootstrap() + " --create --topic usage-typo --partitions <N>"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("kafka.topics.control = \\\"no-control\\\": kafka-topics.sh"), std::string::npos) << log;
  EXPECT_NE(log.find("--topic no-control --partitions 1"), std::string::npos) << log;
  EXPECT_EQ(log.find("cdr-retention-replies\\\":"), std::string::npos) << "only the missing ones: " << log;
  EXPECT_FALSE(std::filesystem::exists(dir / "data")) << "refused before the store was created";
  auto ok = start(dir);
  EXPECT_NE(ok->log().find("kafka: the 7 topics this configuration uses exist"), std::string::npos) << ok->log();
  EXPECT_EQ(ok->stop(SIGTERM), 0);
}

// A rejected message may hold identifiers nobody found (it did not parse):
// its dead letter carries none in clear, in its value or its key; the
// daemon opens it for an operator, audited, and only at its own source.
TEST_F(ingest, a_dead_letter_carries_no_identifier_in_clear_and_opens_only_through_the_daemon) {
  temp_dir dir;
  auto d = start(dir);
  // Produces one message, waits until it is consumed, reads the dead letters.
  const auto deliver = [&](const std::string& topic, const std::string& key, const std::string& value,
                           std::size_t dead_letters) {
    kafka_.produce(topic, key, value);
    ++messages_;
    kafka_.flush();
    wait_offsets(dir / "a.sock");
    return kafka_.read_all("cdr-retention-dlq", dead_letters);
  };
  const std::string bad =
      R"({"type":"cdr","id":"bad-1","customer_id":"acme","occurred_at":"yesterday","channel":"sms","from":"+385915551234"})";
  const auto dlq = deliver("cdr", "+385915551234", bad, 1);
  ASSERT_EQ(dlq.size(), 1u);
  for (const auto& in : {dlq[0].value, dlq[0].key}) {
    EXPECT_EQ(in.find("5915551234"), std::string::npos) << "the number in clear: " << in;
  }
  EXPECT_EQ(dlq[0].key.rfind("cdr/", 0), 0u) << "keyed by its source: " << dlq[0].key;
  EXPECT_EQ(open_dead_letter(dlq[0]), bad) << "opens as documented";

  const auto opened = admin_call(dir / "a.sock", "dead-letter open", {{"message", dlq[0].value}});
  ASSERT_TRUE(opened.value("ok", false)) << opened.dump();
  EXPECT_EQ(opened["result"]["value"], bad);
  EXPECT_EQ(opened["result"]["key"], "+385915551234");
  EXPECT_EQ(opened["result"]["reason"], dlq[0].headers.at("cdr-retention-reason"));
  EXPECT_EQ(opened["result"]["source"]["topic"], "cdr");
  // Moved to another source, or altered, it does not open.
  auto moved = nlohmann::json::parse(dlq[0].value);
  moved["source"]["offset"] = moved["source"]["offset"].get<std::int64_t>() + 1;
  const auto refused = admin_call(dir / "a.sock", "dead-letter open", {{"message", moved.dump()}});
  EXPECT_EQ(refused["error"]["code"], "invalid_argument") << refused.dump();
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("does not open"), std::string::npos);
  // Through the CLI, as an operator would from kcat's output.
  const auto cli = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "--format", "json", "dead-letter",
                                "open", "--message", dlq[0].value});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("+385915551234"), std::string::npos) << cli.out;
  EXPECT_NE(read_file(dir / "data/audit.jsonl").find("\"dead_letter_open\""), std::string::npos)
      << "reading it is audited";

  // A record on the handover topic that no member of this fleet sealed
  // (written by whoever can write there) is refused, not stored.
  const std::string forged =
      R"({"type":"cdr","id":"forged-1","customer_id":"acme","occurred_at":"2025-03-01T09:00:00Z","channel":"sms","from":"+385915559999"})";
  const auto both = deliver("cdr-retention-handover", "forged-1", forged, 2);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].headers.at("cdr-retention-reason"), "unsealed_handover");
  EXPECT_EQ(open_dead_letter(both[1]), forged);
  EXPECT_EQ(admin_call(dir / "a.sock", "record get", {{"id", "forged-1"}})["ok"], false) << "not stored";
  EXPECT_EQ(d->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test
