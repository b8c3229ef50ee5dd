// cdr-retentiond: parses arguments, loads the configuration, runs the daemon.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cdr/core/config.h"
#include "cdr/core/render.h"
#include "cdr/logging/logging.h"
#include "cdr/service/daemon.h"
#include "cdr/service/secrets.h"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_config = 2;

constexpr const char* usage = R"(Usage: cdr-retentiond [OPTIONS]

Retention and deletion daemon for communication detail records.

Options:
  --config PATH          configuration file (default /etc/cdr-retention/cdr-retention.toml)
  --set KEY=VALUE        override one configuration key, e.g. --set storage.path=/srv/cdr
                         (repeatable; applied after the file, in order)
  --check-config         validate the configuration, print the effective one, and exit
  --new-keystore         start with a new, empty key store although the store was written
                         under another one (lost for good): its identifiers stay unreadable
  --new-store            start with a new, empty store although the key store shows that one
                         existed (lost for good): holds, records and the audit trail start over
  --rewrap-master-key FILE
                         wrap every data key of storage.keystore_path under the master key
                         in FILE (master key rotation), then exit; the daemon must be stopped
  --version              print the version and exit
  --help                 print this help and exit (--help-debug: also the test-only options)
  --manpage              print the man page (roff) and exit

Exit codes: 0 clean stop, 1 runtime failure, 2 invalid configuration or arguments.
)";

// Test-only options: never in production help (--help-debug shows them).
constexpr const char* debug_usage = R"(
Test-only options:
  --fake-clock=RFC3339   run on a simulated clock starting at this instant; the admin
                         commands `debug advance-clock` and `debug jump-clock` move it
                         (the daemon refuses them on the real clock)
)";

// The man page (`cdr-retentiond --manpage`; installed as
// share/man/man8/cdr-retentiond.8): the help's options, verbatim.
std::string manpage() {
  const std::string text(usage);
  const auto options = text.find("Options:\n");
  const auto codes = text.find("Exit codes:");
  std::string out = ".TH CDR-RETENTIOND 8 \"\" \"cdr-retention " + cdr::render::roff(cdr::service::version()) +
                    "\" \"System Administration\"\n";
  out += ".SH NAME\ncdr-retentiond \\- retention and deletion daemon for communication detail records\n";
  out += ".SH SYNOPSIS\n.B cdr-retentiond\n[OPTIONS]\n.SH DESCRIPTION\n" +
         cdr::render::roff(
             "Consumes communication detail records and usage events from Kafka, stores them in RocksDB by month "
             "of communication, and strips, drops, holds, erases and proves deleted what the privacy notice says, "
             "when it says. It is run by systemd (Type=notify) or a container runtime and administered with "
             "cdr-retentionctl(1) over its admin socket; /metrics, /healthz and /readyz are served on "
             "metrics.listen.") +
         "\n.SH OPTIONS\n.nf\n" + cdr::render::roff(text.substr(options + 9, codes - options - 9)) + "\n.fi\n";
  out += ".SH EXIT STATUS\n" + cdr::render::roff(text.substr(codes + 12)) + ".SH FILES\n" +
         cdr::render::roff("/etc/cdr-retention/cdr-retention.toml (the configuration; docs/configuration.md)") +
         "\n.SH SEE ALSO\ncdr\\-retentionctl(1); docs/operations.md in the documentation\n";
  return out;
}

struct arguments {
  std::string config = "/etc/cdr-retention/cdr-retention.toml";
  std::vector<std::string> sets;
  bool check = false;
  std::optional<std::string> fake_clock;
  bool new_keystore = false;
  bool new_store = false;
  std::optional<std::string> rewrap;
};

