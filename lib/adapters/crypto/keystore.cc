#include "cdr/crypto/keystore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "cdr/core/hex.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"

namespace cdr::crypto {
namespace {

constexpr int file_format = 1;
constexpr std::string_view check_marker = "cdr-retention key store";

std::string errno_text() { return std::strerror(errno); }

// The key-encryption key: the master key file's bytes through HMAC, so any
// file of at least 32 random bytes serves.
std::string kek_of(const std::string& master) { return hmac_sha256(master, "cdr-retention key store KEK v1"); }

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw keystore_error("cannot write " + what + ": " + errno_text());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

durability_hooks& hooks() {
  static durability_hooks h;
  return h;
}

void sync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw keystore_error("cannot open directory " + dir.string() + ": " + errno_text());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw keystore_error("cannot sync directory " + dir.string() + ": " + errno_text());
  if (hooks().dir_synced) hooks().dir_synced(dir.empty() ? "." : dir.string());
}

// A record's associated data: bound to this key store and to its name.
std::string record_context(std::string_view id, std::string_view name) {
  return "record/" + std::string(id) + "/" + std::string(name);
}

}  // namespace

void set_durability_hooks(durability_hooks h) { hooks() = std::move(h); }

data_key::~data_key() {
  cleanse(cipher);
  cleanse(index);
}

struct keystore::entry {
  std::string name;
  data_key key;
  std::string wrapped;  // as written: unchanged until a rewrap
  std::uint64_t reserved = 0;
};

std::string load_master_key(const std::string& path) {
  try {
    return load_key_file(path, aead_key_size, "master key file");
  } catch (const std::runtime_error& e) {
    throw keystore_error(e.what());
  }
}

bool keystore::exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

keystore::keystore(std::string path, std::string master_key, bool create)
    : path_(std::move(path)), kek_(kek_of(master_key)) {
  cleanse(master_key);
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    if (errno != ENOENT || !create) {
      throw keystore_error("cannot read the key store " + path_ + ": " + errno_text());
    }
    id_ = random_bytes(16);
    std::lock_guard lock(mutex_);
    write_locked();
    return;
  }
  std::stringstream s;
  s << in.rdbuf();
  const auto j = nlohmann::json::parse(s.str(), nullptr, false);
  const auto bad = [&](std::string_view why) {
    return keystore_error("the key store " + path_ + " is corrupt: " + std::string(why));
  };
  if (!j.is_object() || j.value("format", 0) != file_format) throw bad("not a format-1 key store");
  const auto id = from_hex(j.value("id", ""));
  const auto check = from_hex(j.value("check", ""));
  if (!id || id->size() != 16 || !check) throw bad("no id or check value");
  id_ = *id;
  aead wrap(kek_);
  const auto marker = wrap.open(*check, "check/" + id_);
  if (!marker || *marker != check_marker) {
    throw keystore_error("the master key does not open the key store " + path_ +
                         " (wrong storage.master_key_file, or a key store of another installation)");
  }
  if (!j.contains("keys") || !j["keys"].is_object()) throw bad("no keys object");
  for (const auto& [name, value] : j["keys"].items()) {
    const auto sealed = value.is_string() ? from_hex(value.get<std::string>()) : std::nullopt;
    auto pair = sealed ? wrap.open(*sealed, id_ + "/" + name) : std::nullopt;
    if (!pair || pair->size() != 2 * aead_key_size) throw bad("key " + name + " does not unwrap");
    auto e = std::make_unique<entry>();
    e->name = name;
    e->key.cipher = pair->substr(0, aead_key_size);
    e->key.index = pair->substr(aead_key_size);
    e->wrapped = *sealed;
    cleanse(*pair);
    keys_.push_back(std::move(e));
  }
  if (j.contains("reserved")) {
    const auto& r = j["reserved"];
    if (!r.is_object()) throw bad("reserved is not an object");
    for (const auto& [name, n] : r.items()) {
      if (!n.is_number_unsigned()) throw bad("the reservation of " + name + " is not a count");
      auto* e = find_locked(name);
      if (e == nullptr) throw bad("a reservation names the unknown key " + name);
      e->reserved = n.get<std::uint64_t>();
    }
  }
  for (const auto& name : j.value("destroyed", nlohmann::json::array())) {
    if (name.is_string()) destroyed_.push_back(name.get<std::string>());
  }
  destroyed_total_ = j.value("destroyed_total", static_cast<std::uint64_t>(destroyed_.size()));
  for (const auto& m : j.value("markers", nlohmann::json::array())) {
    if (!m.is_string()) throw bad("a marker is not a string");
    markers_.push_back(m.get<std::string>());
  }
  if (j.contains("records")) {
    const auto& r = j["records"];
    if (!r.is_object()) throw bad("records is not an object");
    for (const auto& [name, value] : r.items()) {
      const auto sealed = value.is_string() ? from_hex(value.get<std::string>()) : std::nullopt;
      auto opened = sealed ? wrap.open(*sealed, record_context(id_, name)) : std::nullopt;
      if (!opened) throw bad("record " + name + " does not open (edited, or copied from another key store)");
      records_.emplace(name, std::move(*opened));
    }
  }
}

