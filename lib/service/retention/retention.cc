#include "retention.h"

#include <set>

#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "../checkpoint.h"
#include "../failpoint.h"
#include "cdr/core/hex.h"
#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {

retention::retention(const daemon_config& config, const time_source& time, store::store& store,
                     store::saved_state& state, metrics::retention_probe& probe, std::string subject_key, vault& keys,
                     audit_keying audit_keys, std::unique_ptr<event_sink> events, const identity& ids)
    : audit_(store, state, time, config.storage.path + "/audit.jsonl", std::move(audit_keys)),
      ledger_(erasure_ledger::beside(config.storage.keystore_path), keys.keys()),
      ctx_{config, time, store, state, keys, audit_, probe, std::move(subject_key), ids, op_sequence(state)},
      guard_(ctx_, config.sweep.max_clock_jump),
      holds_(ctx_),
      executor_(ctx_, holds_),
      erasure_(ctx_, holds_),
      requests_(ctx_),
      shredder_(ctx_),
      purger_(ctx_),
      verifier_(ctx_),
      publisher_(events ? std::make_unique<event_publisher>(time, store, state, std::move(events)) : nullptr),
      scheduler_(time, config.sweep.interval, config.sweep.jitter, std::random_device{}(),
                 [this](std::string_view trigger) {
                   try {
                     sweep(trigger, 0);
                     // The chain is checked at least daily, not only at
                     // start (CdrRetentionAuditVerificationStale).
                     if (to_seconds(ctx_.time.now()) - audit_verified_at_ >= audit_reverify_seconds) verify_audit();
                     return true;
                   } catch (const std::exception& e) {
                     spdlog::error("{} sweep failed: {}", trigger, e.what());
                     return false;
                   }
                 }),
      purge_timer_(time, [this] {
        try {
          if (purger_.erasures_due()) {
            subject_purge("deadline", 0);
          } else {
            arm_purge();  // the wall clock is behind the monotonic one
          }
        } catch (const std::exception& e) {
          spdlog::error("erasure purge failed: {}; retried in a minute", e.what());
          purge_timer_.set(ctx_.time.monotonic() + std::chrono::minutes(1));
        }
      }) {
  ctx_.journals.load(state);
  ctx_.member = member_name(config.kafka);
}

retention::~retention() { stop(); }

void retention::recover() {
  if (!ctx_.state.healthy()) {
    spdlog::critical("recovery of interrupted retention actions is refused: {}",
                     state_unreadable(ctx_.state.unreadable()).what());
    return;
  }
  // Erasures a restored store forgot go first (each batch takes the lock).
  if (const auto n = reapply_ledger(); n > 0) {
    spdlog::warn(
        "applied {} erasure(s) of the erasure ledger {} again: the store did not show them done (restored "
        "from a copy, or stopped during the erasure)",
        n, ledger_.path());
  }
  std::lock_guard lock(ops_);
  // Keys a stop left undestroyed (or a restored key store brought back) go
  // first; then the actions a stop interrupted are finished.
  if (const auto marked = executor_.mark_held_ids(); marked > 0) {
    spdlog::info("marked the id index entries of {} held record(s)", marked);
  }
  const auto keys = shredder_.destroy_unused("recovery", 0);
  if (!keys.empty()) spdlog::warn("destroyed {} data key(s) a stop left behind", keys.size());
  const auto done = purger_.finish_due();
  if (!done.empty()) spdlog::warn("finished {} retention action(s) interrupted by a stop", done.value("actions", 0));
  audit_.drain();
}

audit_trail::verdict retention::verify_audit() {
  auto v = audit_.verify();
  audit_ok_ = v.ok;
  audit_verified_at_ = std::chrono::duration<double>(ctx_.time.now().time_since_epoch()).count();
  if (!v.ok) spdlog::critical("the audit trail's chain is broken at line {}: {}", v.line, v.problem);
  return v;
}

