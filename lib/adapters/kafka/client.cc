#include "cdr/kafka/client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cdr/kafka/embedded_cluster.h"

namespace cdr::kafka {
namespace {

using partition_list = std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)>;

partition_list new_list(std::size_t size) {
  return {rd_kafka_topic_partition_list_new(static_cast<int>(size)), rd_kafka_topic_partition_list_destroy};
}

partition_list to_list(const std::map<topic_partition, std::int64_t>& offsets) {
  auto l = new_list(offsets.size());
  for (const auto& [tp, off] : offsets) {
    rd_kafka_topic_partition_list_add(l.get(), tp.topic.c_str(), tp.partition)->offset = off;
  }
  return l;
}

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw kafka_error(fmt::format("kafka property {}: {}", key, err));
  }
}

rd_kafka_conf_t* base_conf(const client_options& o, const std::map<std::string, std::string>& ours) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  try {
    set(conf, "bootstrap.servers", o.bootstrap_servers);
    set(conf, "client.id", o.client_id);
    for (const auto& [k, v] : ours) set(conf, k, v);
    for (const auto& [k, v] : o.properties) set(conf, k, v);
  } catch (...) {
    rd_kafka_conf_destroy(conf);
    throw;
  }
  route_logs_to_spdlog(conf);
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t* rk, int err, const char* reason, void*) {
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      spdlog::error("kafka {}: fatal error: {}", rd_kafka_name(rk), reason);
    } else {
      // Transient: brokers down, timeouts. librdkafka retries by itself.
      spdlog::warn("kafka {}: {} ({})", rd_kafka_name(rk), reason, rd_kafka_err2name(code));
    }
  });
  return conf;
}

}  // namespace

std::vector<std::string> property_problems(const std::map<std::string, std::string>& properties) {
  std::vector<std::string> out;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : properties) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      out.push_back(fmt::format("kafka.properties.\"{}\": {}", k, err));
    }
  }
  if (!out.empty()) {
    rd_kafka_conf_destroy(conf);
    return out;
  }
  // A consumer with no broker to contact checks the combination (a
  // protocol this build lacks, a mechanism without its settings) and
  // connects to nothing.
  rd_kafka_conf_set(conf, "group.id", "cdr-retention-check", err, sizeof err);
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    out.push_back(fmt::format("kafka.properties: {}", err));
  } else {
    rd_kafka_destroy(rk);
  }
  return out;
}

message::~message() {
  if (m_ != nullptr) rd_kafka_message_destroy(m_);
}
std::string message::error() const { return m_->err ? rd_kafka_message_errstr(m_) : std::string(); }
std::string_view message::topic() const { return rd_kafka_topic_name(m_->rkt); }
std::int32_t message::partition() const { return m_->partition; }
std::int64_t message::offset() const { return m_->offset; }
std::string_view message::value() const {
  return m_->payload ? std::string_view(static_cast<const char*>(m_->payload), m_->len) : std::string_view();
}
std::string_view message::key() const {
  return m_->key ? std::string_view(static_cast<const char*>(m_->key), m_->key_len) : std::string_view();
}

std::optional<std::chrono::milliseconds> message::age() const {
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  const auto at = rd_kafka_message_timestamp(m_, &type);
  if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || at < 0) return std::nullopt;
  const auto now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  return std::max(std::chrono::milliseconds(0), now - std::chrono::milliseconds(at));
}

// Runs a callback body that librdkafka calls from C: an exception must not
// unwind through librdkafka (it would abort the process). The failure is
// kept and thrown on the owner's thread by the next poll, flush or produce.
template <class F>
void guarded(std::string& failure, std::mutex& m, std::string_view what, F&& body) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    spdlog::critical("kafka: {} failed: {}", what, e.what());
    std::lock_guard lock(m);
    if (failure.empty()) failure = fmt::format("{} failed: {}", what, e.what());
  } catch (...) {
    spdlog::critical("kafka: {} failed", what);
    std::lock_guard lock(m);
    if (failure.empty()) failure = fmt::format("{} failed", what);
  }
}

// Throws the failure a callback left, if any.
void rethrow(std::string& failure, std::mutex& m) {
  std::lock_guard lock(m);
  if (!failure.empty()) throw kafka_error(failure);
}

