// plan, sweep, hold add|list|release, subject erase|purge|status, verify, checkpoint.
#include <cerrno>
#include <cstdlib>

#include "../checkpoint.h"
#include "cdr/core/ingest.h"
#include "handlers.h"

namespace cdr::service {

admin::reply handle_sweep(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  if (auto r = fleet_read(ctx, req)) return std::move(*r);
  const auto dry = req.args.find("dry_run");
  if (dry != req.args.end() && !dry->is_boolean()) {
    return admin::error{req.id, admin::error_code::invalid_argument, "\"dry_run\" must be true or false"};
  }
  auto as_of = admin::string_arg(req, "as_of");
  if (auto* e = std::get_if<admin::error>(&as_of)) return *e;
  const auto& text = std::get<std::optional<std::string>>(as_of);
  const bool dry_run = dry != req.args.end() && dry->get<bool>();
  if (text && !dry_run) {
    return admin::error{req.id, admin::error_code::invalid_argument, "\"as_of\" needs \"dry_run\": a sweep runs now"};
  }
  if (dry_run) {
    const auto t = text ? parse_rfc3339(*text) : std::optional<instant>(ctx.time.now());
    if (!t) return admin::error{req.id, admin::error_code::invalid_argument, "\"as_of\" must be an RFC 3339 time"};
    return ctx.keeper.forecast(*t);
  }
  return ctx.keeper.sweep("admin", peer.uid);
}

admin::reply handle_plan(admin_context& ctx, const admin::request& req, const admin::peer&) {
  auto until = admin::string_arg(req, "until");
  if (auto* e = std::get_if<admin::error>(&until)) return *e;
  auto customer = admin::string_arg(req, "customer");
  if (auto* e = std::get_if<admin::error>(&customer)) return *e;
  const auto& until_text = std::get<std::optional<std::string>>(until);
  const auto horizon = until_text ? month::parse(*until_text) : std::nullopt;
  if (until_text && !horizon) {
    return admin::error{req.id, admin::error_code::invalid_argument, "\"until\" must be a month, YYYY-MM"};
  }
  return ctx.keeper.plan(horizon, std::get<std::optional<std::string>>(customer));
}

namespace {

// A result, or an error message for the requester, as the reply.
admin::reply reply_of(const admin::request& req, std::variant<nlohmann::json, std::string> r) {
  if (auto* msg = std::get_if<std::string>(&r)) return admin::error{req.id, admin::error_code::invalid_argument, *msg};
  return std::get<nlohmann::json>(std::move(r));
}

}  // namespace

admin::reply handle_hold_add(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  if (ctx.fleet != nullptr) {
    auto h = ctx.keeper.hold_from(req.args);
    if (auto* msg = std::get_if<std::string>(&h))
      return admin::error{req.id, admin::error_code::invalid_argument, *msg};
    control_message m;
    m.kind = control_kind::hold_add;
    m.uid = peer.uid;
    m.new_hold = std::get<hold>(std::move(h));
    return reply_of(req, ctx.fleet->control().act(std::move(m)));
  }
  return reply_of(req, ctx.keeper.hold_add(req.args, peer.uid));
}

std::optional<std::uint64_t> count_arg(const admin::request& req, const char* name) {
  const auto it = req.args.find(name);
  if (it == req.args.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (!it->is_string()) return std::nullopt;
  const auto& s = it->get_ref<const std::string&>();
  char* end = nullptr;
  errno = 0;
  const auto v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || s[0] == '-' || errno == ERANGE) return std::nullopt;
  return v;
}

admin::reply handle_hold_list(admin_context& ctx, const admin::request& req, const admin::peer&) {
  if (auto r = fleet_read(ctx, req)) return std::move(*r);
  auto arg = admin::string_arg(req, "identifier");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  const auto& identifier = std::get<std::optional<std::string>>(arg);
  return ctx.keeper.hold_list(identifier ? std::optional<std::string_view>(*identifier) : std::nullopt);
}

admin::reply handle_hold_release(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  const auto id = count_arg(req, "id");
  if (!id) return admin::error{req.id, admin::error_code::invalid_argument, "\"id\" must be a hold id"};
  auto note = request_note(req);
  if (auto* e = std::get_if<admin::error>(&note)) return *e;
  const auto& n = std::get<audit::request_note>(note);
  if (ctx.fleet != nullptr) {
    // A fleet hold is released on every member; one of this member only
    // (added before it joined a fleet) here.
    const auto h = ctx.keeper.hold_of(*id);
    if (h && !h->origin_request.empty()) {
      ctx.keeper.require_readable_state();
      control_message m;
      m.kind = control_kind::hold_release;
      m.uid = peer.uid;
      m.hold_request = h->origin_request;
      m.reason = n.reason;
      m.reference = n.reference;
      return reply_of(req, ctx.fleet->control().act(std::move(m)));
    }
  }
  if (auto r = ctx.keeper.hold_release(*id, peer.uid, n)) return *r;
  return admin::error{req.id, admin::error_code::not_found, "no active hold has that id"};
}

admin::reply handle_subject_erase(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  auto arg = admin::required_string_arg(req, "identifier");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  auto note = request_note(req);
  if (auto* e = std::get_if<admin::error>(&note)) return *e;
  const auto& n = std::get<audit::request_note>(note);
  if (ctx.fleet != nullptr) {
    ctx.keeper.require_readable_state();
    control_message m;
    m.kind = control_kind::subject_erase;
    m.uid = peer.uid;
    m.sealed_identifier = ctx.fleet->control().seal(std::get<std::string>(arg));  // as written: members normalise it
    m.reason = n.reason;
    m.reference = n.reference;
    return reply_of(req, ctx.fleet->control().act(std::move(m)));
  }
  return ctx.keeper.subject_erase(std::get<std::string>(arg), peer.uid, n);
}

admin::reply handle_subject_purge(admin_context& ctx, const admin::request&, const admin::peer& peer) {
  return ctx.keeper.subject_purge("admin", peer.uid);
}

admin::reply handle_subject_status(admin_context& ctx, const admin::request& req, const admin::peer&) {
  auto arg = admin::required_string_arg(req, "identifier");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  return ctx.keeper.subject_status(std::get<std::string>(arg));
}

admin::reply handle_verify(admin_context& ctx, const admin::request& req, const admin::peer&) {
  if (auto r = fleet_read(ctx, req)) return std::move(*r);
  return ctx.keeper.verify();
}

admin::reply handle_checkpoint(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  auto arg = admin::required_string_arg(req, "to");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  try {
    return ctx.keeper.checkpoint(std::get<std::string>(arg), peer.uid);
  } catch (const checkpoint_refused& e) {
    return admin::error{req.id, admin::error_code::invalid_argument, e.what()};
  }
}

}  // namespace cdr::service
