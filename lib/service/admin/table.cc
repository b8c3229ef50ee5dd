#include <array>

#include <spdlog/spdlog.h>

#include "handlers.h"

namespace cdr::service {
namespace {

using admin::command_id;

constexpr std::array entries{
    handler_entry{command_id::status, &handle_status},
    handler_entry{command_id::config, &handle_config},
    handler_entry{command_id::record_get, &handle_record_get},
    handler_entry{command_id::subject_export, &handle_subject_export},
    handler_entry{command_id::sweep, &handle_sweep},
    handler_entry{command_id::hold_add, &handle_hold_add},
    handler_entry{command_id::hold_list, &handle_hold_list},
    handler_entry{command_id::hold_release, &handle_hold_release},
    handler_entry{command_id::subject_erase, &handle_subject_erase},
    handler_entry{command_id::verify, &handle_verify},
    handler_entry{command_id::audit_export, &handle_audit_export},
    handler_entry{command_id::audit_verify, &handle_audit_verify},
    handler_entry{command_id::checkpoint, &handle_checkpoint},
    handler_entry{command_id::debug_advance_clock, &handle_advance_clock},
    handler_entry{command_id::clock_confirm, &handle_clock_confirm},
    handler_entry{command_id::debug_jump_clock, &handle_jump_clock},
    handler_entry{command_id::subject_purge, &handle_subject_purge},
    handler_entry{command_id::subject_status, &handle_subject_status},
    handler_entry{command_id::drain, &handle_drain},
    handler_entry{command_id::plan, &handle_plan},
    handler_entry{command_id::control_skip, &handle_control_skip},
    handler_entry{command_id::dead_letter_open, &handle_dead_letter_open},
};

// Every command has exactly one handler, listed in command_id order, so the
// table is indexed by the id. (A handler declared but not defined fails the
// link.)
constexpr bool one_handler_per_command() {
  if (entries.size() != admin::command_count) return false;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (static_cast<std::size_t>(entries[i].command) != i) return false;
  }
  return true;
}
static_assert(one_handler_per_command(),
              "every command of cdr::admin::commands() needs exactly one handler, in command_id order");

}  // namespace

std::span<const handler_entry> handler_table() { return entries; }

admin::reply dispatch(admin_context& ctx, metrics::daemon_probe& probe, const admin::request& req,
                      const admin::peer& peer) {
  admin::reply out;
  try {
    out = entries[static_cast<std::size_t>(req.which)].run(ctx, req, peer);
  } catch (const state_unreadable& e) {
    out = admin::error{req.id, admin::error_code::unavailable, e.what()};
  } catch (const clock_jumped& e) {
    out = admin::error{req.id, admin::error_code::unavailable, e.what()};
  } catch (const fleet_unavailable& e) {
    out = admin::error{req.id, admin::error_code::unavailable, e.what()};
  } catch (const std::exception& e) {
    spdlog::error("admin: \"{}\" failed: {}", req.command, e.what());
    out = admin::error{req.id, admin::error_code::internal, e.what()};
  }
  const auto* e = std::get_if<admin::error>(&out);
  probe.admin_request(req.command, e ? admin::name(e->code) : "ok");
  spdlog::debug("admin: uid {} ran \"{}\": {}", peer.uid, req.command, e ? e->message : "ok");
  return out;
}

}  // namespace cdr::service
