// Daemon configuration: one TOML file, overridable with `--set key=value`.
//
// The built-in defaults (default_config_toml) are also the schema: a key is
// known only if the defaults have it, and its value must have the default's
// TOML type. Free-form tables (kafka.properties) and the override list
// (retention.overrides) are checked by their own rules.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cdr/core/event.h"
#include "cdr/core/policy.h"
#include "cdr/core/result.h"
#include "cdr/core/time.h"

namespace cdr {

extern const std::string_view default_config_toml;

struct kafka_config {
  std::string brokers;  // "embedded" or a bootstrap list "host:port,..."
  std::string group_id;
  std::string client_id;
  std::string topic_cdr;
  std::string topic_usage;
  std::string topic_dead_letter;
  std::string topic_deletion_events;
  // The fleet (docs/operations.md, "The fleet"): actions every member
  // applies, and the members' answers to fleet-wide reads. Both empty: this
  // daemon acts alone.
  std::string topic_control;
  std::string topic_replies;
  // Where a draining member republishes its records for the others, who
  // consume it with the input topics (set exactly when topic_control is).
  std::string topic_handover;
  // Static group membership (group.instance.id); empty: dynamic. Also the
  // member's name in the fleet when set.
  std::string group_instance_id;
  // How long an admin command waits for its control message to be applied
  // here, and a sweep for the control topic to be applied to its end.
  microseconds control_timeout{};
  // The fleet key's file (empty: derived from the subject key) and the
  // further keys accepted while it is rotated (docs/operations.md, "The
  // fleet key").
  std::string fleet_key_file;
  std::vector<std::string> fleet_accept_key_files;
  int embedded_partitions = 0;
  std::uint32_t batch_max_records = 0;  // records and rejects per RocksDB batch
  microseconds batch_linger{};          // a partial batch is written after this
  microseconds shutdown_timeout{};      // SIGTERM: finish the batch, leave the group
  // Passed to librdkafka as they are (security.protocol, sasl.*, ssl.*, ...).
  std::map<std::string, std::string> properties;
  bool embedded() const { return brokers == "embedded"; }
  bool fleet() const { return !topic_control.empty(); }
};

enum class compression_kind : std::uint8_t { lz4, none };

struct storage_config {
  std::string path;
  std::string checkpoint_dir;  // checkpoints go under it (resolved: never empty)
  compression_kind compression = compression_kind::lz4;
  std::uint64_t block_cache_bytes = 0;
  std::string subject_key_file;  // HMAC-SHA-256 secret naming subjects in holds and the audit trail
  std::string keystore_path;     // the data keys identifiers are encrypted under
  std::string master_key_file;   // wraps every data key
  // Ingest makes its batches durable (syncs the WAL) in groups, at least
  // this often or after this many bytes, and commits their offsets to Kafka
  // only then.
  microseconds wal_sync_interval{};
  std::uint64_t wal_sync_bytes = 0;
  // Values one data key seals at most; then its partition continues under
  // the key's next generation (AES-GCM's random-nonce limit is 2^32).
  std::uint64_t max_seals_per_key = 0;
};

struct sweep_config {
  microseconds interval{};  // between scheduled sweeps
  microseconds jitter{};    // a random extra delay of up to this much
  // A wall-clock jump beyond the monotonic clock's advance larger than
  // this pauses destructive sweeps until confirmed.
  microseconds max_clock_jump{};
};

struct erasure_config {
  // An erased subject's keys are purged from the files on disk by a pass
  // that runs when the oldest unpurged erasure is this old (0: at once).
  microseconds purge_after{};
};

// Demo traffic for the embedded broker (kafka.brokers = "embedded").
struct demo_config {
  bool enabled = false;
  double events_per_second = 0;
  std::uint64_t seed = 0;
  double late_fraction = 0;
  double malformed_fraction = 0;
};

struct admin_config {
  std::string socket;
  std::string socket_group;    // group owning the socket file (empty: the daemon's)
  std::string operator_group;  // may change or reveal data
  std::string viewer_group;    // read-only status
  std::uint32_t max_connections = 0;
  std::uint32_t max_request_bytes = 0;
  microseconds idle_timeout{};
};

struct metrics_config {
  std::string host;
  std::uint16_t port = 0;
};

enum class log_format : std::uint8_t { automatic, text, json };

struct log_config {
  std::string level;  // trace, debug, info, warn, error, critical, off
  log_format format = log_format::automatic;
};

struct daemon_config {
  kafka_config kafka;
  storage_config storage;
  sweep_config sweep;
  erasure_config erasure;
  admin_config admin;
  metrics_config metrics;
  log_config log;
  event_rules events;
  retention_policy retention;
  demo_config demo;
  // The effective configuration as canonical JSON, secrets redacted.
  std::string effective_json;
};

struct config_error {
  std::string file;        // config file path, or the `--set ...` argument
  std::uint32_t line = 0;  // 0 when unknown
  std::string key;         // dotted key, empty for syntax errors
  std::string message;
  std::string to_string() const;  // "FILE:LINE: key K: MESSAGE"
};

// Where secret values written by reference come from: a kafka.properties
// value `${NAME}` is the environment variable NAME, and `@PATH` the contents
// of the file PATH (`${NAME}` in PATH expanded, one trailing newline
// dropped; `@@...` is a literal value starting with `@`). The daemon reads
// the real environment and files (cdr/service/files.h); tests pass their own.
class secret_reader {
 public:
  virtual ~secret_reader() = default;
  virtual std::optional<std::string> env(const std::string& name) const = 0;
  // The file's bytes, or why it cannot be read.
  virtual result<std::string> file(const std::string& path) const = 0;
};

// Resolves one value as above; `value` unchanged when it is no reference.
result<std::string> resolve_secret(const std::string& value, const secret_reader* secrets);

// Parses `text` (read from `file`), applies the `key=value` overrides in
// order, resolves references with `secrets` (without one, a reference is an
// error) and validates everything.
std::variant<daemon_config, config_error> parse_config(std::string_view text, std::string_view file,
                                                       const std::vector<std::string>& overrides,
                                                       const secret_reader* secrets = nullptr);

// True for librdkafka property names whose values must never be shown.
bool is_secret_property(std::string_view name);

// True for the dotted keys a SIGHUP applies to the running daemon (log
// level, sweep schedule, admin groups); every other change needs a restart
// (docs/configuration.md, "Reload").
bool is_reloadable_key(std::string_view key);

}  // namespace cdr
