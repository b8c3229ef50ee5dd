#include "purger.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"

namespace cdr::service {

void pending_purges::load(store::saved_state& state) {
  std::map<std::uint64_t, entry> found;
  state.for_each_journal([&](std::uint64_t op, journal_entry&& j) {
    if (!j.purge_by) return;
    const auto subject = from_hex(j.audit.value("subject", ""));
    const auto erased = parse_rfc3339(j.audit.value("erased_at", ""));
    found[op] = {subject.value_or(""), erased.value_or(*j.purge_by), *j.purge_by};
  });
  std::lock_guard lock(mutex_);
  by_op_ = std::move(found);
}

void pending_purges::add(std::uint64_t op, entry e) {
  std::lock_guard lock(mutex_);
  by_op_[op] = std::move(e);
}

void pending_purges::remove(std::uint64_t op) {
  std::lock_guard lock(mutex_);
  by_op_.erase(op);
}

std::map<std::uint64_t, pending_purges::entry> pending_purges::all() const {
  std::lock_guard lock(mutex_);
  return by_op_;
}

bool pending_purges::contains(std::uint64_t op) const {
  std::lock_guard lock(mutex_);
  return by_op_.contains(op);
}

std::optional<pending_purges::entry> pending_purges::first_due() const {
  std::lock_guard lock(mutex_);
  const auto it = std::min_element(by_op_.begin(), by_op_.end(),
                                   [](const auto& a, const auto& b) { return a.second.purge_by < b.second.purge_by; });
  if (it == by_op_.end()) return std::nullopt;
  return it->second;
}

std::size_t pending_purges::subjects() const {
  std::lock_guard lock(mutex_);
  std::set<std::string_view> s;
  for (const auto& [op, e] : by_op_) s.insert(e.subject);
  return s.size();
}

std::size_t pending_purges::overdue_subjects(instant now) const {
  std::lock_guard lock(mutex_);
  std::set<std::string_view> s;
  for (const auto& [op, e] : by_op_) {
    if (now > e.purge_by + grace) s.insert(e.subject);
  }
  return s.size();
}

bool purger::erasures_due() const {
  const auto first = pending_.first_due();
  return first && first->purge_by <= ctx_.time.now();
}

nlohmann::json purger::finish(bool erasures) {
  // An unreadable journal names ranges that may still be on disk: finishing
  // the others would audit them as done while it is not.
  store::purge_pass pass(ctx_.store);
  std::set<std::uint64_t> ops;
  std::set<std::string> subjects;
  const auto taken = [&](const journal_entry& j) { return erasures || !j.purge_by; };
  const auto collect = ctx_.state.for_each_journal([&](std::uint64_t op, journal_entry&& j) {
    if (!taken(j)) return;
    ops.insert(op);
    if (j.purge_by) {
      if (auto s = from_hex(j.audit.value("subject", ""))) subjects.insert(std::move(*s));
    }
    for (const auto& r : j.removals) pass.add(r);
  });
  if (!collect.empty()) throw state_unreadable(ctx_.state.unreadable());
  if (ops.empty()) return nlohmann::json::object();
  const auto started = ctx_.time.monotonic();
  pass.run();
  const double seconds = seconds_since(ctx_.time, started);
  std::size_t residues = 0;
  std::optional<store::residue> first;
  ctx_.state.for_each_journal([&](std::uint64_t op, journal_entry&& j) {
    if (!ops.contains(op)) return;
    const auto left = ctx_.store.check_files(j.removals).residues;
    residues += left.size();
    if (!first && !left.empty()) first = left.front();
  });
  if (first) {
    spdlog::error("{} removed key(s) are still on disk after the purge (first in {} of {})", residues, first->file,
                  name(first->where));
  }
  const auto now = ctx_.time.now();
  auto c = std::make_unique<store::change>(ctx_.store);
  std::size_t in_commit = 0;
  std::size_t erasure_journals = 0;
  const auto next_commit = [&] {
    if (++in_commit < journals_per_commit) return;
    ctx_.store.apply(*c);
    c = std::make_unique<store::change>(ctx_.store);
    in_commit = 0;
  };
  ctx_.state.for_each_journal([&](std::uint64_t op, journal_entry&& j) {
    if (!ops.contains(op)) return;
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
  for (const auto op : ops) pending_.remove(op);
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