std::optional<std::string> keystore::record(std::string_view name) const {
  std::lock_guard lock(mutex_);
  const auto it = records_.find(name);
  return it == records_.end() ? std::nullopt : std::optional<std::string>(it->second);
}

void keystore::set_record(std::string_view name, std::string_view value) {
  std::lock_guard lock(mutex_);
  records_.insert_or_assign(std::string(name), std::string(value));
  write_locked();
}

bool keystore::has_marker(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return std::find(markers_.begin(), markers_.end(), name) != markers_.end();
}

void keystore::add_marker(std::string_view name) {
  std::lock_guard lock(mutex_);
  if (std::find(markers_.begin(), markers_.end(), name) != markers_.end()) return;
  markers_.emplace_back(name);
  write_locked();
}

std::string keystore::derive(std::string_view purpose) const {
  return hmac_sha256(kek_, "cdr-retention derived key v1/" + std::string(purpose));
}

std::string keystore::stable_secret(std::string_view purpose) {
  const auto name = "secret/" + std::string(purpose);
  if (auto kept = record(name)) return std::move(*kept);
  auto secret = derive(purpose);
  set_record(name, secret);
  return secret;
}

keystore::~keystore() { cleanse(kek_); }

void keystore::write_locked() {
  aead wrap(kek_);
  nlohmann::json keys = nlohmann::json::object();
  nlohmann::json reserved = nlohmann::json::object();
  for (const auto& e : keys_) {
    if (e->reserved > 0) reserved[e->name] = e->reserved;
    if (e->wrapped.empty()) {
      std::string pair = e->key.cipher + e->key.index;
      e->wrapped = wrap.seal(pair, id_ + "/" + e->name);
      cleanse(pair);
    }
    keys[e->name] = to_hex(e->wrapped);
  }
  nlohmann::json records = nlohmann::json::object();
  for (const auto& [name, value] : records_) records[name] = to_hex(wrap.seal(value, record_context(id_, name)));
  const nlohmann::json j{{"format", file_format},
                         {"id", to_hex(id_)},
                         {"check", to_hex(wrap.seal(check_marker, "check/" + id_))},
                         {"keys", keys},
                         {"reserved", reserved},
                         {"destroyed", destroyed_},
                         {"destroyed_total", destroyed_total_},
                         {"markers", markers_},
                         {"records", records}};
  const std::filesystem::path target(path_);
  const auto tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw keystore_error("cannot write the key store " + tmp + ": " + errno_text());
  const auto& h = hooks();
  if (h.created) h.created(tmp);
  try {
    const auto text = j.dump() + "\n";
    write_all(fd, text, tmp);
    if (::fsync(fd) != 0) throw keystore_error("cannot sync " + tmp + ": " + errno_text());
    if (h.synced) h.synced(tmp, text.size());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  // Keep the old file open across the rename, then overwrite its blocks:
  // the new file is already in place, so a crash loses nothing.
  const int old = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (h.renaming) h.renaming(tmp, path_, h.set_aside ? h.set_aside(path_) : std::string("-"));
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    if (old >= 0) ::close(old);
    throw keystore_error("cannot replace the key store " + path_ + ": " + errno_text());
  }
  sync_dir(target.parent_path());
  if (old >= 0) {
    struct stat st {};
    if (::fstat(old, &st) == 0 && st.st_size > 0) {
      const std::string zeros(static_cast<std::size_t>(st.st_size), '\0');
      try {
        write_all(old, zeros, "the old key store");
      } catch (const keystore_error&) {
        // The new file is in place; the old one's wrapped keys stay under
        // the master key. Reported, not fatal.
      }
      ::fdatasync(old);
    }
    ::close(old);
  }
}

