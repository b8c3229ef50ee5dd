#include "cdr/core/retention.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "cdr/core/hex.h"

namespace cdr {

bool hold::covers_partition(const partition& p) const {
  if (kind && *kind != p.kind) return false;
  if (from_month && p.month < *from_month) return false;
  if (to_month && p.month > *to_month) return false;
  return true;
}

bool hold::covers(const partition& p, std::string_view customer_id, std::span<const std::string> subject_hashes) const {
  if (!covers_partition(p)) return false;
  if (customer && *customer != customer_id) return false;
  if (subject && std::find(subject_hashes.begin(), subject_hashes.end(), *subject) == subject_hashes.end()) {
    return false;
  }
  return true;
}

bool any_covers(std::span<const hold> holds, const partition& p, std::string_view customer_id,
                std::span<const std::string> subject_hashes) {
  return std::any_of(holds.begin(), holds.end(),
                     [&](const hold& h) { return h.covers(p, customer_id, subject_hashes); });
}

std::vector<std::uint64_t> covering_holds(std::span<const hold> holds, const partition& p, std::string_view customer_id,
                                          std::span<const std::string> subject_hashes) {
  std::vector<std::uint64_t> out;
  for (const auto& h : holds) {
    if (h.covers(p, customer_id, subject_hashes)) out.push_back(h.id);
  }
  return out;
}

nlohmann::json to_json(const hold& h) {
  nlohmann::json j{{"id", h.id},
                   {"reason", h.reason},
                   {"reference", h.reference},
                   {"created_at", format_rfc3339(h.created_at)},
                   {"created_by", h.created_by}};
  j["customer"] = h.customer ? nlohmann::json(*h.customer) : nlohmann::json(nullptr);
  j["subject"] = h.subject ? nlohmann::json(to_hex(*h.subject)) : nlohmann::json(nullptr);
  j["from_month"] = h.from_month ? nlohmann::json(h.from_month->to_string()) : nlohmann::json(nullptr);
  j["to_month"] = h.to_month ? nlohmann::json(h.to_month->to_string()) : nlohmann::json(nullptr);
  j["kind"] = h.kind ? nlohmann::json(name(*h.kind)) : nlohmann::json(nullptr);
  if (!h.origin_request.empty()) j["origin"] = {{"member", h.origin_member}, {"request", h.origin_request}};
  return j;
}

namespace {

std::optional<std::string> opt_string(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

std::variant<hold, std::string> hold_from_request(const nlohmann::json& args,
                                                  const std::function<std::string(std::string_view)>& subject_hash) {
  for (const auto& [k, v] : args.items()) {
    static constexpr std::array<std::string_view, 7> known{"customer", "subject", "from_month", "to_month",
                                                           "kind",     "reason",  "reference"};
    if (std::find(known.begin(), known.end(), k) == known.end()) return fmt::format("unknown argument \"{}\"", k);
    if (!v.is_string()) return fmt::format("argument \"{}\" must be a string", k);
  }
  hold h;
  h.customer = opt_string(args, "customer");
  if (h.customer && (h.customer->empty() || h.customer->size() > 64)) {
    return std::string("\"customer\" must be a customer id (1-64 characters)");
  }
  if (auto s = opt_string(args, "subject")) {
    if (s->empty()) return std::string("\"subject\" must be a phone number or e-mail address");
    h.subject = subject_hash(*s);
  }
  for (auto [key, slot] : {std::pair{"from_month", &h.from_month}, std::pair{"to_month", &h.to_month}}) {
    if (auto s = opt_string(args, key)) {
      *slot = month::parse(*s);
      if (!*slot) return fmt::format("\"{}\" must be a month as YYYY-MM", key);
    }
  }
  if (h.from_month && h.to_month && *h.from_month > *h.to_month) {
    return std::string("\"from_month\" is after \"to_month\"");
  }
  if (auto s = opt_string(args, "kind")) {
    h.kind = record_kind_from_name(*s);
    if (!h.kind) return std::string("\"kind\" must be cdr or usage");
  }
  if (!h.customer && !h.subject && !h.from_month && !h.to_month && !h.kind) {
    return std::string("a hold needs at least one selector: customer, subject, from_month, to_month or kind");
  }
  h.reason = opt_string(args, "reason").value_or("");
  h.reference = opt_string(args, "reference").value_or("");
  if (h.reason.empty()) return std::string("\"reason\" is required");
  if (h.reference.empty()) return std::string("\"reference\" is required");
  return h;
}

std::string customer_of(std::string_view record_json) {
  const auto j = nlohmann::json::parse(record_json, nullptr, false);
  if (!j.is_object()) return {};
  const auto it = j.find("customer_id");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

namespace {

void prune(nlohmann::json& v, const std::function<bool(std::string_view)>& drop) {
  const auto dropped = [&](const nlohmann::json& e) { return e.is_string() && drop(e.get_ref<const std::string&>()); };
  if (v.is_array()) {
    v.erase(std::remove_if(v.begin(), v.end(), dropped), v.end());
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) it = dropped(*it) ? v.erase(it) : std::next(it);
  }
  if (v.is_structured()) {
    for (auto& e : v) prune(e, drop);
  }
}

void strings_in(const nlohmann::json& v, std::vector<std::string>& out) {
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_structured()) {
    for (const auto& e : v) strings_in(e, out);  // array elements, object values
  }
}

}  // namespace

std::vector<std::string> identifier_values(std::string_view identifiers_json) {
  std::vector<std::string> out;
  const auto j = nlohmann::json::parse(identifiers_json, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) strings_in(v, out);
  return out;
}

std::string without_identifiers(std::string_view identifiers_json, const std::function<bool(std::string_view)>& drop) {
  auto j = nlohmann::json::parse(identifiers_json, nullptr, false);
  if (!j.is_object()) return std::string(identifiers_json);
  prune(j, drop);
  return j.empty() ? std::string() : j.dump();
}

passed_deadlines deadlines_passed(const retention_policy& policy, const partition& p, instant now) {
  const auto due = [&](retention_action a) { return policy.deadline(a, p.month, p.cls).start() <= now; };
  passed_deadlines out;
  out.drop = due(drop_action(p.kind));
  // A usage record's sealed members go with it.
  out.strip = out.drop || (p.kind == record_kind::cdr && due(retention_action::strip_identifiers));
  return out;
}

retention_action drop_action(record_kind k) {
  return k == record_kind::cdr ? retention_action::drop_metadata : retention_action::drop_usage;
}

std::optional<retention_action> due_action(const retention_policy& policy, const partition& p, partition_state st,
                                           instant now) {
  if (st.dropped) return std::nullopt;
  const auto passed = deadlines_passed(policy, p, now);
  if (passed.drop) return drop_action(p.kind);
  if (passed.strip && !st.stripped) return retention_action::strip_identifiers;
  return std::nullopt;
}

std::span<const family> families_cleared(retention_action a) {
  static constexpr std::array<family, 2> strip{family::identifiers, family::subject_index};
  static constexpr std::array<family, 3> drop{family::metadata, family::identifiers, family::subject_index};
  static constexpr std::array<family, 3> usage{family::usage, family::identifiers, family::subject_index};
  switch (a) {
    case retention_action::strip_identifiers: return strip;
    case retention_action::drop_metadata: return drop;
    case retention_action::drop_usage: return usage;
  }
  return {};
}

std::vector<removal> removals_of(retention_action a, const partition& p) {
  std::vector<removal> out;
  const auto r = partition_range(p);
  for (const auto f : families_cleared(a)) out.push_back({f, r});
  return out;
}

std::optional<retention_action> action_done(const partition& p, partition_state st) {
  if (st.dropped) return drop_action(p.kind);
  if (st.stripped)
    return p.kind == record_kind::cdr ? std::optional(retention_action::strip_identifiers)
                                      : std::optional(retention_action::drop_usage);
  return std::nullopt;
}

std::vector<planned_action> plan_sweep(const retention_policy& policy, const std::map<partition, std::int64_t>& counts,
                                       const std::map<partition, partition_state>& states, std::span<const hold> holds,
                                       instant now) {
  std::map<partition, std::int64_t> all = counts;
  for (const auto& [p, s] : states) all.try_emplace(p, 0);
  std::vector<planned_action> out;
  for (const auto& [p, n] : all) {
    partition_state st;
    if (auto it = states.find(p); it != states.end()) st = it->second;
    const auto action = due_action(policy, p, st, now);
    if (!action) continue;
    planned_action a{*action, p, policy.deadline(*action, p.month, p.cls), n, {}, {}};
    for (const auto& h : holds) {
      if (!h.covers_partition(p)) continue;
      (h.whole() ? a.whole_holds : a.partial_holds).push_back(h.id);
    }
    out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const planned_action& a, const planned_action& b) { return a.deadline < b.deadline; });
  return out;
}

overdue_summary overdue_of(std::span<const planned_action> plan) {
  overdue_summary s;
  for (const auto& a : plan) {
    if (a.deferred()) continue;
    ++s.partitions;
    s.records += a.records;
  }
  return s;
}

std::optional<instant> earliest_deadline(const retention_policy& policy,
                                         const std::map<partition, std::int64_t>& counts,
                                         const std::map<partition, partition_state>& states) {
  std::optional<instant> out;
  for (const auto& [p, n] : counts) {
    if (n <= 0) continue;
    const auto s = states.find(p);
    const auto st = s == states.end() ? partition_state{} : s->second;
    if (st.dropped) continue;
    auto at = policy.deadline(drop_action(p.kind), p.month, p.cls).start();
    if (p.kind == record_kind::cdr && !st.stripped) {
      at = std::min(at, policy.deadline(retention_action::strip_identifiers, p.month, p.cls).start());
    }
    if (!out || at < *out) out = at;
  }
  return out;
}

std::vector<partition_plan> plan_partitions(const retention_policy& policy,
                                            const std::map<partition, std::int64_t>& counts,
                                            const std::map<partition, partition_state>& states,
                                            std::span<const hold> holds) {
  std::vector<partition_plan> out;
  for (const auto& [p, n] : counts) {
    if (n <= 0) continue;
    partition_state st;
    if (const auto it = states.find(p); it != states.end()) st = it->second;
    if (st.dropped) continue;
    partition_plan row{p, n, st};
    const auto drop = drop_action(p.kind);
    if (p.kind == record_kind::cdr && !st.stripped) {
      row.next = retention_action::strip_identifiers;
      row.deadline = policy.deadline(row.next, p.month, p.cls);
      const auto drop_at = policy.deadline(drop, p.month, p.cls);
      if (drop_at <= row.deadline) {
        row.next = drop;  // a drop due first also removes the identifiers
        row.deadline = drop_at;
      } else {
        row.then = drop;
        row.then_deadline = drop_at;
      }
    } else {
      row.next = drop;
      row.deadline = policy.deadline(drop, p.month, p.cls);
    }
    for (const auto& h : holds) {
      if (h.covers_partition(p)) (h.whole() ? row.whole_holds : row.partial_holds).push_back(h.id);
    }
    out.push_back(std::move(row));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const partition_plan& a, const partition_plan& b) { return a.deadline < b.deadline; });
  return out;
}

