// The ingest loop: lifecycle, polling, pausing and resuming, parsing and
// staging each message, status.
#include "ingest.h"

#include <spdlog/spdlog.h>

namespace cdr::service {

ingest::ingest(const daemon_config& config, std::string bootstrap, const time_source& time, store::store& store,
               metrics::ingest_probe& probe, std::string subject_key, vault& keys,
               std::function<void(std::string)> on_fatal,
               std::function<std::shared_ptr<const std::vector<hold>>()> holds, std::function<instant()> decision_now,
               std::function<std::shared_ptr<const erasure_times>()> erased, const identity& ids)
    : config_(config),
      bootstrap_(std::move(bootstrap)),
      time_(time),
      store_(store),
      probe_(probe),
      subject_hash_(subject_key),
      ids_(ids),
      vault_(keys),
      on_fatal_(std::move(on_fatal)),
      holds_(std::move(holds)),
      decision_now_(std::move(decision_now)),
      erased_(std::move(erased)),
      dead_letter_seal_(subject_key),
      handover_seal_(subject_key),
      parser_(config.events),
      batch_(store),
      done_(time),
      fence_(time) {}

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
  co.group_instance_id = config_.kafka.group_instance_id;
  co.topics = {config_.kafka.topic_cdr, config_.kafka.topic_usage};
  // A draining member's records, handed over (docs/operations.md, "Drain").
  if (!config_.kafka.topic_handover.empty()) co.topics.push_back(config_.kafka.topic_handover);
  co.on_offset_reset = [this](const kafka::topic_partition& tp, std::string_view detail) {
    // Read from the partition's start now: a rewind must not go back to
    // the assignment's start, which the broker no longer holds.
    start_[tp] = 0;
    probe_.offset_reset(tp.topic);
    spdlog::error(
        "kafka: {}[{}]: the position was beyond what the broker holds and was reset to its start: "
        "records in between are gone upstream ({}); see CdrRetentionOffsetsReset",
        tp.topic, tp.partition, detail);
  };
  consumer_ = std::make_unique<kafka::consumer>(co, *this);
  thread_ = std::thread([this] { run(); });
}

bool ingest::stop(bool leave_group) {
  if (!thread_.joinable()) return true;
  leave_group_ = leave_group;
  stop_requested_ = true;
  if (!done_.wait_for(config_.kafka.shutdown_timeout, [this] { return finished_; })) {
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
        if (time_.monotonic() >= retry_at_) {
          if (try_flush()) {
            paused_ = false;
            backoff_ = std::chrono::milliseconds(100);
            consumer_->resume_at(position_);
            spdlog::info("ingest resumed (was paused: {})", pause_reason_);
            probe_.resumed();
            pause_reason_.clear();
            discard_pending();  // updates the status to running
            continue;           // the next message is consumed, not dropped
          } else {
            backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
            retry_at_ = time_.monotonic() + backoff_;
          }
        }
        // Served for rebalances; a message fetched before the pause took
        // effect is dropped here and fetched again after the resume.
        consumer_->poll(std::chrono::milliseconds(100));
        continue;
      }
      // Idle: a group of written batches still gets synced and committed in time.
      const auto idle_wait = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(100),
          std::chrono::duration_cast<std::chrono::milliseconds>(config_.storage.wal_sync_interval));
      auto m = consumer_->poll(pending_next_.empty() ? idle_wait : linger);
      if (m) process(m);
      const std::size_t size = staged_count_ + batch_.records() + pending_rejects_.size();
      const bool due = !pending_next_.empty() &&
                       (!m || size >= config_.kafka.batch_max_records || time_.monotonic() - batch_started_ >= linger);
      if (due) try_flush();
      if (!paused_) sync_and_commit(false);
    }
    // SIGTERM: write the batch in flight (retrying while the store or the
    // dead-letter topic recovers), then leave the group.
    while (!pending_next_.empty() && !try_flush()) {
      sleep_for(time_, std::chrono::milliseconds(100));
    }
    sync_and_commit(true);
    std::map<kafka::topic_partition, std::int64_t> owned;
    for (const auto& [tp, pos] : position_) {
      if (const auto off = durable_position(tp)) owned[tp] = *off;
    }
    const auto left = consumer_->commit_before_leaving(
        owned, std::chrono::duration_cast<std::chrono::milliseconds>(config_.kafka.shutdown_timeout) / 2);
    left_committed_ = left == kafka::consumer::leaving::taken;
    if (left == kafka::consumer::leaving::no_answer) {
      // Closing would wait for the group. The store has every record; the
      // partitions' next owners start at the group's offsets once this
      // member's session times out.
      spdlog::warn("kafka: leaving the group without closing (it did not answer)");
      consumer_->abandon();
      abandoned_ = true;
    } else {
      if (leave_group_ &&
          !consumer_->leave_group(
              std::chrono::duration_cast<std::chrono::milliseconds>(config_.kafka.shutdown_timeout) / 4)) {
        spdlog::warn(
            "kafka: the group did not take this member's leave in time; its partitions move when its "
            "session times out");
      }
      consumer_->close();
      abandoned_ = consumer_->abandoned();  // stopped before its first assignment
    }
  } catch (const std::exception& e) {
    spdlog::critical("ingest stopped: {}", e.what());
    if (on_fatal_) on_fatal_(e.what());
  }
  done_.notify([this] { finished_ = true; });
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
    batch_started_ = time_.monotonic();
    batch_holds_ = holds_ ? holds_() : nullptr;
    fence_.notify([this] {
      batch_open_ = true;
      open_epoch_ = fence_epoch_;
    });
    batch_erased_ = erased_ ? erased_() : nullptr;
  }
  pending_next_[tp] = m.offset() + 1;
  position_[tp] = m.offset() + 1;

  const auto now = decision_now_();
  // A drained member's record (the handover topic) is sealed: opened here,
  // or refused (a message nobody in this fleet sealed).
  std::string_view value = m.value();
  std::optional<reject_reason> refused;
  if (topic == config_.kafka.topic_handover) {
    if (auto opened = handover_seal_.open(m.key(), value)) {
      handover_plain_ = std::move(*opened);
      value = handover_plain_;
    } else {
      refused = reject_reason::unsealed_handover;
    }
  }
  if (const auto reason = refused ? refused : parser_.parse(value, now, &event_)) {
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
  st.digest = content_digest(e.metadata, e.identifiers);
  st.metadata.assign(e.metadata);
  st.identifiers.assign(e.identifiers);
  stage_subjects(st, e);
}

