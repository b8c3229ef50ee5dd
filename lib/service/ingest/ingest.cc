#include "ingest.h"

#include <spdlog/spdlog.h>

#include "cdr/core/key_layout.h"
#include "cdr/crypto/crypto.h"
#include "failpoint.h"

namespace cdr::service {
namespace {

std::string id_key(record_kind kind, std::string_view id) {
  std::string k(1, static_cast<char>(kind));
  k.append(id);
  return k;
}

constexpr std::uint64_t ticket_of(std::uint64_t generation, std::size_t index) {
  return (generation << 24) | static_cast<std::uint64_t>(index);
}

}  // namespace

ingest::ingest(const daemon_config& config, std::string bootstrap, const clock& time, store::store& store,
               metrics::ingest_probe& probe, std::string subject_key, vault& keys,
               std::function<void(std::string)> on_fatal,
               std::function<std::shared_ptr<const std::vector<hold>>()> holds)
    : config_(config),
      bootstrap_(std::move(bootstrap)),
      clock_(time),
      store_(store),
      probe_(probe),
      subject_hash_(subject_key),
      vault_(keys),
      on_fatal_(std::move(on_fatal)),
      holds_(std::move(holds)),
      parser_(config.events),
      batch_(store) {}

ingest::~ingest() { stop(); }

void ingest::start() {
  kafka::client_options client{bootstrap_, config_.kafka.client_id, config_.kafka.properties};
  dead_letters_ =
      std::make_unique<kafka::producer>(client, [this](std::uint64_t ticket, bool ok, std::string_view error) {
        if (auto it = dead_letter_tickets_.find(ticket); it != dead_letter_tickets_.end()) {
          if (ok) dead_lettered_.insert(it->second);
          dead_letter_tickets_.erase(it);
        }
        if ((ticket >> 24) != generation_) return;  // from a discarded batch
        auto& r = pending_rejects_.at(ticket & 0xffffff);
        r.delivered = ok;
        r.failed = !ok;
        if (!ok) spdlog::warn("dead-letter write failed for {}/{}@{}: {}", r.topic, r.partition, r.offset, error);
      });
  kafka::consumer_options co;
  static_cast<kafka::client_options&>(co) = client;
  co.group_id = config_.kafka.group_id;
  co.topics = {config_.kafka.topic_cdr, config_.kafka.topic_usage};
  consumer_ = std::make_unique<kafka::consumer>(co, *this);
  thread_ = std::thread([this] { run(); });
}

bool ingest::stop() {
  if (!thread_.joinable()) return true;
  stop_requested_ = true;
  const auto deadline = std::chrono::steady_clock::now() + config_.kafka.shutdown_timeout;
  while (!finished_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!finished_) {
    spdlog::error("ingest did not stop within kafka.shutdown_timeout ({}); leaving it behind",
                  format_duration(config_.kafka.shutdown_timeout));
    thread_.detach();
    return false;
  }
  thread_.join();
  return true;
}

void ingest::run() {
  try {
    const auto linger = std::chrono::duration_cast<std::chrono::milliseconds>(config_.kafka.batch_linger);
    while (!stop_requested_) {
      dead_letters_->poll();
      if (paused_) {
        if (std::chrono::steady_clock::now() >= retry_at_) {
          if (try_flush()) {
            paused_ = false;
            backoff_ = std::chrono::milliseconds(100);
            consumer_->resume_at(position_);
            spdlog::info("ingest resumed (was paused: {})", pause_reason_);
            pause_reason_.clear();
            discard_pending();  // updates the status to running
            continue;           // the next message is consumed, not dropped
          } else {
            backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
            retry_at_ = std::chrono::steady_clock::now() + backoff_;
          }
        }
        // Served for rebalances; a message fetched before the pause took
        // effect is dropped here and fetched again after the resume.
        consumer_->poll(std::chrono::milliseconds(100));
        continue;
      }
      auto m = consumer_->poll(pending_next_.empty() ? std::chrono::milliseconds(100) : linger);
      if (m) process(m);
      const std::size_t size = staged_count_ + batch_.records() + pending_rejects_.size();
      const bool due = !pending_next_.empty() && (!m || size >= config_.kafka.batch_max_records ||
                                                  std::chrono::steady_clock::now() - batch_started_ >= linger);
      if (due) try_flush();
    }
    // SIGTERM: write the batch in flight (retrying while the store or the
    // dead-letter topic recovers), then leave the group.
    while (!pending_next_.empty() && !try_flush()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    consumer_->close();
  } catch (const std::exception& e) {
    spdlog::critical("ingest stopped: {}", e.what());
    if (on_fatal_) on_fatal_(e.what());
  }
  finished_ = true;
}

void ingest::process(const kafka::message& m) {
  if (const auto err = m.error(); !err.empty()) {
    std::uint64_t held = 0;
    if (reject_log_.allow(&held)) spdlog::warn("kafka: consume error: {}", err);
    return;
  }
  const std::string topic(m.topic());
  const kafka::topic_partition tp{topic, m.partition()};
  if (pending_next_.empty()) {
    batch_started_ = std::chrono::steady_clock::now();
    batch_holds_ = holds_ ? holds_() : nullptr;
  }
  pending_next_[tp] = m.offset() + 1;
  position_[tp] = m.offset() + 1;

  const auto now = clock_.now();
  if (const auto reason = parser_.parse(m.value(), now, &event_)) {
    // Forwarded unchanged; its offset is written only once this is acked.
    // Read again after a dropped batch, it is not forwarded twice.
    pending_rejects_.push_back(
        {topic, m.partition(), m.offset(), *reason, std::string(m.key()), std::string(m.value())});
    if (dead_lettered_.contains({tp, m.offset()})) {
      pending_rejects_.back().delivered = true;
    } else {
      produce_reject(pending_rejects_.size() - 1);
    }
    ++pending_outcomes_[{topic, ingest_outcome::rejected}];
    ++pending_reasons_[{topic, *reason}];
    std::uint64_t held = 0;
    if (reject_log_.allow(&held)) {
      spdlog::warn("rejected {}/{}@{}: {} ({} more rejections not logged)", topic, m.partition(), m.offset(),
                   name(*reason), held);
    }
    return;
  }

  const auto& e = event_;
  const retention_class cls = config_.retention.classify(e.customer_id, e.country);
  if (staged_count_ == staged_.size()) staged_.emplace_back();
  auto& st = staged_[staged_count_++];
  st.topic = topic;
  st.kind = e.kind;
  st.id.assign(e.id);
  st.customer.assign(e.customer_id);
  st.where = partition{e.kind, e.month, cls};
  st.late = lateness_of(config_.retention, e.kind, e.month, cls, now);
  st.digest = e.kind == record_kind::cdr ? content_digest(e.metadata, e.identifiers) : content_digest(e.metadata);
  st.metadata.assign(e.metadata);
  st.identifiers.assign(e.identifiers);
  st.subjects.clear();
  if (e.kind == record_kind::cdr) {
    for (const auto& [field, value] : e.identifier_strings) st.subjects.push_back(normalize_identifier(value));
  }
}

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
    auto key = id_key(st.kind, st.id);
    ingest_outcome outcome = ingest_outcome::stored;
    std::optional<std::uint64_t> seen;
    std::optional<partition> seen_where;
    if (auto it = pending_ids_.find(key); it != pending_ids_.end()) {
      seen = it->second;  // earlier in this batch
    } else if (found[i]) {
      seen = found[i]->digest;
      seen_where = found[i]->where;
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
  if (st.kind == record_kind::cdr) assign_record_key(rk, st.where, st.id);
  bool sealed = false;
  if (st.kind == record_kind::cdr && st.late == lateness::on_time && !st.identifiers.empty()) {
    // False: the partition's key is destroyed, so a sweep has stripped it
    // since this event's lateness was decided: it is late after all.
    sealed = vault_.seal_indexed(key_scope::partition, st.where, rk, st.identifiers, st.subjects, sealed_, hashes_);
    if (!sealed) st.late = lateness::strip;
  }
  if (st.late != lateness::on_time && batch_holds_ && !batch_holds_->empty()) {
    hashes_.clear();
    for (const auto& s : st.subjects) hashes_.push_back(subject_hash_(s));
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
        batch_.put_id(st.kind, st.id, st.where, st.digest);
      } else {
        batch_.put_cdr(st.where, st.id, st.metadata, {}, st.digest);
        batch_.put_held(st.where, st.id, {}, sealed_, hashes_);
      }
      return ingest_outcome::stored;
    }
  }
  if (st.late == lateness::drop) return ingest_outcome::dropped_on_ingest;
  if (st.kind == record_kind::usage) {
    batch_.put_usage(st.where, st.id, st.metadata, st.digest);
    return ingest_outcome::stored;
  }
  batch_.put_cdr(st.where, st.id, st.metadata, sealed ? std::string_view(sealed_) : std::string_view(), st.digest);
  if (sealed) {
    for (const auto& h : hashes_) batch_.put_subject(st.where, h, st.id);
  }
  return st.late == lateness::strip ? ingest_outcome::stripped_on_ingest : ingest_outcome::stored;
}

