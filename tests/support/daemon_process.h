// Runs the real binaries from tests: the daemon as a child process, the CLI
// and other tools as commands whose exit code and output are captured.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "temp_dir.h"

namespace cdr::test {

struct command_result {
  int exit_code = -1;  // -signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv to completion (killed after `timeout`), capturing its output.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The master key write_test_config writes (unless dir/master.key exists).
inline constexpr const char* test_master_key = "test-master-key-0123456789abcdef-0123456789";
// Writes a config for one test daemon in `dir`: embedded broker; data/,
// keys/ (the key store), subject.key, master.key and a.sock inside dir;
// metrics on a free loopback port; then `extra` TOML.
std::string write_test_config(const temp_dir& dir, const std::string& extra = "");

class daemon_process {
 public:
  // Starts cdr-retentiond --config config_path extra_args..., stdout and
  // stderr to `log_path`.
  daemon_process(const std::string& config_path, const std::vector<std::string>& extra_args, std::string log_path,
                 const std::vector<std::string>& extra_env = {});
  ~daemon_process();  // SIGKILL if still running
  daemon_process(const daemon_process&) = delete;
  daemon_process& operator=(const daemon_process&) = delete;

  // Waits until the admin socket answers `status`; false if the daemon
  // exited or the timeout passed.
  bool wait_ready(const std::string& socket, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends sig and waits for the exit; returns the exit code (-signal if killed).
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits for an exit without signalling; nullopt if still running.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  std::string log() const { return read_file(log_path_); }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// A test's random seed: the environment's CDR_TEST_SEED when set, else
// `fixed`; printed (and recorded as the test's "seed" property) so that a
// failing run can be repeated.
std::uint64_t test_seed(std::uint64_t fixed);

// One admin request on a fresh connection.
nlohmann::json admin_call(const std::string& socket, const std::string& command,
                          const nlohmann::json& args = nlohmann::json::object());

// The sum of the next offsets the daemon has stored over every topic
// partition (status: kafka.consumer.offsets); 0 while it does not answer.
std::uint64_t stored_offsets(const std::string& socket);

// One HTTP/1.0 request to http://host:port/path over a plain TCP socket.
struct http_response {
  int status = 0;
  std::string head;  // the status line and the headers
  std::string body;
};
http_response http_request(const std::string& host_port, const std::string& path, const std::string& method = "GET");
// GET http://host:port/path; returns the body.
std::string http_get(const std::string& host_port, const std::string& path);

}  // namespace cdr::test
