// A deterministic generator of realistic events (docs/events.md): the same
// seed gives the same stream. Used by the benchmarks, the demo traffic and
// the integration tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cdr/core/event.h"
#include "cdr/core/policy.h"
#include "cdr/core/time.h"

namespace cdr {

struct generator_options {
  std::uint64_t seed = 1;
  // Events occur in the `spread` before `now`.
  instant now = instant{std::chrono::seconds{1'741'948'013}};  // 2025-03-14T10:26:53Z
  microseconds spread = std::chrono::hours(24 * 30);
  double usage_fraction = 0.15;
  // Share of events that occurred 13 to 130 months before `now`.
  double late_fraction = 0.0;
  // Share of events that are malformed (each with a known reason).
  double malformed_fraction = 0.0;
  // Distinct end users (phone numbers and e-mail addresses) drawn from.
  std::uint32_t subjects = 10'000;
  // UUIDv4-style ids (random, so in no order) instead of ULID-shaped ones
  // (ordered by creation).
  bool random_ids = false;
};

struct generated_event {
  record_kind kind = record_kind::cdr;
  std::string id;
  std::string json;
  std::optional<reject_reason> expected_reject;
  bool late = false;
};

class event_generator {
 public:
  explicit event_generator(generator_options options);
  void next(generated_event* out);
  generated_event next() {
    generated_event e;
    next(&e);
    return e;
  }
  // Moves the generator's "now" (live traffic follows the daemon's clock).
  void set_now(instant now) { options_.now = now; }

 private:
  std::uint64_t random();
  double uniform() { return static_cast<double>(random() >> 11) * 0x1.0p-53; }
  std::uint64_t below(std::uint64_t n) { return random() % n; }
  void malformed(generated_event* out);

  generator_options options_;
  std::uint64_t state_;
  std::uint64_t counter_ = 0;
};

}  // namespace cdr
