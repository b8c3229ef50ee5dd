// librdkafka adapter: a group consumer that starts partitions at offsets the
// owner chooses, and a producer that tracks each delivery. No batch-consume
// API is used (it can lose messages during a rebalance on 2.0.2).
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_message_s;

namespace cdr::kafka {

struct topic_partition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const topic_partition&) const = default;
};

// A Kafka problem the daemon cannot continue through (fatal client error,
// invalid configuration).
class kafka_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct client_options {
  std::string bootstrap_servers;
  std::string client_id;
  // Passed to librdkafka as they are, after the daemon's own settings.
  std::map<std::string, std::string> properties;
};

// What librdkafka says of `properties` (kafka.properties), without
// connecting: each unknown key or invalid value, then what a client built
// from them refuses; empty when they are usable.
std::vector<std::string> property_problems(const std::map<std::string, std::string>& properties);

// One consumed message; owns the librdkafka message.
class message {
 public:
  explicit message(rd_kafka_message_s* m) : m_(m) {}
  ~message();
  message(message&& o) noexcept : m_(o.m_) { o.m_ = nullptr; }
  message& operator=(message&&) = delete;
  message(const message&) = delete;

  explicit operator bool() const { return m_ != nullptr; }
  // Empty when the message is fine; otherwise librdkafka's error text.
  std::string error() const;
  std::string_view topic() const;
  std::int32_t partition() const;
  std::int64_t offset() const;
  std::string_view value() const;
  std::string_view key() const;
  // How long ago it was written, by its timestamp against this host's wall
  // clock (never negative); nullopt when it has none.
  std::optional<std::chrono::milliseconds> age() const;

 private:
  rd_kafka_message_s* m_;
};

// Decisions the consumer asks its owner for; called on the polling thread.
class rebalance_listener {
 public:
  virtual ~rebalance_listener() = default;
  // The offset the owner's store says to resume from, if it has one.
  virtual std::optional<std::int64_t> stored_offset(const topic_partition& tp) = 0;
  // Partitions were assigned, starting at these offsets. `ahead`: those
  // whose start is the store's offset beyond the group's committed one (a
  // commit that failed or was lost with the assignment): the listener
  // commits them once they are durable, or the group never learns of them
  // while no new message arrives.
  virtual void assigned(const std::map<topic_partition, std::int64_t>& start,
                        const std::map<topic_partition, std::int64_t>& ahead) = 0;
  // Partitions are being revoked: finish and commit everything consumed
  // from them now. `lost`: they already belong to another member.
  virtual void revoking(const std::vector<topic_partition>& partitions, bool lost) = 0;
};

struct consumer_options : client_options {
  std::string group_id;
  // Static membership (group.instance.id); empty: dynamic. A static member
  // that restarts within the session timeout gets its partitions back
  // without a rebalance.
  std::string group_instance_id;
  std::vector<std::string> topics;
  std::chrono::milliseconds stats_interval{5000};
  // Called (on a librdkafka thread) when the consumer's position in a
  // partition was out of the broker's range and was reset to its start
  // (auto.offset.reset): the records in between are gone upstream. Gets the
  // partition and librdkafka's words.
  std::function<void(const topic_partition&, std::string_view detail)> on_offset_reset;
};

class consumer {
 public:
  // Subscribes. Throws kafka_error for an invalid configuration.
  consumer(const consumer_options& options, rebalance_listener& listener);
  ~consumer();
  consumer(const consumer&) = delete;
  consumer& operator=(const consumer&) = delete;

