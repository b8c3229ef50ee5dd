// Retention end to end: the real daemon binary on a simulated clock,
// consuming crafted events from librdkafka's mock cluster (hosted by the
// test), sweeping, holding, erasing. Every expectation comes from a model
// written here with std::chrono calendar types, not from the planner.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cdr/store/store.h"
#include "retention_fixture.h"

namespace cdr::test {
namespace {

using retention = retention_fixture;

// Eleven years, one month at a time: events of every month arrive on time,
// late ones for earlier months; after each month's sweep nothing is kept past
// its deadline and nothing is removed before it.
TEST_F(retention, eleven_year_walk_never_late_never_early) {
  std::mt19937_64 rng(20151);
  year_month now = 2015y / January;
  auto d = start("2015-01-01T00:00:00Z");
  for (int step = 0; step <= 132; ++step) {
    if (step > 0) {
      call("debug advance-clock", {{"duration", std::to_string(days_in(now)) + "d"}});
      now += months{1};
    }
    const std::string c = "cust-" + std::to_string(step % 3);
    send_cdr(now, at(now, 1, 3), c, "+1415555" + std::to_string(1000 + step));
    send_cdr(now, at(now, 1, 5), c, "+1415556" + std::to_string(1000 + step));
    send_usage(now, at(now, 1, 4), c);
    const auto late = now - months{1 + static_cast<int>(rng() % 140)};
    send_cdr(late, at(late, 10, 9), c, "+1415557" + std::to_string(1000 + step));
    send_usage(late, at(late, 10, 9), c);
    wait_stored();
    call("sweep");
    for (const auto& s : sent_) {
      const bool boundary = s.strip_at() == now || s.strip_at() == now + months{1} || s.drop_at() == now ||
                            s.drop_at() == now + months{1};
      if (boundary || step % 12 == 0 || step == 132) expect_model(s, now);
    }
    if (HasFailure()) FAIL() << "at " << ym_text(now);
  }
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_GT(v["partitions"].size(), 100u);
  EXPECT_TRUE(call("audit verify")["ok"].get<bool>());
  // Nothing is due now that has not been done.
  const auto f = call("sweep", {{"dry_run", true}});
  EXPECT_TRUE(f["actions"].empty()) << f.dump();
}

// Holds keep what they name, through strips; release lets the next sweep
// remove it; a hold added after a strip brings nothing back; late events a
// hold names are kept whole.
TEST_F(retention, holds_keep_release_and_never_resurrect) {
  const year_month m = 2024y / June;
  auto d = start("2025-05-15T00:00:00Z");
  std::vector<sent> a, b;
  for (int i = 0; i < 5; ++i) {
    a.push_back(send_cdr(m, at(m, 3 + i, 10), "cust-a", "+3361234560" + std::to_string(i)));
    b.push_back(send_cdr(m, at(m, 3 + i, 11), "cust-b", "+3361234570" + std::to_string(i)));
  }
  const auto other_month = send_cdr(2024y / May, at(2024y / May, 20, 10), "cust-b", "+33612345800");
  wait_stored();
  const auto h = call("hold add", {{"customer", "cust-a"}, {"reason", "litigation"}, {"reference", "CASE-1"}});
  const auto whole = call("hold add", {{"from_month", "2024-05"},
                                       {"to_month", "2024-05"},
                                       {"kind", "cdr"},
                                       {"reason", "investigation"},
                                       {"reference", "LE-7"}});
  EXPECT_EQ(admin_call(sock(), "hold add", {{"reason", "x"}, {"reference", "y"}})["error"]["code"], "invalid_argument");
  call("debug advance-clock", {{"duration", "48d"}});  // 2025-07-02: May and June 2024 are due
  const auto r = call("sweep");
  ASSERT_EQ(r["deferred"].size(), 1u) << r.dump();  // May 2024, held whole
  EXPECT_EQ(r["deferred"][0]["month"], "2024-05");
  for (const auto& s : a) EXPECT_EQ(get(s), std::optional<bool>(true)) << "held: " << s.id;
  for (const auto& s : b) EXPECT_EQ(get(s), std::optional<bool>(false)) << "stripped: " << s.id;
  EXPECT_EQ(get(other_month), std::optional<bool>(true));
  // A late event of the stripped month: kept whole for cust-a, stripped for cust-b.
  const auto late_a = send_cdr(m, at(m, 28, 10), "cust-a", "+33612345900");
  const auto late_b = send_cdr(m, at(m, 28, 11), "cust-b", "+33612345901");
  wait_stored();
  EXPECT_EQ(get(late_a), std::optional<bool>(true));
  EXPECT_EQ(get(late_b), std::optional<bool>(false));
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
  EXPECT_EQ(call("hold list")["holds"].size(), 2u);

  // A hold added after the strip brings nothing back.
  const auto late_hold =
      call("hold add", {{"customer", "cust-b"}, {"reason", "late request"}, {"reference", "CASE-2"}});
  call("sweep");
  for (const auto& s : b) EXPECT_EQ(get(s), std::optional<bool>(false));
  call("hold release", {{"id", late_hold["id"].get<std::uint64_t>()}, {"reason", "case closed"}, {"reference", "T-1"}});

  call("hold release",
       {{"id", std::to_string(h["id"].get<std::uint64_t>())}, {"reason", "case closed"}, {"reference", "T-1"}});
  call("hold release", {{"id", whole["id"].get<std::uint64_t>()}, {"reason", "case closed"}, {"reference", "T-1"}});
  EXPECT_EQ(admin_call(sock(), "hold release",
                       {{"id", "999"}, {"reason", "case closed"}, {"reference", "T-1"}})["error"]["code"],
            "not_found");
  for (const auto& s : a) EXPECT_EQ(get(s), std::optional<bool>(true)) << "kept until the next sweep";
  call("sweep");
  for (const auto& s : a) EXPECT_EQ(get(s), std::optional<bool>(false)) << "released: " << s.id;
  EXPECT_EQ(get(late_a), std::optional<bool>(false));
  EXPECT_EQ(get(other_month), std::optional<bool>(false));
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
  EXPECT_EQ(occurrences("+336123456"), 0u) << "no held copy is left on disk";
  EXPECT_EQ(occurrences("+33612345800"), 0u);
}

// A subject across 13 months, one of them held: export, erase, export,
// release, export; raw bytes of erased and stripped identifiers are in no
// file. Identifiers are sealed before they are first written (issue
// "Crypto-shredding"), so the scan's positive control is the records'
// metadata: that of months not yet due is found.
TEST_F(retention, subject_erasure_and_raw_byte_scan) {
  const std::string x = "+14155550100";
  auto d = start("2026-11-01T00:00:00Z");
  const year_month first = 2025y / November;
  std::vector<sent> of_x;
  for (int i = 0; i < 13; ++i) {
    const auto m = first + months{i};
    of_x.push_back(send_cdr(m, at(m, 1, 1), "cust-x", x));
    send_cdr(m, at(m, 1, 2), "cust-x", "+4930123456" + std::to_string(i % 10));  // another subject
  }
  const auto stripped = send_cdr(first, at(first, 2, 1), "cust-z", "+81312345678");
  wait_stored();
  // What is really on disk of the subject: its sealed identifier values, as
  // a copy of the store holds them (a plaintext scan cannot fail: they are
  // sealed before their first write).
  call("checkpoint", {{"to", "scan"}});
  std::vector<std::string> sealed;
  {
    storage_config sc;
    sc.path = dir_ / "checkpoints/scan";
    sc.block_cache_bytes = 8 << 20;
    store::store copy(sc);
    for (const auto& s : of_x) {
      const auto r = copy.get(record_kind::cdr, s.id);
      ASSERT_TRUE(r && r->identifiers) << s.id;
      sealed.push_back(*r->identifiers);
    }
  }
  const auto sealed_on_disk = [&] {
    std::size_t n = 0;
    for (const auto& v : sealed) n += occurrences(v);
    return n;
  };
  EXPECT_GE(sealed_on_disk(), sealed.size()) << "the scan finds the sealed values where they are";
  EXPECT_GE(occurrences("cust-x"), 26u) << "the scan sees records wherever they are (here: the WAL)";
  EXPECT_EQ(occurrences(x), 0u) << "identifiers are sealed before they reach the WAL";
  const auto before =
      run_command({CDR_RETENTIONCTL_PATH, "--socket", sock(), "subject export", "--identifier", "001 (415) 555-0100",
                   "--reason", "GDPR art. 15 access request", "--reference", "DSR-41"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(std::count(before.out.begin(), before.out.end(), '\n'), 13);

  call("hold add", {{"from_month", "2026-03"}, {"to_month", "2026-03"}, {"reason", "tax audit"}, {"reference", "T-9"}});
  // Before any erasure, a held subject says so, and names the holds.
  const auto held = call("subject status", {{"identifier", x}});
  EXPECT_EQ(held["state"], "held") << held.dump();
  EXPECT_EQ(held["holds"], nlohmann::json::parse(R"([{"id":1,"records":1,"reason":"tax audit","reference":"T-9"}])"))
      << held.dump();
  const auto over_x = call("hold list", {{"identifier", x}})["holds"];
  ASSERT_EQ(over_x.size(), 1u) << over_x.dump();
  EXPECT_EQ(over_x[0]["id"], 1);
  EXPECT_EQ(over_x[0]["subject_records"], 1);
  EXPECT_TRUE(call("hold list", {{"identifier", stripped.phone}})["holds"].empty()) << "nothing of it is held";
  EXPECT_EQ(call("subject status", {{"identifier", stripped.phone}})["state"], "none");
  EXPECT_EQ(call("hold list")["holds"].size(), 1u);
  const auto e = call("subject erase", {{"identifier", x}, {"reason", "GDPR art. 17"}, {"reference", "DSR-42"}});
  EXPECT_EQ(e["erased"], 12);
  ASSERT_EQ(e["deferred"].size(), 1u);
  EXPECT_EQ(e["deferred"][0]["month"], "2026-03");
  EXPECT_EQ(e["deferred"][0]["holds"], nlohmann::json::array({1})) << "the receipt names the hold";
  EXPECT_EQ(e["holds"], nlohmann::json::array({1}));
  EXPECT_EQ(e["state"], "deferred");
  EXPECT_EQ(call("subject status", {{"identifier", x}})["deferred_records"], 1);
  EXPECT_EQ(call("subject export", {{"identifier", x}})["records"], 1);
  EXPECT_EQ(call("subject export", {{"identifier", "+49301234560"}})["records"], 2);

  call("hold release",
       {{"id", "1"}, {"reason", "case closed"}, {"reference", "T-1"}});  // the deferred erasure happens now
  EXPECT_EQ(call("subject export", {{"identifier", x}})["records"], 0);
  EXPECT_GT(sealed_on_disk(), 0u) << "hidden, not yet purged (erasure.purge_after): the scan must see that";

  call("debug advance-clock", {{"duration", "30d"}});  // 2026-12-01: November 2025 is due
  call("sweep");
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  ASSERT_EQ(v["subjects"].size(), 1u);
  EXPECT_GT(v["subjects"][0]["keys"].get<int>(), 13);

  EXPECT_EQ(occurrences(x), 0u) << "an erased subject's identifiers are in no file";
  EXPECT_EQ(sealed_on_disk(), 0u) << "nor their sealed values: purged";
  EXPECT_EQ(occurrences(stripped.phone), 0u) << "a stripped month's identifiers are in no file";
  EXPECT_GT(occurrences("cust-x"), 0u) << "metadata of months not yet due is found (the scan works)";
  EXPECT_GT(call("subject export", {{"identifier", "+49301234565"}})["records"], 0) << "and their identifiers open";
  EXPECT_EQ(occurrences("+49301234565"), 0u) << "sealed";
  EXPECT_EQ(get(stripped), std::optional<bool>(false));

  // The audit trail recorded all of it, chained; tampering is detected.
  const auto trail = call("audit export");
  EXPECT_EQ(call("audit verify")["ok"], true);
  const auto path = dir_ / "data/audit.jsonl";
  const auto original = read_file(path);
  EXPECT_EQ(original.find(x), std::string::npos) << "subjects appear as keyed hashes only";
  EXPECT_NE(original.find("\"erase_subject\""), std::string::npos);
  EXPECT_NE(original.find("\"hold_release\""), std::string::npos);
  EXPECT_NE(original.find("\"subject_export\""), std::string::npos);
  // The request's reason and reference are in its audit entries.
  EXPECT_NE(original.find("\"reference\":\"DSR-41\""), std::string::npos);
  EXPECT_NE(original.find("\"reason\":\"GDPR art. 17\",\"records\":12,\"reference\":\"DSR-42\""), std::string::npos)
      << original;
  auto altered = original;
  altered.replace(altered.find("\"records\":12"), 12, "\"records\":11");
  write_file(path, altered);
  const auto bad = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock(), "audit verify"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("does not match its hash"), std::string::npos) << bad.out;
  auto removed = original;
  const auto second_line = removed.find('\n') + 1;
  removed.erase(second_line, removed.find('\n', second_line) + 1 - second_line);
  write_file(path, removed);
  EXPECT_EQ(call("audit verify")["ok"], false);
  write_file(path, original.substr(0, original.rfind('\n', original.size() - 2) + 1));  // last entry cut
  EXPECT_EQ(call("audit verify")["ok"], false);
  write_file(path, original);
  EXPECT_EQ(call("audit verify")["ok"], true);
}

// An erasure hides the subject at once and returns a receipt; its keys wait
// for the purge pass: `verify` lists them with their deadline and is ok
// until it passes; `subject purge` runs the pass on demand, the deadline
// runs it unasked; `subject status` tells each state.
TEST_F(retention, erasure_hides_at_once_and_is_purged_by_its_deadline) {
  auto d = start("2026-11-01T00:00:00Z");
  const year_month first = 2025y / November;
  const std::vector<std::string> subjects{"+14155550111", "+14155550122", "+14155550133"};
  std::vector<sent> kept;
  for (int i = 0; i < 13; ++i) {
    const auto m = first + months{i};
    for (const auto& x : subjects) send_cdr(m, at(m, 1, 1), "cust-e", x);
    kept.push_back(send_cdr(m, at(m, 1, 2), "cust-e", "+4930999000" + std::to_string(i % 10)));
  }
  wait_stored();
  EXPECT_EQ(call("subject status", {{"identifier", subjects[0]}})["state"], "none");

  const auto e = call("subject erase", {{"identifier", subjects[0]}, {"reference", "DSR-100"}, {"reason", "art. 17"}});
  EXPECT_EQ(e["erased"], 13);
  ASSERT_EQ(e["months"].size(), 13u) << e.dump();
  EXPECT_EQ(e["months"]["2025-11"], 1);
  EXPECT_EQ(e["deferred_total"], 0);
  EXPECT_EQ(e["state"], "hidden");
  EXPECT_EQ(e["purge_deadline"], "2026-11-02T00:00:00Z") << "erasure.purge_after defaults to 24h";
  // The receipt's audit sequence and hash are the trail's.
  const auto seq = e["audit"]["seq"].get<std::uint64_t>();
  bool found = false;
  std::istringstream lines(read_file(dir_ / "data/audit.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["seq"] != seq) continue;
    found = true;
    EXPECT_EQ(j["hash"], e["audit"]["hash"]);
    EXPECT_EQ(j["entry"]["action"], "erase_subject");
    EXPECT_EQ(j["entry"]["reference"], "DSR-100");
    EXPECT_EQ(j["entry"]["purge_deadline"], "2026-11-02T00:00:00Z");
  }
  EXPECT_TRUE(found) << "audit entry " << seq;

  // Hidden at once: not exportable, not readable.
  EXPECT_EQ(call("subject export", {{"identifier", subjects[0]}})["records"], 0);
  EXPECT_EQ(call("subject export", {{"identifier", subjects[1]}})["records"], 13);
  auto st = call("subject status", {{"identifier", subjects[0]}});
  EXPECT_EQ(st["state"], "hidden") << st.dump();
  EXPECT_EQ(st["records_found"], 0);
  EXPECT_EQ(st["purge_deadline"], "2026-11-02T00:00:00Z");
  EXPECT_EQ(st["reference"], "DSR-100");
  auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << "a pending purge before its deadline is not a failure: " << v.dump();
  ASSERT_EQ(v["pending_purges"].size(), 1u) << v.dump();
  EXPECT_EQ(v["pending_purges"][0]["subject"], e["subject"]);
  EXPECT_EQ(v["pending_purges"][0]["purge_deadline"], "2026-11-02T00:00:00Z");
  EXPECT_EQ(v["pending_purges"][0]["overdue"], false);
  const auto listen = call("status")["metrics"]["listen"].get<std::string>();
  EXPECT_NE(http_get(listen, "/metrics").find("cdr_retention_erasures_pending_purge 1\n"), std::string::npos);

  // On demand: one pass purges every pending erasure.
  call("subject erase", {{"identifier", subjects[1]}, {"reason", "art. 17"}, {"reference", "T-1"}});
  const auto p = call("subject purge");
  EXPECT_EQ(p["subjects"], 2) << p.dump();
  EXPECT_EQ(p["residues"], 0);
  // The erased records were written moments ago, still in a memtable: the
  // pass's flush drops them under their deletions, no SST file to rewrite.
  EXPECT_TRUE(p.contains("bytes_rewritten")) << p.dump();
  st = call("subject status", {{"identifier", subjects[1]}});
  EXPECT_EQ(st["state"], "purged") << st.dump();
  EXPECT_EQ(st["purged_at"], "2026-11-01T00:00:00Z");
  v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_TRUE(v["pending_purges"].empty());
  EXPECT_EQ(v["subjects"].size(), 2u) << "both checked on disk now";
  for (const auto& s : v["subjects"]) EXPECT_EQ(s["keys_on_disk"], 0) << s.dump();

  // By the deadline: the timer runs the pass without a sweep.
  const auto late = call("subject erase", {{"identifier", subjects[2]}, {"reason", "art. 17"}, {"reference", "T-1"}});
  EXPECT_EQ(late["state"], "hidden");
  // The pass's forecast: in plan, status and the metric the alert reads.
  const auto forecast = call("plan")["erasure_purge"];
  EXPECT_EQ(forecast["deadline"], "2026-11-02T00:00:00Z") << forecast.dump();
  EXPECT_EQ(forecast["subjects"], 1);
  EXPECT_EQ(forecast["on_time"], true);
  EXPECT_EQ(call("status")["retention"]["erasure_purge"]["deadline"], "2026-11-02T00:00:00Z");
  EXPECT_NE(http_get(listen, "/metrics").find("cdr_retention_erasure_purge_forecast_late_seconds 0\n"),
            std::string::npos);
  call("debug advance-clock", {{"duration", "24h"}});
  const auto until = steady_clock::now() + seconds(60);
  while (call("subject status", {{"identifier", subjects[2]}})["state"] != "purged" && steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  st = call("subject status", {{"identifier", subjects[2]}});
  EXPECT_EQ(st["state"], "purged") << st.dump();
  EXPECT_EQ(st["purged_at"], "2026-11-02T00:00:00Z") << "at its deadline";
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
  EXPECT_TRUE(call("plan")["erasure_purge"].is_null()) << "nothing pending";
  const auto trail = read_file(dir_ / "data/audit.jsonl");
  EXPECT_NE(trail.find("\"erasure_purged\""), std::string::npos);
  for (const auto& s : kept) EXPECT_EQ(get(s), std::optional<bool>(true)) << "other subjects keep theirs";
}

// Usage data: everything but the usage allow-list is sealed before it is
// first written, indexed, exportable and erasable by the account user, and
// its key is destroyed at the usage deadline.
TEST_F(retention, usage_data_is_sealed_exportable_and_erasable) {
  auto d = start("2026-11-01T00:00:00Z");
  std::vector<sent> usage;
  for (int i = 0; i < 4; ++i) {
    const auto m = 2026y / July + months{i};
    usage.push_back(send_usage(m, at(m, 3, 4), "cust-u"));
  }
  const auto old = send_usage(2023y / November, at(2023y / November, 2, 2), "cust-u");  // dropped on 2026-11-01
  const auto kept = send_usage(2023y / December, at(2023y / December, 2, 2), "cust-u");
  wait_stored();
  EXPECT_EQ(occurrences("jane@acme.example"), 0u) << "the account user is sealed before it reaches the WAL";
  EXPECT_EQ(occurrences("203.0.113.7"), 0u) << "so is the IP address";
  EXPECT_GE(occurrences("cust-u"), 4u) << "the allow-listed members are found (the scan works)";
  const auto r = call("record get", {{"id", usage[0].id}, {"kind", "usage"}});
  EXPECT_EQ(r["record"]["account_user"], "jane@acme.example") << r.dump();
  EXPECT_EQ(r["record"]["ip"], "203.0.113.7");
  EXPECT_EQ(r["record"]["customer_id"], "cust-u");
  EXPECT_EQ(get(old), std::nullopt) << "past its 36 months on arrival";

  EXPECT_EQ(call("subject export", {{"identifier", "Jane@ACME.example"}})["records"], 5) << "normalised like CDRs";
  const auto e = call("subject erase", {{"identifier", "203.0.113.7"}, {"reference", "DSR-U1"}, {"reason", "art. 17"}});
  EXPECT_EQ(e["erased"], 5) << e.dump();
  EXPECT_EQ(call("subject export", {{"identifier", "jane@acme.example"}})["records"], 5)
      << "only the erased value goes (issue \"Erasure, exact and at scale\")";
  auto after = call("record get", {{"id", usage[0].id}, {"kind", "usage"}});
  EXPECT_FALSE(after["record"].contains("ip")) << after.dump();
  EXPECT_EQ(after["record"]["account_user"], "jane@acme.example") << after.dump();
  EXPECT_EQ(call("subject erase",
                 {{"identifier", "jane@acme.example"}, {"reference", "DSR-U2"}, {"reason", "art. 17"}})["erased"],
            5);
  EXPECT_EQ(call("subject export", {{"identifier", "jane@acme.example"}})["records"], 0);
  after = call("record get", {{"id", usage[0].id}, {"kind", "usage"}});
  EXPECT_FALSE(after["record"].contains("account_user")) << after.dump();
  EXPECT_EQ(after["record"]["customer_id"], "cust-u") << "the allow-listed members stay until the usage deadline";
  call("subject purge");
  EXPECT_TRUE(call("verify")["ok"].get<bool>());

  // December 2023 is due on 2026-12-01: its records and its key go.
  call("debug advance-clock", {{"duration", "30d"}});
  call("sweep");
  EXPECT_EQ(get(kept), std::nullopt);
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  bool seen = false;
  for (const auto& p : v["partitions"]) {
    if (p["kind"] == "usage" && p["month"] == "2023-12") {
      seen = true;
      EXPECT_EQ(p["key"], "destroyed") << p.dump();
    }
  }
  EXPECT_TRUE(seen) << v.dump();
}

// The erasure ledger outlives the store: a checkpoint taken before an
// erasure, restored, does not bring the subject back: the erasure is
// applied again at start-up, before ingest and admin. A ledger line that
// does not decode stops the start; a partial last line is cut off.
TEST_F(retention, a_restored_checkpoint_does_not_undo_an_erasure) {
  const std::string x = "+14155550177";
  auto d = start("2026-11-01T00:00:00Z");
  const year_month first = 2025y / November;
  for (int i = 0; i < 13; ++i) {
    const auto m = first + months{i};
    send_cdr(m, at(m, 1, 1), "cust-l", x);
    send_cdr(m, at(m, 1, 2), "cust-l", "+4930888000" + std::to_string(i % 10));
  }
  wait_stored();
  call("checkpoint", {{"to", "before"}});
  EXPECT_EQ(call("subject erase", {{"identifier", x}, {"reference", "DSR-300"}, {"reason", "art. 17"}})["erased"], 13);
  EXPECT_EQ(d->stop(SIGTERM), 0);
  const auto ledger = dir_ / "keys/erasures.jsonl";
  const auto lines = read_file(ledger);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1) << lines;
  EXPECT_EQ(lines.find(x), std::string::npos) << "the ledger holds keyed hashes only";
  EXPECT_EQ(lines.find("14155550177"), std::string::npos);

  // Restore the copy made before the erasure.
  fs::remove_all(dir_ / "data");
  fs::copy(dir_ / "checkpoints/before", dir_ / "data", fs::copy_options::recursive);
  d = start("2026-11-01T00:10:00Z");
  EXPECT_EQ(call("subject export", {{"identifier", x}})["records"], 0) << "not exportable after the restore";
  EXPECT_EQ(call("subject export", {{"identifier", "+49308880001"}})["records"], 2) << "others are";
  const auto st = call("subject status", {{"identifier", x}});
  EXPECT_EQ(st["state"], "hidden") << st.dump();
  EXPECT_EQ(st["reference"], "DSR-300");
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_NE(d->log().find("applied 1 erasure(s) of the erasure ledger"), std::string::npos);
  EXPECT_NE(read_file(dir_ / "data/audit.jsonl").find("\"reapplied_from\""), std::string::npos);
  call("subject purge");
  EXPECT_EQ(call("subject status", {{"identifier", x}})["state"], "purged");
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
  EXPECT_EQ(d->stop(SIGTERM), 0);
  // Started again: the store shows it done; nothing is applied twice.
  const auto applied = [&] {
    const auto log = d->log();
    std::size_t n = 0;
    for (auto p = log.find("of the erasure ledger"); p != std::string::npos;
         p = log.find("of the erasure ledger", p + 1))
      ++n;
    return n;
  };
  const auto before = applied();
  d = start("2026-11-01T00:20:00Z");
  EXPECT_EQ(applied(), before) << "the log is appended to; no new re-application";
  EXPECT_EQ(d->stop(SIGTERM), 0);

  // A partial last line (a crash during an append, never acknowledged) is
  // cut off. (The restored store applied the erasure's control message
  // again: its own ledger line, so there are two now.)
  const auto now_lines = read_file(ledger);
  const auto entries = std::count(now_lines.begin(), now_lines.end(), '\n');
  write_file(ledger, now_lines + R"({"subject":"ab)");
  d = start("2026-11-01T00:30:00Z");
  EXPECT_EQ(read_file(ledger), now_lines);
  EXPECT_EQ(d->stop(SIGTERM), 0);
  // A complete line that is not a chained entry: the daemon does not start
  // (exit 2), naming the file and the line.
  write_file(ledger, now_lines + "{\"subject\":1}\n");
  daemon_process bad(write_test_config(dir_), args("2026-11-01T00:40:00Z"), dir_ / "log2");
  const auto code = bad.wait_exit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(bad.log().find(fmt::format("erasures.jsonl: line {}", entries + 1)), std::string::npos) << bad.log();
}

// A checkpoint taken while the daemon runs, restored into a second daemon,
// serves the same records and the same audit trail.
TEST_F(retention, checkpoint_restores_into_a_second_daemon) {
  auto d = start("2026-11-01T00:00:00Z");
  std::vector<sent> records;
  for (int i = 0; i < 20; ++i) {
    const auto m = 2026y / October;
    records.push_back(send_cdr(m, at(m, 1 + i, 8), "cust-c", "+3531234567" + std::to_string(i % 10)));
  }
  records.push_back(send_usage(2026y / October, at(2026y / October, 3, 3), "cust-c"));
  wait_stored();
  call("hold add", {{"customer", "cust-c"}, {"reason", "backup test"}, {"reference", "B-1"}});
  // Only a name under storage.checkpoint_dir (dir/checkpoints here).
  const std::string copy = dir_ / "checkpoints/backup";
  EXPECT_EQ(admin_call(sock(), "checkpoint", {{"to", "relative/dir"}})["error"]["code"], "invalid_argument");
  EXPECT_EQ(admin_call(sock(), "checkpoint", {{"to", dir_ / "elsewhere"}})["error"]["code"], "invalid_argument");
  const auto r = call("checkpoint", {{"to", "backup"}});
  EXPECT_EQ(r["path"], copy);
  EXPECT_EQ(admin_call(sock(), "checkpoint", {{"to", "backup"}})["error"]["code"], "invalid_argument") << "exists";
  EXPECT_EQ(d->stop(SIGTERM), 0);

  // The second daemon: the checkpoint as its store, its own socket.
  temp_dir other;
  const auto second = start_second(other, copy, "2026-11-02T00:00:00Z");
  ASSERT_FALSE(HasFailure());
  for (const auto& s : records) {
    const auto got = admin_call(other / "a.sock", "record get", {{"id", s.id}, {"kind", s.usage ? "usage" : "cdr"}});
    ASSERT_TRUE(got.value("ok", false)) << s.id << ": " << got.dump();
    if (!s.usage) {
      EXPECT_EQ(got["result"]["identifiers"]["from"], s.phone);
    }
  }
  EXPECT_EQ(admin_call(other / "a.sock", "hold list")["result"]["holds"].size(), 1u);
  EXPECT_EQ(admin_call(other / "a.sock", "audit verify")["result"]["ok"], true);
  EXPECT_EQ(second->stop(SIGTERM), 0) << second->log();
}

// kill -9 at random moments of sweeps; each restart finishes the work. The
// final store equals the model, verify passes, and the deletion events
// (deduplicated by event id) are exactly the actions that happened.
TEST_F(retention, kill_during_sweeps_then_complete) {
  std::mt19937_64 rng(4242);
  year_month now = 2020y / January;
  auto clock_text = [&] { return at(now, 1, 0); };
  std::unique_ptr<daemon_process> d = start(clock_text());
  for (int round = 0; round < 5; ++round) {
    for (int i = 1; i <= 12; ++i) {
      const auto m = now - months{i};
      for (int k = 0; k < 4; ++k) send_cdr(m, at(m, 5 + k, 12), "cust-k", "+4420794600" + std::to_string(k));
    }
    for (int i = 1; i <= 30; ++i) send_usage(now - months{i}, at(now - months{i}, 9, 9), "cust-k");
    wait_stored();
    const int days = static_cast<int>((sys_days{(now + months{40}) / 1} - sys_days{now / 1}).count());
    call("debug advance-clock", {{"duration", std::to_string(days) + "d"}});
    now += months{40};
    std::thread sweeper([&] {
      try {
        (void)admin_call(sock(), "sweep");
      } catch (const std::exception&) {
        // the daemon was killed under it
      }
    });
    std::this_thread::sleep_for(microseconds(rng() % 150'000));
    kill(d->pid(), SIGKILL);
    sweeper.join();
    d.reset();
    d = start(clock_text());  // the start-up sweep finishes what was cut short
    call("sweep");
  }
  for (const auto& s : sent_) expect_model(s, now);
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(call("audit verify")["ok"], true);
  EXPECT_EQ(call("sweep")["actions"].size(), 0u) << "a second sweep changes nothing";

  // Actions from the audit trail vs deletion events.
  std::set<std::string> audited;
  const auto exported = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock(), "audit export"});
  ASSERT_EQ(exported.exit_code, 0);
  std::istringstream lines(exported.out);
  std::map<std::uint64_t, std::string> expected_events;
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    const auto& e = j["entry"];
    const auto action = e.value("action", "");
    if (action == "strip_identifiers" || action == "drop_metadata" || action == "drop_usage") {
      const auto key = action + " " + e["kind"].get<std::string>() + " " + e["month"].get<std::string>();
      EXPECT_TRUE(audited.insert(key).second) << "one audit entry per action: " << key;
      expected_events[j["op"].get<std::uint64_t>()] = key;
    }
  }
  for (const auto& s : sent_) {
    const auto m = ym_text(s.month);
    if (!s.present(now)) {
      EXPECT_TRUE(audited.contains((s.usage ? "drop_usage usage " : "drop_metadata cdr ") + m)) << m;
    } else if (!s.usage && !s.identifiers(now)) {
      EXPECT_TRUE(audited.contains("strip_identifiers cdr " + m)) << m;
    }
  }
  std::map<std::uint64_t, std::string> delivered;
  const auto deadline = steady_clock::now() + seconds(60);
  while (delivered.size() < expected_events.size() && steady_clock::now() < deadline) {
    delivered.clear();
    for (const auto& m : kafka_.read_all("cdr-retention-events", 1'000'000, seconds(3))) {
      const auto j = nlohmann::json::parse(m.value);
      delivered[j["event_id"].get<std::uint64_t>()] =
          j["action"].get<std::string>() + " " + j["kind"].get<std::string>() + " " + j["month"].get<std::string>();
      EXPECT_EQ(m.key, std::to_string(j["event_id"].get<std::uint64_t>()));
    }
  }
  EXPECT_EQ(delivered, expected_events);
}

// Issue "Erasure at scale", finding: identifiers inside arrays or objects
// were not indexed, so export found nothing and erasure reported success
// with 0 records while `record get` still showed the number. Issue
// "Erasure, exact and at scale", item 1: an erasure takes the subject's
// values wherever they sit (scalar, array element, nested member, twice in
// one record) and nothing else: every other subject keeps its values and
// its export, before and after.
TEST_F(retention, an_erasure_takes_only_the_subjects_values_wherever_they_sit) {
  auto d = start("2026-11-01T00:00:00Z");
  const auto when = at(2026y / October, 5, 9);
  const auto cdr = [&](const std::string& id, const std::string& parties) {
    kafka_.produce("cdr", id,
                   R"({"type":"cdr","id":")" + id + R"(","customer_id":"cust-g","occurred_at":")" + when +
                       R"(","channel":"mms",)" + parties + "}");
    ++messages_;
  };
  const std::string x = "+447700900003";  // the subject erased
  cdr("mms-1", R"("from":"+447700900001","to":["+447700900002","+447700900003"],)"
               R"("email_to":[{"name":"Ann","address":"Ann@Example.org"}],"contact":{"work":{"phone":"+4930123456"}})");
  cdr("mms-2", R"("from":"+447700900009","to":["+447700900003"])");
  cdr("mms-3", R"("from":"+447700900003","to":["+447700900002","0044 7700 900003"])");     // twice
  cdr("mms-4", R"("from":"+447700900003","to":["+447700900002"])");                        // the sender only
  cdr("mms-5", R"("from":"+447700900008","contact":{"home":{"phone":"+447700900003"}})");  // nested
  cdr("mms-6", R"("from":"+447700900003")");                                               // nothing else
  wait_stored();
  const std::vector<std::pair<std::string, int>> others{{"+447700900001", 1},   {"+447700900002", 3},
                                                        {"ann@example.org", 1}, {"+49 30 123456", 1},
                                                        {"+447700900009", 1},   {"+447700900008", 1}};
  for (const auto& [y, n] : others) EXPECT_EQ(call("subject export", {{"identifier", y}})["records"], n) << y;
  EXPECT_EQ(call("subject export", {{"identifier", "0044 7700 900003"}})["records"], 6);

