// Opening the store, its shared helpers, and the write primitive every
// commit and retention change goes through.
#include "cdr/store/store.h"

#include <rocksdb/convenience.h>
#include <rocksdb/perf_level.h>

#include <fmt/format.h>

#include "internal.h"

namespace cdr::store {
namespace detail {

std::optional<family> family_of(std::size_t c) {
  switch (c) {
    case cf_metadata: return family::metadata;
    case cf_identifiers: return family::identifiers;
    case cf_usage: return family::usage;
    case cf_subject: return family::subject_index;
    case cf_held: return family::held;
    default: return std::nullopt;
  }
}

std::optional<family> family_named(std::string_view cf_name) {
  for (std::size_t i = 0; i < cf_count; ++i) {
    if (cf_name == cf_names[i]) return family_of(i);
  }
  return std::nullopt;
}

std::string tagged(char tag, std::string_view rest) {
  std::string k(1, tag);
  k.append(rest);
  return k;
}

std::string offset_key(std::string_view topic, std::int32_t kafka_partition) {
  std::string k(1, offset_tag);
  k.append(topic);
  k.push_back('\0');
  append_be64(k, static_cast<std::uint32_t>(kafka_partition));
  return k;
}

std::uint8_t state_bits(partition_state s) {
  return static_cast<std::uint8_t>((s.stripped ? 1 : 0) | (s.dropped ? 2 : 0));
}
partition_state state_of_bits(std::uint8_t b) { return {(b & 1) != 0, (b & 2) != 0}; }

void raise(const rocksdb::Status& s, std::string_view what) {
  auto k = store_error::kind::fatal;
  if (s.IsIncomplete() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) k = store_error::kind::stall;
  if (s.IsNoSpace()) k = store_error::kind::no_space;
  throw store_error(k, fmt::format("{}: {}", what, s.ToString()));
}

// RocksDB's per-thread perf context is counted on by default (a thread-local
// access per step of every write and lookup); nothing here reads it.
void without_perf_context() {
  thread_local const bool off = (rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable), true);
  (void)off;
}

bool dropped_set::contains(std::string_view prefix) const {
  std::shared_lock lock(mutex_);
  return prefixes_.count(prefix) != 0;
}

void dropped_set::add(std::string prefix) {
  std::unique_lock lock(mutex_);
  prefixes_.insert(std::move(prefix));
}

bool purge_keys::drops(std::size_t cf, std::string_view name, std::string_view value) const {
  const auto& keys = by_family[cf];
  const auto it =
      std::lower_bound(keys.begin(), keys.end(), name, [](const key& k, std::string_view n) { return k.name < n; });
  return it != keys.end() && it->name == name && (!it->keep || *it->keep != value);
}

std::shared_ptr<const purge_keys> purge_slot::get() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

void purge_slot::set(std::shared_ptr<const purge_keys> keys) {
  std::lock_guard lock(mutex_);
  keys_ = std::move(keys);
}

}  // namespace detail

using namespace detail;

void store::impl::open(const storage_config& config) {
  auto t = make_tuning(config, dropped, purging);
  env = std::move(t.env);
  stats = t.stats;
  ids_filter = std::move(t.ids_filter);
  std::vector<rocksdb::ColumnFamilyHandle*> opened;
  rocksdb::DB* raw = nullptr;
  const auto s = rocksdb::DB::Open(t.db, config.path, t.families, &opened, &raw);
  if (!s.ok() && s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    throw store_error(store_error::kind::fatal,
                      fmt::format("the store at {} is in use by another process (a running cdr-retentiond?): {}",
                                  config.path, s.ToString()));
  }
  if (!s.ok()) raise(s, fmt::format("cannot open the store at {}", config.path));
  db.reset(raw);
  path = config.path;
  for (std::size_t i = 0; i < cf_count; ++i) cf[i] = opened[i];
}

void store::impl::load_states() {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), system()));
  const std::string start(1, state_tag);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    const auto p = decode_partition(it->key().ToStringView().substr(1));
    if (!p || it->value().size() != 1) {
      throw store_error(store_error::kind::fatal,
                        fmt::format("the store at {} holds a partition state that does not decode", path));
    }
    const auto st = state_of_bits(static_cast<std::uint8_t>(it->value()[0]));
    states[*p] = st;
    if (st.dropped) dropped->add(partition_prefix(*p));
  }
  if (!it->status().ok()) raise(it->status(), "cannot read partition states");
}

