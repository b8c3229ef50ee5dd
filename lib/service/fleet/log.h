// What the fleet needs of Kafka, and nothing more: partition 0 of the
// control and replies topics, read in order from an offset and appended to.
// control_log, membership and queries use only this, so each is tested in
// process against an in-memory log (tests/support/memory_log.h);
// kafka_log() is the real one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cdr/core/config.h"

namespace cdr::service {

struct log_record {
  std::int64_t offset = 0;
  std::string key;
  std::string value;              // empty: a tombstone
  std::chrono::milliseconds age;  // since it was written (0 when unknown)
};

class log_cursor {
 public:
  virtual ~log_cursor() = default;
  // The next record, or nullopt after `timeout` (a read error is logged
  // and reads on).
  virtual std::optional<log_record> next(std::chrono::milliseconds timeout) = 0;
};

class fleet_log {
 public:
  virtual ~fleet_log() = default;
  // Reads `topic` from `offset` on.
  virtual std::unique_ptr<log_cursor> read(const std::string& topic, std::int64_t offset) = 0;
  // The topic's first and next offsets now; nullopt when they cannot be
  // read within `timeout`.
  virtual std::optional<std::pair<std::int64_t, std::int64_t>> bounds(const std::string& topic,
                                                                      std::chrono::milliseconds timeout) = 0;
  // Appends and waits until it is stored: nullopt, or why it is not (it
  // may still be stored after a timeout).
  virtual std::optional<std::string> append(const std::string& topic, std::string_view key, std::string_view value,
                                            std::chrono::milliseconds timeout) = 0;
  // Appends without waiting (heartbeats: a lost one is followed by the
  // next); a failure is logged.
  virtual void post(const std::string& topic, std::string_view key, std::string_view value) = 0;
};

// The fleet's topics on the Kafka cluster at `bootstrap`, with the
// configured client id and properties.
std::unique_ptr<fleet_log> kafka_log(const daemon_config& config, const std::string& bootstrap);

}  // namespace cdr::service
