#include "cdr/core/time.h"

#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace cdr {
namespace {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly n digits at text[pos]; advances pos.
bool digits(std::string_view text, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char a, char b = '\0') {
  if (pos >= text.size()) return false;
  const char c = text[pos];
  if (c != a && (b == '\0' || c != b)) return false;
  ++pos;
  return true;
}

}  // namespace

std::optional<instant> parse_rfc3339(std::string_view text) noexcept {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(text, pos, 4, y) || !expect(text, pos, '-') || !digits(text, pos, 2, mo) || !expect(text, pos, '-') ||
      !digits(text, pos, 2, d) || !expect(text, pos, 'T', 't') || !digits(text, pos, 2, h) || !expect(text, pos, ':') ||
      !digits(text, pos, 2, mi) || !expect(text, pos, ':') || !digits(text, pos, 2, s)) {
    return std::nullopt;
  }
  // RFC 3339 permits a leap second (60); Unix time folds it into the next second.
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  const year_month_day ymd{year{y}, std::chrono::month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;

  std::int64_t frac_us = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    while (pos < text.size() && is_digit(text[pos])) {
      if (n < 6) frac_us = frac_us * 10 + (text[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (std::size_t i = n; i < 6; ++i) frac_us *= 10;
  }

  int offset_minutes = 0;
  if (pos >= text.size()) return std::nullopt;  // the offset is mandatory
  const char sign = text[pos];
  if (sign == 'Z' || sign == 'z') {
    ++pos;
  } else if (sign == '+' || sign == '-') {
    ++pos;
    int oh = 0, om = 0;
    if (!digits(text, pos, 2, oh) || !expect(text, pos, ':') || !digits(text, pos, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = (oh * 60 + om) * (sign == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  const auto local = sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} + microseconds{frac_us};
  return instant{local - minutes{offset_minutes}};
}

std::string format_rfc3339(instant t) {
  using namespace std::chrono;
  const auto day_point = floor<days>(t);
  const year_month_day ymd{day_point};
  auto rest = t - day_point;
  const auto h = duration_cast<hours>(rest);
  rest -= h;
  const auto mi = duration_cast<minutes>(rest);
  rest -= mi;
  const auto s = duration_cast<seconds>(rest);
  rest -= s;
  const auto us = rest.count();
  auto out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                         static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), h.count(), mi.count(),
                         s.count());
  if (us != 0) out += fmt::format(".{:06}", us);
  out += 'Z';
  return out;
}

std::optional<microseconds> parse_duration(std::string_view text, bool allow_zero) noexcept {
  if (text.size() < 2) return std::nullopt;
  std::int64_t unit = 0;
  if (text.size() >= 3 && text.substr(text.size() - 2) == "ms") {
    unit = 1'000;
    text.remove_suffix(1);
  } else
    switch (text.back()) {
      case 's': unit = 1'000'000; break;
      case 'm': unit = 60'000'000; break;
      case 'h': unit = 3'600'000'000; break;
      case 'd': unit = 86'400'000'000; break;
      default: return std::nullopt;
    }
  if (unit == 1'000 && text.back() != 'm') return std::nullopt;
  const auto digits_part = text.substr(0, text.size() - 1);
  for (char c : digits_part) {
    if (!is_digit(c)) return std::nullopt;
  }
  std::int64_t n = 0;
  const auto [ptr, ec] = std::from_chars(digits_part.data(), digits_part.data() + digits_part.size(), n);
  if (ec != std::errc{} || ptr != digits_part.data() + digits_part.size() || n < 0 || (n == 0 && !allow_zero)) {
    return std::nullopt;
  }
  if (n > std::numeric_limits<std::int64_t>::max() / unit) return std::nullopt;
  return microseconds{n * unit};
}

std::string format_duration(microseconds d) {
  const auto us = d.count();
  if (us != 0 && us % 86'400'000'000 == 0) return fmt::format("{}d", us / 86'400'000'000);
  if (us != 0 && us % 3'600'000'000 == 0) return fmt::format("{}h", us / 3'600'000'000);
  if (us != 0 && us % 60'000'000 == 0) return fmt::format("{}m", us / 60'000'000);
  if (us % 1'000'000 == 0) return fmt::format("{}s", us / 1'000'000);
  return fmt::format("{}ms", us / 1'000);
}

}  // namespace cdr
