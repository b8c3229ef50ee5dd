// Crypto-shredding end to end: identifiers are sealed before they reach
// disk, a strip destroys their month's key, and every copy of the data
// (checkpoints, a second daemon) forgets them with it. The real daemon
// binary, the mock cluster hosted by the test, a simulated clock.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cdr/core/config.h"
#include "cdr/core/key_layout.h"
#include "cdr/store/store.h"
#include "retention_fixture.h"

namespace cdr::test {
namespace {

using crypto_shredding = retention_fixture;

// The keys object of the key store file: name -> wrapped bytes (hex).
std::map<std::string, std::string> wrapped_keys(const std::string& keystore_text) {
  std::map<std::string, std::string> out;
  const auto j = nlohmann::json::parse(keystore_text);
  for (const auto& [name, value] : j["keys"].items()) out[name] = value.get<std::string>();
  return out;
}

// Every regular file under dir: path -> bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().string()] = read_file(e.path().string());
  }
  return out;
}

std::size_t count_in(const std::map<std::string, std::string>& files, const std::string& needle) {
  std::size_t n = 0;
  for (const auto& [path, bytes] : files) {
    for (auto pos = bytes.find(needle); pos != std::string::npos; pos = bytes.find(needle, pos + 1)) ++n;
  }
  return n;
}

TEST_F(crypto_shredding, identifiers_round_trip_and_never_reach_disk_in_plain_text) {
  auto d = start("2026-03-20T00:00:00Z");
  std::vector<sent> cdrs;
  for (int i = 0; i < 30; ++i) {
    const auto m = 2026y / January + months{i % 3};
    cdrs.push_back(send_cdr(m, at(m, 1 + i / 3, 10), "cust-plain-marker", "+4917712340" + std::to_string(100 + i)));
  }
  wait_stored();
  for (const auto& s : cdrs) {
    const auto r = call("record get", {{"id", s.id}});
    EXPECT_EQ(r["identifiers"]["from"], s.phone) << "byte-exact after the round trip";
    EXPECT_FALSE(r.contains("identifiers_status"));
  }
  const auto exported = call("subject export", {{"identifier", "0049 177 1234 0105"}});
  EXPECT_EQ(exported["records"], 1);
  // In the WAL now, and in SST files after a checkpoint flushes the memtables.
  call("checkpoint", {{"to", "copy"}});
  for (const auto& where : {dir_ / "data", dir_ / "checkpoints/copy"}) {
    const auto files = snapshot(where);
    EXPECT_GT(count_in(files, "cust-plain-marker"), 0u) << where << ": the scan finds what is stored";
    for (const auto& s : cdrs) {
      EXPECT_EQ(count_in(files, s.phone), 0u) << where << ": " << s.phone;
      EXPECT_EQ(count_in(files, s.phone.substr(1)), 0u) << where << ": normalised " << s.phone;
      EXPECT_EQ(count_in(files, "someone" + s.id.substr(2) + "@example.org"), 0u) << where;
    }
  }
  const auto keystore = read_file(dir_ / "keys/keystore.json");
  EXPECT_EQ(wrapped_keys(keystore).size(), 3u) << "one key per month and class";
  for (const auto& s : cdrs) EXPECT_EQ(keystore.find(s.phone), std::string::npos);
  const auto status = call("status");
  EXPECT_EQ(status["keystore"]["keys_live"], 3);
  const auto cfg = call("config");
  EXPECT_EQ(cfg.dump().find(test_master_key), std::string::npos) << "the master key is never shown";
  EXPECT_EQ(read_file(dir_ / "log").find(test_master_key), std::string::npos) << "nor logged";
}

// The names of every generation of a partition's key in a key store's keys.
std::map<std::string, std::string> generations_of(const std::map<std::string, std::string>& keys,
                                                  const std::string& base) {
  std::map<std::string, std::string> out;
  for (const auto& [name, wrapped] : keys) {
    if (name == base || name.starts_with(base + "#")) out[name] = wrapped;
  }
  return out;
}

class crypto_shredding_generations : public crypto_shredding, public ::testing::WithParamInterface<int> {};