void store::impl::check_format(const storage_config& config) {
  std::string version;
  const auto vs = db->Get(rocksdb::ReadOptions(), system(), format_key, &version);
  if (vs.IsNotFound()) {
    std::string v;
    append_be64(v, format_version);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (const auto ws = db->Put(wo, system(), format_key, v); !ws.ok()) {
      raise(ws, "cannot write the store's format version");
    }
    return;
  }
  if (!vs.ok()) raise(vs, "cannot read the store's format version");
  const auto found = version.size() == 8 ? read_be64(version) : 0;
  if (found == format_version) return;
  if (found == 1) {
    throw store_error(
        store_error::kind::fatal,
        fmt::format("the store at {} has on-disk format 1, written by a pre-release build that kept identifiers in "
                    "plain text; this build reads format {} (identifiers encrypted under keys a strip destroys) and "
                    "does not convert it in place, because the plain-text copies would stay in the old files. "
                    "Move the directory aside and start with an empty storage.path: the daemon re-reads the "
                    "topics from the consumer group's offsets (reset them to the earliest to re-ingest), then "
                    "delete the old directory (docs/operations.md, \"Upgrade\")",
                    config.path, format_version));
  }
  throw store_error(store_error::kind::fatal, fmt::format("the store at {} has on-disk format {} but this build reads "
                                                          "format {}; use the matching cdr-retentiond version",
                                                          config.path, found, format_version));
}

store::impl::~impl() {
  for (auto* handle : cf) {
    if (handle != nullptr && db) db->DestroyColumnFamilyHandle(handle);
  }
  if (db) db->Close();
}

void store::impl::write(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch, std::string_view what) {
  without_perf_context();
  if (needs_resume) {
    // Busy: RocksDB is already recovering on its own; the write below tells
    // whether it has. Any other failure keeps the reason of the first error.
    const auto r = db->Resume();
    if (!r.ok() && !r.IsBusy()) {
      throw store_error(resume_kind, fmt::format("the store cannot resume writing yet: {}", r.ToString()));
    }
    if (r.ok()) needs_resume = false;
  }
  const auto s = db->Write(wo, batch);
  if (s.ok()) return;
  if (s.IsNoSpace() || s.IsIOError()) {
    if (!needs_resume) resume_kind = s.IsNoSpace() ? store_error::kind::no_space : store_error::kind::fatal;
    needs_resume = true;
    if (resume_kind == store_error::kind::no_space) {
      throw store_error(store_error::kind::no_space, fmt::format("{}: {}", what, s.ToString()));
    }
  }
  raise(s, what);
}

void store::impl::flush_all(std::string_view what) {
  std::vector<rocksdb::ColumnFamilyHandle*> all(cf.begin(), cf.end());
  if (const auto s = db->Flush(rocksdb::FlushOptions(), all); !s.ok()) raise(s, what);
}

rocksdb::Status store::impl::delete_files(const std::vector<removal>& ranges) const {
  rocksdb::Status first;
  for (const auto& removed : ranges) {
    const auto& r = removed.range;
    const rocksdb::Slice b(r.begin);
    const rocksdb::Slice e(r.end);
    auto s = rocksdb::DeleteFilesInRange(db.get(), h(removed.family), &b, r.end.empty() ? nullptr : &e);
    if (!s.ok() && first.ok()) first = std::move(s);
  }
  return first;
}

store::store(const storage_config& config) : impl_(std::make_unique<impl>()) {
  impl_->open(config);
  impl_->load_states();
  impl_->check_format(config);
}

store::~store() = default;

void store::sync_wal() {
  if (const auto s = impl_->db->SyncWAL(); !s.ok()) raise(s, "cannot sync the WAL");
}

std::map<partition, partition_state> store::states() const {
  std::lock_guard lock(impl_->write_mutex);
  return impl_->states;
}

std::vector<store::family_size> store::sizes() const {
  std::vector<family_size> out;
  for (std::size_t i = cf_metadata; i < cf_count; ++i) {
    std::uint64_t sst = 0;
    std::uint64_t mem = 0;
    impl_->db->GetIntProperty(impl_->cf[i], "rocksdb.live-sst-files-size", &sst);
    impl_->db->GetIntProperty(impl_->cf[i], "rocksdb.size-all-mem-tables", &mem);
    out.push_back({cf_names[i], sst + mem});
  }
  return out;
}

bool store::write_stopped() const {
  std::uint64_t v = 0;
  impl_->db->GetIntProperty("rocksdb.is-write-stopped", &v);
  return v != 0;
}

std::uint64_t store::stall_micros() const { return impl_->stats->getTickerCount(rocksdb::STALL_MICROS); }

}  // namespace cdr::store
