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

std::string normalize_identifier(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::string out;
  if (value.find('@') != std::string_view::npos) {
    out.reserve(value.size());
    for (char c : value) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    return out;
  }
  // A phone number: digits with optional separators and a leading + or 00.
  std::string digits;
  bool phone = !value.empty();
  for (std::size_t i = 0; i < value.size() && phone; ++i) {
    const char c = value[i];
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c == '+' && i == 0) {
    } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      phone = false;
    }
  }
  // Four dot-separated digit groups are an IPv4 address, not a phone number.
  if (phone && std::count(value.begin(), value.end(), '.') == 3 &&
      value.find_first_not_of("0123456789.") == std::string_view::npos) {
    phone = false;
  }
  if (phone && digits.size() >= 2 && digits.compare(0, 2, "00") == 0 && value.front() != '+') digits.erase(0, 2);
  if (phone && digits.size() >= 3 && digits.size() <= 15) return digits;
  return std::string(value);
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