  // Next message, or an empty one after `timeout`. Serves rebalances and
  // statistics. Throws kafka_error on a fatal client error.
  message poll(std::chrono::milliseconds timeout);
  // Commits next offsets to the group (for lag tools); async unless `sync`.
  // A synchronous commit of offsets the group already acknowledged is not
  // sent again.
  void commit(const std::map<topic_partition, std::int64_t>& next, bool sync);
  // Commits, again each second while the group refuses (a rebalance in
  // progress) or does not answer, serving the group in between, until it
  // has acknowledged every offset (`taken`), a partition is revoked or lost
  // without its offset taken (`lost`), or `within` passes (`no_answer`).
  // Messages fetched meanwhile are dropped (the caller re-reads from its
  // offsets).
  enum class leaving { taken, lost, no_answer };
  leaving commit_before_leaving(const std::map<topic_partition, std::int64_t>& next, std::chrono::milliseconds within);
  // Stops fetching every assigned partition.
  void pause();
  // Restarts fetching each partition at the given offset.
  void resume_at(const std::map<topic_partition, std::int64_t>& next);
  // Restarts fetching where each partition is. librdkafka keeps a
  // partition's pause across revocation and re-assignment, so newly
  // assigned partitions are resumed explicitly.
  void resume(const std::map<topic_partition, std::int64_t>& partitions);
  // Leaves the group for good, before close(): unsubscribes, which makes
  // the coordinator rebalance at once even for a static member (closing
  // does not: its partitions move when its session times out), and serves
  // the revocation. False when partitions are still assigned after
  // `within`. Messages fetched meanwhile are dropped.
  bool leave_group(std::chrono::milliseconds within);
  // Leaves the group (revocations are served first). A consumer that never
  // had an assignment is then left undestroyed (abandoned()).
  void close();
  // Stops without a word to the group (no revocation, no commit): for a
  // coordinator that did not answer, where close() would block until it
  // does. The group reassigns the partitions when the session times out.
  // The librdkafka handle is then never destroyed (that too would wait):
  // for a process about to exit.
  void abandon();
  // Whether the handle is left undestroyed (abandon(), or closed before its
  // first assignment): the process must exit without tearing it down.
  bool abandoned() const;

  // Consumer lag per partition from the latest statistics (-1: unknown).
  std::map<topic_partition, std::int64_t> lag() const;
  // The group membership as librdkafka's latest statistics say (`cgrp`):
  // where a member that stopped taking part in rebalances stands.
  struct group_state {
    std::string state;       // "up", "wait-coord", ...
    std::string join_state;  // "steady", "wait-join", "wait-sync", ...
    std::int64_t rebalances = 0;
    std::int64_t rebalance_age_ms = 0;  // since the last one
    std::string rebalance_reason;
  };
  std::optional<group_state> group() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// Reads one partition of one topic from an offset the owner chooses,
// outside any group (the fleet's control and replies topics).
class reader {
 public:
  // Throws kafka_error for an invalid configuration.
  reader(const client_options& options, const std::string& topic, std::int32_t partition, std::int64_t start);
  ~reader();
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  // Next message, or an empty one after `timeout`. Throws kafka_error on a
  // fatal client error.
  message poll(std::chrono::milliseconds timeout);
  // The partition's low and high watermarks as the broker says now;
  // nullopt when it does not answer within `timeout`.
  std::optional<std::pair<std::int64_t, std::int64_t>> watermarks(std::chrono::milliseconds timeout);

 private:
  rd_kafka_s* rk_ = nullptr;
  std::string topic_;
  std::int32_t partition_ = 0;
};

// One partition of a topic as a consumer group has it: the group's
// committed offset (-1: none) and the partition's end.
struct partition_progress {
  std::int32_t partition = 0;
  std::int64_t committed = -1;
  std::int64_t end = 0;
};
// Every partition of `topic`, asked of the brokers without joining the
// group; nullopt when they do not answer within `timeout` (or the topic
// does not exist). Throws kafka_error for an invalid configuration.
std::optional<std::vector<partition_progress>> group_progress(const client_options& options, const std::string& group,
                                                              const std::string& topic,
                                                              std::chrono::milliseconds timeout);

// Those of `topics` the cluster does not list, asked with one metadata
// request for every topic (which never creates one, whatever the brokers'
// auto.create.topics.enable); nullopt when the brokers do not answer within
// `timeout`. A topic this client may not describe (ACLs) is not listed
// either. Throws kafka_error for an invalid configuration.
std::optional<std::vector<std::string>> missing_topics(const client_options& options,
                                                       const std::vector<std::string>& topics,
                                                       std::chrono::milliseconds timeout);

struct header {
  std::string name;
  std::string value;
};

class producer {
 public:
  // Called with the ticket of each message once it is delivered (ok) or
  // has finally failed; on the thread that calls poll() or flush().
  using delivery_callback = std::function<void(std::uint64_t ticket, bool ok, std::string_view error)>;

  producer(const client_options& options, delivery_callback on_delivery);
  ~producer();
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  // Queues one message; false (with the reason) when the local queue refuses it.
  bool produce(const std::string& topic, std::string_view key, std::string_view value,
               const std::vector<header>& headers, std::uint64_t ticket, std::string* error);
  // Waits up to `timeout` for every queued message; true when none is left.
  bool flush(std::chrono::milliseconds timeout);
  void poll();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace cdr::kafka
