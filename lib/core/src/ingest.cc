#include "cdr/core/ingest.h"

#include <algorithm>
#include <cstring>

namespace cdr {

std::string_view name(ingest_outcome o) {
  switch (o) {
    case ingest_outcome::stored: return "stored";
    case ingest_outcome::duplicate: return "duplicate";
    case ingest_outcome::conflict: return "conflict";
    case ingest_outcome::stripped_on_ingest: return "stripped_on_ingest";
    case ingest_outcome::dropped_on_ingest: return "dropped_on_ingest";
    case ingest_outcome::rejected: return "rejected";
  }
  return "?";
}

lateness lateness_of(const retention_policy& policy, record_kind kind, month m, retention_class c, instant now) {
  const auto due = [&](retention_action a) { return policy.deadline(a, m, c).start() <= now; };
  if (kind == record_kind::usage) return due(retention_action::drop_usage) ? lateness::drop : lateness::on_time;
  if (due(retention_action::drop_metadata)) return lateness::drop;
  if (due(retention_action::strip_identifiers)) return lateness::strip;
  return lateness::on_time;
}

namespace {
std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h ^= w;
  h *= 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 31);
}
std::uint64_t absorb(std::uint64_t h, std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, 8);  // little-endian hosts only (x86-64, aarch64)
    h = mix(h, w);
  }
  std::uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);  // never from a null view
  return mix(h, tail ^ (static_cast<std::uint64_t>(s.size()) << 56));
}
}  // namespace

std::uint64_t content_digest(std::string_view a, std::string_view b) {
  return absorb(absorb(0xcbf29ce484222325ULL, a), b);
}

}  // namespace cdr
