// A member's drain (docs/operations.md, "Drain before scale-down"): its
// records as events for the others, then its store emptied.
#include <set>

#include <spdlog/spdlog.h>

#include "retention.h"

namespace cdr::service {
namespace {

// The stored halves joined back into one event: the metadata's members,
// then the identifiers' (both compact JSON objects as ingest split them),
// so the receiver's split and content digest are the original's.
std::string joined(const std::string& metadata, const std::optional<std::string>& identifiers) {
  if (!identifiers || identifiers->size() <= 2) return metadata;
  if (metadata.size() < 2 || metadata.back() != '}' || identifiers->front() != '{') {
    auto j = nlohmann::json::parse(metadata);
    j.update(nlohmann::json::parse(*identifiers));
    return j.dump();
  }
  return metadata.substr(0, metadata.size() - 1) + (metadata.size() > 2 ? "," : "") + identifiers->substr(1);
}

}  // namespace

void retention::for_each_handover_event(
    const std::function<void(std::string_view id, const std::string& event)>& fn) const {
  const auto send = [&](const partition& p, std::string_view id) {
    const auto r = ctx_.store.get_at(p, id);
    if (!r) return;
    const auto ids = identifiers_of(*r);
    if (!ids.json && (ids.status == "unreadable")) {
      throw std::runtime_error(
          fmt::format("{} {}: its identifiers do not open; nothing is handed over until it does", name(p.kind), id));
    }
    fn(id, joined(r->metadata, ids.json));
  };
  for (const auto kind : {record_kind::cdr, record_kind::usage}) {
    ctx_.store.for_each_record(kind, [&](const partition& p, std::string_view id, bool) { send(p, id); });
  }
  // Held copies whose partition is gone (dropped, a hold kept them); one
  // still in its partition was sent above. (A point read per held copy, not
  // a set of every id sent: memory does not grow with the store.)
  ctx_.store.scan(family::held, key_range{}, [&](std::string_view key, std::string_view) {
    if (key.empty() || key[0] != static_cast<char>(held_tag::record)) return true;
    const auto record_key = key.substr(1);
    const auto p = decode_partition(record_key);
    if (p && !ctx_.store.value(record_family(p->kind), record_key)) send(*p, record_id_of(record_key));
    return true;
  });
}

nlohmann::json retention::empty_store(const nlohmann::json& report, std::uint32_t uid) {
  std::lock_guard lock(ops_);
  ctx_.require_readable_state();
  std::vector<removal> removals;
  store::change c(ctx_.store);
  std::int64_t records = 0;
  std::set<partition> parts;
  for (const auto& [p, n] : ctx_.store.counts()) {
    records += n;
    parts.insert(p);
  }
  for (const auto& [p, st] : ctx_.store.states()) parts.insert(p);
  for (const auto& p : parts) {
    for (auto& r : removals_of(drop_action(p.kind), p)) {
      c.remove_range(r.family, r.range);
      removals.push_back(std::move(r));
    }
    c.set_state(p, partition_state{true, true});
  }
  // The held copies and their ids (kept by the id compaction otherwise).
  std::size_t held = 0;
  ctx_.store.scan(family::held, key_range{}, [&](std::string_view key, std::string_view) {
    if (!key.empty() && key[0] == static_cast<char>(held_tag::record)) {
      if (const auto p = decode_partition(key.substr(1))) c.remove_id(p->kind, record_id_of(key.substr(1)));
      ++held;
    }
    return true;
  });
  // Every held key starts with a tag character below 0xff.
  const key_range all_held{"", std::string(1, '\xff')};
  c.remove_range(family::held, all_held);
  removals.push_back({family::held, all_held});
  const audit::store_drained entry{report, records, static_cast<std::int64_t>(held), uid};
  ctx_.record(c, entry, std::nullopt);
  ctx_.store.apply(c);
  audit_.drain();
  // Nothing stays readable: the files are rewritten without the keys, and
  // the keys that sealed them are gone.
  const auto residues = ctx_.store.purge(removals);
  const auto destroyed = ctx_.keys.destroy(ctx_.keys.live());
  spdlog::warn("drain by uid {}: store emptied ({} records, {} held copies), {} data keys destroyed", uid, records,
               held, destroyed.size());
  return {{"records_removed", records},
          {"held_copies_removed", held},
          {"partitions_dropped", parts.size()},
          {"keys_destroyed", destroyed.size()},
          {"residues", residues.size()}};
}

}  // namespace cdr::service