nlohmann::json to_json(const partition_plan& p, instant now) {
  const bool passed = p.deadline.start() <= now;
  return {{"kind", name(p.where.kind)},
          {"month", p.where.month.to_string()},
          {"class", p.where.cls},
          {"records", p.records},
          {"state", p.state.stripped ? "stripped" : "whole"},
          {"action", name(p.next)},
          {"deadline", format_rfc3339(p.deadline.start())},
          {"status", !passed                 ? "scheduled"
                     : p.whole_holds.empty() ? "overdue"
                                             : "deferred"},
          {"then", p.then ? nlohmann::json(name(*p.then)) : nlohmann::json(nullptr)},
          {"then_deadline", p.then ? nlohmann::json(format_rfc3339(p.then_deadline.start())) : nlohmann::json(nullptr)},
          {"holds", p.whole_holds},
          {"partial_holds", p.partial_holds}};
}

std::map<month, std::map<retention_action, std::int64_t>> due_by_month(std::span<const partition_plan> plan,
                                                                       month until) {
  std::map<month, std::map<retention_action, std::int64_t>> out;
  for (const auto& p : plan) {
    if (p.deadline <= until) out[p.deadline][p.next] += p.records;
    if (p.then && p.then_deadline <= until) out[p.then_deadline][*p.then] += p.records;
  }
  return out;
}