void retention::start() {
  recover();
  verify_audit();
  if (publisher_) publisher_->start();
  scheduler_.start();
  purge_timer_.start();
  arm_purge();
}

void retention::stop() {
  purge_timer_.stop();
  scheduler_.stop();
  if (publisher_) publisher_->stop();
}

void retention::arm_purge() {
  const auto now = ctx_.time.now();
  const auto o = ctx_.journals.forecast(ctx_.store, now);
  if (!o) return purge_timer_.set(std::nullopt);
  // Deadlines are wall-clock instants, the timer monotonic: it looks again
  // at least hourly, so a wall clock that moved (or a forecast that grew
  // with the store) is noticed.
  const auto wait = std::clamp(o->forecast.starts_at - now, microseconds(0), microseconds(std::chrono::hours(1)));
  purge_timer_.set(ctx_.time.monotonic() + wait);
}

std::vector<audit_trail::appended> retention::after_change() {
  auto appended = audit_.drain();
  if (publisher_) publisher_->wake();
  arm_purge();
  return appended;
}

nlohmann::json retention::sweep(std::string_view trigger, std::uint32_t uid) {
  // Before the lock: applying the control topic takes it.
  if (barrier_) {
    try {
      barrier_();
    } catch (...) {
      ctx_.probe.sweep(trigger, 0, false, to_seconds(ctx_.time.now()));
      throw;
    }
  }
  std::lock_guard lock(ops_);
  const auto started = ctx_.time.monotonic();
  const auto now = ctx_.time.now();
  nlohmann::json report{{"trigger", trigger},
                        {"as_of", format_rfc3339(now)},
                        {"actions", nlohmann::json::array()},
                        {"deferred", nlohmann::json::array()}};
  try {
    ctx_.require_readable_state();
    guard_.check(now);
    {
      store::change c(ctx_.store);
      guard_.record_sweep(c, now);
      if (!c.empty()) ctx_.store.apply(c);
    }
    const auto h = holds_.snapshot();
    const auto plan = plan_sweep(ctx_.config.retention, ctx_.store.counts(), ctx_.store.states(), *h, now);
    progress::scope doing(ctx_.activity, "sweep", "partitions", plan.size());
    for (const auto& a : plan) {
      if (a.deferred()) {
        report["deferred"].push_back(to_json(a));
      } else {
        report["actions"].push_back(executor_.remove_partition(a, trigger, uid));
      }
      doing.step();
    }
    report["released"] = executor_.release_held(uid);
    report["deferred_erasures"] = erasure_.run_deferred(uid, "deferred");
    report["keys_destroyed"] = shredder_.destroy_unused(trigger, uid);
    failpoint("after_logical_step");
    report["purge"] = purger_.finish_due();
  } catch (...) {
    ctx_.probe.sweep(trigger, seconds_since(ctx_.time, started), false, to_seconds(now));
    throw;
  }
  const double seconds = seconds_since(ctx_.time, started);
  ctx_.probe.sweep(trigger, seconds, true, to_seconds(now));
  report["duration_seconds"] = seconds;
  after_change();
  if (!report["actions"].empty() || !report["released"].empty()) {
    spdlog::info("{} sweep: {} action(s), {} deferred by holds, {} held release(s) in {:.3f}s", trigger,
                 report["actions"].size(), report["deferred"].size(), report["released"].size(), seconds);
  }
  return report;
}

nlohmann::json retention::forecast(instant as_of) const {
  const auto h = holds_.snapshot();
  nlohmann::json out{
      {"as_of", format_rfc3339(as_of)}, {"actions", nlohmann::json::array()}, {"deferred", nlohmann::json::array()}};
  std::map<std::string, std::int64_t> totals;
  for (const auto& a : plan_sweep(ctx_.config.retention, ctx_.store.counts(), ctx_.store.states(), *h, as_of)) {
    out[a.deferred() ? "deferred" : "actions"].push_back(to_json(a));
    if (!a.deferred()) totals[std::string(name(a.action))] += a.records;
  }
  out["records"] = totals;
  return out;
}

