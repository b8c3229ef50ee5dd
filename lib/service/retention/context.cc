#include "context.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

std::string describe(const std::vector<store::unreadable_entry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} ({}): {}", e.key, name(e.kind), e.reason);
  }
  return out;
}

}  // namespace

state_unreadable::state_unreadable(const std::vector<store::unreadable_entry>& entries)
    : std::runtime_error(
          fmt::format("saved state does not decode, so sweeps and erasures are refused until it is repaired "
                      "(docs/operations.md, \"CdrRetentionSavedStateUnreadable\"): {}",
                      describe(entries))) {}

op_sequence::op_sequence(store::saved_state& state) : state_(state) {
  if (auto v = state_.counter(store::counter_name::operations)) last_ = v.value();
}

std::uint64_t op_sequence::next(store::change& c) {
  if (!last_) throw state_unreadable(state_.unreadable());
  ++*last_;
  state_.put_counter(c, store::counter_name::operations, *last_);
  return *last_;
}

void retention_context::require_readable_state() const {
  if (!state.healthy()) throw state_unreadable(state.unreadable());
}

std::vector<std::string> retention_context::subject_hashes(const std::vector<std::string>& normalized) const {
  std::vector<std::string> out;
  out.reserve(normalized.size());
  for (const auto& n : normalized) out.push_back(crypto::hmac_sha256(subject_key, n));
  return out;
}

vault::opened retention_context::open_identifiers(family f, const partition& p, std::string_view key,
                                                  std::string_view sealed) const {
  const bool held = f == family::held;
  auto o = keys.open(held ? key_scope::held : key_scope::partition, p, key, sealed);
  if (o.status == vault::open_status::unreadable) {
    spdlog::error("the identifiers of record {} of {} do not decrypt: tampered or corrupt",
                  record_id_of(held ? key.substr(1) : key), p.to_string());
  }
  return o;
}

std::uint64_t retention_context::journal(store::change& c, std::vector<removal> removals, nlohmann::json audit_entry,
                                         std::optional<deletion_event> event, std::optional<instant> purge_by) {
  const auto op = ops.next(c);
  if (event) {
    event->event_id = op;
    event->time = time.now();
  }
  state.put_journal(c, op, journal_entry{std::move(removals), std::move(audit_entry), std::move(event), purge_by});
  return op;
}

std::uint64_t retention_context::record(store::change& c, nlohmann::json audit_entry,
                                        std::optional<deletion_event> event) {
  const auto op = ops.next(c);
  const auto now = time.now();
  if (event) {
    event->event_id = op;
    event->time = now;
    state.put_event(c, *event);
  }
  audit.stage(c, op, std::move(audit_entry), now);
  return op;
}

std::vector<std::string> normalized_identifiers(std::string_view identifiers_json) {
  std::vector<std::string> out;
  for (const auto& v : identifier_values(identifiers_json)) out.push_back(normalize_identifier(v));
  return out;
}

nlohmann::json partition_json(const partition& p) {
  return {{"kind", name(p.kind)}, {"month", p.month.to_string()}, {"class", p.cls}};
}

family record_family(record_kind k) { return k == record_kind::cdr ? family::metadata : family::usage; }

}  // namespace cdr::service