struct consumer::impl {
  rd_kafka_t* rk = nullptr;
  rebalance_listener* listener = nullptr;
  std::mutex failure_mutex;
  std::string failure;  // a callback's, thrown by the next poll
  mutable std::mutex lag_mutex;
  std::map<topic_partition, std::int64_t> lag;
  std::optional<consumer::group_state> membership;  // guarded by lag_mutex
  std::map<topic_partition, std::int64_t> assigned;
  bool ever_assigned = false;
  std::function<void(const topic_partition&, std::string_view)> on_offset_reset;

  // The broker no longer holds the partition's position (its records were
  // deleted by retention, or the topic was recreated): librdkafka stops
  // fetching it and reports RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET. Reported
  // to the owner, then fetched again from the partition's start: what lies
  // between is gone upstream, and everything still there is read.
  void reset_to_start(const rd_kafka_message_t* m) {
    const topic_partition tp{m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "", m->partition};
    const std::string detail = rd_kafka_message_errstr(m);
    if (on_offset_reset) {
      try {
        on_offset_reset(tp, detail);
      } catch (const std::exception& e) {
        spdlog::error("kafka: reporting an offset reset failed: {}", e.what());
      }
    }
    // librdkafka 2.0.2 refuses to seek a partition it stopped fetching
    // (ERR__STATE; librdkafka issue 2961): it leaves this member's
    // assignment and comes back at its start (both allowed outside a
    // rebalance callback; the group does not see it).
    auto list = new_list(1);
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
    for (auto* step : {&rd_kafka_incremental_unassign, &rd_kafka_incremental_assign}) {
      if (rd_kafka_error_t* e = (*step)(rk, list.get())) {
        spdlog::error("kafka: {}[{}]: cannot move to the start after an offset reset: {}", tp.topic, tp.partition,
                      rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
      }
    }
  }
  bool closed = false;
  bool abandoned = false;
  // Offsets whose commit to the group failed (e.g. "rebalance in progress"),
  // committed again from poll() while the partition stays assigned: the
  // store has them either way, but lag tools and a drain's progress read the
  // group's. Touched only on the polling thread (commit callbacks are served
  // by poll()).
  std::map<topic_partition, std::int64_t> failed_commits;
  std::map<topic_partition, std::int64_t> latest_commit;  // the highest offset asked for
  // The highest offset the group is known to hold per partition: its answer
  // at assignment, then every commit it acknowledged (kept after a
  // revocation: a member leaving asks whether its last commits were taken).
  std::map<topic_partition, std::int64_t> acknowledged;
  std::chrono::steady_clock::time_point last_retry{};
  // Set when the group answers a commit with "rebalance in progress" (or a
  // stale generation), cleared when the rebalance reaches this member (its
  // assign or revoke callback). Meanwhile asynchronous commits are held, not
  // sent: a commit sent while the member rejoins waits behind its JoinGroup
  // and fails with the old generation, which librdkafka 2.0.2 takes for a
  // lost assignment, and that starts one more rebalance (each held a whole
  // session timeout by a static member that left).
  std::optional<std::chrono::steady_clock::time_point> rebalancing_since;
  std::chrono::milliseconds hold_limit{45'000};  // the group's session timeout

  bool holding_commits() {
    if (!rebalancing_since) return false;
    if (std::chrono::steady_clock::now() - *rebalancing_since < hold_limit) return true;
    rebalancing_since.reset();  // no rebalance reached this member: commit again rather than never
    return false;
  }
  // Keeps offsets to commit once the rebalance is over (retry_failed_commits).
  void hold(const std::map<topic_partition, std::int64_t>& next) {
    commit_requested(next);
    for (const auto& [tp, offset] : next) failed_commits[tp] = latest_commit[tp];
  }

  // The offsets of `next` the group has not acknowledged yet.
  std::map<topic_partition, std::int64_t> unacknowledged(const std::map<topic_partition, std::int64_t>& next) const {
    std::map<topic_partition, std::int64_t> out;
    for (const auto& [tp, offset] : next) {
      const auto at = acknowledged.find(tp);
      if (at == acknowledged.end() || at->second < offset) out[tp] = offset;
    }
    return out;
  }

  void commit_requested(const std::map<topic_partition, std::int64_t>& next) {
    for (const auto& [tp, offset] : next) {
      auto& slot = latest_commit[tp];
      slot = std::max(slot, offset);
    }
  }

  // Only the latest offset asked for is retried: an older one failing after
  // a newer one succeeded must not move the group's offset back.
  void commit_done(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* offsets) {
    const auto rebalance = [](rd_kafka_resp_err_t e) {
      return e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION;
    };
    if (rebalance(err)) rebalancing_since = std::chrono::steady_clock::now();
    if (offsets == nullptr) return;
    for (int i = 0; i < offsets->cnt; ++i) {
      const auto& e = offsets->elems[i];
      const topic_partition tp{e.topic, e.partition};
      if (e.offset < 0) continue;
      if (!err && !e.err) {
        auto& slot = acknowledged[tp];
        slot = std::max(slot, e.offset);
      }
      if (rebalance(e.err)) rebalancing_since = std::chrono::steady_clock::now();
      if (err || e.err) {
        if (const auto at = latest_commit.find(tp); at != latest_commit.end() && at->second == e.offset) {
          failed_commits[tp] = e.offset;
        }
      } else if (const auto at = failed_commits.find(tp); at != failed_commits.end() && at->second <= e.offset) {
        failed_commits.erase(at);
      }
    }
  }

  // Commits the failed offsets again, at most once a second, for the
  // partitions still assigned (a revoked one is its next owner's to commit).
  void retry_failed_commits() {
    if (failed_commits.empty() || holding_commits()) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_retry < std::chrono::seconds(1)) return;
    last_retry = now;
    std::erase_if(failed_commits,
                  [&](const auto& kv) { return !assigned.contains(kv.first) || latest_commit[kv.first] != kv.second; });
    if (failed_commits.empty()) return;
    auto list = to_list(failed_commits);
    rd_kafka_commit(rk, list.get(), 1);  // the callback reports the outcome
  }

  bool cooperative() const { return std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0; }

  // Adds (assign) or removes partitions, incrementally under the cooperative
  // protocol, wholesale under the eager one.
  void change_assignment(rd_kafka_topic_partition_list_t* parts, bool add) {
    if (!cooperative()) {
      rd_kafka_assign(rk, add ? parts : nullptr);
      return;
    }
    if (auto* e = add ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts)) {
      spdlog::error("kafka: incremental {} failed: {}", add ? "assign" : "unassign", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  }

  void on_assign(rd_kafka_topic_partition_list_t* parts) {
    // The group's committed offsets, to compare with the store's: the
    // further one wins. The store is ahead after a crash between its write
    // and the Kafka commit; the group is ahead when another member stored
    // those records since this member last owned the partition.
    auto committed = rd_kafka_topic_partition_list_copy(parts);
    const auto err = rd_kafka_committed(rk, committed, 30000);
    if (err) spdlog::warn("kafka: cannot read committed offsets ({}); using the store's", rd_kafka_err2str(err));
    std::map<topic_partition, std::int64_t> start;
    std::map<topic_partition, std::int64_t> ahead;
    for (int i = 0; i < parts->cnt; ++i) {
      auto& e = parts->elems[i];
      const topic_partition tp{e.topic, e.partition};
      const auto local = listener->stored_offset(tp);
      const std::int64_t group = err ? -1 : committed->elems[i].offset;
      std::int64_t chosen = local.value_or(-1);
      if (group >= 0 && group > chosen) chosen = group;
      // Unknown to the group (its answer failed): not "ahead", nothing to fix.
      if (!err && local && *local > 0 && *local > group) ahead[tp] = *local;
      if (!err) acknowledged[tp] = group;
      e.offset = chosen >= 0 ? chosen : RD_KAFKA_OFFSET_BEGINNING;
      start[tp] = chosen >= 0 ? chosen : 0;
    }
    rd_kafka_topic_partition_list_destroy(committed);
    change_assignment(parts, true);
    for (const auto& [tp, off] : start) assigned[tp] = off;
    listener->assigned(start, ahead);
  }

  void on_revoke(rd_kafka_topic_partition_list_t* parts) {
    std::vector<topic_partition> tps;
    for (int i = 0; i < parts->cnt; ++i) tps.push_back({parts->elems[i].topic, parts->elems[i].partition});
    listener->revoking(tps, rd_kafka_assignment_lost(rk) != 0);
    change_assignment(parts, false);
    for (const auto& tp : tps) {
      assigned.erase(tp);
      failed_commits.erase(tp);
      latest_commit.erase(tp);
    }
  }

  void on_stats(std::string_view json) {
    auto doc = nlohmann::json::parse(json, nullptr, false);
    if (doc.is_discarded()) return;
    if (const auto cg = doc.find("cgrp"); cg != doc.end() && cg->is_object()) {
      consumer::group_state g{
          cg->value("state", ""), cg->value("join_state", ""), cg->value("rebalance_cnt", static_cast<std::int64_t>(0)),
          cg->value("rebalance_age", static_cast<std::int64_t>(0)), cg->value("rebalance_reason", "")};
      std::lock_guard lock(lag_mutex);
      membership = std::move(g);
    }
    if (!doc.contains("topics")) return;
    std::map<topic_partition, std::int64_t> out;
    for (const auto& [topic, t] : doc["topics"].items()) {
      if (!t.contains("partitions")) continue;
      for (const auto& [p, v] : t["partitions"].items()) {
        const int partition = std::stoi(p);
        if (partition < 0 || !assigned.contains({topic, partition})) continue;
        // Unknown (-1: no position or end offset yet) is left out, not
        // exported as a number that would skew sums and alerts.
        const auto known = v.value("consumer_lag", static_cast<std::int64_t>(-1));
        if (known >= 0) out[{topic, partition}] = known;
      }
    }
    std::lock_guard lock(lag_mutex);
    lag = std::move(out);
  }
};

consumer::consumer(const consumer_options& o, rebalance_listener& listener) : impl_(std::make_unique<impl>()) {
  impl_->listener = &listener;
  std::map<std::string, std::string> ours{{"group.id", o.group_id},
                                          {"enable.auto.commit", "false"},
                                          {"enable.auto.offset.store", "false"},
                                          // A position the broker no longer holds is an
                                          // error poll() handles (reset_to_start), not a
                                          // silent jump.
                                          {"auto.offset.reset", "error"},
                                          {"isolation.level", "read_committed"},
                                          {"enable.partition.eof", "false"},
                                          {"partition.assignment.strategy", "cooperative-sticky"},
                                          {"statistics.interval.ms", std::to_string(o.stats_interval.count())}};
  if (!o.group_instance_id.empty()) ours["group.instance.id"] = o.group_instance_id;
  auto* conf = base_conf(o, ours);
  rd_kafka_conf_set_opaque(conf, impl_.get());
  impl_->on_offset_reset = o.on_offset_reset;
  {
    // A rebalance ends within a session timeout (members that do not
    // rejoin by then are dropped): commits are held that long at most.
    char value[32];
    std::size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, "session.timeout.ms", value, &size) == RD_KAFKA_CONF_OK) {
      impl_->hold_limit = std::chrono::milliseconds(std::strtoll(value, nullptr, 10));
    }
  }
  rd_kafka_conf_set_log_cb(conf, log_to_spdlog);
  rd_kafka_conf_set_rebalance_cb(
      conf, [](rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
        auto* self = static_cast<impl*>(opaque);
        guarded(self->failure, self->failure_mutex, "a rebalance", [&] {
          self->rebalancing_since.reset();  // the rebalance reached this member
          if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            self->ever_assigned = true;
            self->on_assign(parts);
          } else {
            self->on_revoke(parts);
          }
        });
      });
  rd_kafka_conf_set_offset_commit_cb(
      conf, [](rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets, void* opaque) {
        if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
        static_cast<impl*>(opaque)->commit_done(err, offsets);
      });
  rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    try {
      self->on_stats(std::string_view(json, len));
    } catch (const std::exception& e) {
      spdlog::warn("kafka: statistics not understood (lag unknown until the next): {}", e.what());
    }
    return 0;  // librdkafka frees the JSON
  });
  char err[512];
  impl_->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (impl_->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw kafka_error(fmt::format("cannot create the Kafka consumer: {}", err));
  }
  rd_kafka_poll_set_consumer(impl_->rk);
  auto topics = new_list(o.topics.size());
  for (const auto& t : o.topics) rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto e = rd_kafka_subscribe(impl_->rk, topics.get())) {
    rd_kafka_destroy(impl_->rk);
    throw kafka_error(fmt::format("cannot subscribe: {}", rd_kafka_err2str(e)));
  }
}

