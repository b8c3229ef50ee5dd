// --fleet on a read (status, verify, hold list, sweep --dry-run, subject
// export): the request goes to every live member over the control topic and
// their answers come back on the replies topic (docs/operations.md,
// "Fleet-wide reads"); this member answers through the same path.
#include <set>

#include "cdr/core/hex.h"
#include "cdr/crypto/crypto.h"
#include "handlers.h"

namespace cdr::service {
namespace {

bool complete(const fleet_answers& a) { return a.errors.empty() && a.missing.empty() && a.silent.empty(); }

// A member's answer to an export: its records stream as they arrive, each
// once (a partition's records can sit in two stores after a rebalance).
admin::reply fleet_export(admin_context& ctx, const admin::request& req, nlohmann::json args) {
  auto arg = admin::required_string_arg(req, "identifier");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  // Members get the identifier as written and normalise it themselves (a
  // normalised number is not always read back as the same number).
  const auto& identifier = std::get<std::string>(arg);
  args.erase("identifier");
  return admin::stream{
      [&ctx, args = std::move(args), sealed = ctx.fleet->queries().seal(identifier),
       subject = to_hex(crypto::hmac_sha256(ctx.subject_key, ctx.keeper.identities().normalize(identifier)))](
          const admin::emit_fn& emit) {
        std::set<std::pair<std::string, std::string>> seen;
        std::map<std::string, std::size_t> sent_by;
        auto answers = ctx.fleet->queries().gather("subject export", args, sealed,
                                                   [&](const std::string& member, nlohmann::json r) {
                                                     ++sent_by[member];
                                                     if (!seen.emplace(r.value("kind", ""), r.value("id", "")).second)
                                                       return;
                                                     r["member"] = member;
                                                     emit(std::move(r));
                                                   });
        auto out = answers.report();
        for (const auto& [member, n] : sent_by) out["members"][member]["streamed"] = n;
        out["records"] = seen.size();
        out["subject"] = subject;
        out["complete"] = complete(answers);
        return out;
      }};
}

}  // namespace

std::optional<admin::reply> fleet_read(admin_context& ctx, const admin::request& req) {
  const auto f = req.args.find("fleet");
  if (f == req.args.end() || f->is_null()) return std::nullopt;
  if (!f->is_boolean())
    return admin::error{req.id, admin::error_code::invalid_argument, "\"fleet\" must be true or false"};
  if (!f->get<bool>()) return std::nullopt;
  if (ctx.fleet == nullptr) {
    return admin::error{req.id, admin::error_code::invalid_argument,
                        "--fleet needs a fleet: kafka.topics.control and kafka.topics.replies are empty, so this "
                        "daemon acts alone"};
  }
  auto args = req.args;
  args.erase("fleet");
  if (req.which == admin::command_id::sweep && !args.value("dry_run", false)) {
    return admin::error{req.id, admin::error_code::invalid_argument,
                        "--fleet forecasts only (with --dry-run): each member sweeps its own store"};
  }
  if (req.which == admin::command_id::subject_export) return fleet_export(ctx, req, std::move(args));
  // An identifier (hold list --identifier) travels sealed, never in args.
  std::string sealed;
  if (const auto id = args.find("identifier"); id != args.end() && id->is_string()) {
    sealed = ctx.fleet->queries().seal(id->get<std::string>());
    args.erase("identifier");
  }
  const auto answers = ctx.fleet->queries().gather(req.command, std::move(args), std::move(sealed),
                                                   [](const std::string&, nlohmann::json) {});
  auto out = answers.report();
  out["complete"] = complete(answers);
  if (req.which == admin::command_id::verify) {
    // ok only when every member answered and each is ok.
    bool ok = complete(answers);
    for (const auto& [member, r] : answers.results) ok = ok && r.value("ok", false);
    out["ok"] = ok;
  } else if (req.which == admin::command_id::sweep) {
    std::map<std::string, std::int64_t> totals;
    for (const auto& [member, r] : answers.results) {
      const auto records = r.value("records", nlohmann::json::object());
      for (const auto& [action, n] : records.items()) {
        totals[action] += n.get<std::int64_t>();
      }
    }
    out["records"] = totals;
  }
  return out;
}

admin::reply handle_drain(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  if (!ctx.drain) {
    return admin::error{req.id, admin::error_code::invalid_argument,
                        "drain needs a fleet: kafka.topics.control is empty, so this daemon acts alone"};
  }
  return ctx.drain(peer.uid);
}

admin::reply handle_control_skip(admin_context& ctx, const admin::request& req, const admin::peer& peer) {
  if (ctx.fleet == nullptr) {
    return admin::error{req.id, admin::error_code::invalid_argument,
                        "control skip needs a fleet: kafka.topics.control is empty, so this daemon acts alone"};
  }
  const auto offset = count_arg(req, "offset");
  if (!offset) return admin::error{req.id, admin::error_code::invalid_argument, "\"offset\" must be an offset"};
  auto out = ctx.fleet->control().skip(*offset, peer.uid);
  if (auto* why = std::get_if<std::string>(&out))
    return admin::error{req.id, admin::error_code::invalid_argument, *why};
  return std::get<nlohmann::json>(std::move(out));
}

admin::reply answer_for_fleet(admin_context& ctx, metrics::daemon_probe& probe, const control_message& q,
                              const std::optional<std::string>& identifier) {
  const auto* spec = admin::find_command(q.command);
  if (spec == nullptr || !admin::fleet_readable(spec->id)) {
    return admin::error{nullptr, admin::error_code::invalid_argument,
                        "\"" + q.command + "\" is not a read a member answers for the fleet"};
  }
  admin::request r{nullptr, q.command, spec->id, q.args};
  r.args.erase("fleet");
  if (identifier) r.args["identifier"] = *identifier;
  if (spec->id == admin::command_id::sweep && !r.args.value("dry_run", false)) {
    return admin::error{nullptr, admin::error_code::invalid_argument, "a member never sweeps for another"};
  }
  if (auto e = admin::check_args(*spec, r)) return *e;
  return dispatch(ctx, probe, r, admin::peer{q.uid, 0, {}});
}

}  // namespace cdr::service
