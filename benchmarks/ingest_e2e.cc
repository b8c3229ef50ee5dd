// End-to-end ingest: a producer writes N generated events to a mock Kafka
// cluster while the real daemon consumes them, until all are durable (the
// daemon's stored offsets cover every message). Then, in the same run,
// db_bench fillseq with the same record count and average value size.
//
//   cmake --preset release && cmake --build --preset release
//   build/release/benchmarks/bench_ingest_e2e [N=2000000] [--dump FILE]
//
// The mock broker keeps at most ~5 MB per partition, so the producer keeps
// the backlog (produced but not yet stored) under 100,000 events.
//
// Reports events/s, the daemon's CPU per event (user + system over the
// run), bytes on disk per record and peak RSS.
//
// Environment: CACHE_MB (storage.block_cache_mb, default 64), LATE (share
// of events 13 to 130 months old, default 0), IDS (`ulid`, the default:
// ids ordered by creation; `uuid`: UUIDv4-style random ids), KEEP (keep the
// directory), CDR_RETENTIOND (the daemon binary, default the build's),
// MEMBERS (daemons in one consumer group, default 1: the fleet's ingest;
// CPU is summed over them; with 2 or more, the latencies of a fleet-wide
// hold and of a 100-record subject's export --fleet follow).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/admin/client.h"
#include "cdr/core/event_generator.h"
#include "cdr/kafka/client.h"
#include "cdr/kafka/embedded_cluster.h"
#include "cluster.h"
#include "process.h"

namespace {

using clock_type = std::chrono::steady_clock;
using bench::cpu_seconds;
using bench::dir_bytes;
using bench::read_file;
using bench::spawn;

std::uint64_t stored_offsets(const std::string& socket) {
  try {
    cdr::admin::client c(socket, std::chrono::seconds(5));
    const auto st = c.call("status");
    std::uint64_t total = 0;
    const auto offsets =
        st.value(nlohmann::json::json_pointer("/result/kafka/consumer/offsets"), nlohmann::json::object());
    for (const auto& [t, parts] : offsets.items()) {
      for (const auto& [p, off] : parts.items()) total += off.get<std::uint64_t>();
    }
    return total;
  } catch (const std::exception&) {
    return 0;
  }
}

// The fleet's latencies (MEMBERS > 1): a hold added through member 1 until
// every member lists it, and a 100-record subject's export --fleet through
// member 1. Prints the median and maximum of `rounds` of each.
void fleet_latencies(cdr::kafka::producer& producer, const std::vector<std::string>& sockets, std::uint64_t before) {
  const std::string subject = "+15550100100";
  for (int i = 0; i < 100; ++i) {
    const int m = 3 + i % 13;  // 2024-03 ... 2025-03
    const auto id = "fleet-x-" + std::to_string(i);
    producer.produce("cdr", id,
                     R"({"type":"cdr","id":")" + id + R"(","customer_id":"c-x","occurred_at":")" +
                         std::to_string(2024 + (m - 1) / 12) + "-" + (((m - 1) % 12 + 1) < 10 ? "0" : "") +
                         std::to_string((m - 1) % 12 + 1) + R"(-10T09:00:00Z","channel":"sms","from":")" + subject +
                         R"("})",
                     {}, 0, nullptr);
  }
  producer.flush(std::chrono::seconds(30));
  const auto stored_all = [&] {
    std::uint64_t t = 0;
    for (const auto& s : sockets) t += stored_offsets(s);
    return t;
  };
  while (stored_all() < before + 100) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto summary = [](const char* what, std::vector<double> ms) {
    std::sort(ms.begin(), ms.end());
    std::printf("fleet: %s: median %.0f ms, max %.0f ms (%zu rounds)\n", what, ms[ms.size() / 2], ms.back(), ms.size());
  };
  std::vector<double> holds;
  std::vector<double> exports;
  for (int round = 0; round < 10; ++round) {
    const auto t0 = clock_type::now();
    cdr::admin::client c(sockets[0], std::chrono::seconds(60));
    const auto added = c.call("hold add", {{"customer", "bench-" + std::to_string(round)},
                                           {"reason", "bench"},
                                           {"reference", "B-" + std::to_string(round)}});
    const std::string request = added.value(nlohmann::json::json_pointer("/result/fleet/request"), "");
    for (const auto& s : sockets) {
      for (;;) {
        cdr::admin::client l(s, std::chrono::seconds(10));
        if (l.call("hold list").dump().find(request) != std::string::npos) break;
      }
    }
    holds.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
    const auto t1 = clock_type::now();
    std::size_t items = 0;
    const auto r =
        c.call("subject export", {{"identifier", subject}, {"fleet", true}}, [&](const nlohmann::json&) { ++items; });
    exports.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t1).count());
    if (items != 100 || !r.value(nlohmann::json::json_pointer("/result/complete"), false)) {
      std::printf("fleet export returned %zu records: %s\n", items, r.dump().c_str());
    }
  }
  std::printf("fleet: %zu members\n", sockets.size());
  summary("hold (publish through member 1 -> listed on every member)", holds);
  summary("subject export --fleet of 100 records through member 1", exports);
}

