#include "shredder.h"

#include <spdlog/spdlog.h>

#include "../failpoint.h"

namespace cdr::service {

std::vector<std::pair<key_scope, partition>> key_shredder::unused() const {
  const auto states = ctx_.store.states();
  std::vector<std::pair<key_scope, partition>> out;
  for (const auto& [scope, p] : ctx_.keys.live()) {
    if (scope == key_scope::partition) {
      const auto st = states.find(p);
      if (st != states.end() && (st->second.stripped || st->second.dropped)) out.emplace_back(scope, p);
      continue;
    }
    bool any = false;
    ctx_.store.scan(family::held, prefix_range(held_key(held_tag::identifiers, partition_prefix(p))),
                    [&](std::string_view, std::string_view) { return !(any = true); });
    if (!any) out.emplace_back(scope, p);
  }
  return out;
}

nlohmann::json key_shredder::destroy_unused(std::string_view trigger, std::uint32_t uid) {
  // Exclusive: no ingest batch is sealing under these keys meanwhile, and
  // the store shows every batch sealed before.
  const auto guard = ctx_.keys.exclusive();
  const auto which = unused();
  auto names = nlohmann::json::array();
  if (which.empty()) return names;
  failpoint("before_key_destruction");
  for (const auto& [scope, p] : which) names.push_back(key_name(scope, p));
  // Journalled first: the audit entry follows with the purge, and a crash
  // after this commit still leaves the keys to the next start's pass.
  store::change c(ctx_.store);
  ctx_.journal(c, {}, audit::keys_destroyed{names.get<std::vector<std::string>>(), std::string(trigger), uid},
               std::nullopt);
  ctx_.store.apply(c);
  const auto destroyed = ctx_.keys.destroy(which);
  spdlog::info("destroyed {} data key(s) ({}): {}", destroyed.size(), trigger, names.dump());
  return names;
}

}  // namespace cdr::service