// Run with one key per month (the default limit) and with a limit of 3
// seals, so each month of ten records has four generations of its key.
TEST_P(crypto_shredding_generations, a_strip_destroys_the_key_and_every_copy_forgets) {
  const int max_seals = GetParam();
  const std::size_t generations = max_seals == 3 ? 4 : 1;
  if (max_seals > 0) extra_args_ = {"--set", "storage.max_seals_per_key=" + std::to_string(max_seals)};
  // December 2024 is stripped on 2026-01-01; June 2025 on 2026-07-01.
  auto d = start("2025-12-20T00:00:00Z");
  const year_month due = 2024y / December;
  const year_month later = 2025y / June;
  std::vector<sent> old_ones, new_ones;
  for (int i = 0; i < 10; ++i) {
    old_ones.push_back(send_cdr(due, at(due, 1 + i, 9), "cust-a", "+4930555000" + std::to_string(i)));
    new_ones.push_back(send_cdr(later, at(later, 1 + i, 9), "cust-a", "+4930666000" + std::to_string(i)));
  }
  wait_stored();
  const std::string copy = dir_ / "checkpoints/before-strip";
  call("checkpoint", {{"to", "before-strip"}});
  const auto keys_before = read_file(dir_ / "keys/keystore.json");
  const auto wrapped_before = wrapped_keys(keys_before);
  const auto december_before = generations_of(wrapped_before, "p/cdr/2024-12/0");
  ASSERT_EQ(december_before.size(), generations);
  ASSERT_EQ(generations_of(wrapped_before, "p/cdr/2025-06/0").size(), generations);
  for (const auto& s : old_ones) {
    EXPECT_EQ(call("record get", {{"id", s.id}})["identifiers"]["from"], s.phone) << "every generation opens";
  }

  call("debug advance-clock", {{"duration", "13d"}});  // 2026-01-02
  const auto report = call("sweep");
  ASSERT_EQ(report["actions"].size(), 1u) << report.dump();
  EXPECT_EQ(report["keys_destroyed"], nlohmann::json::array({"p/cdr/2024-12/0"}));

  // The key store file no longer holds the destroyed key's bytes; the
  // other key is kept as it was.
  const auto keys_after = read_file(dir_ / "keys/keystore.json");
  for (const auto& [name, wrapped] : december_before) {
    EXPECT_EQ(keys_after.find(wrapped), std::string::npos) << name << ": every generation is destroyed";
  }
  EXPECT_TRUE(generations_of(wrapped_keys(keys_after), "p/cdr/2024-12/0").empty());
  EXPECT_EQ(generations_of(wrapped_keys(keys_after), "p/cdr/2025-06/0"),
            generations_of(wrapped_before, "p/cdr/2025-06/0"));
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["partitions"][0]["key"], "destroyed");
  const auto trail = read_file(dir_ / "data/audit.jsonl");
  EXPECT_NE(trail.find("\"destroy_keys\""), std::string::npos);
  EXPECT_NE(trail.find("p/cdr/2024-12/0"), std::string::npos);
  EXPECT_EQ(d->stop(SIGTERM), 0);

  // The checkpoint (taken before the strip) restored into a second daemon
  // that uses the live key store, on a clock before the deadline so it does
  // not strip anything itself: December's identifiers are unreadable,
  // June's open.
  temp_dir other;
  const auto second = start_second(other, copy, "2025-12-21T00:00:00Z");
  ASSERT_FALSE(HasFailure());
  for (const auto& s : old_ones) {
    const auto r = admin_call(other / "a.sock", "record get", {{"id", s.id}});
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    EXPECT_TRUE(r["result"]["identifiers"].is_null()) << r.dump();
    EXPECT_EQ(r["result"]["identifiers_status"], "key_destroyed");
    EXPECT_EQ(r["result"]["metadata"]["customer_id"], "cust-a") << "the metadata is intact";
  }
  for (const auto& s : new_ones) {
    const auto r = admin_call(other / "a.sock", "record get", {{"id", s.id}});
    EXPECT_EQ(r["result"]["identifiers"]["from"], s.phone) << r.dump();
  }
  EXPECT_EQ(admin_call(other / "a.sock", "subject export", {{"identifier", old_ones[0].phone}})["result"]["records"], 0)
      << "nor can a destroyed month be searched";
  EXPECT_EQ(admin_call(other / "a.sock", "subject export", {{"identifier", new_ones[0].phone}})["result"]["records"],
            1);
  EXPECT_EQ(second->stop(SIGTERM), 0);
}

INSTANTIATE_TEST_SUITE_P(limits, crypto_shredding_generations, ::testing::Values(0, 3),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == 0 ? "one_key" : "four_generations";
                         });