void ingest::produce_reject(std::size_t index) {
  auto& r = pending_rejects_[index];
  const auto ticket = ticket_of(generation_, index);
  dead_letter_tickets_[ticket] = {{r.topic, r.partition}, r.offset};
  std::string error;
  r.failed = !dead_letters_->produce(config_.kafka.topic_dead_letter, r.key, r.value,
                                     {{"cdr-retention-reason", std::string(name(r.reason))},
                                      {"cdr-retention-source-topic", r.topic},
                                      {"cdr-retention-source-partition", std::to_string(r.partition)},
                                      {"cdr-retention-source-offset", std::to_string(r.offset)}},
                                     ticket, &error);
  if (r.failed) dead_letter_tickets_.erase(ticket);
}

void ingest::deliver_rejects() {
  if (pending_rejects_.empty()) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    dead_letters_->flush(std::chrono::milliseconds(500));
    bool all = true;
    for (std::size_t i = 0; i < pending_rejects_.size(); ++i) {
      auto& r = pending_rejects_[i];
      if (r.delivered) continue;
      all = false;
      if (r.failed) produce_reject(i);
    }
    if (all) return;
    if (std::chrono::steady_clock::now() >= deadline || stop_requested_) {
      throw kafka::kafka_error("the dead-letter topic does not acknowledge writes");
    }
  }
}

