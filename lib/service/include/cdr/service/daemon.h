// The wiring layer: builds the adapters from the configuration, starts them
// in order, runs the main loop and stops them in reverse order.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cdr/core/config.h"
#include "cdr/core/time.h"

namespace cdr::service {

struct daemon_options {
  std::string config_path;
  // The --set overrides, applied again when SIGHUP re-reads the file.
  std::vector<std::string> overrides;
  // Set by --fake-clock: the daemon runs on a simulated clock from here.
  std::optional<instant> fake_clock;
  // Set by --new-keystore: start with a new, empty key store although the
  // store was written under another (lost) one; its identifiers stay
  // unreadable.
  bool new_keystore = false;
  // Set by --new-store: start with a new, empty store although the key
  // store shows that one existed (it was lost for good).
  bool new_store = false;
};

// --rewrap-master-key: wraps every data key of the configured key store
// under the master key in new_master_file (the data is not re-encrypted).
// Run while the daemon is stopped; then point storage.master_key_file at the
// new file. Throws std::runtime_error.
// What --check-config checks beyond the file, as the start would: the key
// files exist and hold a usable key and admin.socket_group exists (the
// start fails otherwise: `fatal`); the operator and viewer groups exist (a
// missing one gives nobody its rights: `warnings`).
// The start is refused until an operator acts (a fleet key the other
// members do not share, an erasure ledger that does not verify): the
// daemon exits 2, which systemd's RestartPreventExitStatus does not restart.
class start_refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every
// thread it starts) until daemon::run() has its handler: a stop signal sent
// at any point of the start is kept pending and served, never the default
// action. Call it first thing in main().
void hold_stop_signals();

struct environment_check {
  std::vector<std::string> fatal;
  std::vector<std::string> warnings;
};
environment_check check_environment(const daemon_config& config);

// What the configuration file's checks cannot see: events.default_region
// names a region libphonenumber does not know, kafka.properties hold a key or
// value librdkafka refuses. Each is a configuration error: --check-config
// reports it and the daemon refuses to start (exit 2).
std::vector<std::string> config_problems(const daemon_config& config);

void rewrap_master_key(const daemon_config& config, const std::string& new_master_file);

std::string_view version();
std::string_view revision();

class daemon {
 public:
  daemon(daemon_config config, daemon_options options);
  ~daemon();
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  // Starts every component, serves until SIGTERM or SIGINT, then stops them.
  // Returns the process exit code. Throws std::runtime_error when a
  // component cannot start.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace cdr::service
