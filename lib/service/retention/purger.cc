#include "purger.h"

#include <spdlog/spdlog.h>

namespace cdr::service {

nlohmann::json purger::finish() {
  auto journals = ctx_.state.journals();
  // An unreadable journal names ranges that may still be on disk: finishing
  // the others would audit them as done while it is not.
  if (!journals.unreadable.empty()) throw state_unreadable(ctx_.state.unreadable());
  if (journals.items.empty()) return nlohmann::json::object();
  std::vector<removal> ranges;
  for (const auto& [op, j] : journals.items) ranges.insert(ranges.end(), j.removals.begin(), j.removals.end());
  const auto started = ctx_.time.monotonic();
  const auto residues = ctx_.store.purge(ranges);
  const double seconds = seconds_since(ctx_.time, started);
  if (!residues.empty()) {
    spdlog::error("{} removed key(s) are still on disk after the purge (first in {} of {})", residues.size(),
                  residues.front().file, name(residues.front().where));
  }
  const auto now = ctx_.time.now();
  store::change c(ctx_.store);
  for (auto& [op, j] : journals.items) {
    j.audit["purge_seconds"] = seconds;
    j.audit["residues"] = residues.size();
    ctx_.audit.stage(c, op, std::move(j.audit), now);
    if (j.event) ctx_.state.put_event(c, *j.event);
    ctx_.state.remove_journal(c, op);
  }
  ctx_.store.apply(c);
  return {{"actions", journals.items.size()},
          {"ranges", ranges.size()},
          {"seconds", seconds},
          {"residues", residues.size()}};
}

}  // namespace cdr::service