nlohmann::json retention::plan(std::optional<month> until, const std::optional<std::string>& customer) const {
  const auto h = holds_.snapshot();
  const auto all = ctx_.store.counts();
  const auto states = effective_states(all, *h);
  auto counts = all;
  if (customer) {
    // Only this customer's records: read from each partition (a scan of the
    // store, as a customer hold's sweep makes).
    for (auto& [p, n] : counts) {
      n = 0;
      ctx_.store.scan(record_family(p.kind), partition_range(p), [&, &n = n](std::string_view, std::string_view value) {
        n += customer_of(value) == *customer ? 1 : 0;
        return true;
      });
    }
  }
  const auto now = ctx_.time.now();
  const auto rows = plan_partitions(ctx_.config.retention, counts, states, *h);
  nlohmann::json partitions = nlohmann::json::array();
  std::int64_t records = 0;
  for (const auto& r : rows) {
    if (until && r.deadline > *until) continue;
    partitions.push_back(to_json(r, now));
    records += r.records;
  }
  nlohmann::json totals = nlohmann::json::array();
  for (const auto& [m, actions] : due_by_month(rows, until.value_or(month::of(last_supported_year, 12)))) {
    for (const auto& [a, n] : actions)
      totals.push_back({{"month", m.to_string()}, {"action", name(a)}, {"records", n}});
  }
  return {{"as_of", format_rfc3339(now)},
          {"until", until ? nlohmann::json(until->to_string()) : nlohmann::json(nullptr)},
          {"customer", customer ? nlohmann::json(*customer) : nlohmann::json(nullptr)},
          {"records", records},
          {"partitions", std::move(partitions)},
          {"totals", std::move(totals)},
          {"erasure_purge", purge_forecast_report()}};
}

std::variant<nlohmann::json, std::string> retention::hold_add(const nlohmann::json& args, std::uint32_t uid) {
  std::lock_guard lock(ops_);
  auto added = holds_.add(args, uid);
  if (auto* e = std::get_if<std::string>(&added)) return *e;
  audit_.drain();
  return to_json(std::get<hold>(added));
}

nlohmann::json retention::hold_list(std::optional<std::string_view> identifier) const {
  auto out = nlohmann::json::array();
  std::optional<std::map<std::uint64_t, std::size_t>> over;
  if (identifier) {
    const auto normalized = ctx_.ids.normalize(*identifier);
    over = erasure_.holds_over(normalized, crypto::hmac_sha256(ctx_.subject_key, normalized));
  }
  for (const auto& h : holds_.active()) {
    if (!over) {
      out.push_back(to_json(h));
    } else if (const auto it = over->find(h.id); it != over->end()) {
      auto j = to_json(h);
      j["subject_records"] = it->second;  // of this subject's records, those it keeps
      out.push_back(std::move(j));
    }
  }
  nlohmann::json list{{"holds", out}};
  if (const auto n = holds_.unreadable(); n > 0) list["unreadable"] = n;
  return list;
}

std::variant<hold, std::string> retention::hold_from(const nlohmann::json& args) const {
  auto h = holds_.validate(args);
  if (auto* ok = std::get_if<hold>(&h)) ok->created_at = ctx_.time.now();
  return h;
}

std::optional<hold> retention::hold_of(std::uint64_t id) const {
  for (auto& h : holds_.active()) {
    if (h.id == id) return h;
  }
  return std::nullopt;
}

std::optional<nlohmann::json> retention::hold_release(std::uint64_t id, std::uint32_t uid,
                                                      const audit::request_note& note) {
  std::lock_guard lock(ops_);
  ctx_.require_readable_state();
  const auto released = holds_.release(id, uid, note);
  if (!released) return std::nullopt;
  return after_release(released, uid);
}