  const auto e = call("subject erase", {{"identifier", x}, {"reason", "GDPR art. 17"}, {"reference", "DSR-3"}});
  EXPECT_EQ(e["erased"], 6) << e.dump();
  EXPECT_EQ(e["values"], 7) << "mms-3 names the subject twice: " << e.dump();
  const auto ids = [&](const std::string& id) { return call("record get", {{"id", id}})["identifiers"]; };
  EXPECT_EQ(ids("mms-1"), nlohmann::json::parse(R"({"from":"+447700900001","to":["+447700900002"],
    "email_to":[{"name":"Ann","address":"Ann@Example.org"}],"contact":{"work":{"phone":"+4930123456"}}})"));
  EXPECT_EQ(ids("mms-2"), nlohmann::json::parse(R"({"from":"+447700900009","to":[]})"));
  EXPECT_EQ(ids("mms-3"), nlohmann::json::parse(R"({"to":["+447700900002"]})"));
  EXPECT_EQ(ids("mms-4"), nlohmann::json::parse(R"({"to":["+447700900002"]})"));
  EXPECT_EQ(ids("mms-5"), nlohmann::json::parse(R"({"from":"+447700900008","contact":{"home":{}}})"));
  EXPECT_TRUE(ids("mms-6").is_null()) << "a record left with no identifier loses them all";
  EXPECT_EQ(call("subject export", {{"identifier", x}})["records"], 0);
  for (const auto& [y, n] : others) {
    EXPECT_EQ(call("subject export", {{"identifier", y}})["records"], n) << y << " keeps its records";
  }
  const auto trail = read_file(dir_ / "data/audit.jsonl");
  EXPECT_NE(trail.find(R"("records":6,"reference":"DSR-3")"), std::string::npos) << trail;
  EXPECT_NE(trail.find(R"("values":7)"), std::string::npos) << trail;
  const auto v = call("verify");
  EXPECT_TRUE(v["ok"].get<bool>()) << "the old versions are purged, the new ones stay: " << v.dump();
  EXPECT_EQ(occurrences("900003"), 0u);
  // Erasing another subject of the same records later re-seals them again.
  EXPECT_EQ(
      call("subject erase", {{"identifier", "+447700900002"}, {"reason", "art. 17"}, {"reference", "T-1"}})["erased"],
      3);
  EXPECT_EQ(ids("mms-3"), nullptr) << "no value left: no identifiers";
  EXPECT_EQ(ids("mms-1")["to"], nlohmann::json::array());
  EXPECT_EQ(call("subject export", {{"identifier", "+447700900001"}})["records"], 1);
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
}

// Issue "Erasure at scale", item 3: an event that arrives after an erasure,
// names the erased subject and occurred before the erasure is stored
// without that identifier, also after a restart and for a subject erased
// before any of its records arrived; an event that occurred after the
// erasure keeps it.
TEST_F(retention, late_events_of_an_erased_subject_are_stored_without_it) {
  auto d = start("2026-11-01T00:00:00Z");
  const std::string x = "+447700900555", y = "+447700900666", z = "+447700900777";
  const auto produce = [&](const std::string& id, const std::string& when, const std::string& ids) {
    kafka_.produce("cdr", id,
                   R"({"type":"cdr","id":")" + id + R"(","customer_id":"cust-l","occurred_at":")" + when +
                       R"(","channel":"mms",)" + ids + "}");
    ++messages_;
  };
  produce("before", "2026-10-02T09:00:00Z", R"("from":")" + x + R"(")");
  wait_stored();
  EXPECT_EQ(call("subject erase", {{"identifier", x}, {"reference", "DSR-7"}, {"reason", "art. 17"}})["erased"], 1);
  EXPECT_EQ(call("subject erase", {{"identifier", z}, {"reason", "art. 17"}, {"reference", "T-1"}})["erased"], 0)
      << "no record yet";

  produce("late-1", "2026-10-20T09:00:00Z", R"("from":")" + y + R"(","to":[")" + x + R"(","+447700900888"])");
  produce("late-2", "2026-10-21T09:00:00Z", R"("from":")" + z + R"(")");
  produce("after", "2026-11-01T06:00:00Z", R"("from":")" + x + R"(")");
  wait_stored();
  const auto late = call("record get", {{"id", "late-1"}});
  EXPECT_EQ(late["identifiers"]["from"], y) << late.dump();
  EXPECT_EQ(late["identifiers"]["to"], nlohmann::json::array({"+447700900888"})) << late.dump();
  EXPECT_TRUE(call("record get", {{"id", "late-2"}})["identifiers"].is_null()) << "its only identifier was erased";
  EXPECT_EQ(call("subject export", {{"identifier", y}})["records"], 1);
  EXPECT_EQ(call("subject export", {{"identifier", z}})["records"], 0);
  EXPECT_EQ(call("subject export", {{"identifier", x}})["records"], 1) << "only the event after the erasure";
  EXPECT_EQ(call("record get", {{"id", "after"}})["identifiers"]["from"], x);

  // The erased set is saved with the erasure: a restart keeps it.
  EXPECT_EQ(d->stop(SIGTERM), 0);
  d = start("2026-11-01T00:00:00Z");
  produce("late-3", "2026-10-25T09:00:00Z", R"("from":")" + x + R"(","to":")" + y + R"(")");
  wait_stored();
  const auto again = call("record get", {{"id", "late-3"}});
  EXPECT_FALSE(again["identifiers"].contains("from")) << again.dump();
  EXPECT_EQ(again["identifiers"]["to"], y);
  EXPECT_EQ(occurrences("900555"), 0u);
  EXPECT_TRUE(call("verify")["ok"].get<bool>());
}

