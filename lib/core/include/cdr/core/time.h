// Instants, the injected clock, RFC 3339 and durations. No I/O, no real
// clock: the daemon's wiring layer picks the clock source.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cdr {

using microseconds = std::chrono::microseconds;
// A UTC instant with microsecond resolution (Unix time, leap seconds ignored).
using instant = std::chrono::sys_time<microseconds>;

// Source of "now". Implementations are thread safe.
class clock {
 public:
  virtual ~clock() = default;
  virtual instant now() const = 0;
  // True when time is simulated (tests, --fake-clock).
  virtual bool simulated() const = 0;
};

// A clock that only moves when told to. Used by tests and by the daemon's
// --fake-clock mode (moved by the admin command `debug advance-clock`).
class manual_clock final : public clock {
 public:
  explicit manual_clock(instant start) : micros_(start.time_since_epoch().count()) {}
  instant now() const override { return instant{microseconds{micros_.load()}}; }
  bool simulated() const override { return true; }
  void advance(microseconds by) { micros_.fetch_add(by.count()); }
  void set(instant to) { micros_.store(to.time_since_epoch().count()); }

 private:
  std::atomic<std::int64_t> micros_;
};

// Parses an RFC 3339 date-time with a mandatory offset (`Z` or `±hh:mm`) and
// optional fractional seconds (truncated to microseconds); converts to UTC.
// Returns nullopt for anything else, including impossible dates (30 Feb).
std::optional<instant> parse_rfc3339(std::string_view text) noexcept;

// Formats as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fraction omitted when zero).
std::string format_rfc3339(instant t);

// Parses `<n>ms`, `<n>s`, `<n>m`, `<n>h` or `<n>d` (milliseconds, seconds,
// minutes, hours, days);
// n is a positive decimal integer (or 0, with allow_zero: a key whose
// documented range starts at 0s). Returns nullopt otherwise or on overflow.
std::optional<microseconds> parse_duration(std::string_view text, bool allow_zero = false) noexcept;

// Formats a duration in the largest unit that divides it exactly (`90s`, `45m`).
std::string format_duration(microseconds d);

inline double to_seconds(instant t) { return static_cast<double>(t.time_since_epoch().count()) / 1e6; }

}  // namespace cdr