nlohmann::json to_json(const planned_action& a) {
  nlohmann::json j{{"action", name(a.action)},
                   {"kind", name(a.where.kind)},
                   {"month", a.where.month.to_string()},
                   {"class", a.where.cls},
                   {"deadline", format_rfc3339(a.deadline.start())},
                   {"records", a.records}};
  if (!a.partial_holds.empty()) j["partial_holds"] = a.partial_holds;
  if (!a.whole_holds.empty()) j["deferred_by_holds"] = a.whole_holds;
  return j;
}

purge_forecast forecast_purge(const purge_forecast_input& in) {
  purge_forecast f;
  const double share =
      in.files == 0 ? 0.0 : 1.0 - std::exp(-static_cast<double>(in.keys) / static_cast<double>(in.files));
  f.bytes = static_cast<std::uint64_t>(std::llround(static_cast<double>(in.bytes) * share));
  const double rate = in.bytes_per_second > 0 ? in.bytes_per_second : assumed_purge_rate;
  f.duration = microseconds(static_cast<std::int64_t>(std::ceil(static_cast<double>(f.bytes) / rate * 1e6)));
  if (in.running_since) {
    // Running longer than forecast: it ends no sooner than now.
    f.starts_at = *in.running_since;
    f.finishes_at = std::max(*in.running_since + f.duration, in.now);
  } else {
    const auto lead = microseconds(static_cast<std::int64_t>(static_cast<double>(f.duration.count()) * purge_lead));
    f.starts_at = std::max(in.now, in.deadline - lead);
    f.finishes_at = f.starts_at + f.duration;
  }
  f.late_by = std::max(microseconds(0), f.finishes_at - in.deadline);
  return f;
}

nlohmann::json to_json(const purge_forecast& f, const purge_forecast_input& in) {
  return {{"deadline", format_rfc3339(in.deadline)},
          {"keys", in.keys},
          {"month_files", in.files},
          {"month_bytes", in.bytes},
          {"bytes", f.bytes},
          {"bytes_per_second", std::llround(in.bytes_per_second > 0 ? in.bytes_per_second : assumed_purge_rate)},
          {"rate", in.bytes_per_second > 0 ? "measured" : "assumed"},
          {"running", in.running_since.has_value()},
          {"seconds", static_cast<double>(f.duration.count()) / 1e6},
          {"starts_at", format_rfc3339(f.starts_at)},
          {"finishes_at", format_rfc3339(f.finishes_at)},
          {"late_by_seconds", static_cast<double>(f.late_by.count()) / 1e6},
          {"on_time", f.late_by.count() == 0}};
}

}  // namespace cdr