// One subject, one identity (docs/events.md, "Identifier rules"): once
// events.default_region is set, a number's national, 00 and + spellings are
// one subject. The store written before is re-indexed at the start that
// sets it, and an erasure made before still keeps out late events that
// spell the subject as it was erased.
TEST_F(retention, every_spelling_of_a_number_is_one_subject_once_a_region_is_set) {
  auto d = start("2026-11-01T00:00:00Z");
  const auto produce = [&](const std::string& id, const std::string& when, const std::string& from) {
    kafka_.produce("cdr", id,
                   R"({"type":"cdr","id":")" + id + R"(","customer_id":"cust-n","occurred_at":")" + when +
                       R"(","channel":"sms","from":")" + from + R"("})");
    ++messages_;
  };
  produce("n-1", "2026-10-02T09:00:00Z", "+385 91 123 4567");
  produce("n-2", "2026-10-03T09:00:00Z", "00385911234567");
  produce("n-3", "2026-10-04T09:00:00Z", "091 123 4567");
  produce("n-4", "2026-10-05T09:00:00Z", "091 765 4321");
  wait_stored();
  EXPECT_EQ(call("subject export", {{"identifier", "+385911234567"}})["records"], 2) << "no region: 091... is apart";
  EXPECT_EQ(call("subject export", {{"identifier", "091 123 4567"}})["records"], 1);
  EXPECT_EQ(
      call("subject erase", {{"identifier", "091 765 4321"}, {"reference", "DSR-9"}, {"reason", "art. 17"}})["erased"],
      1);

  EXPECT_EQ(d->stop(SIGTERM), 0);
  extra_args_ = {"--set", "events.default_region=\"HR\""};
  d = start("2026-11-01T00:00:00Z");
  const auto log = read_file(dir_ / "log");
  // Three identifier values (n-4's was erased), one written differently now.
  EXPECT_NE(log.find("re-indexing identifiers (e164 to e164:HR)"), std::string::npos) << log;
  EXPECT_NE(log.find("re-indexing identifiers: done, 3 records read, 1 index entries moved"), std::string::npos);
  for (const char* spelling : {"+385 91 123 4567", "00385 91 123 4567", "091 123 4567", "(091) 123-4567"}) {
    EXPECT_EQ(call("subject export", {{"identifier", spelling}})["records"], 3) << spelling;
  }
  produce("late", "2026-10-20T09:00:00Z", "091 765 4321");
  wait_stored();
  EXPECT_TRUE(call("record get", {{"id", "late"}})["identifiers"].is_null())
      << "the erasure made under the old form keeps the subject out";
  EXPECT_TRUE(call("verify")["ok"].get<bool>());

  // The next start finds the store in its form: nothing to do.
  EXPECT_EQ(d->stop(SIGTERM), 0);
  d = start("2026-11-01T00:00:00Z");
  const auto again = read_file(dir_ / "log");
  EXPECT_EQ(again.find("re-indexing", log.size()), std::string::npos) << again.substr(log.size());
  EXPECT_EQ(call("subject export", {{"identifier", "091 123 4567"}})["records"], 3);
}

