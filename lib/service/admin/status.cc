// status, config and debug advance-clock.
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/render.h"
#include "cdr/service/daemon.h"
#include "handlers.h"

namespace cdr::service {
namespace {

nlohmann::json kafka_status(const admin_context& ctx) {
  const auto& k = ctx.config.kafka;
  nlohmann::json out{
      {"brokers", k.brokers},
      {"group_id", k.group_id},
      {"topics", {{"cdr", k.topic_cdr}, {"usage", k.topic_usage}, {"dead_letter", k.topic_dead_letter}}}};
  if (ctx.embedded) out["embedded_bootstrap"] = ctx.embedded->bootstrap_servers();
  if (ctx.consumer) out["consumer"] = ctx.consumer->status();
  if (ctx.demo) out["demo_events_produced"] = ctx.demo->produced();
  if (!k.group_instance_id.empty()) out["group_instance_id"] = k.group_instance_id;
  out["fleet"] = ctx.fleet ? ctx.fleet->report() : nlohmann::json(nullptr);
  return out;
}

nlohmann::json retention_status(const admin_context& ctx) {
  const auto g = ctx.keeper.figures();
  return {{"holds_active", g.holds_active},
          {"records_held", g.records_held},
          {"overdue_partitions", g.overdue_partitions},
          {"overdue_records", g.overdue_records},
          {"deletion_events_pending", g.events_pending},
          {"erasure_purge", ctx.keeper.purge_forecast_report()},
          {"sweep_interval", format_duration(ctx.keeper.interval())},
          {"saved_state", ctx.keeper.saved_state_report()},
          {"clock_guard", ctx.keeper.clock_report()}};
}

nlohmann::json storage_status(const admin_context& ctx) {
  nlohmann::json records{{"cdr", 0}, {"usage", 0}};
  std::size_t partitions = 0;
  for (const auto& [p, n] : ctx.store.counts()) {
    auto& slot = records[std::string(name(p.kind))];
    slot = slot.get<std::int64_t>() + n;
    ++partitions;
  }
  nlohmann::json bytes = nlohmann::json::object();
  for (const auto& f : ctx.store.sizes()) bytes[f.name] = f.bytes;
  return {
      {"path", ctx.config.storage.path},
      {"records", records},
      {"partitions", partitions},
      {"bytes", bytes},
      {"write_stopped", ctx.store.write_stopped()},
      {"corrupt_entries", ctx.store.corrupt_entries()},
      {"identifier_form", {{"form", ctx.keeper.identities().form()}, {"earlier", ctx.keeper.identities().earlier()}}}};
}

}  // namespace

admin::reply handle_status(admin_context& ctx, const admin::request& req, const admin::peer&) {
  if (auto r = fleet_read(ctx, req)) return std::move(*r);
  auto out = nlohmann::json{
      {"version", version()},
      {"revision", revision()},
      {"pid", getpid()},
      {"started_at", format_rfc3339(ctx.started)},
      {"uptime_seconds", seconds_since(ctx.time, ctx.started_monotonic)},
      {"clock", {{"source", ctx.time.simulated() ? "simulated" : "real"}, {"now", format_rfc3339(ctx.time.now())}}},
      {"config", ctx.reloader.status()},
      {"metrics", {{"listen", ctx.metrics_listen}}},
      {"kafka", kafka_status(ctx)},
      {"retention", retention_status(ctx)},
      {"keystore",
       {{"path", ctx.keystore.path()},
        {"keys_live", ctx.keystore.live()},
        {"keys_destroyed", ctx.keystore.destroyed_total()},
        {"decrypt_failures", ctx.keys.decrypt_failures()}}},
      {"storage", storage_status(ctx)},
      {"operations", ctx.keeper.activity().report()}};
  out["summary"] = render::status_summary(out);
  return out;
}

admin::reply handle_config(admin_context& ctx, const admin::request&, const admin::peer&) {
  return ctx.reloader.effective();
}

namespace {

// Moves the simulated clock by the request's duration (backward: back).
admin::reply move_fake_clock(admin_context& ctx, const admin::request& req, bool backward, std::string_view how) {
  if (ctx.fake_clock == nullptr) {
    return admin::error{req.id, admin::error_code::unavailable,
                        fmt::format("the daemon runs on the real clock; {} needs --fake-clock", req.command)};
  }
  auto arg = admin::string_arg(req, "duration");
  if (auto* e = std::get_if<admin::error>(&arg)) return *e;
  const auto& text = std::get<std::optional<std::string>>(arg);
  const auto by = text ? parse_duration(*text) : std::nullopt;
  if (!by) {
    return admin::error{req.id, admin::error_code::invalid_argument,
                        "\"duration\" must be a duration such as 90s, 45m, 12h or 17d"};
  }
  const auto before = ctx.fake_clock->now();
  ctx.fake_clock->advance(backward ? -*by : *by);
  const auto now = ctx.fake_clock->now();
  spdlog::warn("simulated clock {} by {}{}: {} -> {}", how, backward ? "-" : "", *text, format_rfc3339(before),
               format_rfc3339(now));
  return nlohmann::json{{"before", format_rfc3339(before)}, {"now", format_rfc3339(now)}};
}

}  // namespace

admin::reply handle_advance_clock(admin_context& ctx, const admin::request& req, const admin::peer&) {
  auto out = move_fake_clock(ctx, req, false, "advanced");
  if (std::holds_alternative<nlohmann::json>(out)) ctx.keeper.clock_moved_deliberately();
  return out;
}

admin::reply handle_jump_clock(admin_context& ctx, const admin::request& req, const admin::peer&) {
  const auto it = req.args.find("backward");
  return move_fake_clock(ctx, req, it != req.args.end() && it->is_boolean() && it->get<bool>(), "jumped");
}

admin::reply handle_clock_confirm(admin_context& ctx, const admin::request&, const admin::peer& peer) {
  return ctx.keeper.clock_confirm(peer.uid);
}

}  // namespace cdr::service
