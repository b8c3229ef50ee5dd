// record get and subject export.
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"
#include "handlers.h"

#include "../ingest/side_seal.h"

namespace cdr::service {
namespace {

// A stored JSON value as JSON (it was validated at ingest).
nlohmann::json as_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

// A stored record as JSON, its identifiers opened. When they cannot be
// ("key_destroyed": stripped in a restored copy; "unreadable": tampered),
// identifiers is null and identifiers_status says why.
nlohmann::json record_json(const store::stored_record& r, const retention& keeper) {
  nlohmann::json out{
      {"kind", name(r.where.kind)}, {"id", r.id}, {"month", r.where.month.to_string()}, {"class", r.where.cls}};
  const auto ids = keeper.identifiers_of(r);
  if (!ids.json && ids.status != "none") out["identifiers_status"] = ids.status;
  if (r.where.kind == record_kind::cdr) {
    out["metadata"] = as_json(r.metadata);
    out["identifiers"] = ids.json ? as_json(*ids.json) : nlohmann::json(nullptr);
  } else {
    // The usage event: its allow-listed members and its sealed ones, opened.
    auto record = as_json(r.metadata);
    if (ids.json && record.is_object()) record.update(as_json(*ids.json));
    out["record"] = std::move(record);
  }
  return out;
}

}  // namespace

admin::reply handle_record_get(admin_context& ctx, const admin::request& req, const admin::peer&) {
  auto id = admin::required_string_arg(req, "id");
  auto kind = admin::string_arg(req, "kind");
  if (auto* e = std::get_if<admin::error>(&id)) return *e;
  if (auto* e = std::get_if<admin::error>(&kind)) return *e;
  const auto& id_text = std::get<std::string>(id);
  std::vector<record_kind> kinds{record_kind::cdr, record_kind::usage};
  if (const auto& k = std::get<std::optional<std::string>>(kind)) {
    const auto parsed = record_kind_from_name(*k);
    if (!parsed) return admin::error{req.id, admin::error_code::invalid_argument, "\"kind\" must be cdr or usage"};
    kinds = {*parsed};
  }
  for (auto k : kinds) {
    if (auto r = ctx.store.get(k, id_text)) return record_json(*r, ctx.keeper);
  }
  return admin::error{req.id, admin::error_code::not_found, "no stored record has that id"};
}

std::variant<audit::request_note, admin::error> request_note(const admin::request& req) {
  audit::request_note note;
  for (auto [key, to] : {std::pair{"reason", &note.reason}, std::pair{"reference", &note.reference}}) {
    auto v = admin::string_arg(req, key);
    if (auto* e = std::get_if<admin::error>(&v)) return *e;
    if (const auto& text = std::get<std::optional<std::string>>(v)) *to = *text;
  }
  return note;
}

admin::reply handle_dead_letter_open(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  auto arg = admin::required_string_arg(req, "message");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  dead_letter_seal seal(ctx.subject_key);
  std::string why;
  const auto d = seal.open(std::get<std::string>(arg), &why);
  if (!d) return admin::error{req.id, admin::error_code::invalid_argument, why};
  ctx.keeper.dead_letter_opened({d->from.topic, d->from.partition, d->from.offset, peer.uid});
  spdlog::info("dead letter {}/{}@{} opened by uid {}", d->from.topic, d->from.partition, d->from.offset, peer.uid);
  return nlohmann::json{
      {"source", {{"topic", d->from.topic}, {"partition", d->from.partition}, {"offset", d->from.offset}}},
      {"reason", d->reason},
      {"key", d->key},
      {"value", d->value}};
}

admin::reply handle_subject_export(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  if (auto r = fleet_read(ctx, req)) return std::move(*r);
  auto arg = admin::required_string_arg(req, "identifier");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  auto note = request_note(req);
  if (auto* e = std::get_if<admin::error>(&note)) return *e;
  // Streamed: each record is read and sent as it is found, so memory does
  // not grow with the subject's records.
  return admin::stream{[&ctx, normalized = ctx.keeper.identities().normalize(std::get<std::string>(arg)),
                        uid = peer.uid,
                        note = std::get<audit::request_note>(std::move(note))](const admin::emit_fn& emit) {
    const auto hash = crypto::hmac_sha256(ctx.subject_key, normalized);
    std::size_t n = 0;
    progress::scope doing(ctx.keeper.activity(), "subject export", "records", 0);
    ctx.keeper.for_each_subject_record(normalized, [&](const partition& p, std::string_view id) {
      if (auto r = ctx.store.get_at(p, id)) {
        auto line = record_json(*r, ctx.keeper);
        doing.step(line.dump().size());
        emit(std::move(line));
        ++n;
      }
    });
    ctx.keeper.subject_exported(hash, n, uid, note);
    spdlog::info("subject export by uid {}: subject {} ({} records)", uid, cdr::to_hex(hash).substr(0, 16), n);
    return nlohmann::json{{"records", n}, {"subject", cdr::to_hex(hash)}};
  }};
}

}  // namespace cdr::service
