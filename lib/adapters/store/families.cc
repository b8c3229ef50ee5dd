// The month families: a RocksDB column family per (record family, kind,
// month), found at open and created at a month's first write.
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "internal.h"

namespace cdr::store {
namespace detail {

namespace {

// The month key a key of a record family starts with.
std::string_view month_key_of(std::string_view key) {
  return key.size() < month_key_size ? std::string_view() : key.substr(0, month_key_size);
}

}  // namespace

std::string month_family_name(family f, std::string_view month_key) {
  const auto p = decode_partition(std::string(month_key) + std::string(partition_prefix_size - month_key_size, '\0'));
  if (!p || month_key.size() != month_key_size) throw std::logic_error("not a month key");
  return fmt::format("{}/{}/{}", name(f), name(p->kind), p->month.to_string());
}

std::optional<std::pair<family, std::string>> parse_month_family(std::string_view cf_name) {
  const auto first = cf_name.find('/');
  const auto second = first == std::string_view::npos ? first : cf_name.find('/', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto f = family_from_name(cf_name.substr(0, first));
  const auto kind = record_kind_from_name(cf_name.substr(first + 1, second - first - 1));
  const auto m = month::parse(cf_name.substr(second + 1));
  if (!f || !is_record(*f) || !kind || !m) return std::nullopt;
  auto key = partition_prefix(partition{*kind, *m, 0});
  key.resize(month_key_size);
  return std::pair{*f, std::move(key)};
}

std::optional<family> family_named(std::string_view cf_name) {
  if (cf_name == cf_names[cf_held]) return family::held;
  for (std::size_t i = 0; i < record_families; ++i) {
    if (cf_name == shared_names[i]) return static_cast<family>(i);
  }
  if (const auto m = parse_month_family(cf_name)) return m->first;
  return std::nullopt;
}

void month_families::add(family f, std::string month_key, handle* h) {
  std::unique_lock lock(mutex_);
  months_[record_index(f)].emplace(std::move(month_key), h);
  ids_[h->GetID()] = f;
}

month_families::handle* month_families::find(family f, std::string_view key) const {
  std::shared_lock lock(mutex_);
  const auto& m = months_[record_index(f)];
  const auto it = m.find(month_key_of(key));
  return it == m.end() ? nullptr : it->second;
}

month_families::handle* month_families::find_or_create(rocksdb::DB& db, family f, std::string_view key,
                                                       const rocksdb::ColumnFamilyOptions& options) {
  if (auto* h = find(f, key)) return h;
  const auto month_key = month_key_of(key);
  if (month_key.empty()) throw std::logic_error("a record family's key starts with a partition prefix");
  std::unique_lock lock(mutex_);
  auto& m = months_[record_index(f)];
  if (const auto it = m.find(month_key); it != m.end()) return it->second;
  handle* h = nullptr;
  const auto name = month_family_name(f, month_key);
  if (const auto s = db.CreateColumnFamily(options, name, &h); !s.ok()) {
    raise(s, fmt::format("cannot create the column family {}", name));
  }
  m.emplace(std::string(month_key), h);
  ids_[h->GetID()] = f;
  return h;
}

std::vector<month_families::handle*> month_families::spanning(family f, const key_range& r) const {
  std::shared_lock lock(mutex_);
  std::vector<handle*> out;
  for (const auto& [month_key, h] : months_[record_index(f)]) {
    // The month holds [month_key, prefix_range(month_key).end).
    if (!r.end.empty() && std::string_view(month_key) >= std::string_view(r.end)) break;
    if (prefix_range(month_key).end > r.begin) out.push_back(h);
  }
  return out;
}

std::vector<month_families::handle*> month_families::all() const {
  std::shared_lock lock(mutex_);
  std::vector<handle*> out;
  for (const auto& m : months_) {
    for (const auto& [_, h] : m) out.push_back(h);
  }
  return out;
}

void month_families::forget(handle* h) {
  std::unique_lock lock(mutex_);
  for (auto& m : months_) std::erase_if(m, [&](const auto& e) { return e.second == h; });
  ids_.erase(h->GetID());
}

std::optional<family> month_families::family_of(std::uint32_t id) const {
  std::shared_lock lock(mutex_);
  const auto it = ids_.find(id);
  return it == ids_.end() ? std::nullopt : std::optional(it->second);
}

void month_families::destroy(rocksdb::DB& db) {
  std::unique_lock lock(mutex_);
  for (auto& m : months_) {
    for (auto& [_, h] : m) db.DestroyColumnFamilyHandle(h);
    m.clear();
  }
  ids_.clear();
}

}  // namespace detail

using namespace detail;

rocksdb::ColumnFamilyHandle* store::impl::at(family f, std::string_view key) const {
  return is_record(f) ? months.find(f, key) : cf[cf_held];
}

rocksdb::ColumnFamilyHandle* store::impl::to_write(family f, std::string_view key) {
  return is_record(f) ? months.find_or_create(*db, f, key, month_options[record_index(f)]) : cf[cf_held];
}

std::vector<rocksdb::ColumnFamilyHandle*> store::impl::spanning(family f, const key_range& r) const {
  if (!is_record(f)) return {cf[cf_held]};
  return months.spanning(f, r);
}

void store::impl::drop_emptied_months() {
  for (auto* h : months.all()) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (!it->status().ok()) raise(it->status(), fmt::format("cannot read {}", h->GetName()));
    if (it->Valid()) continue;
    it.reset();
    if (const auto s = db->DropColumnFamily(h); !s.ok()) raise(s, fmt::format("cannot drop {}", h->GetName()));
    months.forget(h);
    db->DestroyColumnFamilyHandle(h);
  }
}

std::vector<rocksdb::ColumnFamilyHandle*> store::impl::all() const {
  std::vector<rocksdb::ColumnFamilyHandle*> out(cf.begin(), cf.end());
  for (auto* h : months.all()) out.push_back(h);
  return out;
}

}  // namespace cdr::store
