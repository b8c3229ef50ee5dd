// The batch: staged events decided against the id index, sealed, and made
// durable in one store write with their partitions' next offsets.
#include <spdlog/spdlog.h>

#include "../failpoint.h"
#include "cdr/core/key_layout.h"
#include "ingest.h"

namespace cdr::service {

void ingest::resolve_staged() {
  if (staged_count_ == 0) return;
  // In id order: ids are created in time order, so each family's memtable
  // gets the batch's keys in ascending order per partition and inserts them
  // next to the previous one. The sort is stable: of two events with one id,
  // the one consumed first is still the one stored.
  order_.resize(staged_count_);
  for (std::size_t i = 0; i < staged_count_; ++i) order_[i] = &staged_[i];
  std::stable_sort(order_.begin(), order_.end(), [](const staged_event* a, const staged_event* b) {
    return a->kind != b->kind ? a->kind < b->kind : a->id < b->id;
  });
  std::vector<std::pair<record_kind, std::string_view>> ids;
  ids.reserve(staged_count_);
  for (const auto* st : order_) ids.emplace_back(st->kind, st->id);
  const auto found = store_.find_ids(ids);
  for (std::size_t i = 0; i < staged_count_; ++i) {
    auto& st = *order_[i];
    auto key = id_index_key(st.kind, st.id);
    ingest_outcome outcome = ingest_outcome::stored;
    std::optional<std::uint64_t> seen;
    std::optional<partition> seen_where;
    if (auto it = pending_ids_.find(key); it != pending_ids_.end()) {
      seen = it->second;  // earlier in this batch
    } else if (found[i].entry) {
      seen = found[i].entry->digest;
      seen_where = found[i].entry->where;
    } else if (found[i].corrupt) {
      // Its id index entry does not decode: stored as new, which writes a
      // good entry over it (counted in cdr_retention_store_corrupt_entries_total).
      std::uint64_t held = 0;
      if (conflict_log_.allow(&held)) {
        spdlog::error("the id index entry of {} {} does not decode; the record is stored again ({} more not logged)",
                      name(st.kind), st.id, held);
      }
    }
    if (seen) {
      outcome = *seen == st.digest && (!seen_where || *seen_where == st.where) ? ingest_outcome::duplicate
                                                                               : ingest_outcome::conflict;
      if (outcome == ingest_outcome::conflict) {
        std::uint64_t held = 0;
        if (conflict_log_.allow(&held)) {
          spdlog::warn(
              "record {} {} reappeared on {} with different content; the first one is kept "
              "({} more conflicts not logged)",
              name(st.kind), st.id, st.topic, held);
        }
      }
    } else {
      outcome = store_event(st);
      if (outcome != ingest_outcome::dropped_on_ingest) pending_ids_.emplace(std::move(key), st.digest);
    }
    ++pending_outcomes_[{st.topic, outcome}];
  }
  staged_count_ = 0;
}

ingest_outcome ingest::store_event(staged_event& st) {
  auto& rk = record_key_;
  assign_record_key(rk, st.where, st.id);
  bool sealed = false;
  if (st.late == lateness::on_time && !st.identifiers.empty()) {
    // False: the partition's key is destroyed, so a sweep has stripped it
    // since this event's lateness was decided: it is late after all.
    sealed = vault_.seal_indexed(key_scope::partition, st.where, rk, st.identifiers, st.subjects, sealed_, hashes_);
    if (!sealed) st.late = lateness::strip;
  }
  if (st.late != lateness::on_time && batch_holds_ && !batch_holds_->empty()) {
    hashes_.clear();
    for (const auto& s : st.subjects) hashes_.push_back(subject_hash_(s));
    for (const auto& s : st.aliases) hashes_.push_back(subject_hash_(s));
    if (any_covers(*batch_holds_, st.where, st.customer, hashes_)) {
      // A legal hold names this late event: it is kept in full, its
      // past-deadline parts in the held family, sealed under the held key.
      sealed_.clear();
      hashes_.clear();
      if (!st.identifiers.empty()) {
        vault_.seal_indexed(key_scope::held, st.where, held_key(held_tag::identifiers, rk), st.identifiers, st.subjects,
                            sealed_, hashes_);
      }
      if (st.late == lateness::drop) {
        batch_.put_held(st.where, st.id, st.metadata, sealed_, hashes_);
        batch_.put_id(st.kind, st.id, st.where, st.digest, /*held=*/true);
      } else {
        batch_.put_cdr(st.where, st.id, st.metadata, {}, st.digest);
        batch_.put_held(st.where, st.id, {}, sealed_, hashes_);
      }
      return ingest_outcome::stored;
    }
  }
  if (st.late == lateness::drop) return ingest_outcome::dropped_on_ingest;
  const auto identifiers = sealed ? std::string_view(sealed_) : std::string_view();
  if (st.kind == record_kind::usage) {
    batch_.put_usage(st.where, st.id, st.metadata, identifiers, st.digest);
  } else {
    batch_.put_cdr(st.where, st.id, st.metadata, identifiers, st.digest);
  }
  if (sealed) {
    for (const auto& h : hashes_) batch_.put_subject(st.where, h, st.id);
  }
  return st.late == lateness::strip ? ingest_outcome::stripped_on_ingest : ingest_outcome::stored;
}

void ingest::flush() {
  if (pending_next_.empty()) return;
  const auto started = time_.monotonic();
  deliver_rejects();
  // Sealed and committed under one lease: no key this batch uses is
  // destroyed before its records are durable.
  const auto lease = vault_.lease();
  if (!batch_epoch_) batch_epoch_ = vault_.epoch();
  if (*batch_epoch_ != vault_.epoch()) {
    // Keys were destroyed since a failed attempt sealed this batch.
    throw store::store_error(store::store_error::kind::stale, "data keys were destroyed since the batch was sealed");
  }
  if (!pending_rejects_.empty() && failpoint_once("refuse_batch_as_stale")) {
    throw store::store_error(store::store_error::kind::stale, "refused by a failpoint");
  }
  resolve_staged();
  for (const auto& [tp, next] : pending_next_) batch_.set_offset(tp.topic, tp.partition, next);
  store_.commit(batch_);
  forget_dead_letters([&](const kafka::topic_partition& tp, std::int64_t offset) {
    const auto it = pending_next_.find(tp);
    return it != pending_next_.end() && offset < it->second;
  });
  if (unsynced_.empty()) unsynced_since_ = time_.monotonic();
  for (const auto& [tp, next] : pending_next_) unsynced_[tp] = std::max(unsynced_[tp], next);
  unsynced_bytes_ += batch_.bytes();
  probe_.batch_written(seconds_since(time_, started), batch_.records());
  for (const auto& [k, n] : pending_outcomes_) probe_.events(k.first, k.second, n);
  for (const auto& [k, n] : pending_reasons_) probe_.rejected(k.first, k.second, n);
  {
    std::lock_guard lock(status_mutex_);
    for (const auto& [tp, next] : pending_next_) {
      status_["offsets"][tp.topic][std::to_string(tp.partition)] = next;
    }
    for (const auto& [k, n] : pending_outcomes_) {
      auto& slot = status_["events"][std::string(name(k.second))];
      slot = slot.is_number() ? slot.get<std::uint64_t>() + n : n;
    }
  }
  discard_pending();
}

void ingest::sync_and_commit(bool now) {
  if (unsynced_.empty()) return;
  const bool due = now || unsynced_bytes_ >= config_.storage.wal_sync_bytes ||
                   time_.monotonic() - unsynced_since_ >= config_.storage.wal_sync_interval;
  if (!due) return;
  const auto started = time_.monotonic();
  store_.sync_wal();
  probe_.wal_synced(seconds_since(time_, started));
  consumer_->commit(unsynced_, false);
  unsynced_.clear();
  unsynced_bytes_ = 0;
}

bool ingest::try_flush() {
  try {
    flush();
    sync_and_commit(false);
    return true;
  } catch (const store::store_error& e) {
    if (e.which() == store::store_error::kind::fatal) throw;
    if (e.which() == store::store_error::kind::stale) {
      // A sweep closed a partition after this batch was built: build it
      // again from the store's offsets, deciding lateness anew.
      spdlog::info("ingest: {}; re-reading the batch", e.what());
      rewind("partition_closed");
      return false;
    }
    pause(e.which() == store::store_error::kind::stall ? "write_stall" : "no_space");
    spdlog::warn("ingest paused: {}", e.what());
  } catch (const kafka::kafka_error& e) {
    pause("dead_letter");
    spdlog::warn("ingest paused: {}", e.what());
  }
  return false;
}

void ingest::pause(std::string_view reason) {
  if (!paused_) {
    consumer_->pause();
    probe_.paused(reason);
  } else if (reason != pause_reason_) {
    probe_.paused(reason);
  }
  paused_ = true;
  pause_reason_ = reason;
  retry_at_ = time_.monotonic() + backoff_;
  std::lock_guard lock(status_mutex_);
  status_["state"] = "paused";
  status_["pause_reason"] = pause_reason_;
}

void ingest::rewind(std::string_view reason) {
  // The dropped batch held messages of the partitions this member keeps:
  // pause, and resume them where the store (or their assignment) starts,
  // so they are consumed again.
  discard_pending();
  for (auto& [tp, pos] : position_) {
    if (auto off = durable_position(tp)) pos = *off;
  }
  pause(reason);
  retry_at_ = time_.monotonic();
}

void ingest::discard_pending() {
  batch_.clear();
  staged_count_ = 0;
  pending_next_.clear();
  pending_ids_.clear();
  pending_rejects_.clear();
  pending_outcomes_.clear();
  pending_reasons_.clear();
  batch_epoch_.reset();
  ++generation_;
  fence_.notify([this] { batch_open_ = false; });
  std::lock_guard lock(status_mutex_);
  if (!paused_) {
    status_["state"] = "running";
    status_.erase("pause_reason");
  }
}

}  // namespace cdr::service
