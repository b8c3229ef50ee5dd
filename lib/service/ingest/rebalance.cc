// The consumer group's rebalances: where an assigned partition starts, and
// what a revoked one's next owner finds committed.
#include <spdlog/spdlog.h>

#include "ingest.h"

namespace cdr::service {

std::optional<std::int64_t> ingest::stored_offset(const kafka::topic_partition& tp) {
  return store_.offset(tp.topic, tp.partition);
}

void ingest::assigned(const std::map<kafka::topic_partition, std::int64_t>& start,
                      const std::map<kafka::topic_partition, std::int64_t>& ahead) {
  joined_ = true;
  for (const auto& [tp, off] : start) {
    position_[tp] = off;
    start_[tp] = off;
  }
  if (!ahead.empty()) {
    // This store holds records the group does not know were stored (their
    // commit failed, or the assignment was lost before it was made): tell
    // it now, once they are durable, or a drain waiting on the group's
    // offsets and lag tools wait for a message that may never come.
    try {
      store_.sync_wal();
      consumer_->commit(ahead, false);
    } catch (const store::store_error& e) {
      spdlog::error("kafka: cannot make the store durable ({}); {} partition(s) stay uncommitted until new records",
                    e.what(), ahead.size());
    }
  }
  if (paused_) {
    consumer_->pause();
  } else {
    consumer_->resume(start);
  }
  spdlog::info("kafka: assigned {} partition(s)", start.size());
  std::lock_guard lock(status_mutex_);
  for (const auto& [tp, off] : start) {
    status_["assignment"][tp.topic][std::to_string(tp.partition)] = off;
    status_["offsets"][tp.topic][std::to_string(tp.partition)] = off;  // resumes where the store is
  }
}

std::optional<std::int64_t> ingest::durable_position(const kafka::topic_partition& tp) const {
  // The assignment started at the larger of the store's and the group's
  // offsets; an older offset in this store (from an earlier ownership) must
  // never move the group or this member back over records another member
  // stored.
  auto off = store_.offset(tp.topic, tp.partition);
  if (const auto start = start_.find(tp); start != start_.end()) {
    off = std::max(off.value_or(start->second), start->second);
  }
  return off;
}

void ingest::revoking(const std::vector<kafka::topic_partition>& partitions, bool lost) {
  // Write what was consumed from them, unless they already belong to
  // another member or the write fails: then drop the whole batch and
  // re-read every partition this member keeps from the store's offsets.
  // A batch that already failed is not retried here: a revocation must not
  // block (the coordinator would drop this member from the group).
  const bool flushed = !lost && !paused_ && try_flush();
  if (!lost) {
    // The next owner starts at the group's committed offset: make it exactly
    // what this store holds, durably (the WAL synced first; async commits
    // may lag behind it).
    bool durable = true;
    try {
      sync_and_commit(true);
    } catch (const store::store_error& e) {
      durable = false;
      spdlog::error(
          "kafka: cannot make the revoked partitions' batches durable ({}); their offsets are not "
          "committed, the next owner re-reads them",
          e.what());
    }
    std::map<kafka::topic_partition, std::int64_t> done;
    for (const auto& tp : partitions) {
      if (auto off = durable_position(tp); off && durable) done[tp] = *off;
    }
    consumer_->commit(done, true);
  }
  if (!flushed) rewind("rebalance");
  for (const auto& tp : partitions) {
    position_.erase(tp);
    start_.erase(tp);
  }
  forget_dead_letters([&](const kafka::topic_partition& tp, std::int64_t) {
    return std::find(partitions.begin(), partitions.end(), tp) != partitions.end();
  });
  spdlog::info("kafka: {} {} partition(s)", lost ? "lost" : "revoked", partitions.size());
  std::lock_guard lock(status_mutex_);
  for (const auto& tp : partitions) {
    if (status_.contains("assignment") && status_["assignment"].contains(tp.topic)) {
      status_["assignment"][tp.topic].erase(std::to_string(tp.partition));
    }
  }
}

}  // namespace cdr::service