nlohmann::json retention::after_release(const std::optional<hold>& released, std::uint32_t uid) {
  // Erasures the hold deferred happen now; held records go at the next
  // sweep (their deadline has passed).
  auto erasures = erasure_.run_deferred(uid, "hold_release");
  shredder_.destroy_unused("hold_release", uid);
  purger_.finish_due();
  after_change();
  return nlohmann::json{{"released", released ? to_json(*released) : nlohmann::json(nullptr)}, {"erasures", erasures}};
}

std::map<partition, partition_state> retention::effective_states(const std::map<partition, std::int64_t>& counts,
                                                                 std::span<const hold> active) const {
  auto states = ctx_.store.states();
  for (const auto& a : plan_sweep(ctx_.config.retention, counts, states, active, ctx_.time.now())) {
    bool any = false;
    for (const auto& r : removals_of(a.action, a.where)) {
      ctx_.store.scan(r.family, r.range, [&](std::string_view, std::string_view) { return !(any = true); });
      if (any) break;
    }
    if (any) continue;
    auto& st = states[a.where];
    st.stripped = true;
    st.dropped = st.dropped || a.action != retention_action::strip_identifiers;
  }
  return states;
}

std::pair<std::int64_t, std::optional<instant>> retention::holdings() const {
  const auto counts = ctx_.store.counts();
  std::int64_t records = 0;
  for (const auto& [p, n] : counts) records += n;
  return {records, earliest_deadline(ctx_.config.retention, counts, effective_states(counts, holds_.active()))};
}

std::uint64_t retention::control_position() const {
  const auto v = ctx_.state.counter(store::counter_name::control);
  if (!v) throw state_unreadable(ctx_.state.unreadable());
  return v.value();
}

std::variant<nlohmann::json, std::string> retention::apply_control(const control_message& m,
                                                                   const std::optional<std::string>& identifier,
                                                                   std::uint64_t next) {
  const audit::origin origin{m.member, m.request};
  const control_step step{next, m.request};
  switch (m.kind) {
    case control_kind::hold_add: {
      std::lock_guard lock(ops_);
      const auto h = holds_.add(m.new_hold, m.uid, step);
      audit_.drain();
      return to_json(h);
    }
    case control_kind::hold_release: {
      std::lock_guard lock(ops_);
      ctx_.require_readable_state();
      // Released here before, or never added here (no id 0): only the position moves.
      const auto id = holds_.by_request(m.hold_request);
      return after_release(
          holds_.release(id.value_or(0), m.uid, audit::request_note{m.reason, m.reference, origin, {}}, step), m.uid);
    }
    case control_kind::subject_erase: {
      return subject_erase(identifier.value_or(""), m.uid, audit::request_note{m.reason, m.reference, origin, {}},
                           fleet_erasure{m.at, step});
    }
    case control_kind::query:
    case control_kind::heartbeat: break;  // the control channel's own (nothing to save)
  }
  return std::string("unknown control message");
}

bool retention::control_applied(std::string_view request) const {
  auto applied = ctx_.state.control_applied(request);
  if (!applied) throw state_unreadable(ctx_.state.unreadable());
  return applied.value();
}

void retention::refuse_control(std::optional<std::uint64_t> next, const audit::record& entry) {
  std::lock_guard lock(ops_);
  store::change c(ctx_.store);
  if (next) ctx_.state.put_control_step(c, *next, "");
  ctx_.record(c, entry, std::nullopt);
  ctx_.store.apply(c);
  audit_.drain();
}

void retention::set_known_member(std::string_view name, bool known) {
  store::change c(ctx_.store);
  if (known) {
    ctx_.state.put_fleet_member(c, name);
  } else {
    ctx_.state.remove_fleet_member(c, name);
  }
  ctx_.store.apply(c);
}

