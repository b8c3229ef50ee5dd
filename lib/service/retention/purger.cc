#include "purger.h"

#include <spdlog/spdlog.h>

namespace cdr::service {

nlohmann::json purger::finish() {
  // An unreadable journal names ranges that may still be on disk: finishing
  // the others would audit them as done while it is not.
  store::purge_pass pass(ctx_.store);
  std::size_t journals = 0;
  const auto collect = ctx_.state.for_each_journal([&](std::uint64_t, journal_entry&& j) {
    ++journals;
    for (const auto& r : j.removals) pass.add(r);
  });
  if (!collect.empty()) throw state_unreadable(ctx_.state.unreadable());
  if (journals == 0) return nlohmann::json::object();
  const auto started = ctx_.time.monotonic();
  pass.run();
  const double seconds = seconds_since(ctx_.time, started);
  std::size_t residues = 0;
  std::optional<store::residue> first;
  ctx_.state.for_each_journal([&](std::uint64_t, journal_entry&& j) {
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
  ctx_.state.for_each_journal([&](std::uint64_t op, journal_entry&& j) {
    j.audit["purge_seconds"] = seconds;
    j.audit["residues"] = residues;
    ctx_.audit.stage(*c, op, std::move(j.audit), now);
    if (j.event) ctx_.state.put_event(*c, *j.event);
    ctx_.state.remove_journal(*c, op);
    if (++in_commit == journals_per_commit) {
      ctx_.store.apply(*c);
      c = std::make_unique<store::change>(ctx_.store);
      in_commit = 0;
    }
  });
  if (!c->empty()) ctx_.store.apply(*c);
  return {{"actions", journals}, {"ranges", pass.ranges()}, {"seconds", seconds}, {"residues", residues}};
}

}  // namespace cdr::service
