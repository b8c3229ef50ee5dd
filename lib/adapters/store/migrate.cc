// Format 2 to 3: the shared record families' keys move to their month
// families at open, in batches that each write the moved keys and the
// cursor past them atomically, so a crash at any point resumes where the
// last batch ended: no key is lost or kept twice. The shared family is
// dropped once the moved keys are durable.
#include <chrono>

#include <fmt/format.h>

#include "internal.h"

namespace cdr::store {
using namespace detail;

void store::impl::migrate_shared(const open_progress& progress) {
  std::uint64_t total = 0;
  for (auto* h : shared) {
    std::uint64_t n = 0;
    if (h != nullptr && db->GetIntProperty(h, "rocksdb.estimate-num-keys", &n)) total += n;
  }
  if (std::all_of(shared.begin(), shared.end(), [](auto* h) { return h == nullptr; })) return;
  // Keys moved by this run, of an estimate that counts those a killed run
  // moved already too; the last report gives the moved count as its total.
  std::uint64_t done = 0;
  auto reported = std::chrono::steady_clock::now();
  const auto report = [&](bool now_or_never) {
    if (!progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (!now_or_never && now - reported < std::chrono::seconds(2)) return;
    reported = now;
    progress("migrating the record families to a column family per month", done, std::max(total, done));
  };
  report(true);
  constexpr std::size_t batch_bytes = 4 << 20;
  for (std::size_t i = 0; i < record_families; ++i) {
    if (shared[i] == nullptr) continue;
    const auto f = static_cast<family>(i);
    const auto cursor_key = tagged(migration_tag, shared_names[i]);
    std::string cursor;
    if (const auto s = db->Get(rocksdb::ReadOptions(), system(), cursor_key, &cursor); !s.ok() && !s.IsNotFound()) {
      raise(s, "cannot read the migration's cursor");
    }
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, shared[i]));
    it->Seek(cursor);
    while (it->Valid()) {
      rocksdb::WriteBatch batch;
      std::string last;
      while (it->Valid() && batch.GetDataSize() < batch_bytes) {
        const auto key = it->key().ToStringView();
        auto* to = to_write(f, key);
        if (to == nullptr) throw store_error(store_error::kind::fatal, "a record key without a month");
        if (const auto s = batch.Put(to, it->key(), it->value()); !s.ok()) raise(s, "cannot migrate a key");
        last.assign(key);
        ++done;
        it->Next();
      }
      if (!it->status().ok()) raise(it->status(), fmt::format("cannot read the {} family", shared_names[i]));
      last.push_back('\0');  // the first key past the last one moved
      if (const auto s = batch.Put(system(), cursor_key, last); !s.ok()) raise(s, "cannot write the cursor");
      write(rocksdb::WriteOptions(), &batch, "cannot write a migrated batch");
      report(false);
    }
    if (!it->status().ok()) raise(it->status(), fmt::format("cannot read the {} family", shared_names[i]));
  }
  // Moved keys durable first: dropping a family is durable at once.
  if (const auto s = db->SyncWAL(); !s.ok()) raise(s, "cannot sync the migrated keys");
  for (std::size_t i = 0; i < record_families; ++i) {
    if (shared[i] == nullptr) continue;
    if (const auto s = db->DropColumnFamily(shared[i]); !s.ok()) {
      raise(s, fmt::format("cannot drop the migrated {} family", shared_names[i]));
    }
    db->DestroyColumnFamilyHandle(shared[i]);
    shared[i] = nullptr;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (const auto s = db->Delete(wo, system(), tagged(migration_tag, shared_names[i])); !s.ok()) {
      raise(s, "cannot remove the migration's cursor");
    }
  }
  total = done;
  report(true);
}

}  // namespace cdr::store
