#include "keys.h"

#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/store/durability.h"

namespace cdr::service {

std::unique_ptr<crypto::keystore> open_keystore(const storage_config& c, bool new_keystore, bool new_store) {
  // The power-loss simulation (tests only) follows the key store's writes too.
  if (store::durability::armed()) {
    crypto::set_durability_hooks({store::durability::created, store::durability::synced, store::durability::set_aside,
                                  store::durability::renaming, store::durability::dir_synced});
  }
  auto master = crypto::load_master_key(c.master_key_file);
  const bool exists = crypto::keystore::exists(c.keystore_path);
  const bool store_exists = std::filesystem::exists(std::filesystem::path(c.path) / "CURRENT");
  if (!exists && store_exists && !new_keystore) {
    throw std::runtime_error(fmt::format(
        "the key store {} (storage.keystore_path) is missing, but the store at {} exists: restore the key store "
        "from its backup (docs/operations.md, \"Key store\"); or, if it is lost for good, start once with "
        "--new-keystore, knowing that the identifiers already stored stay unreadable",
        c.keystore_path, c.path));
  }
  if (!exists) {
    const auto dir = std::filesystem::path(c.keystore_path).parent_path();
    if (!dir.empty()) {
      std::filesystem::create_directories(dir);
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    }
    spdlog::warn("creating a new key store at {}", c.keystore_path);
  }
  auto keys = std::make_unique<crypto::keystore>(c.keystore_path, std::move(master), !exists);
  if (!store_exists && keys->has_marker(store_bound_marker)) {
    if (!new_store) {
      throw std::runtime_error(fmt::format(
          "the store at {} (storage.path) is missing or empty, but the key store {} shows one was created there: "
          "legal holds, records, offsets and the audit trail would silently start over. If the directory was "
          "moved or lost, put it back or restore it from a checkpoint (docs/operations.md, \"Backups\"); to "
          "start deliberately with an empty store, start once with --new-store",
          c.path, c.keystore_path));
    }
    spdlog::warn("--new-store: starting with an empty store at {} although one existed", c.path);
  }
  spdlog::info("key store {} open: {} live key(s), {} destroyed", c.keystore_path, keys->live(),
               keys->destroyed_total());
  return keys;
}

void bind_keystore(store::store& s, store::saved_state& state, crypto::keystore& keys, bool new_keystore) {
  const auto id = cdr::to_hex(keys.id());
  const auto bound = state.keystore_binding();
  if (bound && !*bound) {
    throw std::runtime_error(
        fmt::format("the store's record of its key store does not decode ({}); the store may be "
                    "damaged: restore it from a checkpoint (docs/operations.md)",
                    bound->error()));
  }
  if (!keys.has_marker(store_bound_marker)) keys.add_marker(store_bound_marker);
  if (bound && bound->value() == id) return;
  if (bound && !new_keystore) {
    throw std::runtime_error(fmt::format(
        "the store was written under key store {} but {} is key store {}: point storage.keystore_path at the "
        "right one (or start with --new-keystore if it is lost for good)",
        bound->value(), keys.path(), id));
  }
  if (bound) spdlog::warn("--new-keystore: identifiers sealed under key store {} stay unreadable", bound->value());
  store::change c(s);
  state.put_keystore_binding(c, id);
  s.apply(c);
}

}  // namespace cdr::service