void ingest::forget_dead_letters(const std::function<bool(const kafka::topic_partition&, std::int64_t)>& done) {
  std::erase_if(dead_lettered_, [&](const auto& d) { return done(d.first, d.second); });
}

void ingest::flush() {
  if (pending_next_.empty()) return;
  const auto started = std::chrono::steady_clock::now();
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
  consumer_->commit(pending_next_, false);
  probe_.batch_written(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                       batch_.records());
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

bool ingest::try_flush() {
  try {
    flush();
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
  }
  paused_ = true;
  pause_reason_ = reason;
  retry_at_ = std::chrono::steady_clock::now() + backoff_;
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
  retry_at_ = std::chrono::steady_clock::now();
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
  std::lock_guard lock(status_mutex_);
  if (!paused_) {
    status_["state"] = "running";
    status_.erase("pause_reason");
  }
}

std::optional<std::int64_t> ingest::stored_offset(const kafka::topic_partition& tp) {
  return store_.offset(tp.topic, tp.partition);
}

void ingest::assigned(const std::map<kafka::topic_partition, std::int64_t>& start) {
  for (const auto& [tp, off] : start) {
    position_[tp] = off;
    start_[tp] = off;
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
    // what this store holds (async commits may lag behind it).
    std::map<kafka::topic_partition, std::int64_t> done;
    for (const auto& tp : partitions) {
      if (auto off = durable_position(tp)) done[tp] = *off;
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

nlohmann::json ingest::status() const {
  std::lock_guard lock(status_mutex_);
  auto out = status_;
  if (!out.contains("state")) out["state"] = "running";
  nlohmann::json lag = nlohmann::json::object();
  if (consumer_) {
    for (const auto& [tp, l] : consumer_->lag()) lag[tp.topic][std::to_string(tp.partition)] = l;
  }
  out["lag"] = lag;
  out["group_id"] = config_.kafka.group_id;
  return out;
}

std::map<kafka::topic_partition, std::int64_t> ingest::lag() const {
  return consumer_ ? consumer_->lag() : std::map<kafka::topic_partition, std::int64_t>{};
}

}  // namespace cdr::service
