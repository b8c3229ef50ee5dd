#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table_properties.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "raw_store.h"

#include "cdr/core/key_layout.h"

namespace cdr::test {
namespace {

// The store's count operator, by name: RocksDB replays the WAL's count
// merges when it opens, and must not need to fold them here.
class add_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* out,
             rocksdb::Logger*) const override {
    *out = existing != nullptr ? existing->ToString() : value.ToString();
    return true;
  }
  const char* Name() const override { return "cdr.add_int64"; }
};

// The store's column families (its fixed ones and a family per record
// family and month), opened by hand; handles[i] is names[i].
struct raw_db {
  explicit raw_db(const std::string& db_path) {
    rocksdb::DBOptions options;
    options.avoid_flush_during_recovery = true;
    options.avoid_flush_during_shutdown = true;
    if (const auto s = rocksdb::DB::ListColumnFamilies(options, db_path, &names); !s.ok()) {
      throw std::runtime_error("cannot list the store's column families: " + s.ToString());
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : names) {
      rocksdb::ColumnFamilyOptions o;
      o.disable_auto_compactions = true;  // the files stay as the store left them
      if (name == "system") o.merge_operator = std::make_shared<add_operator>();
      families.emplace_back(name, o);
    }
    if (const auto s = rocksdb::DB::Open(options, db_path, families, &handles, &db); !s.ok()) {
      throw std::runtime_error("cannot open the store raw: " + s.ToString());
    }
  }
  ~raw_db() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
  }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;

  rocksdb::ColumnFamilyHandle* named(std::string_view name) const {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw std::runtime_error("the store has no column family " + std::string(name));
    return handles[static_cast<std::size_t>(it - names.begin())];
  }

  rocksdb::DB* db = nullptr;
  std::vector<std::string> names;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

}  // namespace

void put_raw_saved_state(const std::string& db_path, const std::string& key, const std::string& value) {
  raw_db raw(db_path);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  // "q": the system family's saved-state tag (lib/adapters/store/internal.h).
  const auto s = raw.db->Put(wo, raw.named("system"), "q" + key, value);
  if (!s.ok()) throw std::runtime_error("cannot write: " + s.ToString());
}

std::vector<raw_file> raw_files(const std::string& db_path) {
  raw_db raw(db_path);
  std::vector<rocksdb::LiveFileMetaData> files;
  raw.db->GetLiveFilesMetaData(&files);
  std::vector<raw_file> out;
  for (std::size_t i = 0; i < raw.names.size(); ++i) {
    rocksdb::TablePropertiesCollection tables;
    if (const auto s = raw.db->GetPropertiesOfAllTables(raw.handles[i], &tables); !s.ok()) {
      throw std::runtime_error("cannot read table properties: " + s.ToString());
    }
    for (const auto& f : files) {
      if (f.column_family_name != raw.names[i]) continue;
      const auto props = tables.find(f.db_path + f.name);
      if (props == tables.end()) throw std::runtime_error("no table properties for " + f.name);
      out.push_back({f.column_family_name.substr(0, f.column_family_name.find('/')), f.column_family_name,
                     f.smallestkey, f.largestkey, props->second->num_entries, props->second->filter_size});
    }
  }
  return out;
}

std::vector<std::string> column_families(const std::string& db_path) { return raw_db(db_path).names; }

void to_format_2(const std::string& db_path, bool halfway) {
  raw_db raw(db_path);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto* system = raw.named("system");
  for (const std::string family : {"metadata", "identifiers", "usage", "subject_index"}) {
    std::vector<rocksdb::ColumnFamilyHandle*> months;
    for (std::size_t i = 0; i < raw.names.size(); ++i) {
      if (raw.names[i].starts_with(family + "/")) months.push_back(raw.handles[i]);
    }
    rocksdb::ColumnFamilyHandle* shared = nullptr;
    if (const auto s = raw.db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), family, &shared); !s.ok()) {
      throw std::runtime_error("cannot create " + family + ": " + s.ToString());
    }
    raw.names.push_back(family);
    raw.handles.push_back(shared);
    std::map<std::string, std::pair<rocksdb::ColumnFamilyHandle*, std::string>> keys;  // key -> (month, value)
    for (auto* h : months) {
      std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(rocksdb::ReadOptions(), h));
      for (it->SeekToFirst(); it->Valid(); it->Next()) keys[it->key().ToString()] = {h, it->value().ToString()};
    }
    rocksdb::WriteBatch b;
    for (const auto& [k, v] : keys) b.Put(shared, k, v.second);
    if (halfway && !keys.empty()) {
      // Keys from the middle on are not moved yet: only the shared family has them.
      auto from = keys.begin();
      std::advance(from, static_cast<std::ptrdiff_t>(keys.size() / 2));
      for (auto it = from; it != keys.end(); ++it) b.Delete(it->second.first, it->first);
      b.Put(system, "m" + family, from->first);
    }
    if (const auto s = raw.db->Write(wo, &b); !s.ok()) throw std::runtime_error("cannot write: " + s.ToString());
    if (halfway) continue;
    for (auto* h : months) {
      if (const auto s = raw.db->DropColumnFamily(h); !s.ok()) throw std::runtime_error("cannot drop: " + s.ToString());
    }
  }
  if (const auto s = raw.db->Put(wo, system, "format_version", be64(2)); !s.ok()) {
    throw std::runtime_error("cannot write the format version: " + s.ToString());
  }
}

}  // namespace cdr::test
