// The UTC calendar month: the unit every retention deadline acts on.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cdr/core/time.h"

namespace cdr {

// The calendar the store keys: UTC years 1 to 9999. RFC 3339 writes years
// in 4 digits, but an offset can move an instant out of them
// ("0000-01-01T00:00:00+00:01" is in year -1); the key layout encodes the
// month index unsigned. Events outside are rejected
// (occurred_at_out_of_range), and configured periods are capped (at 1000
// years) so no deadline leaves what the calendar types can hold.
inline constexpr int first_supported_year = 1;
inline constexpr int last_supported_year = 9999;
// Whether t lies in a supported year (UTC).
bool in_supported_calendar(instant t);

class month {
 public:
  // Year 0..9999, month_of_year 1..12 (caller guarantees the ranges).
  static constexpr month of(int year, int month_of_year) { return month(year * 12 + (month_of_year - 1)); }
  // The UTC month that contains t.
  static month containing(instant t);
  // "YYYY-MM"; nullopt when malformed or out of range.
  static std::optional<month> parse(std::string_view text) noexcept;
  // Months since January of year 0; the order-preserving key encoding.
  static constexpr month from_index(std::int32_t index) { return month(index); }

  constexpr std::int32_t index() const { return index_; }
  constexpr int year() const { return index_ / 12; }
  constexpr int month_of_year() const { return index_ % 12 + 1; }
  constexpr month plus(std::int32_t months) const { return month(index_ + months); }
  constexpr month first_of_year() const { return month(year() * 12); }
  // First instant of the month (00:00:00 UTC on day 1).
  instant start() const;
  std::string to_string() const;

  constexpr auto operator<=>(const month&) const = default;

 private:
  explicit constexpr month(std::int32_t index) : index_(index) {}
  std::int32_t index_;
};

}  // namespace cdr