consumer::~consumer() {
  // Destroying the handle waits for the group coordinator as closing does
  // (even with RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE): an abandoned one is
  // left to the process's exit.
  if (impl_->abandoned) return;
  close();
  rd_kafka_destroy(impl_->rk);
}

message consumer::poll(std::chrono::milliseconds timeout) {
  rd_kafka_message_t* raw = rd_kafka_consumer_poll(impl_->rk, static_cast<int>(timeout.count()));
  if (raw != nullptr && raw->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
    impl_->reset_to_start(raw);
    rd_kafka_message_destroy(raw);
    raw = nullptr;
  }
  message m(raw);
  rethrow(impl_->failure, impl_->failure_mutex);
  impl_->retry_failed_commits();
  char reason[512];
  if (const auto fatal = rd_kafka_fatal_error(impl_->rk, reason, sizeof reason)) {
    throw kafka_error(fmt::format("fatal Kafka error {}: {}", rd_kafka_err2name(fatal), reason));
  }
  return m;
}

void consumer::commit(const std::map<topic_partition, std::int64_t>& next, bool sync) {
  if (next.empty()) return;
  if (sync && impl_->unacknowledged(next).empty()) {
    return;  // the group holds them already (a revocation after a stop's commit)
  }
  if (!sync && impl_->holding_commits()) {
    impl_->hold(next);  // sent once the rebalance reached this member
    return;
  }
  auto list = to_list(next);
  impl_->commit_requested(next);
  const auto e = rd_kafka_commit(impl_->rk, list.get(), sync ? 0 : 1);
  if (sync && e != RD_KAFKA_RESP_ERR__NO_OFFSET) impl_->commit_done(e, list.get());
  if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    spdlog::warn(
        "kafka: committing offsets to the group failed: {} (the store keeps them; committed again while "
        "assigned)",
        rd_kafka_err2str(e));
  }
}