nlohmann::json retention::subject_erase(std::string_view identifier, std::uint32_t uid, const audit::request_note& note,
                                        std::optional<fleet_erasure> fleet) {
  const auto normalized = ctx_.ids.normalize(identifier);
  const auto hash = crypto::hmac_sha256(ctx_.subject_key, normalized);
  const auto started = ctx_.time.monotonic();
  const erasure_request request{fleet ? fleet->at : ctx_.time.now(), note.reason, note.reference};
  {
    // In the ledger first: a store restored from a copy made before this
    // erasure gets it applied again at start-up.
    std::lock_guard lock(ops_);
    ctx_.require_readable_state();
    ledger_.append({hash, request.at, request.reason, request.reference, erasure_.index_hashes(normalized)});
  }
  auto receipt = erase_all(hash, erasure_.hashes_of(normalized), request, uid, fleet ? "fleet" : "admin", note,
                           fleet ? std::optional(fleet->control_next) : std::nullopt);
  receipt["state"] = subject_status(identifier)["state"];
  receipt["duration_seconds"] = seconds_since(ctx_.time, started);
  spdlog::info("subject erasure by uid {}: subject {} ({} records erased, {} deferred by holds)", uid,
               receipt["subject"].get<std::string>().substr(0, 16), receipt["erased"].get<std::int64_t>(),
               receipt["deferred_total"].get<std::size_t>());
  return receipt;
}

nlohmann::json retention::erase_all(const std::string& subject, const subject_erasure::index_hash_fn& hash_of,
                                    const erasure_request& request, std::uint32_t uid, std::string_view trigger,
                                    const audit::request_note& note, std::optional<control_step> control_next) {
  // Batch by batch, the retention lock taken for each only: a sweep or a
  // hold can run between two batches of a subject with millions of records.
  // Each batch commits its removal (hidden at once) and the journal the
  // erasure purge pass finishes.
  requests_.add(subject, request.at);
  if (fence_ && !fence_()) {
    spdlog::warn(
        "erasure of subject {}: an ingest batch started before it is still not written; a record it "
        "writes may keep the identifier until the erasure is repeated",
        to_hex(subject).substr(0, 16));
  }
  subject_erasure::cursor cursor;
  subject_erasure::outcome total;
  int batches = 0;
  for (bool more = true; more;) {
    std::lock_guard lock(ops_);
    ctx_.require_readable_state();
    const auto keys = erasure_.next_records(hash_of, cursor, subject_erasure::batch_records);
    more = keys.size() == subject_erasure::batch_records;
    if (keys.empty() && batches != 0) break;
    const bool first = batches++ == 0;
    total.add(erasure_.erase(subject, keys, uid, trigger, std::nullopt, first ? &request : nullptr));
  }
  nlohmann::json receipt{{"subject", to_hex(subject)},
                         {"erased", total.erased},
                         {"values", total.values},
                         {"months", total.months_json()},
                         {"deferred", total.deferred_list},
                         {"deferred_total", total.deferred},
                         {"holds", total.holds},
                         {"batches", batches}};
  std::lock_guard lock(ops_);
  ctx_.require_readable_state();
  const auto op = erasure_.conclude(subject, request, total, uid, trigger, note, control_next);
  shredder_.destroy_unused("erasure", uid);
  // Other actions' journals are finished; the erasure's wait for the purge
  // pass: at once with erasure.purge_after = 0s, else on the purge timer
  // (after_change), never inside the request.
  receipt["purge"] = purger_.finish(purger_.deadline_reached());
  for (const auto& a : after_change()) {
    if (a.op == op) receipt["audit"] = {{"seq", a.seq}, {"hash", a.hash}};
  }
  if (total.erased > 0) {
    receipt["purge_deadline"] = format_rfc3339(request.at + ctx_.config.erasure.purge_after);
  }
  return receipt;
}

std::size_t retention::reapply_ledger() {
  std::size_t n = 0;
  ledger_.for_each([&](ledger_entry&& e) {
    const auto stored = ctx_.state.erasure_request_of(e.subject);
    if (stored && !*stored) throw state_unreadable(ctx_.state.unreadable());
    if (stored && stored->value().done && stored->value().at >= e.at) return;
    const erasure_request request{e.at, e.reason, e.reference};
    const auto receipt = erase_all(e.subject, subject_erasure::hashes_from(e.indexes), request, 0, "ledger",
                                   audit::request_note{e.reason, e.reference, std::nullopt, ledger_.path()});
    spdlog::warn("erasure of subject {} (requested {}) applied again from the ledger: {} record(s) erased",
                 to_hex(e.subject).substr(0, 16), format_rfc3339(e.at), receipt["erased"].get<std::int64_t>());
    ++n;
  });
  return n;
}

