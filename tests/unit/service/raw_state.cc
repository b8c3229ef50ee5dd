#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table_properties.h>

#include <array>
#include <stdexcept>

#include "fixture.h"

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

// The store's families, opened by hand; handles[i] is family_names[i].
constexpr std::array family_names{"default",       "metadata", "identifiers", "usage",
                                  "subject_index", "ids",      "held",        "system"};

struct raw_db {
  explicit raw_db(const std::string& db_path) {
    rocksdb::DBOptions options;
    options.avoid_flush_during_recovery = true;
    options.avoid_flush_during_shutdown = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto* name : family_names) {
      rocksdb::ColumnFamilyOptions o;
      o.disable_auto_compactions = true;  // the files stay as the store left them
      if (std::string_view(name) == "system") o.merge_operator = std::make_shared<add_operator>();
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

  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

}  // namespace

void put_raw_saved_state(const std::string& db_path, const std::string& key, const std::string& value) {
  raw_db raw(db_path);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  // "q": the system family's saved-state tag (lib/adapters/store/internal.h).
  const auto s = raw.db->Put(wo, raw.handles.back(), "q" + key, value);
  if (!s.ok()) throw std::runtime_error("cannot write: " + s.ToString());
}

std::vector<raw_file> raw_files(const std::string& db_path) {
  raw_db raw(db_path);
  std::vector<rocksdb::LiveFileMetaData> files;
  raw.db->GetLiveFilesMetaData(&files);
  std::vector<raw_file> out;
  for (std::size_t i = 0; i < family_names.size(); ++i) {
    rocksdb::TablePropertiesCollection tables;
    if (const auto s = raw.db->GetPropertiesOfAllTables(raw.handles[i], &tables); !s.ok()) {
      throw std::runtime_error("cannot read table properties: " + s.ToString());
    }
    for (const auto& f : files) {
      if (f.column_family_name != family_names[i]) continue;
      const auto props = tables.find(f.db_path + f.name);
      if (props == tables.end()) throw std::runtime_error("no table properties for " + f.name);
      out.push_back({f.column_family_name, f.smallestkey, f.largestkey, props->second->num_entries,
                     props->second->filter_size, f.level, props->second->compression_name});
    }
  }
  return out;
}

}  // namespace cdr::test
