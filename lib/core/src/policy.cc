#include "cdr/core/policy.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace cdr {

std::string_view name(anchor a) {
  switch (a) {
    case anchor::month_start: return "month_start";
    case anchor::month_end: return "month_end";
    case anchor::year_start: return "year_start";
    case anchor::year_end: return "year_end";
  }
  return "?";
}

std::optional<anchor> anchor_from_name(std::string_view text) {
  for (auto a : {anchor::month_start, anchor::month_end, anchor::year_start, anchor::year_end}) {
    if (name(a) == text) return a;
  }
  return std::nullopt;
}

month retention_rule::deadline(month m) const {
  switch (anchor) {
    case anchor::month_start: return m.plus(period_months);
    case anchor::month_end: return m.plus(1 + period_months);
    case anchor::year_start: return m.first_of_year().plus(period_months);
    case anchor::year_end: return m.first_of_year().plus(12 + period_months);
  }
  return m;
}

std::optional<std::int32_t> parse_period_months(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 5) return std::nullopt;
  std::int32_t n = 0;
  std::from_chars(text.data(), text.data() + i, n);
  auto unit = text.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (unit == "month" || unit == "months") return n;
  if (unit == "year" || unit == "years") return n * 12;
  return std::nullopt;
}

std::string format_period(std::int32_t months) {
  if (months != 0 && months % 12 == 0) {
    return fmt::format("{} year{}", months / 12, months == 12 ? "" : "s");
  }
  return fmt::format("{} month{}", months, months == 1 ? "" : "s");
}

std::string_view name(record_kind k) {
  switch (k) {
    case record_kind::cdr: return "cdr";
    case record_kind::usage: return "usage";
  }
  return "?";
}

std::optional<record_kind> record_kind_from_name(std::string_view text) {
  if (text == "cdr") return record_kind::cdr;
  if (text == "usage") return record_kind::usage;
  return std::nullopt;
}

std::string_view name(retention_action a) {
  switch (a) {
    case retention_action::strip_identifiers: return "strip_identifiers";
    case retention_action::drop_metadata: return "drop_metadata";
    case retention_action::drop_usage: return "drop_usage";
  }
  return "?";
}

record_kind kind_of(retention_action a) {
  return a == retention_action::drop_usage ? record_kind::usage : record_kind::cdr;
}

const retention_rule& class_rules::rule_for(retention_action a) const {
  switch (a) {
    case retention_action::strip_identifiers: return identifiers;
    case retention_action::drop_metadata: return metadata;
    case retention_action::drop_usage: return usage;
  }
  return identifiers;
}

namespace {
std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

retention_policy::retention_policy(class_rules defaults, std::vector<retention_override> overrides)
    : defaults_(defaults), overrides_(std::move(overrides)) {
  for (std::size_t i = 0; i < overrides_.size(); ++i) {
    const auto& o = overrides_[i];
    index_.emplace(o.id, i);
    for (const auto& c : o.customers) by_customer_.emplace(c, o.id);
    for (const auto& c : o.countries) by_country_.emplace(upper(c), o.id);
  }
}

retention_class retention_policy::classify(std::string_view customer_id, std::string_view country) const {
  if (!by_customer_.empty()) {
    if (auto it = by_customer_.find(std::string(customer_id)); it != by_customer_.end()) {
      return it->second;
    }
  }
  if (!by_country_.empty() && !country.empty()) {
    if (auto it = by_country_.find(upper(country)); it != by_country_.end()) return it->second;
  }
  return 0;
}

const class_rules& retention_policy::rules(retention_class c) const {
  if (c != 0) {
    if (auto it = index_.find(c); it != index_.end()) return overrides_[it->second].rules;
  }
  return defaults_;
}

}  // namespace cdr