// The events of a run: seed 2025, LATE and IDS from the environment.
cdr::generator_options generator_from_environment() {
  cdr::generator_options o;
  o.seed = 2025;
  if (const char* l = std::getenv("LATE")) o.late_fraction = std::stod(l);
  if (const char* ids = std::getenv("IDS")) o.random_ids = std::string_view(ids) == "uuid";
  if (const char* days = std::getenv("SPREAD_DAYS")) {
    // Whole days, 1 to 3650: the events occur in that span before `now`.
    int d = 0;
    const std::string_view text(days);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (ec != std::errc() || end != text.data() + text.size() || d < 1 || d > 3650) {
      std::fprintf(stderr, "bench_ingest_e2e: SPREAD_DAYS must be a whole number of days from 1 to 3650, not '%s'\n",
                   days);
      std::exit(2);
    }
    o.spread = std::chrono::hours(24 * d);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::stoull(argv[1]) : 2'000'000;
  // `--dump FILE`: write the N events as JSON lines and stop (benchmarks/peers.sh
  // loads the same events into PostgreSQL).
  if (argc > 4 || (argc > 2 && (std::string_view(argv[2]) != "--dump" || argc != 4))) {
    std::fprintf(stderr, "usage: bench_ingest_e2e [N] [--dump FILE]\n");
    return 2;
  }
  const std::string dump = argc == 4 ? argv[3] : "";
  const int members = std::getenv("MEMBERS") ? std::max(1, std::atoi(std::getenv("MEMBERS"))) : 1;
  if (!dump.empty()) {
    cdr::event_generator gen(generator_from_environment());
    std::ofstream out(dump);
    cdr::generated_event e;
    for (std::uint64_t i = 0; i < n; ++i) {
      gen.next(&e);
      out << e.json << '\n';
    }
    return out.good() ? 0 : 1;
  }
  const std::string dir = "/tmp/cdr-bench-ingest";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/subject.key") << "bench-subject-key-0123456789abcdef"; }

  cdr::kafka::embedded_cluster cluster(1, bench::daemon_topics());
  // CDR_RETENTIOND: another daemon binary to run (comparisons of builds).
  const std::string daemon_path = std::getenv("CDR_RETENTIOND") ? std::getenv("CDR_RETENTIOND") : CDR_RETENTIOND_PATH;
  std::vector<pid_t> daemons;
  std::vector<std::string> sockets;
  for (int m = 1; m <= members; ++m) {
    const auto d = dir + "/m" + std::to_string(m);
    std::filesystem::create_directories(d);
    { std::ofstream(d + "/master.key") << "bench-master-key-0123456789abcdef-0123456789"; }
    std::ofstream(d + "/cdr.toml") << "[kafka]\nbrokers = \"" << cluster.bootstrap_servers() << "\"\n"
                                   << "group_instance_id = \"member-" << m << "\"\n"
                                   << "[storage]\npath = \"" << d << "/data\"\nsubject_key_file = \"" << dir
                                   << "/subject.key\"\nkeystore_path = \"" << d << "/keys/keystore.json\"\n"
                                   << "master_key_file = \"" << d << "/master.key\"\n"
                                   << "block_cache_mb = " << (std::getenv("CACHE_MB") ? std::getenv("CACHE_MB") : "64")
                                   << "\n"
                                   << "[admin]\nsocket = \"" << d << "/a.sock\"\n"
                                   << "[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n";
    daemons.push_back(
        spawn({daemon_path, "--config", d + "/cdr.toml", "--fake-clock", "2025-03-14T10:26:53Z"}, d + "/daemon.log"));
    sockets.push_back(d + "/a.sock");
  }
  // Wait for the group join (the mock cluster takes ~3 s), every member in.
  for (int m = 1; m <= members; ++m) {
    while (read_file(dir + "/m" + std::to_string(m) + "/daemon.log").find("assigned") == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  const auto stored_all = [&] {
    std::uint64_t t = 0;
    for (const auto& s : sockets) t += stored_offsets(s);
    return t;
  };
  const auto cpu_all = [&] {
    double t = 0;
    for (const auto pid : daemons) t += cpu_seconds(pid);
    return t;
  };

  std::uint64_t failed = 0;
  cdr::kafka::producer producer(
      {cluster.bootstrap_servers(), "bench-producer", {{"linger.ms", "20"}, {"batch.num.messages", "10000"}}},
      [&](std::uint64_t, bool ok, std::string_view) { failed += ok ? 0 : 1; });
  // Generated before the clock starts: the load generator's formatting is
  // not the daemon's cost.
  const auto o = generator_from_environment();
  cdr::event_generator gen(o);
  std::vector<cdr::generated_event> events(n);
  std::uint64_t value_bytes = 0;
  for (auto& e : events) {
    gen.next(&e);
    value_bytes += e.json.size();
  }
  const auto start = clock_type::now();
  const double cpu_start = cpu_all();
  std::uint64_t stored = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto& e = events[i];
    std::string error;
    while (!producer.produce(e.kind == cdr::record_kind::usage ? "usage" : "cdr", e.id, e.json, {}, 0, &error)) {
      producer.poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (i % 20'000 == 0) {
      producer.poll();
      while ((stored = stored_all()) + 100'000 < i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  producer.flush(std::chrono::seconds(60));
  while ((stored = stored_all()) < n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  const double cpu = cpu_all() - cpu_start;

  std::uint64_t peak_kb = 0;
  for (const auto pid : daemons) peak_kb = std::max(peak_kb, bench::status_kib(pid, "VmHWM"));
  if (members > 1) fleet_latencies(producer, sockets, n);
  for (const auto pid : daemons) kill(pid, SIGTERM);
  for (const auto pid : daemons) waitpid(pid, nullptr, 0);
  std::printf("daemon logs: %s/m*/daemon.log\n", dir.c_str());
  std::uint64_t disk = 0;
  for (int m = 1; m <= members; ++m) disk += dir_bytes(dir + "/m" + std::to_string(m) + "/data");
  const auto avg_value = value_bytes / n;

  const auto rate = static_cast<double>(n) / seconds;
  std::printf("ingest: %s ids, %d member(s), %llu events in %.2f s = %.0f events/s (producer failures %llu)\n",
              o.random_ids ? "uuid" : "ulid", members, static_cast<unsigned long long>(n), seconds, rate,
              static_cast<unsigned long long>(failed));
  std::printf("ingest: daemon CPU %.1f s = %.2f us per event (user + system, every member and thread)\n", cpu,
              1e6 * cpu / static_cast<double>(n));
  std::printf("ingest: %.1f bytes on disk per record (average event %llu bytes), peak RSS %llu MiB (largest member)\n",
              static_cast<double>(disk) / static_cast<double>(n), static_cast<unsigned long long>(avg_value),
              static_cast<unsigned long long>(peak_kb / 1024));

  // The baseline: db_bench fillseq, same count and value size, batches of
  // 1000, WAL on, LZ4 like the daemon's default.
  const auto cmd = "db_bench --benchmarks=fillseq --num=" + std::to_string(n) +
                   " --value_size=" + std::to_string(avg_value) +
                   " --batch_size=1000 --compression_type=lz4 --db=" + dir + "/db_bench 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  if (p != nullptr) pclose(p);
  std::smatch m;
  if (std::regex_search(out, m, std::regex("fillseq\\s*:\\s*([0-9.]+) micros/op\\s+([0-9]+) ops/sec"))) {
    const double fillseq = std::stod(m[2]);
    std::printf("db_bench fillseq: %.0f ops/s\nratio ingest/fillseq: %.3f (target >= 0.23)\n", fillseq, rate / fillseq);
  } else {
    std::printf("db_bench did not report fillseq:\n%s\n", out.c_str());
  }
  if (std::getenv("KEEP") == nullptr) std::filesystem::remove_all(dir);
  return 0;
}
