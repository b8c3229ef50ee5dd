#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>

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

}  // namespace

void put_raw_saved_state(const std::string& db_path, const std::string& key, const std::string& value) {
  rocksdb::DBOptions db;
  db.avoid_flush_during_recovery = true;
  db.avoid_flush_during_shutdown = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto* name : {"default", "metadata", "identifiers", "usage", "subject_index", "ids", "held", "system"}) {
    rocksdb::ColumnFamilyOptions o;
    if (std::string_view(name) == "system") o.merge_operator = std::make_shared<add_operator>();
    families.emplace_back(name, o);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (const auto s = rocksdb::DB::Open(db, db_path, families, &handles, &raw); !s.ok()) {
    throw std::runtime_error("cannot open the store raw: " + s.ToString());
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  // "q": the system family's saved-state tag (lib/adapters/store/internal.h).
  const auto s = raw->Put(wo, handles.back(), "q" + key, value);
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
  raw->Close();
  delete raw;
  if (!s.ok()) throw std::runtime_error("cannot write: " + s.ToString());
}

}  // namespace cdr::test
