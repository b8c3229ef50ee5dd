// audit export and audit verify.
#include "handlers.h"

namespace cdr::service {

admin::reply handle_audit_export(admin_context& ctx, const admin::request& req, const admin::peer&) {
  auto since = admin::string_arg(req, "since");
  if (auto* e = std::get_if<admin::error>(&since)) return *e;
  std::optional<instant> from;
  if (const auto& text = std::get<std::optional<std::string>>(since)) {
    from = parse_rfc3339(*text);
    if (!from) return admin::error{req.id, admin::error_code::invalid_argument, "\"since\" must be an RFC 3339 time"};
  }
  return admin::stream{[&ctx, from](const admin::emit_fn& emit) {
    return nlohmann::json{{"records", ctx.keeper.audit().for_each(from, emit)}};
  }};
}

admin::reply handle_audit_verify(admin_context& ctx, const admin::request&, const admin::peer&) {
  const auto v = ctx.keeper.verify_audit();
  nlohmann::json out{{"ok", v.ok}, {"entries", v.entries}, {"path", ctx.keeper.audit().path()}};
  if (!v.ok) {
    out["problem"] = v.problem;
    out["line"] = v.line;
  }
  return out;
}

}  // namespace cdr::service
