#include "vault.h"

namespace cdr::service {

vault::entry* vault::find(key_scope scope, const partition& p, bool create) {
  const auto slot = std::pair{scope, p};
  if (auto it = cache_.find(slot); it != cache_.end() && (it->second || !create)) return it->second.get();
  const auto name = key_name(scope, p);
  const auto key = create ? keys_.get_or_create(name, scope == key_scope::held) : keys_.get(name);
  auto& e = cache_[slot];
  e = key ? std::make_unique<entry>(*key) : nullptr;
  return e.get();
}

bool vault::seal_indexed(key_scope scope, const partition& p, std::string_view associated_data,
                         std::string_view plaintext, const std::vector<std::string>& normalized,
                         std::string& sealed, std::vector<std::string>& hashes) {
  std::lock_guard lock(mutex_);
  auto* e = find(scope, p, true);
  if (e == nullptr) return false;
  sealed.clear();
  e->cipher.seal_to(sealed, plaintext, associated_data);
  hashes.resize(normalized.size());
  for (std::size_t i = 0; i < normalized.size(); ++i) hashes[i] = e->index(normalized[i]);
  return true;
}

std::optional<std::string> vault::index_hash(key_scope scope, const partition& p,
                                             std::string_view normalized) {
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
  auto plain = e->cipher.open(sealed, associated_data);
  if (!plain) {
    ++decrypt_failures_;
    return {open_status::unreadable, {}};
  }
  return {open_status::ok, std::move(*plain)};
}

std::vector<std::pair<key_scope, partition>> vault::live() const {
  std::vector<std::pair<key_scope, partition>> out;
  for (const auto& name : keys_.names()) {
    if (auto k = parse_key_name(name)) out.push_back(*k);
  }
  return out;
}

std::vector<std::string> vault::destroy(const std::vector<std::pair<key_scope, partition>>& which) {
  std::vector<std::string> names;
  for (const auto& [scope, p] : which) names.push_back(key_name(scope, p));
  std::lock_guard lock(mutex_);
  auto done = keys_.destroy(names);
  for (const auto& k : which) cache_.erase(k);
  ++epoch_;
  return done;
}

bool vault::destroyed(key_scope scope, const partition& p) const {
  return keys_.destroyed(key_name(scope, p));
}

}  // namespace cdr::service