// The CLI's progress line on a terminal (docs/operations.md, "Progress"):
// script(1) gives the CLI a terminal for stderr, and its stdout is a FIFO
// the test does not read yet, so the export stays in progress (the daemon
// waits on a full socket) until the line has been seen. Then the FIFO is
// drained: every record arrives and the line is cleared.
TEST_F(retention, the_cli_shows_a_progress_line_on_a_terminal_and_clears_it) {
  auto d = start("2026-11-01T00:00:00Z");
  const std::string phone = "+447700900999";
  constexpr int records = 3000;
  // ~2 KiB a record (a long identifier member): 6 MiB in all, far more than
  // the FIFO and the socket buffers hold, so the export cannot finish early.
  const std::string memo(2048, 'm');
  for (int i = 0; i < records; ++i) {
    const auto id = "p-" + std::to_string(i);
    kafka_.produce("cdr", id,
                   R"({"type":"cdr","id":")" + id + R"(","customer_id":"cust-p","occurred_at":")" +
                       at(2026y / October, 1 + i % 28, 10) + R"(","channel":"sms","from":")" + phone + R"(","memo":")" +
                       memo + R"("})");
    ++messages_;
  }
  wait_stored();

  const std::string fifo = dir_ / "out.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // so that the shell's open does not wait
  ASSERT_GE(reader, 0);
  const std::string command =
      fmt::format("{} --socket {} subject export --identifier {} > {}", CDR_RETENTIONCTL_PATH, sock(), phone, fifo);
  int terminal_pipe[2];
  ASSERT_EQ(pipe(terminal_pipe), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(terminal_pipe[1], STDOUT_FILENO);
    dup2(terminal_pipe[1], STDERR_FILENO);
    close(terminal_pipe[0]);
    close(terminal_pipe[1]);
    execlp("script", "script", "-qfec", command.c_str(), "/dev/null", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(terminal_pipe[1]);
  std::string terminal;
  const auto read_terminal = [&](int timeout_ms) {
    pollfd p{terminal_pipe[0], POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const auto n = ::read(terminal_pipe[0], buf, sizeof buf);
    if (n <= 0) return false;
    terminal.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  const auto deadline = steady_clock::now() + seconds(20);
  while (terminal.find("subject export") == std::string::npos && steady_clock::now() < deadline) read_terminal(200);
  EXPECT_NE(terminal.find("\r\033[K"), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("subject export"), std::string::npos) << "no progress line while the export ran";
  EXPECT_NE(terminal.find("records"), std::string::npos) << terminal;

  // Drain: the export finishes, the line is cleared.
  fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) & ~O_NONBLOCK);
  std::size_t lines = 0;
  char buf[65536];
  for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;)
    lines += static_cast<std::size_t>(std::count(buf, buf + n, '\n'));
  close(reader);
  while (read_terminal(2000)) {
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(terminal_pipe[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << terminal;
  EXPECT_EQ(lines, static_cast<std::size_t>(records)) << "every record, once";
  const auto last_clear = terminal.rfind("\r\033[K");
  const auto last_line = terminal.rfind("subject export");
  EXPECT_GT(last_clear, last_line) << "the line is cleared at the end";
}

}  // namespace
}  // namespace cdr::test
