// What the benchmarks that run the real daemon share: starting it, and
// reading a process's CPU time and resident memory from /proc.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace bench {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts argv[0] with stdout and stderr to `log`.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
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

inline std::uint64_t dir_bytes(const std::string& path) {
  std::uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// User + system CPU seconds of a process so far (/proc/PID/stat fields 14, 15).
inline double cpu_seconds(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A /proc/PID/status figure in KiB ("VmRSS", "VmHWM"); 0 when absent.
inline std::uint64_t status_kib(pid_t pid, const std::string& field) {
  const auto status = read_file("/proc/" + std::to_string(pid) + "/status");
  const std::regex re(field + ":\\s+(\\d+) kB");
  std::smatch m;
  return std::regex_search(status, m, re) ? std::stoull(m[1]) : 0;
}

// Samples a process's RSS every 5 ms while it lives; the peak since reset().
class rss_sampler {
 public:
  explicit rss_sampler(pid_t pid) : pid_(pid), thread_([this] { run(); }) {}
  ~rss_sampler() {
    stop_ = true;
    thread_.join();
  }
  rss_sampler(const rss_sampler&) = delete;
  rss_sampler& operator=(const rss_sampler&) = delete;
  void reset() { peak_ = status_kib(pid_, "VmRSS"); }
  std::uint64_t peak_kib() const { return peak_; }

 private:
  void run() {
    while (!stop_) {
      const auto now = status_kib(pid_, "VmRSS");
      if (now > peak_) peak_ = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> peak_{0};
  std::thread thread_;
};

}  // namespace bench
