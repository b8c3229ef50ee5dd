// The daemon binary's command line: arguments, configuration errors, signals
// and the simulated clock.
#include <gtest/gtest.h>

#include <thread>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "cdr/core/admin_protocol.h"
#include "cdr/core/render.h"
#include "daemon_process.h"
#include "table_text.h"

namespace cdr::test {
namespace {

TEST(daemon_cli, version_and_help) {
  auto r = run_command({CDR_RETENTIOND_PATH, "--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("cdr-retentiond 0.", 0), 0u) << r.out;
  r = run_command({CDR_RETENTIOND_PATH, "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (auto flag : {"--config", "--set", "--check-config", "--version", "--new-keystore", "--rewrap-master-key"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
  // Test-only options are not in the production help, only behind --help-debug.
  EXPECT_EQ(r.out.find("--fake-clock"), std::string::npos) << r.out;
  r = run_command({CDR_RETENTIOND_PATH, "--help-debug"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Test-only options:\n  --fake-clock=RFC3339"), std::string::npos) << r.out;
  // The man pages: the daemon's from its options, the CLI's from the
  // command table (every production command and flag).
  r = run_command({CDR_RETENTIOND_PATH, "--manpage"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind(".TH CDR-RETENTIOND 8 ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\\-\\-check\\-config"), std::string::npos) << r.out;
  r = run_command({CDR_RETENTIONCTL_PATH, "manpage"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind(".TH CDR-RETENTIONCTL 1 ", 0), 0u) << r.out;
  for (const auto& c : admin::commands()) {
    std::string name;
    for (const char ch : c.name) name += ch == '-' ? std::string("\\-") : std::string(1, ch);
    const bool debug = c.name.rfind("debug ", 0) == 0;
    EXPECT_EQ(r.out.find(".B " + name) != std::string::npos, !debug) << c.name;
  }
  EXPECT_NE(r.out.find(".B \\-\\-identifier X"), std::string::npos) << r.out;
  r = run_command({CDR_RETENTIOND_PATH, "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown argument --bogus"), std::string::npos) << r.err;
}

TEST(daemon_cli, invalid_config_exits_2_naming_file_line_and_key) {
  temp_dir dir;
  const auto cfg = dir / "bad.toml";
  write_file(cfg, "[kafka]\nbrokers = \"embedded\"\n\n[storage]\ncompression = \"snappy\"\n");
  auto r = run_command({CDR_RETENTIOND_PATH, "--config", cfg});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(cfg + ":5: key storage.compression:"), std::string::npos) << r.err;

  r = run_command({CDR_RETENTIOND_PATH, "--config", dir / "missing.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot read config file"), std::string::npos) << r.err;

  r = run_command({CDR_RETENTIOND_PATH, "--config", write_test_config(dir), "--set", "admin.idle_timeout=forever"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("key admin.idle_timeout"), std::string::npos) << r.err;

  r = run_command({CDR_RETENTIOND_PATH, "--config", write_test_config(dir), "--fake-clock=last tuesday"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--fake-clock"), std::string::npos) << r.err;
}

TEST(daemon_cli, check_config_validates_and_prints_the_effective_config) {
  temp_dir dir;
  const auto r = run_command({CDR_RETENTIOND_PATH, "--config", write_test_config(dir), "--check-config", "--set",
                              "kafka.group_id=from-the-flag", "--set", "kafka.properties.\"sasl.password\"=hunter2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("configuration is valid"), std::string::npos);
  EXPECT_NE(r.out.find("from-the-flag"), std::string::npos) << "--set overrides the file";
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << "secrets are redacted";
  EXPECT_FALSE(std::filesystem::exists(dir / "a.sock")) << "--check-config starts nothing";
}

// events.default_region: a region code in capitals (the parser) that
// libphonenumber knows (this build), at --check-config and at start.
TEST(daemon_cli, an_unknown_default_region_is_a_config_error) {
  temp_dir dir;
  const auto config = write_test_config(dir);
  for (const auto& [value, why] : {std::pair{"\"hr\"", "ISO 3166-1"}, std::pair{"\"XX\"", "libphonenumber"}}) {
    for (const bool check : {true, false}) {
      std::vector<std::string> argv{CDR_RETENTIOND_PATH, "--config", config, "--set",
                                    std::string("events.default_region=") + value};
      if (check) argv.emplace_back("--check-config");
      const auto r = run_command(argv);
      EXPECT_EQ(r.exit_code, 2) << value << (check ? " --check-config" : "") << ": " << r.err;
      EXPECT_NE(r.err.find("events.default_region"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "data")) << "nothing was started";
  const auto ok =
      run_command({CDR_RETENTIOND_PATH, "--config", config, "--check-config", "--set", "events.default_region=\"HR\""});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// kafka.properties are passed to librdkafka as they are: a misspelled key
// or a value it refuses is a configuration error at --check-config and at
// start (exit 2, which systemd's RestartPreventExitStatus=2 does not
// restart), named, before anything is opened.
TEST(daemon_cli, a_kafka_property_librdkafka_refuses_is_a_config_error) {
  temp_dir dir;
  const auto config = write_test_config(dir);
  for (const auto& [set, why] :
       {std::pair{"kafka.properties.\"securty.protocol\"=\"ssl\"", "\"securty.protocol\": No such configuration"},
        std::pair{"kafka.properties.\"security.protocol\"=\"sslx\"", "\"security.protocol\": Invalid value"}}) {
    for (const bool check : {true, false}) {
      std::vector<std::string> argv{CDR_RETENTIOND_PATH, "--config", config, "--set", set};
      if (check) argv.emplace_back("--check-config");
      const auto r = run_command(argv);
      EXPECT_EQ(r.exit_code, 2) << set << (check ? " --check-config" : "") << ": " << r.err;
      EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    }
  }
  // A key with a control character is refused by name, escaped: it never
  // reaches librdkafka, a terminal or a log raw.
  const auto bell = run_command(
      {CDR_RETENTIOND_PATH, "--config", config, "--check-config", "--set", "kafka.properties.\"\\u0007bell\"=\"x\""});
  EXPECT_EQ(bell.exit_code, 2) << bell.err;
  EXPECT_NE(bell.err.find("key \"kafka.properties.\\u0007bell\": is not a librdkafka property name"), std::string::npos)
      << bell.err;
  EXPECT_EQ(bell.err.find('\a'), std::string::npos) << "no raw control character";
  EXPECT_FALSE(std::filesystem::exists(dir / "data")) << "nothing was started";
  const auto ok = run_command(
      {CDR_RETENTIOND_PATH, "--config", config, "--check-config", "--set", "kafka.properties.\"linger.ms\"=\"20\""});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// Secret values by reference: the environment and files (a systemd
// credential), checked at --check-config and never printed.
TEST(daemon_cli, secret_values_come_from_the_environment_or_a_file) {
  temp_dir dir;
  const auto config = write_test_config(dir);
  { std::ofstream(dir / "key-password") << "t0ken-from-a-file\n"; }
  std::filesystem::create_symlink(dir / "key-password", dir / "link");
  // (Debian's librdkafka has no OAuth/OIDC: sasl.oauthbearer.client.secret
  // is refused by --check-config there.)
  const std::vector<std::string> sets = {"--set", "kafka.properties.\"sasl.password\"=${CDR_TEST_KAFKA_PASSWORD}",
                                         "--set", "kafka.properties.\"ssl.key.password\"=@" + (dir / "key-password")};
  std::vector<std::string> argv = {
      "/usr/bin/env", "CDR_TEST_KAFKA_PASSWORD=hunter2", CDR_RETENTIOND_PATH, "--config", config, "--check-config"};
  argv.insert(argv.end(), sets.begin(), sets.end());
  auto r = run_command(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("t0ken"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("${CDR_TEST_KAFKA_PASSWORD}"), std::string::npos) << r.out;

  argv = {"/usr/bin/env", "-u", "CDR_TEST_KAFKA_PASSWORD", CDR_RETENTIOND_PATH, "--config", config, "--check-config"};
  argv.insert(argv.end(), sets.begin(), sets.end());
  r = run_command(argv);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("key kafka.properties.sasl.password: environment variable CDR_TEST_KAFKA_PASSWORD is not set"),
            std::string::npos)
      << r.err;

  // A symbolic link is not followed (a secret is read from where it was named).
  r = run_command({CDR_RETENTIOND_PATH, "--config", config, "--check-config", "--set",
                   "kafka.properties.\"sasl.password\"=@" + (dir / "link")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot read " + (dir / "link")), std::string::npos) << r.err;
}

// --check-config fails where the start would: a key file missing or too
// short, a socket group that does not exist; a missing operator or viewer
// group is a warning (the daemon runs; nobody gets those rights).
TEST(daemon_cli, check_config_checks_key_files_and_groups_as_the_start_would) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  write_file(dir / "short.key", "abc");
  for (const auto& [set, says] : std::vector<std::pair<std::string, std::string>>{
           {"storage.subject_key_file=\"" + (dir / "absent.key") + "\"", "storage.subject_key_file: "},
           {"storage.master_key_file=\"" + (dir / "short.key") + "\"", "storage.master_key_file: "},
           {"admin.socket_group=\"no-such-group-cdr\"",
            "admin.socket_group: group \"no-such-group-cdr\" does not exist"}}) {
    const auto r = run_command({CDR_RETENTIOND_PATH, "--check-config", "--config", cfg, "--set", set});
    EXPECT_EQ(r.exit_code, 2) << set << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
  const auto r = run_command(
      {CDR_RETENTIOND_PATH, "--check-config", "--config", cfg, "--set", "admin.viewer_group=\"no-such-group-cdr\""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: admin.viewer_group"), std::string::npos) << r.err;
}

// Under systemd with stderr going to the journal (JOURNAL_STREAM names it),
// every line carries its syslog priority, so `journalctl -p err` finds the
// errors; elsewhere no prefix.
TEST(daemon_cli, log_lines_carry_their_priority_for_the_journal) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  write_file(dir / "bad.key", "");
  const auto err = dir / "stderr";
  const auto run = [&](bool journal) {
    write_file(err, "");
    const std::string env = journal ? "JOURNAL_STREAM=$(stat -c %d:%i " + err + ") " : "";
    run_command({"/bin/sh", "-c",
                 env + "exec " + CDR_RETENTIOND_PATH + " --config " + cfg + " --set 'storage.subject_key_file=\"" +
                     (dir / "bad.key") + "\"' 2>>" + err});
    return read_file(err);
  };
  const auto journal = run(true);
  EXPECT_NE(journal.find("<6>"), std::string::npos) << journal;  // info: starting
  EXPECT_NE(journal.find("<2>"), std::string::npos) << journal;  // critical: cannot run
  for (std::size_t at = 0; at < journal.size(); at = journal.find('\n', at) + 1) {
    if (at >= journal.size() || journal.find('\n', at) == std::string::npos) break;
    EXPECT_EQ(journal[at], '<') << "every line has its priority: " << journal.substr(at, 80);
  }
  const auto plain = run(false);
  EXPECT_NE(plain.find("cannot run"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("<2>"), std::string::npos) << plain;
}

// A command sent but not answered within --timeout is not "cannot reach
// the daemon": exit status 5, saying the daemon may still be running it;
// --timeout 0 waits as long as the command runs.
TEST(daemon_cli, a_reply_later_than_the_timeout_is_its_own_exit_status_and_timeout_0_waits) {
  temp_dir dir;
  daemon_process d(write_test_config(dir), {}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  const std::string sock = dir / "a.sock";
  ASSERT_EQ(kill(d.pid(), SIGSTOP), 0);  // connections are still accepted by the kernel; no reply comes
  auto r = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock, "--timeout", "1", "status"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("was sent to"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no reply came within 1 s"), std::string::npos) << r.err;
  // Resumed only after the CLI's default timeout (30 s): --timeout 0 must
  // mean no limit at all, not some other limit.
  std::thread resume([&] {
    std::this_thread::sleep_for(std::chrono::seconds(32));
    kill(d.pid(), SIGCONT);
  });
  const auto started = std::chrono::steady_clock::now();
  r = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock, "--timeout", "0", "status"}, std::chrono::seconds(90));
  resume.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(32));
  EXPECT_NE(r.out.find("health: "), std::string::npos) << r.out;
  r = run_command({CDR_RETENTIONCTL_PATH, "--socket", sock, "--timeout", "-1", "status"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(ctl, tables_and_format_json_carry_the_same_data) {
  temp_dir dir;
  daemon_process d(write_test_config(dir), {}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  const std::string sock = dir / "a.sock";
  const auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {CDR_RETENTIONCTL_PATH, "--socket", sock});
    return run_command(args);
  };
  ASSERT_EQ(ctl({"hold", "add", "--customer", "c-7", "--reason", "court order  7", "--reference", "T-1"}).exit_code, 0);
  ASSERT_EQ(ctl({"hold", "add", "--from-month", "2025-01", "--to-month", "2025-03", "--kind", "cdr", "--reason",
                 "audit", "--reference", "T-2"})
                .exit_code,
            0);
  const auto text = ctl({"hold", "list"});
  const auto as_json = ctl({"--format", "json", "hold", "list"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  const auto holds = nlohmann::json::parse(as_json.out)["result"]["holds"];
  ASSERT_EQ(holds.size(), 2u);
  ASSERT_EQ(text.out.rfind("holds:\n", 0), 0u) << text.out;
  EXPECT_EQ(table_mismatch(text.out.substr(7), holds), "") << text.out;

  // Lines: every scalar of the reply as "a.b: value".
  const auto verify_text = ctl({"verify"});
  const auto verify_json = nlohmann::json::parse(ctl({"--json", "verify"}).out)["result"];
  for (const auto& [name, value] : render::flatten(verify_json)) {
    if (value.is_array()) continue;
    const auto line = name + ": " + (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
    EXPECT_NE(verify_text.out.find(line), std::string::npos) << line << verify_text.out;
  }
  // Piped, no progress line; idle, no operation in progress.
  EXPECT_EQ(verify_text.err.find('\r'), std::string::npos) << verify_text.err;
  EXPECT_EQ(nlohmann::json::parse(ctl({"--json", "status"}).out)["result"]["operations"], nlohmann::json::array());
  // status opens with its health summary alone; --all prints every figure.
  const auto brief = ctl({"status"});
  EXPECT_EQ(brief.out.rfind("health: ok\n", 0), 0u) << brief.out;
  EXPECT_NE(brief.out.find("\nholds_active: "), std::string::npos) << brief.out;
  EXPECT_NE(brief.out.find("(cdr-retentionctl status --all: every figure)"), std::string::npos) << brief.out;
  EXPECT_EQ(brief.out.find("version:"), std::string::npos) << brief.out;
  EXPECT_LT(std::count(brief.out.begin(), brief.out.end(), '\n'), 16) << brief.out;
  EXPECT_NE(ctl({"status", "--all"}).out.find("\nversion: "), std::string::npos);
  const auto yaml = ctl({"--format=yaml", "hold", "list"});
  EXPECT_EQ(yaml.out.rfind("---\nid: 1\nok: true\nresult:\n  holds:\n    - created_at: \"", 0), 0u) << yaml.out;
  // A streamed reply is a YAML stream: one document per item, then the reply.
  const auto stream = ctl({"--format=yaml", "audit", "export"});
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  EXPECT_EQ(stream.out.rfind("---\n", 0), 0u) << stream.out;
  std::size_t documents = 0;
  for (auto at = stream.out.find("---\n"); at != std::string::npos; at = stream.out.find("---\n", at + 1)) ++documents;
  EXPECT_GE(documents, 3u) << "the hold's audit entries and the reply: " << stream.out;
  EXPECT_EQ(stream.out.find("{\""), std::string::npos) << "no JSON line among the documents: " << stream.out;
  EXPECT_NE(yaml.out.find("      reason: \"court order  7\"\n"), std::string::npos) << yaml.out;
  EXPECT_EQ(ctl({"--format", "xml", "hold", "list"}).exit_code, 2);
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(daemon_cli, sigterm_and_sigint_stop_cleanly) {
  for (int sig : {SIGTERM, SIGINT}) {
    temp_dir dir;
    daemon_process d(write_test_config(dir), {}, dir / "log");
    ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
    struct stat st {};
    ASSERT_EQ(stat((dir / "a.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u) << "the admin socket is created 0660";
    EXPECT_EQ(d.stop(sig), 0) << d.log();
    EXPECT_FALSE(std::filesystem::exists(dir / "a.sock")) << "the socket file is removed at exit";
    EXPECT_NE(d.log().find("stopped"), std::string::npos);
  }
}

// SIGHUP re-reads the file: reloadable keys apply, others are reported as
// needing a restart, and an invalid file is refused with the old one kept.
TEST(daemon_cli, sighup_reloads_what_it_can_and_refuses_an_invalid_file) {
  temp_dir dir;
  const auto cfg = write_test_config(dir, "[sweep]\ninterval = \"1h\"\n");
  daemon_process d(cfg, {"--set", "log.level=\"info\""}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  const auto wait_log = [&](const std::string& text) {
    for (int i = 0; i < 100 && d.log().find(text) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return d.log().find(text) != std::string::npos;
  };
  auto text = read_file(cfg);
  text.replace(text.find("interval = \"1h\""), 15, "interval = \"2h\"\njitter = \"1m\"");
  text.replace(text.find("[storage]\n"), 10, "[storage]\nblock_cache_mb = 32\n");
  write_file(cfg, text);
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_log("configuration reloaded")) << d.log();
  auto st = admin_call(dir / "a.sock", "status")["result"];
  EXPECT_EQ(st["retention"]["sweep_interval"], "2h");
  EXPECT_EQ(st["config"]["restart_needed_for"], nlohmann::json::array({"storage.block_cache_mb"}));
  const auto shown = admin_call(dir / "a.sock", "config")["result"];
  EXPECT_EQ(shown["sweep"]["interval"], "2h") << "config shows what is in effect";
  EXPECT_EQ(shown["storage"]["block_cache_mb"], 64) << "not reloadable: still the start-up value";

  write_file(cfg, text + "[nonsense\n");
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_log("configuration reload refused")) << d.log();
  st = admin_call(dir / "a.sock", "status")["result"];
  EXPECT_EQ(st["retention"]["sweep_interval"], "2h") << "the running configuration stays";
  const auto metrics = http_get(st["metrics"]["listen"].get<std::string>(), "/metrics");
  EXPECT_NE(metrics.find("cdr_retention_config_reloads_total{result=\"applied\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("cdr_retention_config_reloads_total{result=\"refused\"} 1"), std::string::npos);
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(daemon_cli, a_second_daemon_on_the_same_store_and_socket_is_refused) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  daemon_process first(cfg, {}, dir / "log1");
  ASSERT_TRUE(first.wait_ready(dir / "a.sock")) << first.log();
  daemon_process second(cfg, {}, dir / "log2");
  EXPECT_EQ(second.wait_exit(std::chrono::seconds(30)), 1) << second.log();
  // Refused by the store's lock (or the socket, whichever it reaches first).
  EXPECT_NE(second.log().find("in use by"), std::string::npos) << second.log();
  EXPECT_TRUE(admin_call(dir / "a.sock", "status")["ok"]) << "the first daemon keeps serving";
}

// Master key rotation: every data key re-wrapped, nothing re-encrypted;
// refused while a daemon holds the store.
TEST(daemon_cli, rewrap_master_key_rotates_the_master_key) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  write_file(dir / "new.key", "a-new-master-key-with-at-least-32-bytes-0123");
  {
    daemon_process d(cfg, {}, dir / "log");
    ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
    // An erasure and a hold: the ledger's and the audit trail's chains must
    // survive the rotation.
    ASSERT_TRUE(admin_call(dir / "a.sock", "subject erase",
                           {{"identifier", "+14155550111"}, {"reason", "art. 17"}, {"reference", "T-1"}})
                    .value("ok", false));
    ASSERT_TRUE(admin_call(dir / "a.sock", "hold add", {{"customer", "acme"}, {"reason", "r"}, {"reference", "R-1"}})
                    .value("ok", false));
    const auto busy = run_command({CDR_RETENTIOND_PATH, "--config", cfg, "--rewrap-master-key", dir / "new.key"});
    EXPECT_EQ(busy.exit_code, 1);
    EXPECT_NE((busy.out + busy.err).find("in use by another process"), std::string::npos) << busy.out << busy.err;
    EXPECT_EQ(d.stop(SIGTERM), 0);
  }
  const auto id = nlohmann::json::parse(read_file(dir / "keys/keystore.json"))["id"];
  auto r = run_command({CDR_RETENTIOND_PATH, "--config", cfg, "--rewrap-master-key", dir / "new.key"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("set storage.master_key_file"), std::string::npos) << r.out;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "keys/keystore.json"))["id"], id) << "the same key store";
  daemon_process old_key(cfg, {}, dir / "log-old");
  EXPECT_EQ(old_key.wait_exit(std::chrono::seconds(20)), 1);
  EXPECT_NE(old_key.log().find("master key does not open"), std::string::npos) << old_key.log();
  daemon_process new_key(cfg, {"--set", "storage.master_key_file=\"" + (dir / "new.key") + "\""}, dir / "log-new");
  ASSERT_TRUE(new_key.wait_ready(dir / "a.sock")) << new_key.log();
  const auto trail = admin_call(dir / "a.sock", "audit verify");
  EXPECT_TRUE(trail["result"]["ok"].get<bool>()) << "the audit chain survives the rotation: " << trail.dump();
  EXPECT_GE(trail["result"]["entries"].get<int>(), 2) << trail.dump();
  r = run_command({CDR_RETENTIOND_PATH, "--config", cfg, "--rewrap-master-key", dir / "missing.key"});
  EXPECT_EQ(r.exit_code, 1);
}

// A store of the pre-release format 1 (identifiers in plain text) is
// refused with instructions, and left as it is.
TEST(daemon_cli, a_format_1_store_is_refused_with_instructions) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  {
    daemon_process d(cfg, {}, dir / "log");
    ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
    EXPECT_EQ(d.stop(SIGTERM), 0);
  }
  // "format_version" in the system family, as format 1 wrote it.
  const auto put = run_command({"/usr/bin/ldb", "--db=" + (dir / "data"), "--column_family=system", "--key_hex",
                                "--value_hex", "put", "0x666F726D61745F76657273696F6E", "0x0000000000000001"});
  ASSERT_EQ(put.exit_code, 0) << put.out << put.err;
  daemon_process d(cfg, {}, dir / "log-v1");
  EXPECT_EQ(d.wait_exit(std::chrono::seconds(20)), 1);
  for (const auto* part : {"on-disk format 1", "plain text", "Move the directory aside", "docs/operations.md"}) {
    EXPECT_NE(d.log().find(part), std::string::npos) << part << "\n" << d.log();
  }
  const auto get = run_command({"/usr/bin/ldb", "--db=" + (dir / "data"), "--column_family=system", "--hex", "get",
                                "0x666F726D61745F76657273696F6E"});
  EXPECT_NE(get.out.find("0x0000000000000001"), std::string::npos) << "left as it was: " << get.out;
}

// A legal hold damaged on disk is never skipped: the daemon names it (log,
// status, metric), refuses sweeps and erasures, and goes on ingesting.
TEST(daemon_cli, an_unreadable_saved_hold_refuses_sweeps_and_is_named_everywhere) {
  temp_dir dir;
  const auto cfg = write_test_config(dir, "[demo]\nenabled = true\nevents_per_second = 100\n");
  {
    daemon_process d(cfg, {}, dir / "log");
    ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
    const auto h =
        admin_call(dir / "a.sock", "hold add", {{"customer", "acme"}, {"reason", "r"}, {"reference", "C-1"}});
    ASSERT_EQ(h["result"]["id"], 1) << h.dump();
    EXPECT_EQ(d.stop(SIGTERM), 0);
  }
  // "q" "hold/" + the hold id as 8 big-endian bytes, in the system family;
  // the value cut short as a torn write would leave it.
  const auto put = run_command({"/usr/bin/ldb", "--db=" + (dir / "data"), "--column_family=system", "--key_hex",
                                "--value_hex", "put", "0x71686F6C642F0000000000000001", "0x7B226964223A31"});
  ASSERT_EQ(put.exit_code, 0) << put.out << put.err;

  daemon_process d(cfg, {}, dir / "log2");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  EXPECT_NE(d.log().find("saved state hold/0000000000000001 (hold) does not decode"), std::string::npos) << d.log();
  const auto status = admin_call(dir / "a.sock", "status")["result"];
  const auto& saved = status["retention"]["saved_state"];
  EXPECT_EQ(saved["ok"], false) << status.dump();
  ASSERT_EQ(saved["unreadable"].size(), 1u);
  EXPECT_EQ(saved["unreadable"][0]["key"], "hold/0000000000000001");
  EXPECT_EQ(saved["unreadable"][0]["kind"], "hold");
  const auto body = http_get(status["metrics"]["listen"], "/metrics");
  EXPECT_NE(body.find("cdr_retention_saved_state_unreadable{kind=\"hold\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find("cdr_retention_saved_state_unreadable{kind=\"journal\"} 0"), std::string::npos);

  const auto sweep = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "sweep"});
  EXPECT_EQ(sweep.exit_code, 1);
  EXPECT_NE(sweep.err.find("unavailable"), std::string::npos) << sweep.err;
  EXPECT_NE(sweep.err.find("hold/0000000000000001"), std::string::npos) << sweep.err;
  EXPECT_EQ(admin_call(dir / "a.sock", "subject erase",
                       {{"identifier", "+14155550100"}, {"reason", "art. 17"}, {"reference", "T-1"}})["error"]["code"],
            "unavailable");
  EXPECT_EQ(admin_call(dir / "a.sock", "hold list")["result"]["unreadable"], 1);
  // Ingest goes on.
  const auto stored = [&] {
    const auto events = admin_call(dir / "a.sock", "status")["result"]["kafka"]["consumer"]["events"];
    return events.is_object() ? events.value("stored", 0) : 0;
  };
  const auto before = stored();
  for (int i = 0; i < 300 && stored() <= before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(stored(), before) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

// Finding 2 of "Hardening": `checkpoint --to X` with X.tmp linked to the
// data directory wiped the live store, and the restart silently began an
// empty one.
TEST(daemon_cli, checkpoints_go_only_under_checkpoint_dir_and_follow_no_link) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  auto d = std::make_unique<daemon_process>(cfg, std::vector<std::string>{}, dir / "log");
  ASSERT_TRUE(d->wait_ready(dir / "a.sock")) << d->log();
  ASSERT_EQ(admin_call(dir / "a.sock", "hold add", {{"customer", "acme"}, {"reason", "r"}, {"reference", "C-1"}})["ok"],
            true);
  std::filesystem::create_directories(dir / "checkpoints");
  std::filesystem::create_directory_symlink(dir / "data", dir / "checkpoints/X.tmp");
  std::filesystem::create_directory_symlink(dir / "data", dir / "checkpoints/Y");
  const auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock"});
    return run_command(args);
  };
  // Arguments the daemon refuses are usage errors (exit 2), as the CLI's own.
  auto r = ctl({"checkpoint", "--to", "X"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("X.tmp exists already"), std::string::npos) << r.err;
  r = ctl({"checkpoint", "--to", "Y"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("exists already"), std::string::npos) << r.err;
  for (const auto& bad : {dir / "elsewhere", std::string("../data"), std::string(".hidden"), std::string("a/b")}) {
    r = ctl({"checkpoint", "--to", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("invalid_argument"), std::string::npos) << bad << ": " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "elsewhere"));
  EXPECT_TRUE(std::filesystem::exists(dir / "data/CURRENT")) << "the live store is untouched";
  EXPECT_EQ(admin_call(dir / "a.sock", "hold list")["result"]["holds"].size(), 1u);
  r = ctl({"checkpoint", "--to", "nightly-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "checkpoints/nightly-1/CURRENT"));
  EXPECT_TRUE(std::filesystem::exists(dir / "checkpoints/nightly-1/audit.jsonl"));
  EXPECT_EQ(d->stop(SIGTERM), 0);
  d.reset();

  // The store gone (wiped, moved): the key store remembers one existed.
  std::filesystem::rename(dir / "data", dir / "data-moved");
  daemon_process refused(cfg, {}, dir / "log2");
  EXPECT_EQ(refused.wait_exit(std::chrono::seconds(20)), 1);
  for (const auto* part : {"is missing or empty", "--new-store", "restore it from a checkpoint"}) {
    EXPECT_NE(refused.log().find(part), std::string::npos) << part << "\n" << refused.log();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "data/CURRENT")) << "nothing was created";
  daemon_process fresh(cfg, {"--new-store"}, dir / "log3");
  ASSERT_TRUE(fresh.wait_ready(dir / "a.sock")) << fresh.log();
  EXPECT_TRUE(admin_call(dir / "a.sock", "hold list")["result"]["holds"].empty()) << "deliberately empty";
  EXPECT_EQ(fresh.stop(SIGTERM), 0);
}

// Findings 4 and 8 of "Hardening": a 5-digit retention period, an
// overflowing future_skew and properties that void the delivery guarantees
// all passed --check-config.
TEST(daemon_cli, check_config_refuses_unbounded_periods_durations_and_protected_properties) {
  temp_dir dir;
  for (const auto& [toml, key, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"[retention.metadata]\nperiod = \"99999 years\"\n", "retention.metadata.period", "at most 1000 years"},
           {"[events]\nfuture_skew = \"106751991d\"\n", "events.future_skew", "between 1s and 366d"},
           {"[kafka.properties]\nacks = \"0\"\n", "kafka.properties.acks", "is protected"},
           {"[kafka.properties]\n\"enable.idempotence\" = false\n", "kafka.properties.enable.idempotence",
            "is protected"},
           {"[kafka.properties]\n\"auto.offset.reset\" = \"latest\"\n", "kafka.properties.auto.offset.reset",
            "not skipped silently"},
           {"[kafka.properties]\n\"enable.auto.commit\" = true\n", "kafka.properties.enable.auto.commit",
            "is protected"},
           {"[kafka.properties]\n\"enable.auto.offset.store\" = true\n", "kafka.properties.enable.auto.offset.store",
            "is protected"},
           {"[kafka.properties]\n\"isolation.level\" = \"read_uncommitted\"\n", "kafka.properties.isolation.level",
            "is protected"},
       }) {
    write_file(dir / "c.toml", toml);
    const auto r = run_command({CDR_RETENTIOND_PATH, "--check-config", "--config", dir / "c.toml"});
    EXPECT_EQ(r.exit_code, 2) << toml;
    EXPECT_NE(r.err.find("key " + key), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
}

// Finding 7 of "Hardening", through the daemon: a partial last line of the
// trail (a short write) is cut off at the next start, the repair is an
// entry of its own, and `audit verify` passes.
TEST(daemon_cli, a_partial_audit_line_is_repaired_at_start_and_verify_passes) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  {
    daemon_process d(cfg, {}, dir / "log");
    ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
    admin_call(dir / "a.sock", "hold add", {{"customer", "acme"}, {"reason", "r"}, {"reference", "C-1"}});
    EXPECT_EQ(d.stop(SIGTERM), 0);
  }
  std::ofstream(dir / "data/audit.jsonl", std::ios::app) << R"({"entry":{"action":"hold_add","ho)";
  daemon_process d(cfg, {}, dir / "log2");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  admin_call(dir / "a.sock", "hold add", {{"customer", "beta"}, {"reason", "r"}, {"reference", "C-2"}});
  const auto r = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "audit", "verify"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("entries: 3"), std::string::npos) << r.out;
  EXPECT_NE(read_file(dir / "data/audit.jsonl").find("repair_audit_tail"), std::string::npos);
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

// F6 of "Fleet trust": a daemon whose erasure ledger was deleted does not
// start (exit 2, which systemd does not restart), naming the file.
TEST(daemon_cli, a_deleted_erasure_ledger_refuses_the_start) {
  temp_dir dir;
  const auto cfg = write_test_config(dir);
  {
    daemon_process d(cfg, {}, dir / "log");
    ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
    const auto r = admin_call(dir / "a.sock", "subject erase",
                              {{"identifier", "+14155550100"}, {"reason", "art. 17"}, {"reference", "T-1"}});
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    EXPECT_EQ(d.stop(SIGTERM), 0);
  }
  std::filesystem::remove(dir / "keys/erasures.jsonl");
  daemon_process d(cfg, {}, dir / "log2");
  const auto code = d.wait_exit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << d.log();
  EXPECT_EQ(*code, 2) << d.log();
  EXPECT_NE(d.log().find("erasure ledger " + (dir / "keys/erasures.jsonl") + ": is missing"), std::string::npos)
      << d.log();
}

TEST(daemon_cli, fake_clock_is_simulated_and_moves_only_by_command) {
  temp_dir dir;
  daemon_process d(write_test_config(dir), {"--fake-clock=2025-01-31T23:30:00-02:00"}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  auto status = admin_call(dir / "a.sock", "status");
  EXPECT_EQ(status["result"]["clock"]["source"], "simulated");
  EXPECT_EQ(status["result"]["clock"]["now"], "2025-02-01T01:30:00Z");
  EXPECT_NE(d.log().find("\"level\":\"warning\",\"logger\":\"cdr-retentiond\",\"msg\":\"running on a SIMULATED clock"),
            std::string::npos)
      << d.log();

  const std::vector<std::pair<const char*, const char*>> steps{{"90s", "2025-02-01T01:31:30Z"},
                                                               {"45m", "2025-02-01T02:16:30Z"},
                                                               {"12h", "2025-02-01T14:16:30Z"},
                                                               {"17d", "2025-02-18T14:16:30Z"}};
  for (const auto& [by, expected] : steps) {
    const auto r = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "debug", "advance-clock", by});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("now: ") + expected), std::string::npos) << r.out;
  }
  status = admin_call(dir / "a.sock", "status");
  EXPECT_EQ(status["result"]["clock"]["now"], "2025-02-18T14:16:30Z");

  const auto bad = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "debug", "advance-clock", "1w"});
  EXPECT_EQ(bad.exit_code, 2) << "a usage error, nothing sent";
  EXPECT_NE(bad.err.find("must be a duration"), std::string::npos) << bad.err;
  EXPECT_EQ(admin_call(dir / "a.sock", "debug advance-clock", {{"duration", "1w"}})["error"]["code"],
            "invalid_argument")
      << "the daemon refuses it too";
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(daemon_cli, the_real_clock_refuses_advance_clock) {
  temp_dir dir;
  daemon_process d(write_test_config(dir), {}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  EXPECT_EQ(admin_call(dir / "a.sock", "status")["result"]["clock"]["source"], "real");
  const auto r = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "debug", "advance-clock", "17d"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unavailable"), std::string::npos) << r.err;
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(daemon_cli, tells_systemd_its_start_ready_watchdog_and_stopping) {
  temp_dir dir;
  const auto path = dir / "notify.sock";
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 200'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  daemon_process d(write_test_config(dir), {}, dir / "log", {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"});
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  std::string seen;
  const auto read_for = [&](std::chrono::milliseconds span) {
    const auto until = std::chrono::steady_clock::now() + span;
    char buf[512];
    while (std::chrono::steady_clock::now() < until) {
      const auto n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) seen.append(buf, static_cast<std::size_t>(n)).push_back('|');
    }
  };
  read_for(std::chrono::milliseconds(1000));
  EXPECT_NE(seen.find("READY=1"), std::string::npos) << seen;
  // The start extends systemd's start timeout, saying what it does, before
  // it is ready (and never after).
  const auto extended = seen.find("EXTEND_TIMEOUT_USEC=30000000\nSTATUS=starting: opening the key store|");
  EXPECT_LT(extended, seen.find("READY=1")) << seen;
  EXPECT_EQ(seen.find("EXTEND_TIMEOUT_USEC", seen.find("READY=1")), std::string::npos) << seen;
  // Pings at half the interval (100 ms): several within a second.
  std::size_t pings = 0;
  for (auto p = seen.find("WATCHDOG=1"); p != std::string::npos; p = seen.find("WATCHDOG=1", p + 1)) ++pings;
  EXPECT_GE(pings, 4u) << seen;
  kill(d.pid(), SIGTERM);
  read_for(std::chrono::milliseconds(500));
  EXPECT_NE(seen.find("STOPPING=1"), std::string::npos) << seen;
  EXPECT_EQ(d.wait_exit(std::chrono::seconds(30)), 0) << "one SIGTERM stops it cleanly";
  close(fd);
}

TEST(ctl, usage_errors_and_unreachable_daemon_have_their_exit_codes) {
  temp_dir dir;
  auto r = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "none.sock", "status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot reach the daemon"), std::string::npos) << r.err;
  r = run_command({CDR_RETENTIONCTL_PATH, "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_command({CDR_RETENTIONCTL_PATH, "debug", "advance-clock"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs DURATION"), std::string::npos) << r.err;
  r = run_command({CDR_RETENTIONCTL_PATH, "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.find("debug advance-clock"), std::string::npos) << "test-only commands are left out: " << r.out;
  EXPECT_NE(r.out.find("cdr-retentionctl --help-debug"), std::string::npos) << r.out;
  r = run_command({CDR_RETENTIONCTL_PATH, "--help-debug"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("debug advance-clock DURATION"), std::string::npos) << r.out;
}

// Finding 1 of "Hardening": a typo must never run a command. Every case
// runs against a socket nobody listens on: exit 2 (usage) rather than 3
// (unreachable) shows the CLI did not even try to send.
TEST(ctl, a_typo_is_a_usage_error_and_nothing_is_sent) {
  temp_dir dir;
  const auto none = dir / "none.sock";
  const auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {CDR_RETENTIONCTL_PATH, "--socket", none});
    return run_command(args);
  };
  for (const auto& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"sweep", "--dryrun"}, "unknown option --dryrun for sweep"},
           {{"sweep", "--dry-run", "--as-of"}, "--as-of needs a value (RFC3339)"},
           {{"sweep", "--as-of", "yesterday"}, "--as-of must be an RFC 3339 time"},
           {{"sweep", "now"}, "unexpected argument \"now\" for sweep"},
           {{"sweep", "--dry-run=yes"}, "--dry-run takes no value"},
           {{"audit", "export", "--snce", "2025-01-01T00:00:00Z"}, "unknown option --snce for audit export"},
           {{"hold", "add", "--customer", "acme", "--reason", "r"}, "--reference is required"},
           {{"hold", "add", "--kind", "sms", "--reason", "r", "--reference", "x"}, "--kind must be cdr or usage"},
           {{"hold", "release"}, "hold release needs ID"},
           {{"hold", "release", "1", "--reference", "CASE-1"}, "--reason is required"},
           {{"subject", "erase", "--identifier", "+14155550100", "--reason", "art. 17"}, "--reference is required"},
           {{"subject", "export", "--identifier", "not-a-number"},
            "--identifier is neither a phone number, an e-mail address nor an IP address (--raw takes it as written)"},
           {{"hold", "add", "--subject", "acme", "--reason", "r", "--reference", "x"}, "--subject is neither"},
           {{"hold", "list", "--identifier", "12"}, "--identifier is neither"},
           {{"hold"}, "hold needs a subcommand:\n  cdr-retentionctl hold add"},
           {{"subject"}, "cdr-retentionctl subject erase"},
           {{"hold", "release", "1", "2"}, "unexpected argument \"2\""},
           {{"hold", "release", "one"}, "must be a whole number"},
           {{"subject", "erase", "--identifier"}, "--identifier needs a value"},
           {{"subject", "erase", "--identifer", "+1415"}, "unknown option --identifer"},
           {{"record", "get", "--id", "a", "--id", "b"}, "--id given twice"},
           {{"status", "--verbose"}, "unknown option --verbose for status"},
           // F9 of "Fleet trust": text that would spoof tables, logs and the audit trail.
           {{"hold", "add", "--customer", "acme\x1b[2J", "--reason", "r", "--reference", "x"},
            "--customer must be printable"},
           {{"hold", "add", "--customer", "acme", "--reason", "line\nforged: entry", "--reference", "x"},
            "--reason must be printable"},
           {{"hold", "add", "--customer", "acme", "--reason", "r", "--reference", "x\u202eevil"},
            "--reference must be printable"},
           {{"subject", "erase", "--identifier", "+1415\t555", "--reason", "r"}, "--identifier must be printable"},
       }) {
    const auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args.front() << ": " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("cannot reach"), std::string::npos) << "nothing is sent: " << r.err;
  }
  // --raw takes any printable identifier as written: this one is sent (and
  // finds no daemon).
  EXPECT_EQ(ctl({"subject", "export", "--identifier", "not-a-number", "--raw"}).exit_code, 3);
  for (const auto& fine : {"+1 (415) 555-0100", "091 123 4567", "jane@acme.example", "203.0.113.7", "2001:db8::7"}) {
    EXPECT_EQ(ctl({"subject", "status", "--identifier", fine}).exit_code, 3) << fine << " is an identifier";
  }
  // COMMAND --help prints that command's usage with its real flags, and
  // never contacts the daemon.
  auto r = ctl({"sweep", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cdr-retentionctl [--socket PATH] [--format text|json|yaml] [--timeout SECONDS] sweep "
                       "[--dry-run] [--as-of RFC3339]"),
            std::string::npos)
      << r.out;
  r = ctl({"record", "get", "--help"});
  EXPECT_NE(r.out.find("--id ID"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("{\"id\""), std::string::npos) << "flags, not protocol JSON: " << r.out;
  r = ctl({"hold", "add", "--reason", "r", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--from-month YYYY-MM"), std::string::npos) << r.out;
  r = run_command({CDR_RETENTIONCTL_PATH, "--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("cdr-retentionctl 0.", 0), 0u) << r.out;
}

// The daemon refuses an argument a command does not take, naming it: an
// older or foreign client cannot trigger a different action by misspelling.
TEST(daemon_cli, the_daemon_refuses_unknown_arguments_for_every_command) {
  temp_dir dir;
  daemon_process d(write_test_config(dir), {"--fake-clock=2025-03-01T00:00:00Z"}, dir / "log");
  ASSERT_TRUE(d.wait_ready(dir / "a.sock")) << d.log();
  for (const auto& c : admin::commands()) {
    const auto r = admin_call(dir / "a.sock", std::string(c.name), {{"dryrun", true}});
    EXPECT_EQ(r.value(nlohmann::json::json_pointer("/error/code"), ""), "invalid_argument")
        << c.name << ": " << r.dump();
    EXPECT_NE(r.value(nlohmann::json::json_pointer("/error/message"), "").find("\"dryrun\""), std::string::npos)
        << r.dump();
  }
  EXPECT_EQ(admin_call(dir / "a.sock", "sweep", {{"dry_run", "yes"}})["error"]["code"], "invalid_argument");
  EXPECT_EQ(admin_call(dir / "a.sock", "audit export", {{"snce", "2025-01-01T00:00:00Z"}})["error"]["code"],
            "invalid_argument");
  // An identifier that is no phone number, e-mail or IP address is refused
  // by the daemon too (a client other than the CLI), unless "raw".
  const auto not_one = admin_call(dir / "a.sock", "subject erase",
                                  {{"identifier", "not-a-number"}, {"reason", "r"}, {"reference", "x"}});
  EXPECT_EQ(not_one["error"]["code"], "invalid_argument") << not_one.dump();
  EXPECT_NE(not_one["error"]["message"].get<std::string>().find("neither a phone number"), std::string::npos);
  EXPECT_EQ(admin_call(dir / "a.sock", "subject status", {{"identifier", "not-a-number"}, {"raw", true}})["ok"], true);
  // Errors the daemon finds in arguments reach the CLI in its own words
  // (flags, not protocol fields) and as usage errors.
  const auto backwards = run_command({CDR_RETENTIONCTL_PATH, "--socket", dir / "a.sock", "hold", "add", "--from-month",
                                      "2025-05", "--to-month", "2025-01", "--reason", "r", "--reference", "x"});
  EXPECT_EQ(backwards.exit_code, 2) << backwards.err;
  EXPECT_NE(backwards.err.find("--from-month"), std::string::npos) << backwards.err;
  EXPECT_EQ(backwards.err.find("from_month"), std::string::npos) << backwards.err;
  // No sweep ran: the only one is the start-up sweep.
  const auto body = http_get(admin_call(dir / "a.sock", "status")["result"]["metrics"]["listen"], "/metrics");
  EXPECT_NE(body.find("cdr_retention_sweeps_total{result=\"ok\",trigger=\"admin\"} 0\n"), std::string::npos) << body;
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace cdr::test