keystore::entry* keystore::find_locked(std::string_view name) const {
  const auto e = std::find_if(keys_.begin(), keys_.end(), [&](const auto& k) { return k->name == name; });
  return e == keys_.end() ? nullptr : e->get();
}

std::optional<data_key> keystore::get(std::string_view name) const {
  std::lock_guard lock(mutex_);
  if (const auto* e = find_locked(name)) return e->key;
  return std::nullopt;
}

std::optional<data_key> keystore::get_or_create(std::string_view name, bool reuse) {
  std::lock_guard lock(mutex_);
  if (const auto* e = find_locked(name)) return e->key;
  const auto gone = std::find(destroyed_.begin(), destroyed_.end(), name);
  if (gone != destroyed_.end()) {
    if (!reuse) return std::nullopt;
    destroyed_.erase(gone);
  }
  auto e = std::make_unique<entry>();
  e->name = std::string(name);
  e->key.cipher = random_bytes(aead_key_size);
  e->key.index = random_bytes(aead_key_size);
  keys_.push_back(std::move(e));
  try {
    write_locked();
  } catch (...) {
    keys_.pop_back();
    throw;
  }
  return keys_.back()->key;
}

std::vector<std::string> keystore::destroy(const std::vector<std::string>& names) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> done;
  std::vector<std::unique_ptr<entry>> removed;
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (std::find(names.begin(), names.end(), (*it)->name) != names.end()) {
      done.push_back((*it)->name);
      removed.push_back(std::move(*it));
      it = keys_.erase(it);
    } else {
      ++it;
    }
  }
  if (done.empty()) return done;
  const auto tombstones = destroyed_;
  for (const auto& n : done) {
    if (std::find(destroyed_.begin(), destroyed_.end(), n) == destroyed_.end()) destroyed_.push_back(n);
  }
  destroyed_total_ += done.size();
  try {
    write_locked();
  } catch (...) {
    // Nothing changed on disk: keep the keys, so a retry destroys them.
    for (auto& e : removed) keys_.push_back(std::move(e));
    destroyed_ = tombstones;
    destroyed_total_ -= done.size();
    throw;
  }
  return done;  // the removed entries' memory is cleansed as they go
}

std::uint64_t keystore::reserve(std::string_view name, std::uint64_t want, std::uint64_t limit) {
  std::lock_guard lock(mutex_);
  auto* e = find_locked(name);
  if (e == nullptr) throw keystore_error("cannot reserve seals under " + std::string(name) + ": no such key");
  auto& key = *e;
  const auto granted = key.reserved >= limit ? 0 : std::min(want, limit - key.reserved);
  if (granted == 0) return 0;
  key.reserved += granted;
  try {
    write_locked();
  } catch (...) {
    key.reserved -= granted;
    throw;
  }
  return granted;
}

std::uint64_t keystore::reserved(std::string_view name) const {
  std::lock_guard lock(mutex_);
  const auto* e = find_locked(name);
  return e == nullptr ? 0 : e->reserved;
}

std::vector<std::string> keystore::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& e : keys_) out.push_back(e->name);
  return out;
}

bool keystore::destroyed(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return std::find(destroyed_.begin(), destroyed_.end(), name) != destroyed_.end();
}

std::size_t keystore::live() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

std::uint64_t keystore::destroyed_total() const {
  std::lock_guard lock(mutex_);
  return destroyed_total_;
}

void keystore::rewrap(std::string new_master_key) {
  std::lock_guard lock(mutex_);
  auto next = kek_of(new_master_key);
  cleanse(new_master_key);
  std::swap(kek_, next);
  std::vector<std::string> before;
  for (auto& e : keys_) before.push_back(std::exchange(e->wrapped, std::string()));
  try {
    write_locked();
  } catch (...) {
    std::swap(kek_, next);
    for (std::size_t i = 0; i < keys_.size(); ++i) keys_[i]->wrapped = before[i];
    cleanse(next);
    throw;
  }
  cleanse(next);
}

}  // namespace cdr::crypto