consumer::leaving consumer::commit_before_leaving(const std::map<topic_partition, std::int64_t>& next,
                                                  std::chrono::milliseconds within) {
  // Asynchronous commits, made again each second until acknowledged: a
  // synchronous one blocks while the coordinator is unreachable (until the
  // session times out), past any deadline.
  const auto deadline = std::chrono::steady_clock::now() + within;
  std::chrono::steady_clock::time_point sent{};
  for (;;) {
    // What the group does not hold yet; a partition revoked meanwhile was
    // committed by its revocation, unless the group refused that too.
    const auto missing = impl_->unacknowledged(next);
    if (missing.empty()) return leaving::taken;
    const auto gone = std::find_if(missing.begin(), missing.end(),
                                   [&](const auto& kv) { return !impl_->assigned.contains(kv.first); });
    if (gone != missing.end()) {
      spdlog::warn("kafka: {}[{}] left this member before the group took its offset {}", gone->first.topic,
                   gone->first.partition, gone->second);
      return leaving::lost;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      spdlog::warn("kafka: the group did not take this member's offsets of {} partition(s) within {} ms",
                   missing.size(), within.count());
      return leaving::no_answer;
    }
    if (now - sent >= std::chrono::seconds(1)) {
      sent = now;
      auto list = to_list(missing);
      impl_->commit_requested(missing);
      rd_kafka_commit(impl_->rk, list.get(), 1);  // commit_done() records the answer
    }
    message dropped(rd_kafka_consumer_poll(impl_->rk, 100));
  }
}

