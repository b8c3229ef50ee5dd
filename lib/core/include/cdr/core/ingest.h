// Pure decisions of the ingest path: what happens to one accepted event.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "cdr/core/month.h"
#include "cdr/core/policy.h"
#include "cdr/core/time.h"

namespace cdr {

// The outcome of one consumed message; labels cdr_retention_events_total.
enum class ingest_outcome : std::uint8_t {
  stored,              // new record, stored whole
  duplicate,           // same id, same content: already stored
  conflict,            // same id, different content: the first one is kept
  stripped_on_ingest,  // late: identifier deadline passed, stored without identifiers
  dropped_on_ingest,   // late: metadata (or usage) deadline passed, not stored
  rejected,            // bad input: to the dead-letter topic
};
inline constexpr std::array<ingest_outcome, 6> all_ingest_outcomes{ingest_outcome::stored,
                                                                   ingest_outcome::duplicate,
                                                                   ingest_outcome::conflict,
                                                                   ingest_outcome::stripped_on_ingest,
                                                                   ingest_outcome::dropped_on_ingest,
                                                                   ingest_outcome::rejected};
std::string_view name(ingest_outcome o);

// How late an event is relative to its partition's deadlines at `now`. A
// deadline is due when it is <= now: never before.
enum class lateness : std::uint8_t { on_time, strip, drop };
lateness lateness_of(const retention_policy& policy, record_kind kind, month m, retention_class c, instant now);

// A stable 64-bit digest of a record's content, stored with its id to tell a
// redelivery (same digest) from a conflict. Never change this function: its
// values are on disk.
std::uint64_t content_digest(std::string_view a, std::string_view b = {});

}  // namespace cdr
