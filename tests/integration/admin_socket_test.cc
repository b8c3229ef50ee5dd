// The admin socket under bad input and unprivileged peers: every request gets
// a JSON answer, and the daemon keeps serving.
#include <gtest/gtest.h>

#include <system_error>

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

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
  nlohmann::json send_line(admin::client& c, const std::string& line) {
    return nlohmann::json::parse(c.exchange(line));
  }

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

// Open admin connections, from the metrics (an HTTP scrape is not one).
double admin_connections(const std::string& metrics_listen) {
  const auto body = http_get(metrics_listen, "/metrics");
  const auto at = body.find("\ncdr_retention_admin_connections ");
  return at == std::string::npos ? -1 : std::stod(body.substr(at + 33));
}

// Waits until the daemon has let go of every admin connection (those of
// wait_ready and admin_call close right after their reply).
void await_no_connections(const std::string& metrics_listen) {
  for (int i = 0; i < 200 && admin_connections(metrics_listen) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

TEST_F(admin_socket, connections_beyond_the_limit_are_told_busy) {
  start({"admin.max_connections=2", "admin.idle_timeout=30s"});
  await_no_connections(admin_call(socket(), "status")["result"]["metrics"]["listen"]);
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
  // The daemon's hang-up (end of stream) within a few seconds, not this
  // client's own receive timeout (a system_error, after 20 s).
  const auto started = std::chrono::steady_clock::now();
  try {
    c.read_line();
    ADD_FAILURE() << "a line arrived on an idle connection";
  } catch (const std::system_error& e) {
    ADD_FAILURE() << "the client timed out; the daemon never hung up: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the daemon closed the connection");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
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

// A peer of uid 65534 (forked, its ids dropped before it connects, so
// SO_PEERCRED shows them): it sends `payload`, then reads one reply line
// into the pipe if asked, and otherwise never reads. Killed when dropped.
class nobody_peer {
 public:
  nobody_peer(const std::string& socket, gid_t gid, const std::string& payload, bool read_reply) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(65534) != 0) _exit(3);
      // Never outlives the test (set after setuid, which clears it).
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1) _exit(5);
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(4);
      (void)!write(fds[1], "c", 1);
      std::size_t sent = 0;
      while (sent < payload.size()) {
        const auto n = send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      if (read_reply) {
        std::string line;
        char c = 0;
        while (read(fd, &c, 1) == 1 && c != '\n' && line.size() < 4096) line.push_back(c);
        (void)!write(fds[1], line.data(), line.size());
        _exit(0);
      }
      pause();  // never reads
      _exit(0);
    }
    close(fds[1]);
    pipe_ = fds[0];
    char c = 0;
    connected_ = read(pipe_, &c, 1) == 1;
  }
  ~nobody_peer() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(pipe_);
  }
  bool connected() const { return connected_; }
  // The reply it read (read_reply), once it exited.
  std::string reply() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(pipe_, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

 private:
  pid_t pid_ = -1;
  int pipe_ = -1;
  bool connected_ = false;
};

// Finding 5 of "Hardening": peers without rights that flood requests with
// 60 KB ids and never read their replies used to keep root out ("busy")
// well past the idle timeout.
TEST_F(admin_socket, silent_peers_without_rights_cannot_lock_operators_out) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  const auto* nogroup = getgrnam("nogroup");
  if (nogroup == nullptr) GTEST_SKIP() << "no group nogroup";
  start({"admin.socket_group=nogroup", "admin.max_connections=16", "admin.idle_timeout=2s",
         "admin.max_request_bytes=131072"});
  const std::string listen = admin_call(socket(), "status")["result"]["metrics"]["listen"];
  std::string flood;
  for (int i = 0; i < 40; ++i) flood += R"({"command":"status","id":")" + std::string(60 * 1024, 'x') + "\"}\n";
  std::vector<std::unique_ptr<nobody_peer>> peers;
  for (int i = 0; i < 16; ++i) {
    peers.push_back(std::make_unique<nobody_peer>(socket(), nogroup->gr_gid, flood, false));
    ASSERT_TRUE(peers.back()->connected()) << "peer " << i;
  }
  // All 16 unprivileged slots are taken, and their replies are stuck: root
  // is still served at once.
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = admin_call(socket(), "status");
  EXPECT_EQ(r["ok"], true) << r.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  // A 17th unprivileged peer is refused while they hold their slots.
  {
    nobody_peer extra(socket(), nogroup->gr_gid, "{\"command\":\"status\"}\n", true);
    ASSERT_TRUE(extra.connected());
    EXPECT_NE(extra.reply().find("\"busy\""), std::string::npos);
  }
  // Every stuck reply has a deadline (the idle timeout): the connections go.
  double open = -1;
  for (int i = 0; i < 100 && (open = admin_connections(listen)) > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(open, 0) << daemon_->log();
  // An unprivileged peer is served again (permission_denied: it has no rights).
  nobody_peer again(socket(), nogroup->gr_gid, "{\"command\":\"status\"}\n", true);
  EXPECT_NE(again.reply().find("permission_denied"), std::string::npos);
  EXPECT_EQ(daemon_->stop(SIGTERM), 0);
}

// Finding 6 of "Hardening": a million levels of nesting from a peer without
// rights crashed the daemon before its rights were checked.
TEST_F(admin_socket, deep_nesting_is_refused_before_any_parse_and_the_daemon_lives) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  const auto* nogroup = getgrnam("nogroup");
  if (nogroup == nullptr) GTEST_SKIP() << "no group nogroup";
  start({"admin.socket_group=nogroup", "admin.max_request_bytes=4194304"});
  const std::string deep =
      R"({"command":"status","id":)" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}\n";
  nobody_peer peer(socket(), nogroup->gr_gid, deep, true);
  ASSERT_TRUE(peer.connected());
  const auto reply = peer.reply();
  EXPECT_NE(reply.find("invalid_request"), std::string::npos) << reply;
  EXPECT_NE(reply.find("at most 32 deep"), std::string::npos) << reply;
  // Deep but legal for root too: refused the same way; the daemon serves on.
  admin::client c(socket(), std::chrono::seconds(10));
  EXPECT_EQ(send_line(c, deep.substr(0, deep.size() - 1))["error"]["code"], "invalid_request");
  EXPECT_EQ(send_line(c, R"({"id":[[[1]]],"command":"status"})")["ok"], true);
  EXPECT_EQ(daemon_->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test