bool ingest::fence(microseconds timeout) {
  std::uint64_t epoch = 0;
  fence_.notify([&] { epoch = ++fence_epoch_; });
  return fence_.wait_for(timeout, [&] { return !batch_open_ || open_epoch_ >= epoch; });
}

void ingest::stage_subjects(staged_event& st, const parsed_event& e) {
  st.subjects.clear();
  st.aliases.clear();
  const bool any_erased = batch_erased_ && !batch_erased_->empty();
  const auto erased_since = [&](const std::string& normalized) {
    const auto it = batch_erased_->find(subject_hash_(normalized));
    return it != batch_erased_->end() && e.occurred_at < it->second;
  };
  std::vector<std::string> gone;  // current forms
  for (const auto& [field, value] : e.identifier_strings) {
    if (ids_.earlier().empty() && !any_erased) {
      st.subjects.push_back(ids_.normalize(value));
      continue;
    }
    auto forms = ids_.forms_of(value);
    if (any_erased && std::any_of(forms.begin(), forms.end(), erased_since)) {
      gone.push_back(std::move(forms.front()));
      continue;
    }
    st.subjects.push_back(std::move(forms.front()));
    for (std::size_t i = 1; i < forms.size(); ++i) st.aliases.push_back(std::move(forms[i]));
  }
  if (gone.empty()) return;
  st.identifiers = without_identifiers(st.identifiers, [&](std::string_view v) {
    return std::find(gone.begin(), gone.end(), ids_.normalize(v)) != gone.end();
  });
  spdlog::debug("ingest: {} {}: {} identifier(s) of erased subjects left out", name(st.kind), st.id, gone.size());
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
  if (const auto g = consumer_ ? consumer_->group() : std::nullopt) {
    out["group"] = {{"state", g->state},
                    {"join_state", g->join_state},
                    {"rebalances", g->rebalances},
                    {"rebalance_age_ms", g->rebalance_age_ms},
                    {"rebalance_reason", g->rebalance_reason}};
  }
  return out;
}

std::map<kafka::topic_partition, std::int64_t> ingest::lag() const {
  return consumer_ ? consumer_->lag() : std::map<kafka::topic_partition, std::int64_t>{};
}

}  // namespace cdr::service
