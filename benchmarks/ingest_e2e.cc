// End-to-end ingest: a producer writes N generated events to a mock Kafka
// cluster while the real daemon consumes them, until all are durable (the
// daemon's stored offsets cover every message). Then, in the same run,
// db_bench fillseq with the same record count and average value size.
//
//   cmake --preset release && cmake --build --preset release
//   build/release/benchmarks/bench_ingest_e2e [N=2000000]
//
// The mock broker keeps at most ~5 MB per partition, so the producer keeps
// the backlog (produced but not yet stored) under 100,000 events.
//
// Reports events/s, the daemon's CPU per event (user + system over the
// run), bytes on disk per record and peak RSS.
//
// Environment: CACHE_MB (storage.block_cache_mb, default 64), LATE (share
// of events 13 to 130 months old, default 0), KEEP (keep the directory).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/admin/client.h"
#include "cdr/core/event_generator.h"
#include "cdr/kafka/client.h"
#include "cdr/kafka/embedded_cluster.h"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

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

std::uint64_t dir_bytes(const std::string& path) {
  std::uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// User + system CPU seconds of a process so far (/proc/PID/stat fields 14, 15).
double cpu_seconds(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::stoull(argv[1]) : 2'000'000;
  const std::string dir = "/tmp/cdr-bench-ingest";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/subject.key") << "bench-subject-key-0123456789abcdef"; }
  { std::ofstream(dir + "/master.key") << "bench-master-key-0123456789abcdef-0123456789"; }

  cdr::kafka::embedded_cluster cluster(1, {{"cdr", 16}, {"usage", 16}, {"cdr-retention-dlq", 1}});
  std::ofstream(dir + "/cdr.toml") << "[kafka]\nbrokers = \"" << cluster.bootstrap_servers() << "\"\n"
                                   << "[storage]\npath = \"" << dir << "/data\"\nsubject_key_file = \"" << dir
                                   << "/subject.key\"\nkeystore_path = \"" << dir << "/keys/keystore.json\"\n"
                                   << "master_key_file = \"" << dir << "/master.key\"\n"
                                   << "block_cache_mb = " << (std::getenv("CACHE_MB") ? std::getenv("CACHE_MB") : "64")
                                   << "\n"
                                   << "[admin]\nsocket = \"" << dir << "/a.sock\"\n"
                                   << "[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n";
  const pid_t daemon =
      spawn({CDR_RETENTIOND_PATH, "--config", dir + "/cdr.toml", "--fake-clock", "2025-03-14T10:26:53Z"},
            dir + "/daemon.log");
  // Wait for the group join (the mock cluster takes ~3 s).
  while (read_file(dir + "/daemon.log").find("assigned") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::uint64_t failed = 0;
  cdr::kafka::producer producer(
      {cluster.bootstrap_servers(), "bench-producer", {{"linger.ms", "20"}, {"batch.num.messages", "10000"}}},
      [&](std::uint64_t, bool ok, std::string_view) { failed += ok ? 0 : 1; });
  // Generated before the clock starts: the load generator's formatting is
  // not the daemon's cost.
  cdr::generator_options o;
  o.seed = 2025;
  if (const char* l = std::getenv("LATE")) o.late_fraction = std::stod(l);
  cdr::event_generator gen(o);
  std::vector<cdr::generated_event> events(n);
  std::uint64_t value_bytes = 0;
  for (auto& e : events) {
    gen.next(&e);
    value_bytes += e.json.size();
  }
  const auto start = clock_type::now();
  const double cpu_start = cpu_seconds(daemon);
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
      while ((stored = stored_offsets(dir + "/a.sock")) + 100'000 < i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  producer.flush(std::chrono::seconds(60));
  while ((stored = stored_offsets(dir + "/a.sock")) < n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  const double cpu = cpu_seconds(daemon) - cpu_start;

  const auto status = read_file("/proc/" + std::to_string(daemon) + "/status");
  std::smatch hwm;
  std::regex_search(status, hwm, std::regex("VmHWM:\\s+(\\d+) kB"));
  kill(daemon, SIGTERM);
  waitpid(daemon, nullptr, 0);
  std::printf("daemon log: %s/daemon.log\n", dir.c_str());
  const auto disk = dir_bytes(dir + "/data");
  const auto avg_value = value_bytes / n;

  const auto rate = static_cast<double>(n) / seconds;
  std::printf("ingest: %llu events in %.2f s = %.0f events/s (producer failures %llu)\n",
              static_cast<unsigned long long>(n), seconds, rate, static_cast<unsigned long long>(failed));
  std::printf("ingest: daemon CPU %.1f s = %.2f us per event (user + system, all of its threads)\n", cpu,
              1e6 * cpu / static_cast<double>(n));
  std::printf("ingest: %.1f bytes on disk per record (average event %llu bytes), peak RSS %s MiB\n",
              static_cast<double>(disk) / static_cast<double>(n), static_cast<unsigned long long>(avg_value),
              hwm.size() > 1 ? std::to_string(std::stoull(hwm[1]) / 1024).c_str() : "?");

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
    std::printf("db_bench fillseq: %.0f ops/s\nratio ingest/fillseq: %.3f (target >= 0.3)\n", fillseq, rate / fillseq);
  } else {
    std::printf("db_bench did not report fillseq:\n%s\n", out.c_str());
  }
  if (std::getenv("KEEP") == nullptr) std::filesystem::remove_all(dir);
  return 0;
}
