#include "cdr/core/audit_record.h"

namespace cdr::audit {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;  // clang 14 (the fuzz build) deduces no aggregate

nlohmann::json origin_json(const origin& o) { return {{"member", o.member}, {"request", o.request}}; }

nlohmann::json months_json(const std::map<month, std::int64_t>& months) {
  auto out = nlohmann::json::object();
  for (const auto& [m, n] : months) out[m.to_string()] = n;
  return out;
}

}  // namespace

void write_note(nlohmann::json& entry, const request_note& n) {
  if (!n.reason.empty()) entry["reason"] = n.reason;
  if (!n.reference.empty()) entry["reference"] = n.reference;
  if (n.from) entry["origin"] = origin_json(*n.from);
  if (!n.reapplied_from.empty()) entry["reapplied_from"] = n.reapplied_from;
}

std::string action_of(const record& r) {
  return std::visit(overloaded{
                        [](const partition_action& a) { return std::string(name(a.action)); },
                        [](const hold_added&) { return std::string("hold_add"); },
                        [](const hold_released&) { return std::string("hold_release"); },
                        [](const subject_erased&) { return std::string("erase_subject"); },
                        [](const erasure_purged&) { return std::string("erasure_purged"); },
                        [](const subject_exported&) { return std::string("subject_export"); },
                        [](const dead_letter_opened&) { return std::string("dead_letter_open"); },
                        [](const keys_destroyed&) { return std::string("destroy_keys"); },
                        [](const clock_confirmed&) { return std::string("clock_confirm"); },
                        [](const control_refused&) { return std::string("control_refused"); },
                        [](const control_skipped&) { return std::string("control_skip"); },
                        [](const store_drained&) { return std::string("drain"); },
                        [](const audit_rekeyed&) { return std::string("rekey_audit_chain"); },
                        [](const audit_tail_repaired&) { return std::string("repair_audit_tail"); },
                    },
                    r);
}

nlohmann::json encode(const record& r, std::string_view member) {
  auto j = std::visit(
      overloaded{
          [](const partition_action& a) {
            nlohmann::json e{{"kind", name(a.where.kind)}, {"month", a.where.month.to_string()},
                             {"class", a.where.cls},       {"records", a.records},
                             {"trigger", a.trigger},       {"requested_by", a.requested_by}};
            if (a.held) e["held"] = *a.held;
            if (a.deadline) e["deadline"] = format_rfc3339(*a.deadline);
            return e;
          },
          [](const hold_added& a) {
            nlohmann::json e{{"hold", to_json(a.h)}, {"requested_by", a.requested_by}};
            if (!a.h.origin_request.empty()) e["origin"] = origin_json({a.h.origin_member, a.h.origin_request});
            return e;
          },
          [](const hold_released& a) {
            nlohmann::json e{{"hold", to_json(a.h)}, {"requested_by", a.requested_by}};
            write_note(e, a.note);
            return e;
          },
          [](const subject_erased& a) {
            nlohmann::json e{{"subject", a.subject},
                             {"records", a.records},
                             {"values", a.values},
                             {"deferred", a.deferred},
                             {"months", months_json(a.months)},
                             {"holds", a.holds},
                             {"trigger", a.trigger},
                             {"requested_by", a.requested_by}};
            if (a.purge_deadline) e["purge_deadline"] = format_rfc3339(*a.purge_deadline);
            write_note(e, a.note);
            return e;
          },
          [](const erasure_purged& a) {
            return nlohmann::json{{"subject", a.subject},
                                  {"records", a.records},
                                  {"erased_at", format_rfc3339(a.erased_at)},
                                  {"trigger", a.trigger}};
          },
          [](const subject_exported& a) {
            nlohmann::json e{{"subject", a.subject}, {"records", a.records}, {"requested_by", a.requested_by}};
            write_note(e, a.note);
            return e;
          },
          [](const dead_letter_opened& a) {
            return nlohmann::json{{"source", {{"topic", a.topic}, {"partition", a.partition}, {"offset", a.offset}}},
                                  {"requested_by", a.requested_by}};
          },
          [](const keys_destroyed& a) {
            return nlohmann::json{{"keys", a.keys}, {"trigger", a.trigger}, {"requested_by", a.requested_by}};
          },
          [](const clock_confirmed& a) {
            return nlohmann::json{{"wall_clock", format_rfc3339(a.wall_clock)},
                                  {"jump_seconds", a.jump_seconds},
                                  {"requested_by", a.requested_by}};
          },
          [](const control_refused& a) {
            return nlohmann::json{
                {"topic", a.topic},       {"first_offset", a.first_offset}, {"last_offset", a.last_offset},
                {"messages", a.messages}, {"reasons", a.reasons},           {"claimed_members", a.claimed_members}};
          },
          [](const control_skipped& a) {
            return nlohmann::json{
                {"topic", a.topic}, {"offset", a.offset}, {"why", a.why}, {"requested_by", a.requested_by}};
          },
          [](const store_drained& a) {
            auto e = a.report.is_object() ? a.report : nlohmann::json::object();
            e["records_removed"] = a.records_removed;
            e["held_copies_removed"] = a.held_copies_removed;
            e["requested_by"] = a.requested_by;
            return e;
          },
          [](const audit_rekeyed& a) {
            return nlohmann::json{{"entries", a.entries}, {"legacy_head", a.legacy_head}};
          },
          [](const audit_tail_repaired& a) {
            return nlohmann::json{{"truncated_bytes", a.truncated_bytes}, {"after_seq", a.after_seq}};
          },
      },
      r);
  j["action"] = action_of(r);
  if (!member.empty()) j["member"] = member;
  return j;
}

std::optional<origin> origin_of(const record& r) {
  if (const auto* a = std::get_if<hold_added>(&r); a && !a->h.origin_request.empty()) {
    return origin{a->h.origin_member, a->h.origin_request};
  }
  if (const auto* a = std::get_if<hold_released>(&r)) return a->note.from;
  if (const auto* a = std::get_if<subject_erased>(&r)) return a->note.from;
  if (const auto* a = std::get_if<subject_exported>(&r)) return a->note.from;
  return std::nullopt;
}

}  // namespace cdr::audit