// A legal hold naming some records of a month being stripped: their
// identifiers are re-sealed under the month's held key, which outlives the
// partition key until the last held copy is released.
TEST_F(crypto_shredding, held_copies_live_under_a_held_key_until_released) {
  auto d = start("2025-12-20T00:00:00Z");
  const year_month due = 2024y / December;
  const auto held = send_cdr(due, at(due, 5, 9), "cust-held", "+4930444001");
  const auto gone = send_cdr(due, at(due, 6, 9), "cust-other", "+4930444002");
  wait_stored();
  // What is really on disk of both records: their sealed identifier values,
  // as a copy of the store holds them (a plaintext scan cannot fail).
  const auto sealed_of = [&](const std::string& checkpoint, const sent& s) {
    call("checkpoint", {{"to", checkpoint}});
    storage_config sc;
    sc.path = dir_ / ("checkpoints/" + checkpoint);
    sc.block_cache_bytes = 8 << 20;
    const store::store copy(sc);
    const auto r = copy.get(record_kind::cdr, s.id);
    EXPECT_TRUE(r && r->identifiers) << s.id;
    return r && r->identifiers ? *r->identifiers : std::string("(none)");
  };
  const auto sealed_gone = sealed_of("before", gone);
  EXPECT_GT(occurrences(sealed_gone), 0u) << "the scan finds a sealed value where it is";
  call("hold add", {{"customer", "cust-held"}, {"reason", "litigation"}, {"reference", "L-1"}});
  call("debug advance-clock", {{"duration", "13d"}});
  const auto swept = call("sweep");
  EXPECT_EQ(occurrences(sealed_gone), 0u) << "the stripped record's sealed value is purged from every file";
  EXPECT_EQ(swept["keys_destroyed"], nlohmann::json::array({"p/cdr/2024-12/0"})) << swept.dump();
  auto keys = wrapped_keys(read_file(dir_ / "keys/keystore.json"));
  EXPECT_EQ(keys.count("p/cdr/2024-12/0"), 0u);
  EXPECT_EQ(keys.count("h/cdr/2024-12/0"), 1u);
  EXPECT_EQ(call("record get", {{"id", held.id}})["identifiers"]["from"], held.phone);
  EXPECT_EQ(get(gone), std::optional<bool>(false));
  EXPECT_EQ(call("subject export", {{"identifier", held.phone}})["records"], 1) << "found through the held index";
  EXPECT_EQ(occurrences(held.phone), 0u) << "held copies are sealed too";
  const auto sealed_held = sealed_of("held", held);
  EXPECT_GT(occurrences(sealed_held), 0u) << "the held copy's sealed value is on disk while held";

  call("hold release", {{"id", "1"}, {"reason", "case closed"}, {"reference", "T-1"}});
  const auto released = call("sweep");
  EXPECT_EQ(occurrences(sealed_held), 0u) << "and in no file once released and swept";
  EXPECT_EQ(released["keys_destroyed"], nlohmann::json::array({"h/cdr/2024-12/0"})) << released.dump();
  keys = wrapped_keys(read_file(dir_ / "keys/keystore.json"));
  EXPECT_TRUE(keys.empty());
  EXPECT_EQ(get(held), std::optional<bool>(false));
  EXPECT_EQ(call("status")["keystore"]["keys_destroyed"], 2);
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
}

TEST_F(crypto_shredding, a_crash_between_strip_and_key_destruction_is_finished_at_the_next_start) {
  auto d = std::make_unique<daemon_process>(write_test_config(dir_), args("2025-12-20T00:00:00Z"), dir_ / "log",
                                            std::vector<std::string>{"CDR_RETENTION_FAILPOINT=before_key_destruction"});
  ASSERT_TRUE(d->wait_ready(sock())) << d->log();
  const year_month due = 2024y / December;
  const auto s = send_cdr(due, at(due, 3, 9), "cust-a", "+4930777000");
  wait_stored();
  call("debug advance-clock", {{"duration", "13d"}});
  EXPECT_THROW(admin_call(sock(), "sweep"), std::exception) << "the daemon dies mid-sweep, without an answer";
  EXPECT_EQ(d->wait_exit(seconds(10)), 86);
  // The range removal committed; the key is still there.
  EXPECT_EQ(wrapped_keys(read_file(dir_ / "keys/keystore.json")).count("p/cdr/2024-12/0"), 1u);

  d = start("2026-01-02T00:00:00Z");
  EXPECT_EQ(wrapped_keys(read_file(dir_ / "keys/keystore.json")).count("p/cdr/2024-12/0"), 0u);
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["keystore"]["keys_destroyed"], 1);
  const auto trail = read_file(dir_ / "data/audit.jsonl");
  EXPECT_NE(trail.find("\"trigger\":\"recovery\""), std::string::npos) << trail;
  EXPECT_EQ(get(s), std::optional<bool>(false));
  EXPECT_EQ(call("audit verify")["ok"], true);
}

