// Reads: records, the id index, offsets, counts, the subject index, scans.
#include <algorithm>

#include <fmt/format.h>

#include "cdr/store/store.h"
#include "internal.h"

namespace cdr::store {
using namespace detail;

namespace {

std::optional<id_entry> decode_id_entry(std::string_view v) {
  const auto p = decode_partition(v);
  const bool held = v.size() == id_entry_size + 1 && v.back() == held_id_marker;
  if (!p || (v.size() != id_entry_size && !held)) return std::nullopt;
  return id_entry{*p, read_be64(v.substr(partition_prefix_size, 8)), held};
}

}  // namespace

std::optional<id_entry> store::find_id(record_kind kind, std::string_view id) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_ids], id_index_key(kind, id), &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) raise(s, "cannot read the id index");
  auto entry = decode_id_entry(v);
  if (!entry) {
    ++impl_->corrupt;
    throw store_error(store_error::kind::fatal,
                      fmt::format("the id index entry of {} record {} does not decode", name(kind), id));
  }
  return entry;
}

std::uint64_t store::corrupt_entries() const { return impl_->corrupt.load(); }

std::vector<id_lookup> store::find_ids(const std::vector<std::pair<record_kind, std::string_view>>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& [kind, id] : ids) keys.push_back(id_index_key(kind, id));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  without_perf_context();
  // Ingest asks in key order; RocksDB then skips sorting the keys itself.
  const bool sorted = std::is_sorted(keys.begin(), keys.end());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf[cf_ids], slices.size(), slices.data(), values.data(),
                      statuses.data(), sorted);
  std::vector<id_lookup> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) raise(statuses[i], "cannot read the id index");
    out[i].entry = decode_id_entry(values[i].ToStringView());
    out[i].corrupt = !out[i].entry;
    if (out[i].corrupt) ++impl_->corrupt;
  }
  return out;
}

std::optional<std::int64_t> store::offset(std::string_view topic, std::int32_t kafka_partition) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->system(), offset_key(topic, kafka_partition), &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok() || v.size() != 8) raise(s, "cannot read a stored offset");
  return static_cast<std::int64_t>(read_be64(v));
}

std::optional<stored_record> store::get(record_kind kind, std::string_view id) const {
  const auto entry = find_id(kind, id);
  if (!entry) return std::nullopt;
  return get_at(entry->where, id);
}

std::optional<stored_record> store::get_at(const partition& p, std::string_view id) const {
  const auto kind = p.kind;
  const auto key = record_key(p, id);
  stored_record r{p, std::string(id), {}, std::nullopt};
  // A record lives in its partition's family until a sweep removes it, and
  // in the held family when a legal hold kept it.
  auto metadata = value(kind == record_kind::cdr ? family::metadata : family::usage, key);
  if (!metadata) metadata = value(family::held, held_key(held_tag::record, key));
  if (!metadata) return std::nullopt;  // its partition was dropped
  r.metadata = std::move(*metadata);
  r.identifiers = value(family::identifiers, key);
  if (!r.identifiers) {
    r.identifiers = value(family::held, held_key(held_tag::identifiers, key));
    r.identifiers_held = r.identifiers.has_value();
  }
  return r;
}

void store::for_each_record(record_kind kind,
                            const std::function<void(const partition&, std::string_view, bool)>& fn) const {
  const auto main_cf = kind == record_kind::cdr ? cf_metadata : cf_usage;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[main_cf]));
  std::string ignored;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto key = it->key();
    const auto p = decode_partition(key.ToStringView());
    if (!p) continue;
    const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[cf_identifiers], key, &ignored);
    if (!s.ok() && !s.IsNotFound()) raise(s, "cannot read identifiers");
    fn(*p, record_id_of(key.ToStringView()), s.ok());
  }
  if (!it->status().ok()) raise(it->status(), "cannot iterate records");
}

std::map<partition, std::int64_t> store::counts() const {
  std::map<partition, std::int64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->system()));
  const std::string start(1, count_tag);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    const auto key = it->key().ToStringView().substr(1);
    if (auto p = decode_partition(key); p && it->value().size() == 8) {
      out[*p] = static_cast<std::int64_t>(read_be64(it->value().ToStringView()));
    }
  }
  if (!it->status().ok()) raise(it->status(), "cannot read partition counts");
  return out;
}

void store::for_each_subject_id(const partition& p, std::string_view hash, bool held,
                                const std::optional<std::string>& after,
                                const std::function<bool(std::string_view)>& fn) const {
  std::string prefix = partition_prefix(p);
  prefix.append(hash);
  if (held) prefix = held_key(held_tag::subject, prefix);
  auto range = prefix_range(prefix);
  if (after) range.begin = prefix + *after + '\0';  // the first key past it
  scan(held ? family::held : family::subject_index, range,
       [&](std::string_view key, std::string_view) { return fn(key.substr(prefix.size())); });
}

std::optional<std::string> store::value(family f, std::string_view key) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->h(f), key, &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) raise(s, "cannot read a value");
  return v;
}

void store::scan(family f, const key_range& r,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(r.end);
  if (!r.end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->h(f)));
  for (it->Seek(r.begin); it->Valid(); it->Next()) {
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) raise(it->status(), "cannot scan a key range");
}

void store::for_each_entry(std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& fn) const {
  const auto start = tagged(entry_tag, prefix);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->system()));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (!fn(it->key().ToStringView().substr(1), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) raise(it->status(), "cannot read the saved state");
}

std::vector<std::pair<std::string, std::string>> store::entries(std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  for_each_entry(prefix, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  return out;
}

std::optional<std::string> store::entry(std::string_view key) const {
  std::string v;
  const auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->system(), tagged(entry_tag, key), &v);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) raise(s, "cannot read the saved state");
  return v;
}

}  // namespace cdr::store
