#include "cdr/core/identity.h"

#include <algorithm>
#include <cctype>

namespace cdr {
namespace {

std::string_view trimmed(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value;
}

std::string lower_ascii(std::string_view value) {
  std::string out(value);
  for (auto& c : out) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

// A phone number as the "digits" form reads one: digits with separators
// (space, dash, dot, parentheses) and an optional leading +; its digits, or
// nullopt for anything else (names, IPv4 addresses, too short or too long).
std::optional<std::string> phone_digits(std::string_view value) {
  if (value.empty()) return std::nullopt;
  std::string digits;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (!(c == '+' && i == 0) && c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      return std::nullopt;
    }
  }
  // Four dot-separated digit groups are an IPv4 address, not a phone number.
  if (std::count(value.begin(), value.end(), '.') == 3 &&
      value.find_first_not_of("0123456789.") == std::string_view::npos) {
    return std::nullopt;
  }
  if (digits.size() >= 2 && digits.compare(0, 2, "00") == 0 && value.front() != '+') digits.erase(0, 2);
  if (digits.size() < 3 || digits.size() > 15) return std::nullopt;
  return digits;
}

constexpr std::string_view digits_form = "digits";
constexpr std::string_view e164_form = "e164";

}  // namespace

namespace {

bool ipv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = i;
    int value = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9' && j - i < 3) value = value * 10 + (s[j++] - '0');
    if (j == i || value > 255) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

bool ipv6(std::string_view s) {
  const auto colons = std::count(s.begin(), s.end(), ':');
  return colons >= 2 && colons <= 7 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
         });
}

bool phone(std::string_view s) {
  std::size_t digits = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == '+') {
      if (digits > 0) return false;  // only in front
    } else if (c != ' ' && c != '(' && c != ')' && c != '-' && c != '.' && c != '/') {
      return false;
    }
  }
  return digits >= 3;
}

bool email(std::string_view s) {
  const auto at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()) return false;
  const auto domain = s.substr(at + 1);
  return domain.find_first_of(" @") == std::string_view::npos && domain.front() != '.' && domain.back() != '.' &&
         s.substr(0, at).find(' ') == std::string_view::npos;
}

}  // namespace

bool identifier_shape(std::string_view text) { return phone(text) || email(text) || ipv4(text) || ipv6(text); }

std::string normalize_identifier(std::string_view value) { return identity::digits().normalize(value); }

std::string identity_form(std::string_view default_region) {
  return default_region.empty() ? std::string(e164_form) : std::string(e164_form) + ":" + std::string(default_region);
}

std::optional<std::string> form_region(std::string_view form) {
  if (form == digits_form || form == e164_form) return std::string();
  if (form.size() == e164_form.size() + 3 && form.substr(0, e164_form.size()) == e164_form &&
      form[e164_form.size()] == ':') {
    const auto region = form.substr(e164_form.size() + 1);
    if (std::all_of(region.begin(), region.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return std::string(region);
    }
  }
  return std::nullopt;
}

identity::identity() : form_(digits_form) {}

const identity& identity::digits() {
  static const identity plain;
  return plain;
}

identity::identity(phone_parser parser, std::string form, std::vector<std::string> earlier)
    : parser_(std::move(parser)), form_(std::move(form)), earlier_(std::move(earlier)) {}

std::string identity::normalize_as(std::string_view form, std::string_view value) const {
  value = trimmed(value);
  if (value.find('@') != std::string_view::npos) return lower_ascii(value);
  auto digits = phone_digits(value);
  if (!digits) return std::string(value);
  // A number already written in E.164 (a + and its digits, nothing else)
  // is taken as is: the spelling producers are asked for (docs/events.md),
  // and libphonenumber would spend ~10 us reading it.
  const bool e164_spelling = value.front() == '+' && digits->size() + 1 == value.size();
  if (form != digits_form && parser_ && !e164_spelling) {
    // libphonenumber reads national prefixes, trunk codes and the region's
    // international prefix; what it cannot read keeps the digits.
    if (auto e164 = parser_(value, form_region(form).value_or(""))) return std::move(*e164);
  }
  return std::move(*digits);
}

std::vector<std::string> identity::forms_of(std::string_view value) const {
  std::vector<std::string> out{normalize(value)};
  for (const auto& f : earlier_) {
    auto n = normalize_as(f, value);
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  }
  return out;
}

}  // namespace cdr