nlohmann::json retention::subject_purge(std::string_view trigger, std::uint32_t uid) {
  std::lock_guard lock(ops_);
  ctx_.require_readable_state();
  auto report = purger_.finish(true);
  if (report.empty()) report = {{"erasures", 0}, {"subjects", 0}};
  report["trigger"] = trigger;
  report["requested_by"] = uid;
  after_change();
  return report;
}

nlohmann::json retention::subject_status(std::string_view identifier) const {
  const auto normalized = ctx_.ids.normalize(identifier);
  const auto hash = crypto::hmac_sha256(ctx_.subject_key, normalized);
  nlohmann::json out{{"subject", to_hex(hash)}};
  std::size_t exportable = 0;
  erasure_.for_each_record_of(normalized, [&](const partition&, std::string_view) { ++exportable; });
  out["records_found"] = exportable;
  // The holds that keep its records: an erasure now would be deferred by them.
  auto holding = nlohmann::json::array();
  for (const auto& [id, records] : erasure_.holds_over(normalized, hash)) {
    const auto h = hold_of(id);
    holding.push_back(
        {{"id", id}, {"records", records}, {"reason", h ? h->reason : ""}, {"reference", h ? h->reference : ""}});
  }
  out["holds"] = holding;
  const auto request = ctx_.state.erasure_request_of(hash);
  if (!request) {
    // "held": no erasure asked, and holds keep some of its records.
    out["state"] = holding.empty() ? "none" : "held";
    return out;
  }
  if (!*request) throw state_unreadable(ctx_.state.unreadable());
  const auto& r = request->value();
  out["requested_at"] = format_rfc3339(r.at);
  if (!r.reason.empty()) out["reason"] = r.reason;
  if (!r.reference.empty()) out["reference"] = r.reference;
  const auto [pending, deadline] = ctx_.journals.of_subject(hash);
  std::size_t deferred = 0;
  const auto bad = ctx_.state.for_each_deferred([&](const store::chunk_id& id, const deferred_erasure& d) {
    if (id.subject == hash) deferred += d.record_keys.size();
  });
  if (!bad.empty()) throw state_unreadable(ctx_.state.unreadable());
  out["pending_purges"] = pending;
  out["deferred_records"] = deferred;
  if (deadline) {
    out["purge_deadline"] = format_rfc3339(*deadline);
    out["overdue"] = ctx_.time.now() > *deadline + pending_purges::grace;
  }
  if (r.purged_at) out["purged_at"] = format_rfc3339(*r.purged_at);
  out["state"] = !r.done ? "in_progress" : deferred > 0 ? "deferred" : pending > 0 ? "hidden" : "purged";
  return out;
}

nlohmann::json retention::clock_confirm(std::uint32_t uid) {
  std::lock_guard lock(ops_);
  const auto now = ctx_.time.now();
  const auto jump = guard_.accept();
  store::change c(ctx_.store);
  const double seconds = std::chrono::duration<double>(jump).count();
  ctx_.record(c, audit::clock_confirmed{now, seconds, uid}, std::nullopt);
  ctx_.store.apply(c);
  audit_.drain();
  spdlog::warn("the wall clock ({}) was confirmed by uid {} (a jump of {:.0f} s accepted): sweeps go on",
               format_rfc3339(now), uid, seconds);
  return {{"wall_clock", format_rfc3339(now)}, {"jump_seconds", seconds}};
}

void retention::dead_letter_opened(const audit::dead_letter_opened& what) {
  std::lock_guard lock(ops_);
  store::change c(ctx_.store);
  ctx_.record(c, what, std::nullopt);
  ctx_.store.apply(c);
  audit_.drain();
}

