#include "vault.h"

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

namespace cdr::service {
namespace {

constexpr char generation_tag = 0x02;
constexpr std::size_t generation_header = 5;
// Seals reserved per key-store write: one write per million values.
constexpr std::uint64_t reservation_block = 1 << 20;

}  // namespace

vault::entry* vault::find(key_scope scope, const partition& p, bool create) {
  const auto slot = std::pair{scope, p};
  if (auto it = cache_.find(slot); it != cache_.end() && (it->second || !create)) return it->second.get();
  const auto name = key_name(scope, p);
  const auto key = create ? keys_.get_or_create(name, scope == key_scope::held) : keys_.get(name);
  auto& e = cache_[slot];
  e = key ? std::make_unique<entry>(*key) : nullptr;
  if (e) {
    // Sealing goes on under the newest generation.
    for (const auto& n : keys_.names()) {
      const auto ref = parse_key_name(n);
      if (ref && ref->scope == scope && ref->p == p) e->generation = std::max(e->generation, ref->generation);
    }
  }
  return e.get();
}

crypto::aead* vault::cipher(key_scope scope, const partition& p, entry& e, std::uint32_t generation) {
  auto& c = e.ciphers[generation];
  if (!c) {
    const auto key = keys_.get(key_name(scope, p, generation));
    if (!key) {
      e.ciphers.erase(generation);
      return nullptr;
    }
    c = std::make_unique<crypto::aead>(key->cipher);
  }
  return c.get();
}

bool vault::reserve(key_scope scope, const partition& p, entry& e) {
  for (;;) {
    const auto granted =
        keys_.reserve(key_name(scope, p, e.generation), std::min(reservation_block, max_seals_), max_seals_);
    if (granted > 0) {
      e.left = granted;
      return true;
    }
    // This generation has sealed all it may: the partition goes on under
    // the next one.
    if (e.generation == std::numeric_limits<std::uint32_t>::max()) {
      throw crypto::keystore_error("the key of " + p.to_string() + " has no generation left");
    }
    if (!keys_.get_or_create(key_name(scope, p, e.generation + 1), scope == key_scope::held)) return false;
    ++e.generation;
    spdlog::info("key {} reached storage.max_seals_per_key ({}): its partition continues under generation {}",
                 key_name(scope, p), max_seals_, e.generation);
  }
}

bool vault::seal_indexed(key_scope scope, const partition& p, std::string_view associated_data,
                         std::string_view plaintext, const std::vector<std::string>& normalized, std::string& sealed,
                         std::vector<std::string>& hashes) {
  std::lock_guard lock(mutex_);
  auto* e = find(scope, p, true);
  if (e == nullptr || (e->left == 0 && !reserve(scope, p, *e))) return false;
  auto* c = cipher(scope, p, *e, e->generation);
  if (c == nullptr) return false;  // destroyed under us: the batch is built again
  --e->left;
  sealed.clear();
  if (e->generation > 0) {
    sealed.push_back(generation_tag);
    for (int shift = 24; shift >= 0; shift -= 8) sealed.push_back(static_cast<char>((e->generation >> shift) & 0xff));
  }
  c->seal_to(sealed, plaintext, associated_data);
  hashes.resize(normalized.size());
  for (std::size_t i = 0; i < normalized.size(); ++i) hashes[i] = e->index(normalized[i]);
  return true;
}

std::optional<std::string> vault::index_hash(key_scope scope, const partition& p, std::string_view normalized) {
  std::lock_guard lock(mutex_);
  auto* e = find(scope, p, false);
  if (e == nullptr) return std::nullopt;
  return e->index(normalized);
}

vault::opened vault::open(key_scope scope, const partition& p, std::string_view associated_data,
                          std::string_view sealed) {
  std::lock_guard lock(mutex_);
  auto* e = find(scope, p, false);
  if (e == nullptr) return {open_status::key_destroyed, {}};
  std::uint32_t generation = 0;
  if (!sealed.empty() && sealed.front() == generation_tag) {
    if (sealed.size() < generation_header) {
      ++decrypt_failures_;
      return {open_status::unreadable, {}};
    }
    for (std::size_t i = 1; i < generation_header; ++i) {
      generation = (generation << 8) | static_cast<unsigned char>(sealed[i]);
    }
    sealed.remove_prefix(generation_header);
  }
  auto* c = cipher(scope, p, *e, generation);
  auto plain = c ? c->open(sealed, associated_data) : std::nullopt;
  if (!plain) {
    ++decrypt_failures_;
    return {open_status::unreadable, {}};
  }
  return {open_status::ok, std::move(*plain)};
}

std::map<std::pair<key_scope, partition>, std::uint32_t> vault::live_generations() const {
  std::map<std::pair<key_scope, partition>, std::uint32_t> out;
  for (const auto& name : keys_.names()) {
    if (const auto k = parse_key_name(name)) ++out[{k->scope, k->p}];
  }
  return out;
}

std::vector<std::pair<key_scope, partition>> vault::live() const {
  // Every generation goes with the first: one entry per key.
  std::vector<std::pair<key_scope, partition>> out;
  for (const auto& [key, n] : live_generations()) out.push_back(key);
  return out;
}

std::vector<std::string> vault::generation_names(const std::vector<std::pair<key_scope, partition>>& which) const {
  std::vector<std::string> names;
  for (const auto& name : keys_.names()) {
    const auto k = parse_key_name(name);
    if (k && std::find(which.begin(), which.end(), std::pair{k->scope, k->p}) != which.end()) names.push_back(name);
  }
  return names;
}

std::vector<std::string> vault::destroy(const std::vector<std::pair<key_scope, partition>>& which) {
  std::lock_guard lock(mutex_);
  auto done = keys_.destroy(generation_names(which));
  for (const auto& k : which) cache_.erase(k);
  ++epoch_;
  return done;
}

bool vault::destroyed(key_scope scope, const partition& p) const { return keys_.destroyed(key_name(scope, p)); }

std::uint32_t vault::generations(key_scope scope, const partition& p) const {
  const auto all = live_generations();
  const auto it = all.find({scope, p});
  return it == all.end() ? 0 : it->second;
}

}  // namespace cdr::service
