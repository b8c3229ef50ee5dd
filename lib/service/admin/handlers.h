// Admin command handlers: exactly one per command of the core command table
// (cdr::admin::commands()). table.cc indexes them by command_id; a command
// without a handler, or with two, fails the build there.
#pragma once

#include <span>

#include "cdr/admin/server.h"
#include "cdr/metrics/daemon_probe.h"
#include "context.h"

namespace cdr::service {

using handler_fn = admin::reply (*)(admin_context&, const admin::request&, const admin::peer&);
struct handler_entry {
  admin::command_id command;
  handler_fn run;
};

// The table, in command_id order (unit-tested against the command table).
std::span<const handler_entry> handler_table();

// Runs a request through its handler: failures become error replies, each
// request is counted by command and outcome.
admin::reply dispatch(admin_context& ctx, metrics::daemon_probe& probe, const admin::request& req,
                      const admin::peer& peer);

// fleet.cc: a read with "fleet": true gathered from every live member
// (nullopt without it), and this member's answer to such a read.
std::optional<admin::reply> fleet_read(admin_context& ctx, const admin::request& req);
admin::reply answer_for_fleet(admin_context& ctx, metrics::daemon_probe& probe, const control_message& q,
                              const std::optional<std::string>& identifier);

// A count argument (a number, or its decimal digits); nullopt when absent
// or not a count (retention.cc).
std::optional<std::uint64_t> count_arg(const admin::request& req, const char* name);

// The optional `reason` and `reference` of a subject request, as the
// members its audit entries carry (records.cc).
std::variant<audit::request_note, admin::error> request_note(const admin::request& req);

// status.cc
admin::reply handle_status(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_config(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_advance_clock(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_jump_clock(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_clock_confirm(admin_context&, const admin::request&, const admin::peer&);
// records.cc
admin::reply handle_record_get(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_subject_export(admin_context&, const admin::request&, const admin::peer&);
// retention.cc
admin::reply handle_plan(admin_context& ctx, const admin::request& req, const admin::peer& peer);
admin::reply handle_sweep(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_hold_add(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_hold_list(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_hold_release(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_subject_erase(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_subject_purge(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_subject_status(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_verify(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_checkpoint(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_drain(admin_context&, const admin::request&, const admin::peer&);
// fleet.cc
admin::reply handle_control_skip(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_dead_letter_open(admin_context&, const admin::request&, const admin::peer&);
// audit.cc
admin::reply handle_audit_export(admin_context&, const admin::request&, const admin::peer&);
admin::reply handle_audit_verify(admin_context&, const admin::request&, const admin::peer&);

}  // namespace cdr::service
