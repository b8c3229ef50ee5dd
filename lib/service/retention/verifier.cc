#include "verifier.h"

#include <map>

#include "cdr/core/hex.h"

namespace cdr::service {

std::vector<verifier::check> verifier::partition_checks(std::size_t& live_keys) const {
  // A stripped partition's key must be gone too: every generation of it.
  const auto live = ctx_.keys.live_generations();
  std::vector<check> out;
  for (const auto& [p, st] : ctx_.store.states()) {
    const auto action = action_done(p, st);
    if (!action) continue;
    auto item = partition_json(p);
    item["state"] = st.dropped ? "dropped" : "stripped";
    const auto it = live.find({key_scope::partition, p});
    const bool key_live = it != live.end();
    live_keys += key_live ? 1 : 0;
    // "none": every record arrived after the deadline, unsealed (or was
    // stored by a build that did not seal usage data).
    item["key"] = key_live ? "live" : ctx_.keys.destroyed(key_scope::partition, p) ? "destroyed" : "none";
    if (key_live) item["key_generations"] = it->second;
    out.push_back({std::move(item), removals_of(*action, p)});
  }
  return out;
}

std::vector<verifier::check> verifier::subject_checks() const {
  // A subject's chunks come in a row (keyed by subject, then chunk).
  std::vector<check> out;
  std::string last;
  const auto pending = ctx_.journals.all();
  const auto bad = ctx_.state.for_each_erased([&](const store::chunk_id& id, const erased_subject& e) {
    if (pending.contains(id.chunk)) return;  // listed under pending_purges
    if (out.empty() || id.subject != last) {
      out.push_back({{{"subject", to_hex(id.subject)}, {"keys", 0}}, {}});
      last = id.subject;
    }
    auto& c = out.back();
    c.report["keys"] = c.report["keys"].get<std::size_t>() + e.keys.size();
    for (const auto& k : e.keys) c.ranges.push_back({k.where, point_range(k.key), k.resealed});
  });
  if (!bad.empty()) throw state_unreadable(ctx_.state.unreadable());
  return out;
}

nlohmann::json verifier::pending_purge_report(std::size_t& overdue) const {
  struct subject_pending {
    std::size_t erasures = 0;
    instant erased_at = instant::max();
    instant purge_by = instant::max();
  };
  std::map<std::string, subject_pending> by_subject;
  for (const auto& [op, e] : ctx_.journals.all()) {
    auto& s = by_subject[e.subject];
    ++s.erasures;
    s.erased_at = std::min(s.erased_at, e.erased_at);
    s.purge_by = std::min(s.purge_by, e.purge_by);
  }
  const auto now = ctx_.time.now();
  auto out = nlohmann::json::array();
  for (const auto& [subject, s] : by_subject) {
    const bool late = now > s.purge_by + pending_purges::grace;
    overdue += late ? 1 : 0;
    out.push_back({{"subject", to_hex(subject)},
                   {"erasures", s.erasures},
                   {"erased_at", format_rfc3339(s.erased_at)},
                   {"purge_deadline", format_rfc3339(s.purge_by)},
                   {"overdue", late}});
  }
  return out;
}

nlohmann::json verifier::verify() const {
  std::size_t live_keys = 0;
  auto checks = partition_checks(live_keys);
  for (auto& c : subject_checks()) checks.push_back(std::move(c));
  std::vector<removal> ranges;
  std::vector<std::size_t> owner;  // index into checks, per range
  for (std::size_t i = 0; i < checks.size(); ++i) {
    for (const auto& r : checks[i].ranges) {
      ranges.push_back(r);
      owner.push_back(i);
    }
  }
  progress::scope doing(ctx_.activity, "verify", "files", 0);
  const auto disk = ctx_.store.check_on_disk(
      ranges, [&](std::size_t done, std::size_t total, std::uint64_t bytes) { doing.set(done, total, bytes); });
  std::vector<std::size_t> found(checks.size(), 0);
  for (const auto& res : disk.residues) {
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      const auto& r = ranges[i].range;
      if (ranges[i].family == res.where && res.key >= r.begin && res.key < r.end) {
        ++found[owner[i]];
        break;
      }
    }
  }
  auto partitions = nlohmann::json::array();
  auto subjects = nlohmann::json::array();
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto& item = checks[i].report;
    item["keys_on_disk"] = found[i];
    item["ok"] = found[i] == 0 && item.value("key", "none") != "live";
    (item.contains("subject") ? subjects : partitions).push_back(std::move(item));
  }
  auto samples = nlohmann::json::array();
  for (std::size_t i = 0; i < disk.residues.size() && i < 20; ++i) {
    samples.push_back({{"family", name(disk.residues[i].where)},
                       {"file", disk.residues[i].file},
                       {"key", to_hex(disk.residues[i].key)}});
  }
  const auto& keys = ctx_.keys.keys();
  std::size_t overdue = 0;
  auto pending = pending_purge_report(overdue);
  return {{"ok", disk.residues.empty() && live_keys == 0 && overdue == 0},
          {"pending_purges", std::move(pending)},
          {"purges_overdue", overdue},
          {"keystore",
           {{"path", keys.path()},
            {"keys_live", keys.live()},
            {"keys_destroyed", keys.destroyed_total()},
            {"stripped_partitions_with_live_keys", live_keys}}},
          {"sst_files_read", disk.sst_files_read},
          {"wal_files", disk.wal_files},
          {"partitions", partitions},
          {"subjects", subjects},
          {"residues", samples}};
}

}  // namespace cdr::service