void retention::subject_exported(std::string_view hash, std::size_t records, std::uint32_t uid,
                                 const audit::request_note& note) {
  std::lock_guard lock(ops_);
  store::change c(ctx_.store);
  ctx_.record(c, audit::subject_exported{to_hex(hash), records, uid, note}, std::nullopt);
  ctx_.store.apply(c);
  audit_.drain();
}

nlohmann::json retention::verify() const {
  std::lock_guard lock(ops_);
  auto out = verifier_.verify();
  // Every hold the audit trail shows added and not released is still kept:
  // a hold record lost from the store (a bug, a hand edit) would let the
  // next sweep remove what it protects, in silence.
  std::set<std::uint64_t> expected;
  audit_.for_each(std::nullopt, [&](const nlohmann::json& line) {
    const auto entry = line.value("entry", nlohmann::json::object());
    const auto action = entry.value("action", std::string());
    const auto id = entry.value(nlohmann::json::json_pointer("/hold/id"), std::uint64_t{0});
    if (id == 0) return;
    if (action == "hold_add") expected.insert(id);
    if (action == "hold_release") expected.erase(id);
  });
  const auto stored = ctx_.state.holds();  // the store itself, not the registry's copy
  for (const auto& [id, h] : stored.items) expected.erase(id);
  for (const auto& bad : stored.unreadable) spdlog::error("verify: saved hold {} does not decode", bad.key);
  if (!stored.unreadable.empty()) expected.clear();  // unreadable: named by the saved-state report instead
  out["holds_missing"] = expected;
  if (!expected.empty()) out["ok"] = false;
  return out;
}

retention::identifiers_view retention::identifiers_of(const store::stored_record& r) const {
  if (!r.identifiers) return {std::nullopt, "none"};
  const auto key = record_key(r.where, r.id);
  auto o = r.identifiers_held
               ? ctx_.open_identifiers(family::held, r.where, held_key(held_tag::identifiers, key), *r.identifiers)
               : ctx_.open_identifiers(family::identifiers, r.where, key, *r.identifiers);
  switch (o.status) {
    case vault::open_status::ok: return {std::move(o.plaintext), "present"};
    case vault::open_status::key_destroyed: return {std::nullopt, "key_destroyed"};
    case vault::open_status::unreadable: return {std::nullopt, "unreadable"};
  }
  return {std::nullopt, "unreadable"};
}

nlohmann::json retention::checkpoint(const std::string& name, std::uint32_t uid) {
  checkpoint_place place(ctx_.config.storage.checkpoint_dir, name);
  std::lock_guard lock(ops_);  // no retention change between the store and the trail
  audit_.drain();
  const auto started = ctx_.time.monotonic();
  progress::scope doing(ctx_.activity, "checkpoint", "steps", 3);  // the store, the audit trail, the commit
  ctx_.store.checkpoint(place.staging());
  doing.step();
  std::error_code ec;
  std::filesystem::copy_file(audit_.path(), place.staging() + "/audit.jsonl", ec);
  if (ec && std::filesystem::exists(audit_.path())) {
    throw std::runtime_error(fmt::format("cannot copy the audit trail into the checkpoint: {}", ec.message()));
  }
  doing.step();
  const auto dir = place.commit();
  doing.step();
  const double seconds = seconds_since(ctx_.time, started);
  spdlog::info("checkpoint of the store written to {} by uid {} in {:.3f}s", dir, uid, seconds);
  return {{"path", dir},
          {"name", name},
          {"seconds", seconds},
          {"keystore", "not included: identifiers in the copy open only with the live key store (" +
                           ctx_.keys.keys().path() + ")"}};
}