// Accepts both `--name value` and `--name=value`.
bool take_value(int argc, char** argv, int& i, std::string_view name, std::string* out) {
  const std::string_view arg = argv[i];
  if (arg == name) {
    if (i + 1 >= argc) throw std::invalid_argument(std::string(name) + " needs a value");
    *out = argv[++i];
    return true;
  }
  if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
    *out = std::string(arg.substr(name.size() + 1));
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  cdr::service::hold_stop_signals();
  arguments args;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view a = argv[i];
      std::string value;
      if (a == "--help" || a == "-h" || a == "--help-debug") {
        std::fputs(usage, stdout);
        if (a == "--help-debug") std::fputs(debug_usage, stdout);
        return exit_ok;
      }
      if (a == "--manpage") {
        std::fputs(manpage().c_str(), stdout);
        return exit_ok;
      }
      if (a == "--version") {
        std::printf("cdr-retentiond %s (%s)\n", cdr::service::version().data(), cdr::service::revision().data());
        return exit_ok;
      }
      if (a == "--check-config") {
        args.check = true;
      } else if (a == "--new-keystore") {
        args.new_keystore = true;
      } else if (a == "--new-store") {
        args.new_store = true;
      } else if (take_value(argc, argv, i, "--rewrap-master-key", &value)) {
        args.rewrap = value;
      } else if (take_value(argc, argv, i, "--config", &value)) {
        args.config = value;
      } else if (take_value(argc, argv, i, "--set", &value)) {
        args.sets.push_back(value);
      } else if (take_value(argc, argv, i, "--fake-clock", &value)) {
        args.fake_clock = value;
      } else {
        throw std::invalid_argument("unknown argument " + std::string(a));
      }
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "cdr-retentiond: %s\n%s", e.what(), usage);
    return exit_config;
  }

  std::ifstream file(args.config, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "cdr-retentiond: cannot read config file %s: %s\n", args.config.c_str(), std::strerror(errno));
    return exit_config;
  }
  std::stringstream text;
  text << file.rdbuf();
  auto parsed = cdr::parse_config(text.str(), args.config, args.sets, &cdr::service::system_secrets());
  if (auto* err = std::get_if<cdr::config_error>(&parsed)) {
    std::fprintf(stderr, "cdr-retentiond: invalid configuration: %s\n", err->to_string().c_str());
    return exit_config;
  }
  auto& config = std::get<cdr::daemon_config>(parsed);

  cdr::service::daemon_options options{args.config, args.sets, std::nullopt, args.new_keystore, args.new_store};
  if (args.fake_clock) {
    options.fake_clock = cdr::parse_rfc3339(*args.fake_clock);
    if (!options.fake_clock) {
      std::fprintf(stderr, "cdr-retentiond: --fake-clock: \"%s\" is not an RFC 3339 date-time with offset\n",
                   args.fake_clock->c_str());
      return exit_config;
    }
  }
  if (args.check) {
    // The file is valid; what it points at must be usable too.
    const auto env = cdr::service::check_environment(config);
    for (const auto& w : env.warnings) std::fprintf(stderr, "cdr-retentiond: warning: %s\n", w.c_str());
    for (const auto& p : env.fatal) std::fprintf(stderr, "cdr-retentiond: %s\n", p.c_str());
    if (!env.fatal.empty()) return exit_config;
    std::printf("%s: configuration is valid\n%s\n", args.config.c_str(), config.effective_json.c_str());
    return exit_ok;
  }

  if (const auto problems = cdr::service::config_problems(config); !problems.empty()) {
    for (const auto& why : problems) std::fprintf(stderr, "cdr-retentiond: %s\n", why.c_str());
    return exit_config;
  }
  cdr::logging::setup(config.log);
  if (args.rewrap) {
    try {
      cdr::service::rewrap_master_key(config, *args.rewrap);
      std::printf(
          "%s: every data key is now wrapped under the master key in %s; set storage.master_key_file to it "
          "and start the daemon\n",
          config.storage.keystore_path.c_str(), args.rewrap->c_str());
      return exit_ok;
    } catch (const std::exception& e) {
      spdlog::critical("cannot rewrap the key store: {}", e.what());
      return exit_failure;
    }
  }
  try {
    cdr::service::daemon d(std::move(config), std::move(options));
    return d.run();
  } catch (const cdr::service::start_refused& e) {
    spdlog::critical("start refused: {}", e.what());
    return exit_config;
  } catch (const std::exception& e) {
    spdlog::critical("cannot run: {}", e.what());
    return exit_failure;
  }
}
