// The admin socket under bad input and unprivileged peers: every request gets
// a JSON answer, and the daemon keeps serving.
#include <gtest/gtest.h>

#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "cdr/admin/client.h"
#include "daemon_process.h"

namespace cdr::test {
namespace {

class admin_socket : public ::testing::Test {
 protected:
  // Starts a daemon with `--set` overrides.
  void start(const std::vector<std::string>& sets = {}) {
    std::vector<std::string> args;
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    daemon_ = std::make_unique<daemon_process>(write_test_config(dir_), args, dir_ / "log");
    ASSERT_TRUE(daemon_->wait_ready(socket())) << daemon_->log();
  }
  std::string socket() const { return dir_ / "a.sock"; }
  nlohmann::json send_line(admin::client& c, const std::string& line) { return nlohmann::json::parse(c.exchange(line)); }

  temp_dir dir_;
  std::unique_ptr<daemon_process> daemon_;
};

TEST_F(admin_socket, malformed_requests_get_json_errors_on_a_live_connection) {
  start();
  admin::client c(socket(), std::chrono::seconds(10));
  EXPECT_EQ(send_line(c, "this is not json")["error"]["code"], "invalid_json");
  EXPECT_EQ(send_line(c, "[\"status\"]")["error"]["code"], "invalid_json");
  EXPECT_EQ(send_line(c, "{\"id\":9}")["error"]["code"], "invalid_request");
  EXPECT_EQ(send_line(c, "{\"id\":9}")["id"], 9);
  EXPECT_EQ(send_line(c, R"({"command":"status","args":"x"})")["error"]["code"], "invalid_request");
  EXPECT_EQ(send_line(c, R"({"command":"shutdown"})")["error"]["code"], "unknown_command");
  EXPECT_EQ(send_line(c, "{\"command\":\"status\",\"id\":\"\xff\"}")["error"]["code"], "invalid_json");
  // The same connection still serves a good request.
  const auto ok = send_line(c, R"({"id":"s","command":"status"})");
  EXPECT_EQ(ok["ok"], true);
  EXPECT_EQ(ok["id"], "s");
  EXPECT_EQ(ok["result"]["version"].get<std::string>().rfind("0.", 0), 0u);
}

TEST_F(admin_socket, an_oversized_request_is_refused_and_the_daemon_keeps_serving) {
  start({"admin.max_request_bytes=1024"});
  {
    admin::client c(socket(), std::chrono::seconds(10));
    const auto r = send_line(c, std::string(R"({"command":"status","id":")") + std::string(4096, 'x') + "\"}");
    EXPECT_EQ(r["error"]["code"], "request_too_large");
  }
  EXPECT_EQ(admin_call(socket(), "status")["ok"], true);
}

TEST_F(admin_socket, connections_beyond_the_limit_are_told_busy) {
  start({"admin.max_connections=2", "admin.idle_timeout=30s"});
  admin::client a(socket(), std::chrono::seconds(10));
  admin::client b(socket(), std::chrono::seconds(10));
  EXPECT_EQ(send_line(a, R"({"command":"status"})")["ok"], true);
  EXPECT_EQ(send_line(b, R"({"command":"status"})")["ok"], true);
  admin::client c(socket(), std::chrono::seconds(10));
  EXPECT_EQ(nlohmann::json::parse(c.read_line())["error"]["code"], "busy");
  EXPECT_EQ(send_line(a, R"({"command":"status"})")["result"]["pid"], daemon_->pid());
}

TEST_F(admin_socket, idle_connections_are_closed) {
  start({"admin.idle_timeout=1s"});
  admin::client c(socket(), std::chrono::seconds(20));
  EXPECT_THROW(c.read_line(), std::runtime_error) << "the daemon hangs up an idle peer";
  EXPECT_EQ(admin_call(socket(), "status")["ok"], true);
}

TEST_F(admin_socket, config_shows_the_effective_configuration) {
  start();
  const auto r = admin_call(socket(), "config");
  EXPECT_EQ(r["result"]["kafka"]["brokers"], "embedded");
  EXPECT_EQ(r["result"]["admin"]["socket"], socket());
  EXPECT_EQ(r["result"]["retention"]["identifiers"]["period"], "12 months");
}

// Runs the CLI as another user with setpriv (needs root).
command_result ctl_as(const std::string& ids, const std::string& socket, std::vector<std::string> args) {
  std::vector<std::string> argv{"/usr/bin/setpriv", "--reuid=65534"};
  if (!ids.empty()) {
    std::size_t start = 0;
    while (start < ids.size()) {
      const auto sp = ids.find(' ', start);
      argv.push_back(ids.substr(start, sp - start));
      if (sp == std::string::npos) break;
      start = sp + 1;
    }
  }
  argv.insert(argv.end(), {CDR_RETENTIONCTL_PATH, "--socket", socket});
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

TEST_F(admin_socket, peers_get_the_rights_of_their_uid_and_groups) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the CLI as other users";
  for (const char* g : {"nogroup", "users", "staff"}) {
    if (getgrnam(g) == nullptr) GTEST_SKIP() << "group " << g << " missing";
  }
  const auto gid = [](const char* g) { return std::to_string(getgrnam(g)->gr_gid); };
  // Members of nogroup can reach the socket; users are viewers, staff operators.
  start({"admin.socket_group=nogroup", "admin.viewer_group=users", "admin.operator_group=staff"});
  const auto nogroup = "--regid=" + gid("nogroup");

  // Can connect, but has no rights: refused by SO_PEERCRED.
  auto r = ctl_as(nogroup + " --clear-groups", socket(), {"status"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("permission_denied"), std::string::npos) << r.err;

  // A viewer may read status but not move the clock.
  r = ctl_as(nogroup + " --groups=" + gid("users"), socket(), {"status"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = ctl_as(nogroup + " --groups=" + gid("users"), socket(), {"debug", "advance-clock", "1s"});
  EXPECT_EQ(r.exit_code, 4) << r.err;

  // An operator may run operator commands (this one is then refused for
  // another reason: the daemon is on the real clock).
  r = ctl_as(nogroup + " --groups=" + gid("staff"), socket(), {"--json", "debug", "advance-clock", "1s"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("unavailable"), std::string::npos) << r.out;

  // Outside the socket's group the file mode keeps the peer out entirely.
  r = ctl_as("--regid=" + gid("users") + " --clear-groups", socket(), {"status"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;

  EXPECT_EQ(admin_call(socket(), "status")["ok"], true) << "root still is served";
  EXPECT_NE(daemon_->log().find("refused \\\"status\\\" to uid 65534"), std::string::npos) << daemon_->log();
  EXPECT_EQ(daemon_->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test