void consumer::pause() {
  rd_kafka_topic_partition_list_t* a = nullptr;
  if (rd_kafka_assignment(impl_->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a != nullptr) {
    rd_kafka_pause_partitions(impl_->rk, a);
    rd_kafka_topic_partition_list_destroy(a);
  }
}

void consumer::resume_at(const std::map<topic_partition, std::int64_t>& next) {
  if (next.empty()) return;
  auto list = to_list(next);
  if (auto* e = rd_kafka_seek_partitions(impl_->rk, list.get(), 10000)) {
    spdlog::warn("kafka: seek failed: {}", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
  }
  rd_kafka_resume_partitions(impl_->rk, list.get());
}

void consumer::resume(const std::map<topic_partition, std::int64_t>& partitions) {
  if (partitions.empty()) return;
  auto list = to_list(partitions);
  rd_kafka_resume_partitions(impl_->rk, list.get());
}

void consumer::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  if (const auto e = rd_kafka_consumer_close(impl_->rk)) {
    spdlog::warn("kafka: leaving the group: {}", rd_kafka_err2str(e));
  }
  // librdkafka 2.0.2 aborts when a cooperative-sticky consumer is destroyed
  // before its first assignment (librdkafka issue 4312, fixed in 2.3.0): a
  // consumer stopped while joining its group is closed but never destroyed,
  // left to the process's exit as an abandoned one is. (Waiting for the
  // join instead could take a whole session timeout: a static member's
  // restart waits for its earlier run's session to end.)
  if (!impl_->ever_assigned) impl_->abandoned = true;
}

bool consumer::abandoned() const { return impl_->abandoned; }

bool consumer::leave_group(std::chrono::milliseconds within) {
  // Unsubscribing, unlike closing, makes even a static member send its
  // LeaveGroup (KIP-345 spares static members only on termination): the
  // coordinator rebalances at once instead of after the session timeout.
  if (const auto e = rd_kafka_unsubscribe(impl_->rk)) {
    spdlog::warn("kafka: leaving the group: {}", rd_kafka_err2str(e));
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    rd_kafka_topic_partition_list_t* assigned = nullptr;
    const auto e = rd_kafka_assignment(impl_->rk, &assigned);
    const bool none = e == RD_KAFKA_RESP_ERR_NO_ERROR && assigned != nullptr && assigned->cnt == 0;
    if (assigned != nullptr) rd_kafka_topic_partition_list_destroy(assigned);
    if (none) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    message ignored(rd_kafka_consumer_poll(impl_->rk, 100));  // serves the revocation
  }
}

void consumer::abandon() {
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->abandoned = true;
}

std::map<topic_partition, std::int64_t> consumer::lag() const {
  std::lock_guard lock(impl_->lag_mutex);
  return impl_->lag;
}

std::optional<consumer::group_state> consumer::group() const {
  std::lock_guard lock(impl_->lag_mutex);
  return impl_->membership;
}

reader::reader(const client_options& o, const std::string& topic, std::int32_t partition, std::int64_t start)
    : topic_(topic), partition_(partition) {
  // assign() needs a group id; the reader never joins nor commits to it.
  // A small topic read for latency: a fetch returns within 100 ms.
  auto* conf = base_conf(o, {{"group.id", o.client_id},
                             {"fetch.wait.max.ms", "100"},
                             {"fetch.error.backoff.ms", "20"},
                             {"enable.auto.commit", "false"},
                             {"enable.auto.offset.store", "false"},
                             {"auto.offset.reset", "earliest"},
                             {"isolation.level", "read_committed"},
                             {"enable.partition.eof", "false"}});
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw kafka_error(fmt::format("cannot create the Kafka reader of {}: {}", topic, err));
  }
  rd_kafka_poll_set_consumer(rk_);
  auto parts = new_list(1);
  rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), partition)->offset = start;
  if (const auto e = rd_kafka_assign(rk_, parts.get())) {
    rd_kafka_destroy(rk_);
    throw kafka_error(fmt::format("cannot read {}: {}", topic, rd_kafka_err2str(e)));
  }
}

