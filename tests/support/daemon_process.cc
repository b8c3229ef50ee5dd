#include "daemon_process.h"

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "cdr/admin/client.h"

namespace cdr::test {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
            const std::vector<std::string>& extra_env = {}) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    for (const auto& e : extra_env) putenv(const_cast<char*>(e.c_str()));
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Polls waitpid until the child exits or the timeout passes.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

command_result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  temp_dir dir;
  const auto out_path = dir / "out";
  const auto err_path = dir / "err";
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t pid = spawn(argv, out_fd, err_fd);
  close(out_fd);
  close(err_fd);
  command_result r;
  auto code = wait_child(pid, timeout);
  if (!code) {
    kill(pid, SIGKILL);
    code = wait_child(pid, std::chrono::seconds(10));
  }
  r.exit_code = code.value_or(-1000);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

std::string write_test_config(const temp_dir& dir, const std::string& extra) {
  const auto path = dir / "cdr.toml";
  write_file(dir / "subject.key", "test-subject-key-0123456789abcdef");
  if (!std::filesystem::exists(dir / "master.key")) write_file(dir / "master.key", test_master_key);
  write_file(path,
             "[kafka]\nbrokers = \"embedded\"\nembedded_partitions = 2\n"
             "[storage]\npath = \"" +
                 (dir / "data") +
                 "\"\n"
                 "subject_key_file = \"" +
                 (dir / "subject.key") +
                 "\"\n"
                 "keystore_path = \"" +
                 (dir / "keys/keystore.json") +
                 "\"\n"
                 "master_key_file = \"" +
                 (dir / "master.key") +
                 "\"\n"
                 "[admin]\nsocket = \"" +
                 (dir / "a.sock") +
                 "\"\n"
                 "[metrics]\nlisten = \"127.0.0.1:0\"\n"
                 "[log]\nformat = \"json\"\n" +
                 extra);
  return path;
}

daemon_process::daemon_process(const std::string& config_path, const std::vector<std::string>& extra_args,
                               std::string log_path, const std::vector<std::string>& extra_env)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> argv{CDR_RETENTIOND_PATH, "--config", config_path};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = spawn(argv, fd, fd, extra_env);
  close(fd);
}

daemon_process::~daemon_process() {
  if (!exit_code_) {
    kill(pid_, SIGKILL);
    wait_child(pid_, std::chrono::seconds(10));
  }
}

bool daemon_process::wait_ready(const std::string& socket, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto code = wait_exit(std::chrono::milliseconds(0))) return false;
    try {
      if (admin_call(socket, "status").value("ok", false)) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::optional<int> daemon_process::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  exit_code_ = wait_child(pid_, timeout);
  return exit_code_;
}

int daemon_process::stop(int sig, std::chrono::milliseconds timeout) {
  if (!exit_code_) kill(pid_, sig);
  if (auto code = wait_exit(timeout)) return *code;
  kill(pid_, SIGKILL);
  return wait_exit(std::chrono::seconds(10)).value_or(-1000);
}

nlohmann::json admin_call(const std::string& socket, const std::string& command, const nlohmann::json& args) {
  admin::client c(socket, std::chrono::seconds(30));
  return c.call(command, args);
}

std::uint64_t stored_offsets(const std::string& socket) {
  try {
    const auto st = admin_call(socket, "status");
    const auto offsets =
        st.value(nlohmann::json::json_pointer("/result/kafka/consumer/offsets"), nlohmann::json::object());
    std::uint64_t total = 0;
    for (const auto& [topic, parts] : offsets.items()) {
      for (const auto& [p, off] : parts.items()) total += off.get<std::uint64_t>();
    }
    return total;
  } catch (const std::exception&) {
    return 0;
  }
}

http_response http_request(const std::string& host_port, const std::string& path, const std::string& method) {
  const auto colon = host_port.rfind(':');
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host_port.substr(0, colon).c_str(), host_port.substr(colon + 1).c_str(), &hints, &res) != 0) {
    throw std::runtime_error("cannot resolve " + host_port);
  }
  const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int rc = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0) {
    close(fd);
    throw std::runtime_error("cannot connect to " + host_port);
  }
  const auto req = method + " " + path + " HTTP/1.0\r\nHost: " + host_port + "\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    throw std::runtime_error("send failed");
  }
  std::string response;
  char buf[65536];
  for (;;) {
    const auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  const auto body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos || response.size() < 12) {
    throw std::runtime_error("bad HTTP response");
  }
  return {std::stoi(response.substr(9, 3)), response.substr(0, body), response.substr(body + 4)};
}

std::string http_get(const std::string& host_port, const std::string& path) {
  return http_request(host_port, path).body;
}

std::uint64_t test_seed(std::uint64_t fixed) {
  const char* env = std::getenv("CDR_TEST_SEED");
  const auto seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fixed;
  std::cout << "CDR_TEST_SEED=" << seed << "\n";
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

}  // namespace cdr::test
