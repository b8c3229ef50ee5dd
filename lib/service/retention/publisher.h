// The deletion-event publisher: sends the outbox to Kafka
// (kafka.topics.deletion_events) at least once, keyed by event id, and
// removes what Kafka acknowledged. Runs on a thread of its own; retries
// with back-off while Kafka does not acknowledge.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cdr/core/config.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time_source.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"

namespace cdr::service {

// Where deletion events go.
class event_sink {
 public:
  virtual ~event_sink() = default;
  // Sends the events; returns the ids of those acknowledged. Throws when
  // the sink cannot be used at all.
  virtual std::set<std::uint64_t> send(const std::vector<deletion_event>& events) = 0;
};

// The Kafka topic kafka.topics.deletion_events on `bootstrap`.
std::unique_ptr<event_sink> kafka_event_sink(const daemon_config& config, const std::string& bootstrap);

class event_publisher {
 public:
  // The wait after a round that left events unacknowledged, doubling up to
  // the last; after a round that sent everything the outbox is looked at
  // again soon, and once a second while it is empty.
  static constexpr microseconds first_retry = std::chrono::seconds(2);
  static constexpr microseconds longest_retry = std::chrono::seconds(60);
  static constexpr microseconds after_success = std::chrono::milliseconds(200);
  static constexpr microseconds while_idle = std::chrono::seconds(1);

  event_publisher(const time_source& time, store::store& store, store::saved_state& state,
                  std::unique_ptr<event_sink> sink);
  ~event_publisher();

  void start();
  void stop();
  // New events wait in the outbox: look now.
  void wake();
  // One round: sends every readable event in the outbox, removes the
  // acknowledged ones; true when none is left unacknowledged.
  bool publish_once();
  // Rounds the thread has run (counted once the next is planned), and when
  // the next one is due unless woken.
  std::uint64_t rounds() const { return rounds_.load(); }
  mono_time next_round() const { return mono_time{std::chrono::microseconds{next_us_.load()}}; }

 private:
  void loop();
  void plan(mono_time at) { next_us_ = std::chrono::duration_cast<microseconds>(at.time_since_epoch()).count(); }

  const time_source& time_;
  store::store& store_;
  store::saved_state& state_;
  std::unique_ptr<event_sink> sink_;
  alarm alarm_;
  bool stopping_ = false;     // guarded by alarm_
  bool publish_now_ = false;  // guarded by alarm_
  std::atomic<std::int64_t> next_us_{0};
  std::atomic<std::uint64_t> rounds_{0};
  std::thread thread_;
};

}  // namespace cdr::service
