#include "purger.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"

namespace cdr::service {

bool purger::deadline_reached() const {
  const auto first = ctx_.journals.first_due();
  return first && first->purge_by <= ctx_.time.now();
}

bool purger::erasures_due() const {
  // Due once the forecast says to start: early enough to end by the
  // earliest deadline.
  const auto now = ctx_.time.now();
  const auto o = ctx_.journals.forecast(ctx_.store, now);
  return o && o->forecast.starts_at <= now;
}

nlohmann::json purger::finish(bool erasures) {
  // The journals to finish, one at a time: with `erasures` every journal;
  // else only the other actions' (read by number: the erasures' pending
  // journals, thousands of them, are never read to be skipped). An
  // unreadable journal names ranges that may still be on disk: finishing
  // the others would audit them as done while it is not.
  const auto actions = ctx_.journals.actions();
  if (!erasures && actions.empty()) return nlohmann::json::object();
  const auto each = [&](const std::function<void(std::uint64_t, journal_entry &&)>& fn) {
    if (erasures) {
      if (!ctx_.state.for_each_journal(fn).empty()) throw state_unreadable(ctx_.state.unreadable());
      return;
    }
    for (const auto op : actions) {
      auto j = ctx_.state.journal(op);
      if (!j) continue;  // finished already
      if (!*j) throw state_unreadable(ctx_.state.unreadable());
      fn(op, std::move(*j).value());
    }
  };
  store::purge_pass pass(ctx_.store);
  std::set<std::uint64_t> ops;
  std::set<std::string> subjects;
  each([&](std::uint64_t op, journal_entry&& j) {
    ops.insert(op);
    if (j.purge_by) {
      if (auto s = from_hex(j.audit.value("subject", ""))) subjects.insert(std::move(*s));
    }
    for (const auto& r : j.removals) pass.add(r);
  });
  if (ops.empty()) {
    for (const auto op : actions) ctx_.journals.remove(op);
    return nlohmann::json::object();
  }
  const auto started = ctx_.time.monotonic();
  progress::scope doing(ctx_.activity, erasures ? "purge" : "sweep purge", "compactions", 0);
  pass.set_progress([&](std::size_t done, std::size_t total, std::uint64_t) { doing.set(done, total, 0); });
  if (erasures) ctx_.journals.pass_started(ctx_.time.now());
  try {
    pass.run();
  } catch (...) {
    if (erasures) ctx_.journals.pass_ended(0, 0);
    throw;
  }
  const double seconds = seconds_since(ctx_.time, started);
  const auto rate = erasures ? ctx_.journals.pass_ended(pass.bytes_rewritten(), seconds) : std::nullopt;
  // Every journal's ranges checked at once: each file overlapping them is
  // opened once, not once per journal.
  std::vector<removal> removed;
  each([&](std::uint64_t, journal_entry&& j) {
    removed.insert(removed.end(), std::make_move_iterator(j.removals.begin()),
                   std::make_move_iterator(j.removals.end()));
  });
  const auto left = ctx_.store.check_files(removed).residues;
  removed = {};
  const std::size_t residues = left.size();
  const std::optional<store::residue> first = left.empty() ? std::nullopt : std::optional(left.front());
  if (first) {
    spdlog::error("{} removed key(s) are still on disk after the purge (first in {} of {})", residues, first->file,
                  name(first->where));
  }
  const auto now = ctx_.time.now();
  auto c = std::make_unique<store::change>(ctx_.store);
  if (rate) ctx_.state.put_counter(*c, store::counter_name::purge_rate, *rate);
  std::size_t in_commit = 0;
  std::size_t erasure_journals = 0;
  const auto next_commit = [&] {
    if (++in_commit < journals_per_commit) return;
    ctx_.store.apply(*c);
    c = std::make_unique<store::change>(ctx_.store);
    in_commit = 0;
  };
  each([&](std::uint64_t op, journal_entry&& j) {
    j.audit["purge_seconds"] = seconds;
    j.audit["residues"] = residues;
    if (j.purge_by) {
      ++erasure_journals;
      j.audit["bytes_rewritten"] = pass.bytes_rewritten();
      j.audit["purge_deadline"] = format_rfc3339(*j.purge_by);
    }
    ctx_.audit.stage(*c, op, std::move(j.audit), now);
    if (j.event) ctx_.state.put_event(*c, *j.event);
    ctx_.state.remove_journal(*c, op);
    next_commit();
  });
  // Each purged subject's request says when (subject status shows it).
  for (const auto& subject : subjects) {
    auto request = ctx_.state.erasure_request_of(subject);
    if (!request || !*request) continue;
    auto r = std::move(*request).value();
    r.purged_at = now;
    ctx_.state.put_erasure_request(*c, subject, r);
    next_commit();
  }
  if (!c->empty()) ctx_.store.apply(*c);
  for (const auto op : ops) ctx_.journals.remove(op);
  nlohmann::json out{{"actions", ops.size()}, {"ranges", pass.ranges()}, {"seconds", seconds}, {"residues", residues}};
  if (erasures) {
    out["erasures"] = erasure_journals;
    out["subjects"] = subjects.size();
    out["bytes_rewritten"] = pass.bytes_rewritten();
    if (erasure_journals > 0) {
      ctx_.probe.erasure_purge(seconds, pass.bytes_rewritten());
      spdlog::info("erasure purge: {} erasure(s) of {} subject(s) purged from disk in {:.3f}s ({} bytes rewritten)",
                   erasure_journals, subjects.size(), seconds, pass.bytes_rewritten());
    }
  }
  return out;
}

}  // namespace cdr::service
