#include "drain.h"

#include <map>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "../ingest/side_seal.h"
#include "cdr/kafka/client.h"

namespace cdr::service {
namespace {

using namespace std::chrono_literals;

// Hands every record over; returns how many.
std::uint64_t hand_over(const drain_parts& p) {
  const auto& k = p.config.kafka;
  std::mutex mutex;
  std::uint64_t failed = 0;
  std::string failure;
  kafka::producer out({p.bootstrap, fmt::format("{}-handover", k.client_id), k.properties},
                      [&](std::uint64_t, bool ok, std::string_view error) {
                        if (ok) return;
                        std::lock_guard lock(mutex);
                        ++failed;
                        failure = error;
                      });
  const std::vector<kafka::header> origin{{"cdr-retention-handover-from", p.fleet.member()}};
  handover_seal seal(p.subject_key);
  std::uint64_t sent = 0;
  p.keeper.for_each_handover_event([&](std::string_view id, const std::string& event) {
    std::string error;
    const auto sealed = seal.seal(id, event);  // identifiers never in clear on the topic
    // A full local queue drains as deliveries come back.
    for (int attempt = 0; !out.produce(k.topic_handover, id, sealed, origin, sent, &error); ++attempt) {
      if (attempt == 100) {
        throw fleet_unavailable(fmt::format("cannot publish to {}: {}", k.topic_handover, error));
      }
      out.flush(100ms);
    }
    ++sent;
  });
  if (!out.flush(std::chrono::duration_cast<std::chrono::milliseconds>(k.control_timeout) * 4)) {
    throw fleet_unavailable(fmt::format("{} did not acknowledge every handed-over record in time", k.topic_handover));
  }
  std::lock_guard lock(mutex);
  if (failed > 0) {
    throw fleet_unavailable(fmt::format("{} of {} handed-over records were not delivered to {}: {}", failed, sent,
                                        k.topic_handover, failure));
  }
  return sent;
}

// The group's session timeout (librdkafka's default 45 s unless
// kafka.properties sets it).
std::chrono::milliseconds session_timeout(const kafka_config& k) {
  const auto it = k.properties.find("session.timeout.ms");
  try {
    if (it != k.properties.end()) return std::chrono::milliseconds(std::stoll(it->second));
  } catch (const std::exception&) {
  }
  return 45s;
}

// Waits until the group has committed (so stored) every handover partition
// up to its end as it is now; fails when nothing moves for
// kafka.control_timeout plus twice the group's session timeout: the member
// left the group at once, but a member that does not rejoin holds a
// rebalance for up to a session timeout, and a join or leave during it (a
// drain run again right after a restart) starts one more.
void wait_stored(const drain_parts& p) {
  const auto& k = p.config.kafka;
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(k.control_timeout);
  const auto stall = timeout + 2 * session_timeout(k);
  const kafka::client_options o{p.bootstrap, fmt::format("{}-handover-progress", k.client_id), k.properties};
  const auto first = kafka::group_progress(o, k.group_id, k.topic_handover, timeout);
  if (!first) throw fleet_unavailable(fmt::format("the progress of {} cannot be read", k.topic_handover));
  std::map<std::int32_t, std::int64_t> ends;
  for (const auto& e : *first) ends[e.partition] = e.end;
  std::int64_t behind_before = -1;
  auto last_move = p.time.monotonic();
  alarm pause(p.time);
  for (;;) {
    const auto now = kafka::group_progress(o, k.group_id, k.topic_handover, timeout);
    std::int64_t behind = 0;
    std::vector<std::string> lagging;  // "partition: committed/end", for the error
    for (const auto& e : now.value_or(std::vector<kafka::partition_progress>{})) {
      const auto missing = std::max<std::int64_t>(0, ends[e.partition] - std::max<std::int64_t>(e.committed, 0));
      behind += missing;
      if (missing > 0) lagging.push_back(fmt::format("{}: {}/{}", e.partition, e.committed, ends[e.partition]));
    }
    if (now && behind == 0) return;
    if (behind != behind_before) {
      behind_before = behind;
      last_move = p.time.monotonic();
    } else if (p.time.monotonic() - last_move > stall) {
      throw fleet_unavailable(fmt::format(
          "the other members have not stored {} handed-over record(s) of {} (partition: committed/end offset {}) "
          "and made no progress for {} ms; nothing was emptied (drain again once they consume)",
          behind, k.topic_handover, fmt::join(lagging, ", "), stall.count()));
    }
    pause.wait_for(200ms, [] { return false; });
  }
}

}  // namespace

nlohmann::json drain(const drain_parts& p, std::uint32_t uid) {
  std::vector<std::string> others;
  for (const auto& m : p.fleet.membership().members()) {
    if (m.live && m.name != p.fleet.member()) others.push_back(m.name);
  }
  if (others.empty()) {
    throw fleet_unavailable("no other live fleet member to hand the records to (status: kafka.fleet.members)");
  }
  // A drain right after a start (the retry after a kill -9) first waits for
  // the group to take this member back: a static member's rejoin replaces
  // its earlier run at once, and only a joined member's LeaveGroup moves its
  // partitions at once (one that left mid-join held the group's rebalance
  // for sessions, in the test cluster).
  const auto join_by = p.time.monotonic() + p.config.kafka.control_timeout + session_timeout(p.config.kafka);
  alarm pause(p.time);
  while (!p.joined() && p.time.monotonic() < join_by) pause.wait_for(100ms, [] { return false; });
  if (!p.joined()) {
    spdlog::warn("drain by uid {}: ingest has not joined the consumer group since the start; leaving it anyway", uid);
  }
  const auto owned = p.assignment();
  if (const auto why = p.leave_group(); !why.empty()) throw fleet_unavailable(why);
  spdlog::warn("drain by uid {}: left the consumer group; handing every record to {}", uid, fmt::join(others, ", "));
  const auto records = hand_over(p);
  wait_stored(p);
  // Where each partition went: the members' assignments, as they say; ask
  // until every one has an owner, for at most two minutes (the rebalance
  // may still run); one still without is reported as null.
  std::map<std::string, std::string> owner;
  const auto owned_by_others = [&] {
    owner.clear();
    const auto answers =
        p.fleet.queries().gather("status", nlohmann::json::object(), {}, [](const std::string&, nlohmann::json) {});
    for (const auto& [member, st] : answers.results) {
      const auto a = st.value(nlohmann::json::json_pointer("/kafka/consumer/assignment"), nlohmann::json::object());
      for (const auto& [topic, parts] : a.items()) {
        for (const auto& [partition, offset] : parts.items()) owner[topic + "/" + partition] = member;
      }
    }
    for (const auto& [topic, parts] : owned.items()) {
      for (const auto& [partition, offset] : parts.items()) {
        if (!owner.contains(topic + "/" + partition)) return false;
      }
    }
    return true;
  };
  const auto until = p.time.monotonic() + std::chrono::minutes(2);
  while (!owned_by_others() && p.time.monotonic() < until) pause.wait_for(1s, [] { return false; });
  nlohmann::json went = nlohmann::json::object();
  for (const auto& [topic, parts] : owned.items()) {
    for (const auto& [partition, offset] : parts.items()) {
      const auto key = topic + "/" + partition;
      went[key] = owner.contains(key) ? nlohmann::json(owner[key]) : nlohmann::json(nullptr);
    }
  }
  nlohmann::json handover = nlohmann::json::object();
  for (const auto& [key, member] : owner) {
    if (key.starts_with(p.config.kafka.topic_handover + "/")) handover[key] = member;
  }
  nlohmann::json report{{"member", p.fleet.member()},
                        {"records_handed_over", records},
                        {"handover_topic", p.config.kafka.topic_handover},
                        {"partitions", std::move(went)},
                        {"handover_partitions", std::move(handover)},
                        {"members", others}};
  auto removed = p.keeper.empty_store(report, uid);
  p.fleet.membership().leave();
  report["store"] = std::move(removed);
  return report;
}

}  // namespace cdr::service
