// Retention rules and classes: which deadline applies to which partition.
//
// A rule is a period in months counted from an anchor derived from the month
// of communication M. Every deadline is therefore the first instant of some
// month, and every record of one (kind, month, class) shares it: sweeps act on
// whole partitions, never record by record.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cdr/core/month.h"

namespace cdr {

enum class anchor : std::uint8_t {
  month_start,  // first instant of M
  month_end,    // first instant of M+1
  year_start,   // 1 January of year(M)
  year_end,     // 1 January of year(M)+1
};
std::string_view name(anchor a);
std::optional<anchor> anchor_from_name(std::string_view text);

struct retention_rule {
  std::int32_t period_months = 0;
  cdr::anchor anchor = anchor::month_start;

  // The month whose first instant is the deadline for records of month m.
  month deadline(month m) const;
  friend bool operator==(const retention_rule&, const retention_rule&) = default;
};

// Parses a period: `<n> month(s)` or `<n> year(s)` (n >= 0).
std::optional<std::int32_t> parse_period_months(std::string_view text);
std::string format_period(std::int32_t months);

// The two kinds of stored record (also the first byte of every storage key).
enum class record_kind : std::uint8_t { cdr = 1, usage = 2 };
std::string_view name(record_kind k);
std::optional<record_kind> record_kind_from_name(std::string_view text);

// What a sweep does to a partition once its deadline has passed.
enum class retention_action : std::uint8_t {
  strip_identifiers,  // CDR identifiers go; metadata stays
  drop_metadata,      // the whole CDR goes
  drop_usage,         // the whole usage record goes
};
inline constexpr std::array<retention_action, 3> all_retention_actions{
    retention_action::strip_identifiers, retention_action::drop_metadata, retention_action::drop_usage};
std::string_view name(retention_action a);
record_kind kind_of(retention_action a);

// Identifies a set of records that share every deadline; 0 is the default.
using retention_class = std::uint16_t;

struct class_rules {
  retention_rule identifiers{12, anchor::month_end};  // strip at start of M+13
  retention_rule metadata{120, anchor::year_start};   // drop at 1 Jan of year(M)+10
  retention_rule usage{36, anchor::month_start};      // drop at start of M+36

  const retention_rule& rule_for(retention_action a) const;
  friend bool operator==(const class_rules&, const class_rules&) = default;
};

// A per-customer or per-country override (notice §11, local law). Its id is
// written into storage keys, so it must never be reused for another rule set.
struct retention_override {
  retention_class id = 0;
  std::string name;
  std::vector<std::string> customers;
  std::vector<std::string> countries;  // ISO 3166 alpha-2, matched case-insensitively
  class_rules rules;
};

class retention_policy {
 public:
  retention_policy() = default;
  retention_policy(class_rules defaults, std::vector<retention_override> overrides);

  // Resolves a record's class once, at ingest: a customer override wins over
  // a country override; otherwise the default class 0.
  retention_class classify(std::string_view customer_id, std::string_view country) const;
  // Rules of a class; unknown classes (an override removed from the config
  // while its records remain) fall back to the default rules.
  const class_rules& rules(retention_class c) const;
  month deadline(retention_action a, month m, retention_class c) const { return rules(c).rule_for(a).deadline(m); }
  const class_rules& defaults() const { return defaults_; }
  const std::vector<retention_override>& overrides() const { return overrides_; }

 private:
  class_rules defaults_;
  std::vector<retention_override> overrides_;
  std::unordered_map<std::string, retention_class> by_customer_;
  std::unordered_map<std::string, retention_class> by_country_;
  std::unordered_map<retention_class, std::size_t> index_;
};

}  // namespace cdr
