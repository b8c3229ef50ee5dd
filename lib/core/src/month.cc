#include "cdr/core/month.h"

#include <fmt/format.h>

namespace cdr {

bool in_supported_calendar(instant t) {
  using namespace std::chrono;
  static const auto first = sys_days{year{first_supported_year} / January / 1};
  static const auto past_last = sys_days{year{last_supported_year + 1} / January / 1};
  return t >= first && t < past_last;
}

month month::containing(instant t) {
  using namespace std::chrono;
  const year_month_day ymd{floor<days>(t)};
  return month::of(static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())));
}

std::optional<month> month::parse(std::string_view text) noexcept {
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  int y = 0;
  int m = 0;
  for (std::size_t i = 0; i < 7; ++i) {
    if (i == 4) continue;
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    if (i < 4) {
      y = y * 10 + (c - '0');
    } else {
      m = m * 10 + (c - '0');
    }
  }
  if (m < 1 || m > 12) return std::nullopt;
  return month::of(y, m);
}

instant month::start() const {
  const std::chrono::year_month_day ymd{
      std::chrono::year{year()}, std::chrono::month{static_cast<unsigned>(month_of_year())}, std::chrono::day{1}};
  return instant{std::chrono::sys_days{ymd}};
}

std::string month::to_string() const { return fmt::format("{:04}-{:02}", year(), month_of_year()); }

}  // namespace cdr