TEST_F(crypto_shredding, a_wrong_master_key_stops_the_start_and_writes_nothing) {
  auto d = start("2026-03-20T00:00:00Z");
  const auto s = send_cdr(2026y / March, at(2026y / March, 2, 9), "cust-a", "+4930888000");
  wait_stored();
  EXPECT_EQ(d->stop(SIGTERM), 0);
  const auto data_before = snapshot(dir_ / "data");
  const auto keys_before = read_file(dir_ / "keys/keystore.json");

  write_file(dir_ / "master.key", "another-master-key-that-is-long-enough-0123");
  daemon_process wrong(write_test_config(dir_), args("2026-03-20T00:00:00Z"), dir_ / "log-wrong");
  EXPECT_EQ(wrong.wait_exit(seconds(20)), 1);
  EXPECT_NE(wrong.log().find("the master key does not open the key store"), std::string::npos) << wrong.log();
  EXPECT_EQ(snapshot(dir_ / "data"), data_before) << "nothing written to the store";
  EXPECT_EQ(read_file(dir_ / "keys/keystore.json"), keys_before) << "nor to the key store";

  // A missing master key file, likewise.
  const auto cfg = write_test_config(dir_);
  fs::remove(dir_ / "master.key");
  daemon_process missing(cfg, args("2026-03-20T00:00:00Z"), dir_ / "log-missing");
  EXPECT_EQ(missing.wait_exit(seconds(20)), 1);
  EXPECT_NE(missing.log().find("cannot read the master key file"), std::string::npos) << missing.log();
  EXPECT_EQ(snapshot(dir_ / "data"), data_before);

  // A lost key store next to an existing store is refused too...
  write_file(dir_ / "master.key", test_master_key);
  fs::rename(dir_ / "keys/keystore.json", dir_ / "keystore.saved");
  daemon_process lost(write_test_config(dir_), args("2026-03-20T00:00:00Z"), dir_ / "log-lost");
  EXPECT_EQ(lost.wait_exit(seconds(20)), 1);
  EXPECT_NE(lost.log().find("is missing"), std::string::npos) << lost.log();
  EXPECT_FALSE(fs::exists(dir_ / "keys/keystore.json"));
  // ...and the right one opens everything again.
  fs::rename(dir_ / "keystore.saved", dir_ / "keys/keystore.json");
  d = start("2026-03-20T00:00:00Z");
  EXPECT_EQ(get(s), std::optional<bool>(true));
}

TEST_F(crypto_shredding, tampered_ciphertext_is_reported_unreadable_never_garbage) {
  auto d = start("2026-03-20T00:00:00Z");
  const year_month m = 2026y / February;
  const auto a = send_cdr(m, at(m, 2, 9), "cust-a", "+4930999001");
  const auto b = send_cdr(m, at(m, 3, 9), "cust-a", "+4930999002");
  const auto c = send_cdr(m, at(m, 4, 9), "cust-a", "+4930999003");
  wait_stored();
  EXPECT_EQ(d->stop(SIGTERM), 0);
  {
    // Through RocksDB itself, so the store's own checksums hold: one value
    // gets a flipped bit, another is swapped in under a different record.
    storage_config sc;
    sc.path = dir_ / "data";
    sc.compression = compression_kind::none;
    sc.block_cache_bytes = 8 << 20;
    store::store st(sc);
    const partition p{record_kind::cdr, month::of(2026, 2), 0};
    auto va = st.value(store::family::identifiers, record_key(p, a.id));
    const auto vc = st.value(store::family::identifiers, record_key(p, c.id));
    ASSERT_TRUE(va && vc);
    (*va)[va->size() / 2] = static_cast<char>((*va)[va->size() / 2] ^ 0x04);
    store::change ch(st);
    ch.put(store::family::identifiers, record_key(p, a.id), *va);
    ch.put(store::family::identifiers, record_key(p, b.id), *vc);
    st.apply(ch);
  }
  d = start("2026-03-20T00:00:00Z");
  for (const auto& s : {a, b}) {
    const auto r = call("record get", {{"id", s.id}});
    EXPECT_TRUE(r["identifiers"].is_null()) << r.dump();
    EXPECT_EQ(r["identifiers_status"], "unreadable");
  }
  EXPECT_EQ(call("record get", {{"id", c.id}})["identifiers"]["from"], c.phone);
  const auto exported = call("subject export", {{"identifier", a.phone}});
  EXPECT_EQ(exported["records"], 1) << "found by its index entry, shown as unreadable";
  EXPECT_EQ(call("status")["keystore"]["decrypt_failures"], 3);
  const auto listen = call("status")["metrics"]["listen"].get<std::string>();
  EXPECT_NE(http_get(listen, "/metrics").find("cdr_retention_decrypt_failures_total 3"), std::string::npos);
}

}  // namespace
}  // namespace cdr::test