reader::~reader() {
  rd_kafka_assign(rk_, nullptr);
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

message reader::poll(std::chrono::milliseconds timeout) {
  message m(rd_kafka_consumer_poll(rk_, static_cast<int>(timeout.count())));
  char reason[512];
  if (const auto fatal = rd_kafka_fatal_error(rk_, reason, sizeof reason)) {
    throw kafka_error(fmt::format("fatal Kafka error {}: {}", rd_kafka_err2name(fatal), reason));
  }
  return m;
}

std::optional<std::pair<std::int64_t, std::int64_t>> reader::watermarks(std::chrono::milliseconds timeout) {
  std::int64_t low = 0;
  std::int64_t high = 0;
  const auto e =
      rd_kafka_query_watermark_offsets(rk_, topic_.c_str(), partition_, &low, &high, static_cast<int>(timeout.count()));
  if (e) {
    spdlog::warn("kafka: cannot read the end of {}: {}", topic_, rd_kafka_err2str(e));
    return std::nullopt;
  }
  return std::pair{low, high};
}

std::optional<std::vector<partition_progress>> group_progress(const client_options& o, const std::string& group,
                                                              const std::string& topic,
                                                              std::chrono::milliseconds timeout) {
  // A consumer handle that never subscribes: it asks the group's
  // coordinator for the committed offsets without joining the group.
  auto* conf = base_conf(o, {{"group.id", group}, {"enable.auto.commit", "false"}});
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw kafka_error(fmt::format("cannot create a Kafka client: {}", err));
  }
  const int ms = static_cast<int>(timeout.count());
  std::optional<std::vector<partition_progress>> out;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  if (rkt != nullptr && rd_kafka_metadata(rk, 0, rkt, &md, ms) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
      md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    auto list = new_list(static_cast<std::size_t>(md->topics[0].partition_cnt));
    for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), md->topics[0].partitions[i].id);
    }
    if (rd_kafka_committed(rk, list.get(), ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.emplace();
      for (int i = 0; i < list->cnt && out; ++i) {
        std::int64_t low = 0;
        std::int64_t high = 0;
        const auto& e = list->elems[i];
        if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), e.partition, &low, &high, ms)) {
          out.reset();
        } else {
          out->push_back({e.partition, e.offset >= 0 ? e.offset : -1, high});
        }
      }
    }
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  if (rkt != nullptr) rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return out;
}

