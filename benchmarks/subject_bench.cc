// Memory of subject requests: the real daemon exports, then erases, one
// subject with N records (default 1,000,000) spread over 13 months, while
// its resident memory is sampled every 5 ms. Target (issue "Hardening"):
// peak RSS growth <= 64 MiB for each, independent of N.
//
//   cmake --preset release && cmake --build --preset release
//   build/release/benchmarks/bench_subject [N=1000000]
//
// The store is filled in process first (sealed and indexed as ingest does),
// then the daemon is started on it with the embedded broker and no traffic.
// RocksDB's block cache (memtables charged to it) is bounded on its own and
// counts in RSS as it fills: the daemon runs with storage.block_cache_mb =
// CACHE_MB (default 16), so what grows beyond it is the requests' own.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cdr/admin/client.h"
#include "cdr/core/config.h"
#include "cdr/core/identity.h"
#include "cdr/core/ingest.h"
#include "cdr/crypto/keystore.h"
#include "cdr/store/store.h"
#include "process.h"
#include "vault.h"

namespace {

using namespace cdr;
using steady = std::chrono::steady_clock;

constexpr const char* subject = "+4917000100100";

void fill(const daemon_config& config, const std::string& keystore_path, const std::string& master, std::uint64_t n) {
  store::store s(config.storage);
  crypto::keystore keys(keystore_path, master, true);
  service::vault vault(keys, config.storage.max_seals_per_key);
  store::write_batch b(s);
  std::string sealed;
  std::vector<std::string> hashes;
  for (std::uint64_t i = 0; i < n; ++i) {
    const partition p{record_kind::cdr, month::of(2030, 1).plus(static_cast<std::int32_t>(i % 13)), 0};
    char id[32];
    std::snprintf(id, sizeof id, "%020llu", static_cast<unsigned long long>(i));
    const auto to = "user" + std::to_string(i) + "@example.org";
    const auto lease = vault.lease();
    vault.seal_indexed(key_scope::partition, p, record_key(p, id),
                       std::string(R"({"from":")") + subject + R"(","to":")" + to + R"("})",
                       {normalize_identifier(subject), normalize_identifier(to)}, sealed, hashes);
    b.put_cdr(p, id,
              std::string(R"({"type":"cdr","id":")") + id + R"(","customer_id":"acme","occurred_at":")" +
                  p.month.to_string() + R"(-14T09:26:53Z","channel":"sms"})",
              sealed, i);
    for (const auto& h : hashes) b.put_subject(p, h, id);
    if (b.records() == 2000) {
      s.commit(b);
      b.clear();
    }
  }
  if (b.records() > 0) s.commit(b);
  s.settle(true);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const std::uint64_t n = argc > 1 ? std::stoull(argv[1]) : 1'000'000;
  const std::string dir = "/tmp/cdr-bench-subject";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string master = "bench-master-key-0123456789abcdef-0123456789";
  { std::ofstream(dir + "/subject.key") << "bench-subject-key-0123456789abcdef"; }
  { std::ofstream(dir + "/master.key") << master; }
  std::ofstream(dir + "/cdr.toml") << "[kafka]\nbrokers = \"embedded\"\n[storage]\npath = \"" << dir
                                   << "/data\"\nsubject_key_file = \"" << dir << "/subject.key\"\nkeystore_path = \""
                                   << dir << "/keys/keystore.json\"\nmaster_key_file = \"" << dir
                                   << "/master.key\"\nblock_cache_mb = "
                                   << (std::getenv("CACHE_MB") ? std::getenv("CACHE_MB") : "16") << "\n"
                                   << "[admin]\nsocket = \"" << dir << "/a.sock\"\n"
                                   << "[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n";
  auto parsed = parse_config(bench::read_file(dir + "/cdr.toml"), "bench", {});
  const auto& config = std::get<daemon_config>(parsed);
  std::filesystem::create_directories(dir + "/keys");
  auto t0 = steady::now();
  fill(config, dir + "/keys/keystore.json", master, n);
  std::printf("filled %llu records of one subject over 13 months in %.1f s\n", static_cast<unsigned long long>(n),
              std::chrono::duration<double>(steady::now() - t0).count());

  const pid_t daemon =
      bench::spawn({CDR_RETENTIOND_PATH, "--config", dir + "/cdr.toml", "--fake-clock", "2031-01-15T00:00:00Z"},
                   dir + "/daemon.log");
  for (;;) {
    try {
      admin::client c(dir + "/a.sock", std::chrono::seconds(5));
      if (c.call("status").value("ok", false)) break;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the start-up sweep and settling
  bench::rss_sampler rss(daemon);

  rss.reset();
  auto base = rss.peak_kib();
  t0 = steady::now();
  std::uint64_t items = 0;
  {
    admin::client c(dir + "/a.sock", std::chrono::hours(2));
    c.call("subject export", {{"identifier", subject}}, [&](const nlohmann::json&) { ++items; });
  }
  const double export_s = std::chrono::duration<double>(steady::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto export_peak = rss.peak_kib();
  std::printf("export: %llu records in %.1f s; RSS %.1f MiB before, peak %.1f MiB: growth %.1f MiB (target <= 64)\n",
              static_cast<unsigned long long>(items), export_s, static_cast<double>(base) / 1024,
              static_cast<double>(export_peak) / 1024, static_cast<double>(export_peak - base) / 1024);

  rss.reset();
  base = rss.peak_kib();
  t0 = steady::now();
  nlohmann::json erased;
  {
    admin::client c(dir + "/a.sock", std::chrono::hours(4));
    erased = c.call("subject erase", {{"identifier", subject}, {"reason", "art. 17"}, {"reference", "T-1"}});
  }
  const double erase_s = std::chrono::duration<double>(steady::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto erase_peak = rss.peak_kib();
  std::printf(
      "erasure: %lld records in %d batches, %.1f s (purge %.1f s); RSS %.1f MiB before, peak %.1f MiB: "
      "growth %.1f MiB (target <= 64)\n",
      static_cast<long long>(erased["result"].value("erased", std::int64_t{0})), erased["result"].value("batches", 0),
      erase_s, erased["result"].value(nlohmann::json::json_pointer("/purge/seconds"), 0.0),
      static_cast<double>(base) / 1024, static_cast<double>(erase_peak) / 1024,
      static_cast<double>(erase_peak - base) / 1024);
  {
    admin::client c(dir + "/a.sock", std::chrono::minutes(10));
    const auto v = c.call("verify");
    std::printf("verify: %s\n", v["result"].value("ok", false) ? "ok" : v.dump().substr(0, 400).c_str());
  }
  kill(daemon, SIGTERM);
  waitpid(daemon, nullptr, 0);
  if (std::getenv("KEEP") == nullptr) std::filesystem::remove_all(dir);
  return 0;
}
