// The ingest write path: a consumed batch's records, index entries, counts
// and offsets, committed as one atomic RocksDB write.
#include <algorithm>

#include <fmt/format.h>

#include "cdr/store/store.h"
#include "internal.h"

namespace cdr::store {
using namespace detail;

write_batch::write_batch(const store& s) : impl_(std::make_unique<impl>()) { impl_->cf = &s.impl_->cf; }
write_batch::~write_batch() = default;

std::size_t write_batch::bytes() const { return impl_->batch.GetDataSize(); }

void write_batch::clear() {
  impl_->batch.Clear();
  impl_->counts.clear();
  impl_->subjects.clear();
  impl_->subjects_written = false;
  impl_->identifier_partitions.clear();
  records_ = 0;
}

void write_batch::put_cdr(const partition& p, std::string_view id, std::string_view metadata,
                          std::string_view identifiers, std::uint64_t digest) {
  put_record(cf_metadata, p, id, metadata, identifiers, digest);
}

void write_batch::put_usage(const partition& p, std::string_view id, std::string_view metadata,
                            std::string_view identifiers, std::uint64_t digest) {
  put_record(cf_usage, p, id, metadata, identifiers, digest);
}

void write_batch::put_record(std::size_t family_index, const partition& p, std::string_view id,
                             std::string_view metadata, std::string_view identifiers, std::uint64_t digest) {
  auto& b = impl_->batch;
  auto& k = impl_->key;
  assign_record_key(k, p, id);
  b.Put(impl_->h(static_cast<cf>(family_index)), k, rocksdb::Slice(metadata.data(), metadata.size()));
  if (!identifiers.empty()) {
    b.Put(impl_->h(cf_identifiers), k, rocksdb::Slice(identifiers.data(), identifiers.size()));
    impl_->identifier_partitions.insert(p);
  }
  put_id(p.kind, id, p, digest);
  ++impl_->counts[p];
  ++records_;
}

void write_batch::put_subject(const partition& p, std::string_view hash, std::string_view id) {
  impl_->subjects.push_back(subject_key(p, hash, id));
  impl_->identifier_partitions.insert(p);
}

void write_batch::put_held(const partition& p, std::string_view id, std::string_view metadata,
                           std::string_view identifiers, const std::vector<std::string>& subject_hashes) {
  auto& b = impl_->batch;
  const auto key = record_key(p, id);
  if (!metadata.empty()) b.Put(impl_->h(cf_held), held_key(held_tag::record, key), metadata);
  if (!identifiers.empty()) b.Put(impl_->h(cf_held), held_key(held_tag::identifiers, key), identifiers);
  for (const auto& hash : subject_hashes) {
    b.Put(impl_->h(cf_held), held_key(held_tag::subject, subject_key(p, hash, id)), "");
  }
  ++records_;
}

void write_batch::put_id(record_kind kind, std::string_view id, const partition& p, std::uint64_t digest, bool held) {
  auto& v = impl_->value;
  v.clear();
  append_partition_prefix(v, p);
  append_be64(v, digest);
  if (held) v.push_back(held_id_marker);
  impl_->batch.Put(impl_->h(cf_ids), id_index_key(kind, id), v);
}

void write_batch::set_offset(std::string_view topic, std::int32_t kafka_partition, std::int64_t next) {
  std::string v;
  append_be64(v, static_cast<std::uint64_t>(next));
  impl_->batch.Put(impl_->h(cf_system), offset_key(topic, kafka_partition), v);
}

void store::commit(write_batch& batch) {
  std::lock_guard lock(impl_->write_mutex);
  for (const auto& [p, n] : batch.impl_->counts) {
    if (auto it = impl_->states.find(p); it != impl_->states.end() && it->second.dropped) {
      throw store_error(store_error::kind::stale, fmt::format("partition {} was dropped by a sweep", p.to_string()));
    }
  }
  for (const auto& p : batch.impl_->identifier_partitions) {
    if (auto it = impl_->states.find(p); it != impl_->states.end() && (it->second.stripped || it->second.dropped)) {
      throw store_error(store_error::kind::stale, fmt::format("partition {} was stripped by a sweep", p.to_string()));
    }
  }
  auto& resolved = batch.impl_->batch;
  if (!batch.impl_->subjects_written) {
    auto& subjects = batch.impl_->subjects;
    std::sort(subjects.begin(), subjects.end());
    for (const auto& k : subjects) resolved.Put(impl_->cf[cf_subject], k, "");
    batch.impl_->subjects_written = true;
  }
  // The count merges are added for this attempt only: a failed write rolls
  // them back, so a retried batch does not count twice.
  resolved.SetSavePoint();
  for (const auto& [p, n] : batch.impl_->counts) {
    std::string k(1, count_tag);
    append_partition_prefix(k, p);
    std::string v;
    append_be64(v, static_cast<std::uint64_t>(n));
    resolved.Merge(impl_->system(), k, v);
  }
  // While RocksDB only slows writes down, the write waits (that throttles the
  // consumer); while it stops them, fail fast so the consumer pauses and
  // keeps serving its group instead of blocking for an unknown time.
  rocksdb::WriteOptions wo;
  wo.no_slowdown = write_stopped();
  try {
    impl_->write(wo, &resolved, "cannot write a batch");
  } catch (...) {
    resolved.RollbackToSavePoint();
    throw;
  }
  resolved.PopSavePoint();
}

}  // namespace cdr::store
