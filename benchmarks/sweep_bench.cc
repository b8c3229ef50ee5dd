// Sweeps: strip and drop of a 1,000,000-record month and of a 4,000,000-record
// month (physical erasure included), the ingest rate while a sweep runs, and
// subject erasure latency (20 subjects of 104 records over 13 months). In-process: the real
// RocksDB adapter and retention service on a simulated clock.
//
//   cmake --preset release && cmake --build --preset release
//   build/release/benchmarks/bench_sweep [SMALL=1000000] [LARGE=4000000]
//
// Targets (issue "Retention sweeps"): a 4M-record month stripped in <= 1 s,
// time(4M)/time(1M) <= 2, the same for drops; ingest during a sweep >= 70%
// of the rate without; erasure p99 <= 20 ms.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include <prometheus/registry.h>

#include "cdr/core/config.h"
#include "cdr/core/hex.h"
#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"
#include "cdr/crypto/keystore.h"
#include "cdr/metrics/retention_probe.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"
#include "fill.h"
#include "retention/retention.h"
#include "system_time.h"
#include "vault.h"

namespace {

using namespace cdr;
using steady = std::chrono::steady_clock;

using bench::fill;
using bench::subject_secret;

struct timed_sweep {
  double seconds = 0;
  double purge_seconds = 0;
  std::int64_t records = 0;
};

timed_sweep sweep(service::retention& r) {
  const auto t0 = steady::now();
  const auto report = r.sweep("admin", 0);
  timed_sweep t;
  t.seconds = std::chrono::duration<double>(steady::now() - t0).count();
  t.purge_seconds = report["purge"].value("seconds", 0.0);
  for (const auto& a : report["actions"]) t.records += a["records"].get<std::int64_t>();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const std::uint64_t small = argc > 1 ? std::stoull(argv[1]) : 1'000'000;
  const std::uint64_t large = argc > 2 ? std::stoull(argv[2]) : 4'000'000;
  const auto dir = std::filesystem::temp_directory_path() / ("cdr-bench-sweep-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  auto parsed = parse_config(
      default_config_toml, "defaults",
      {"storage.path=\"" + (dir / "data").string() + "\"",
       "storage.keystore_path=\"" + (dir / "keystore.json").string() + "\"", "storage.block_cache_mb=256"});
  auto& config = std::get<daemon_config>(parsed);
  store::store s(config.storage);
  crypto::keystore keystore(config.storage.keystore_path, crypto::random_bytes(32), true);
  service::vault keys(keystore, config.storage.max_seals_per_key);
  prometheus::Registry registry;
  metrics::retention_probe probe(registry);
  // Deadlines on a simulated wall clock; durations on the real one.
  service::simulated_wall_time clock(parse_rfc3339("2020-12-15T00:00:00Z").value());
  store::saved_state state(s);
  state.check_all();
  service::retention r(config, clock, s, state, probe, std::string(subject_secret), keys,
                       service::audit_keying{keystore.derive("audit chain"), true}, nullptr);

  const auto a = month::of(2019, 12);  // strip 2021-01-01, drop 2029-01-01
  const auto b = month::of(2020, 1);   // strip 2021-02-01, drop 2030-01-01
  auto t0 = steady::now();
  fill(s, keys, a, 0, small);
  fill(s, keys, b, small, large);
  const double fill_s = std::chrono::duration<double>(steady::now() - t0).count();
  // By its deadline a month has long been compacted out of level 0.
  s.settle(true);
  std::printf("filled %llu + %llu records in %.1f s (%.0f records/s), settled\n",
              static_cast<unsigned long long>(small), static_cast<unsigned long long>(large), fill_s,
              static_cast<double>(small + large) / fill_s);

  // A writer keeps ingesting into the current month during every sweep, in
  // batches of 250 so that a sweep of a fraction of a second spans many.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::int32_t> live_month{month::of(2021, 1).index()};
  std::thread writer([&] {
    std::uint64_t next = 100'000'000;
    while (!stop) {
      fill(s, keys, month::from_index(live_month), next, 250, {}, 250);
      next += 250;
      written += 250;
    }
  });
  const auto rate_over = [&](double seconds) {
    const auto w0 = written.load();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    return static_cast<double>(written.load() - w0) / seconds;
  };
  const auto during = [&](auto&& fn) {
    const auto w0 = written.load();
    const auto start = steady::now();
    auto result = fn();
    const double secs = std::chrono::duration<double>(steady::now() - start).count();
    return std::pair{result, static_cast<double>(written.load() - w0) / secs};
  };

  struct phase {
    const char* name;
    const char* clock;
    std::int32_t live;
  };
  const phase phases[] = {{"strip 1M", "2021-01-01T00:00:00Z", month::of(2021, 1).index()},
                          {"strip 4M", "2021-02-01T00:00:00Z", month::of(2021, 2).index()},
                          {"drop 1M", "2029-01-01T00:00:00Z", month::of(2029, 1).index()},
                          {"drop 4M", "2030-01-01T00:00:00Z", month::of(2030, 1).index()}};
  std::vector<timed_sweep> results;
  for (const auto& ph : phases) {
    live_month = ph.live;
    const double baseline = rate_over(2.0);
    clock.set(parse_rfc3339(ph.clock).value());
    r.clock_moved_deliberately();  // the clock guard would take it for a jump
    const auto [t, rate] = during([&] { return sweep(r); });
    results.push_back(t);
    std::printf("%-9s %9lld records  %.3f s (purge %.3f s)  ingest during %.0f/s vs %.0f/s before = %.0f%%\n", ph.name,
                static_cast<long long>(t.records), t.seconds, t.purge_seconds, rate, baseline, 100.0 * rate / baseline);
  }
  stop = true;
  writer.join();
  std::printf("ratio strip 4M/1M: %.2f   drop 4M/1M: %.2f   (targets: 4M <= 1 s, ratio <= 2)\n",
              results[1].seconds / results[0].seconds, results[3].seconds / results[2].seconds);
  const auto v = r.verify();
  std::printf("verify: %s (%zu SST files read, %zu WAL files)\n", v["ok"].get<bool>() ? "ok" : "FAILED",
              v["sst_files_read"].get<std::size_t>(), v["wal_files"].get<std::size_t>());

  // Subject erasure: 100 subjects x 100 records over 13 months, in between
  // 13 x 100,000 other records.
  clock.set(parse_rfc3339("2031-01-15T00:00:00Z").value());
  r.clock_moved_deliberately();
  const auto first = month::of(2030, 1);
  std::uint64_t next = 500'000'000;
  for (int m = 0; m < 13; ++m) {
    fill(s, keys, first.plus(m), next, 100'000, [](std::uint64_t i) {
      // Every 125th record belongs to one of 100 subjects: 8 a month each.
      return i % 125 == 0 ? "+4917000" + std::to_string((i / 125) % 100 + 100) : "+4915" + std::to_string(i);
    });
    next += 100'000;
  }
  s.settle(true);
  std::vector<double> total, logical;
  for (int subject = 0; subject < 20; ++subject) {
    const auto t = steady::now();
    const auto e = r.subject_erase("+4917000" + std::to_string(subject + 100), 0);
    const double secs = std::chrono::duration<double>(steady::now() - t).count();
    total.push_back(secs);
    logical.push_back(secs - e["purge"].value("seconds", 0.0));
    if (subject == 0)
      std::printf("erasure: %lld records per subject\n", static_cast<long long>(e["erased"].get<std::int64_t>()));
  }
  const auto pct = [](std::vector<double> xs, double q) {
    std::sort(xs.begin(), xs.end());
    return xs[static_cast<std::size_t>(q * static_cast<double>(xs.size() - 1))];
  };
  std::printf(
      "erasure latency: p50 %.1f ms  p99 %.1f ms  (logical commit p50 %.1f ms  p99 %.1f ms; target p99 <= 20 ms)\n",
      1e3 * pct(total, 0.5), 1e3 * pct(total, 0.99), 1e3 * pct(logical, 0.5), 1e3 * pct(logical, 0.99));
  std::printf("verify after erasures: %s\n", r.verify()["ok"].get<bool>() ? "ok" : "FAILED");
  std::filesystem::remove_all(dir);
  return 0;
}