std::optional<std::vector<std::string>> missing_topics(const client_options& o, const std::vector<std::string>& topics,
                                                       std::chrono::milliseconds timeout) {
  auto* conf = base_conf(o, {});
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw kafka_error(fmt::format("cannot create a Kafka client: {}", err));
  }
  const rd_kafka_metadata_t* md = nullptr;
  std::optional<std::vector<std::string>> out;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::set<std::string> listed;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) listed.insert(md->topics[i].topic);
    }
    out.emplace();
    for (const auto& t : topics) {
      if (!listed.contains(t) && std::find(out->begin(), out->end(), t) == out->end()) out->push_back(t);
    }
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
  return out;
}

struct producer::impl {
  rd_kafka_t* rk = nullptr;
  delivery_callback on_delivery;
  std::mutex failure_mutex;
  std::string failure;  // a delivery callback's, thrown by the next call
};

producer::producer(const client_options& o, delivery_callback on_delivery) : impl_(std::make_unique<impl>()) {
  impl_->on_delivery = std::move(on_delivery);
  auto* conf = base_conf(o, {{"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "5"}});
  rd_kafka_conf_set_opaque(conf, impl_.get());
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    const auto ticket = reinterpret_cast<std::uintptr_t>(m->_private);
    if (!self->on_delivery) return;
    guarded(self->failure, self->failure_mutex, "a delivery report", [&] {
      self->on_delivery(ticket, m->err == RD_KAFKA_RESP_ERR_NO_ERROR, m->err ? rd_kafka_err2str(m->err) : "");
    });
  });
  char err[512];
  impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (impl_->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw kafka_error(fmt::format("cannot create the Kafka producer: {}", err));
  }
}

producer::~producer() {
  rd_kafka_flush(impl_->rk, 5000);
  rd_kafka_destroy(impl_->rk);
}

bool producer::produce(const std::string& topic, std::string_view key, std::string_view value,
                       const std::vector<header>& headers, std::uint64_t ticket, std::string* error) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
  for (const auto& h : headers) {
    rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  }
  rd_kafka_vu_t vu[6];
  vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  vu[0].u.cstr = topic.c_str();
  vu[1].vtype = RD_KAFKA_VTYPE_KEY;
  vu[1].u.mem = {const_cast<char*>(key.data()), key.size()};
  vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[2].u.mem = {const_cast<char*>(value.data()), value.size()};
  vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[3].u.i = RD_KAFKA_MSG_F_COPY;
  vu[4].vtype = RD_KAFKA_VTYPE_HEADERS;
  vu[4].u.headers = hdrs;
  vu[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vu[5].u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(ticket));
  rd_kafka_error_t* failure = rd_kafka_produceva(impl_->rk, vu, 6);
  const auto e = failure ? rd_kafka_error_code(failure) : RD_KAFKA_RESP_ERR_NO_ERROR;
  if (failure) rd_kafka_error_destroy(failure);
  if (e) {
    rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    if (error != nullptr) *error = rd_kafka_err2str(e);
    return false;
  }
  return true;
}

bool producer::flush(std::chrono::milliseconds timeout) {
  const bool done = rd_kafka_flush(impl_->rk, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
  rethrow(impl_->failure, impl_->failure_mutex);
  return done;
}

void producer::poll() {
  rd_kafka_poll(impl_->rk, 0);
  rethrow(impl_->failure, impl_->failure_mutex);
}

}  // namespace cdr::kafka
