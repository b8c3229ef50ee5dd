// Retention changes: held copies, range and point removals, partition
// states and saved state, applied atomically and synced.
#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "cdr/store/store.h"
#include "internal.h"

namespace cdr::store {
using namespace detail;

change::change(const store& s) : impl_(std::make_unique<impl>()) { impl_->s = s.impl_.get(); }
change::~change() = default;

void change::put(family f, std::string_view key, std::string_view value) {
  impl_->batch.Put(impl_->s->h(f), key, value);
}
void change::remove(family f, std::string_view key) { impl_->batch.Delete(impl_->s->h(f), key); }
bool change::hold_id(record_kind kind, std::string_view id) {
  const auto key = id_index_key(kind, id);
  std::string v;
  const auto s = impl_->s->db->Get(rocksdb::ReadOptions(), impl_->s->cf[cf_ids], key, &v);
  if (s.IsNotFound()) return false;
  if (!s.ok()) raise(s, "cannot read the id index");
  if (v.size() != id_entry_size) return false;  // marked already, or damaged (counted where it is read)
  v.push_back(held_id_marker);
  impl_->batch.Put(impl_->s->cf[cf_ids], key, v);
  return true;
}
void change::remove_id(record_kind kind, std::string_view id) {
  impl_->batch.Delete(impl_->s->cf[cf_ids], id_index_key(kind, id));
}
void change::remove_range(family f, const key_range& r) {
  if (f != family::held && r.begin.size() > partition_prefix_size) {
    // It would take a memtable insert hint (see insert_hint.h).
    throw std::logic_error("a range removal in a record family must start at a partition prefix");
  }
  impl_->batch.DeleteRange(impl_->s->h(f), r.begin, r.end);
  impl_->ranges.push_back({f, r});
}
void change::set_state(const partition& p, partition_state st) {
  const auto prefix = partition_prefix(p);
  impl_->batch.Put(impl_->s->system(), tagged(state_tag, prefix), std::string(1, static_cast<char>(state_bits(st))));
  if (st.dropped) impl_->batch.Delete(impl_->s->system(), tagged(count_tag, prefix));
  impl_->states[p] = st;
}
void change::put_entry(std::string_view key, std::string_view value) {
  impl_->batch.Put(impl_->s->system(), tagged(entry_tag, key), value);
}
void change::remove_entry(std::string_view key) { impl_->batch.Delete(impl_->s->system(), tagged(entry_tag, key)); }
bool change::empty() const { return impl_->batch.Count() == 0; }

void store::apply(change& c) {
  // A range deletion must not share a memtable with other keys: flushed
  // together, they make an L0 file spanning from the removed partition to
  // the current month, and compacting that file rewrites every month in
  // between. So the families it goes into are flushed first while ingest
  // goes on (again while a flush took long, so little is left), then once
  // more, briefly, with ingest held, and again right after the deletion.
  // The partition's whole files are deleted once ingest runs again.
  std::vector<rocksdb::ColumnFamilyHandle*> ranged;
  for (const auto& r : c.impl_->ranges) {
    if (std::find(ranged.begin(), ranged.end(), impl_->h(r.family)) == ranged.end())
      ranged.push_back(impl_->h(r.family));
  }
  rocksdb::FlushOptions fo;
  fo.allow_write_stall = true;
  const auto flush = [&] {
    if (const auto s = impl_->db->Flush(fo, ranged); !s.ok()) raise(s, "cannot flush before a range removal");
  };
  // RocksDB's flush runs on its own threads in real time: this adapter
  // times it on the steady clock, not on the service's time source.
  for (int i = 0; i < 4 && !ranged.empty(); ++i) {
    const auto started = std::chrono::steady_clock::now();
    flush();
    if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(20)) break;
  }
  {
    std::lock_guard lock(impl_->write_mutex);  // no ingest write in here
    if (!ranged.empty()) flush();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    impl_->write(wo, &c.impl_->batch, "cannot write a retention change");
    for (const auto& [p, st] : c.impl_->states) {
      impl_->states[p] = st;
      if (st.dropped) impl_->dropped->add(partition_prefix(p));
    }
    if (!ranged.empty()) impl_->db->Flush(fo, ranged).PermitUncheckedError();
  }
  // Best effort: the change is durable; purge() deletes and checks again.
  if (!ranged.empty()) impl_->delete_files(c.impl_->ranges).PermitUncheckedError();
}

}  // namespace cdr::store