metrics::retention_snapshot retention::figures() const {
  metrics::retention_snapshot g;
  const auto active = holds_.active();
  const auto counts = ctx_.store.counts();
  const auto states = effective_states(counts, active);
  const auto now = ctx_.time.now();
  const auto overdue = overdue_of(plan_sweep(ctx_.config.retention, counts, states, active, now));
  g.overdue_partitions = overdue.partitions;
  g.overdue_records = overdue.records;
  if (const auto next = earliest_deadline(ctx_.config.retention, counts, states)) {
    g.next_deadline_seconds = std::chrono::duration<double>(next->time_since_epoch()).count();
  }
  for (const auto a : all_retention_actions) g.records_due_30d[std::string(name(a))] = 0;
  for (const auto& a : plan_sweep(ctx_.config.retention, counts, states, active, now + std::chrono::days(30))) {
    if (!a.deferred()) g.records_due_30d[std::string(name(a.action))] += a.records;
  }
  const auto this_month = month::containing(now);
  for (int i = 0; i < 13; ++i) {
    for (const auto a : all_retention_actions) {
      g.records_due_by_month[{this_month.plus(i).to_string(), std::string(name(a))}] = 0;
    }
  }
  const auto rows = plan_partitions(ctx_.config.retention, counts, states, active);
  for (const auto& [m, actions] : due_by_month(rows, this_month.plus(12))) {
    for (const auto& [a, n] : actions) {
      g.records_due_by_month[{std::max(m, this_month).to_string(), std::string(name(a))}] += n;
    }
  }
  g.audit_verified_at_seconds = audit_verified_at_;
  g.audit_chain_ok = audit_ok_;
  g.holds_active = active.size();
  std::set<std::string, std::less<>> held;
  ctx_.store.scan(family::held, key_range{}, [&](std::string_view key, std::string_view) {
    if (!key.empty() &&
        (key[0] == static_cast<char>(held_tag::record) || key[0] == static_cast<char>(held_tag::identifiers))) {
      held.emplace(key.substr(1));
    }
    return true;
  });
  g.records_held = static_cast<std::int64_t>(held.size());
  g.events_pending = ctx_.state.events_pending();
  g.keys_live = ctx_.keys.keys().live();
  g.keys_destroyed = ctx_.keys.keys().destroyed_total();
  g.decrypt_failures = ctx_.keys.decrypt_failures();
  g.clock_jump_seconds = std::chrono::duration<double>(guard_.jump()).count();
  g.sweeps_paused_clock = guard_.suspect();
  g.erasures_pending_purge = ctx_.journals.subjects();
  g.erasures_purge_overdue = ctx_.journals.overdue_subjects(now);
  if (const auto first = ctx_.journals.first_due()) {
    g.erasure_purge_oldest_age_seconds = std::chrono::duration<double>(now - first->erased_at).count();
  }
  if (const auto o = ctx_.journals.forecast(ctx_.store, now)) {
    g.erasure_purge_forecast_seconds = std::chrono::duration<double>(o->forecast.duration).count();
    g.erasure_purge_forecast_bytes = static_cast<double>(o->forecast.bytes);
    g.erasure_purge_forecast_late_seconds = std::chrono::duration<double>(o->forecast.late_by).count();
  }
  for (const auto k : all_state_kinds) g.saved_state_unreadable[std::string(name(k))] = 0;
  for (const auto& e : ctx_.state.unreadable()) ++g.saved_state_unreadable[std::string(name(e.kind))];
  return g;
}

nlohmann::json retention::clock_report() const { return guard_.status(); }

nlohmann::json retention::purge_forecast_report() const {
  const auto o = ctx_.journals.forecast(ctx_.store, ctx_.time.now());
  if (!o) return nullptr;
  auto out = to_json(o->forecast, o->in);
  out["subjects"] = ctx_.journals.subjects();
  return out;
}

nlohmann::json retention::saved_state_report() const {
  auto list = nlohmann::json::array();
  for (const auto& e : ctx_.state.unreadable()) {
    list.push_back({{"key", e.key}, {"kind", name(e.kind)}, {"reason", e.reason}});
  }
  return {{"ok", list.empty()}, {"unreadable", list}};
}

}  // namespace cdr::service
