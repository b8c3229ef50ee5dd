#include "publisher.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "cdr/kafka/client.h"

namespace cdr::service {
namespace {

class kafka_sink final : public event_sink {
 public:
  kafka_sink(const daemon_config& config, const std::string& bootstrap)
      : topic_(config.kafka.topic_deletion_events),
        producer_(kafka::client_options{bootstrap, config.kafka.client_id, config.kafka.properties},
                  [this](std::uint64_t ticket, bool ok, std::string_view error) {
                    // On the publisher's thread (the one that flushes).
                    if (ok) {
                      acked_.insert(ticket);
                    } else {
                      spdlog::warn("deletion event {} not delivered yet: {}", ticket, error);
                    }
                  }) {}

  std::set<std::uint64_t> send(const std::vector<deletion_event>& events) override {
    acked_.clear();
    for (const auto& e : events) {
      std::string error;
      if (!producer_.produce(topic_, std::to_string(e.event_id), encode(e), {}, e.event_id, &error)) {
        spdlog::warn("deletion event {} not queued: {}", e.event_id, error);
      }
    }
    producer_.flush(std::chrono::seconds(10));
    return std::move(acked_);
  }

 private:
  std::string topic_;
  std::set<std::uint64_t> acked_;
  kafka::producer producer_;
};

}  // namespace

std::unique_ptr<event_sink> kafka_event_sink(const daemon_config& config, const std::string& bootstrap) {
  return std::make_unique<kafka_sink>(config, bootstrap);
}

event_publisher::event_publisher(const time_source& time, store::store& store, store::saved_state& state,
                                 std::unique_ptr<event_sink> sink)
    : time_(time), store_(store), state_(state), sink_(std::move(sink)), alarm_(time) {}

event_publisher::~event_publisher() { stop(); }

void event_publisher::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void event_publisher::stop() {
  alarm_.notify([this] { stopping_ = true; });
  if (thread_.joinable()) thread_.join();
}

void event_publisher::wake() {
  alarm_.notify([this] { publish_now_ = true; });
}

bool event_publisher::publish_once() {
  auto outbox = state_.events();
  if (outbox.items.empty()) return outbox.unreadable.empty();
  std::vector<deletion_event> events;
  for (auto& [id, e] : outbox.items) events.push_back(std::move(e));
  const auto acked = sink_->send(events);
  store::change c(store_);
  for (const auto& e : events) {
    if (acked.count(e.event_id) != 0) state_.remove_event(c, e.event_id);
  }
  if (!c.empty()) store_.apply(c);
  // An unreadable event stays in the outbox (the saved state reports it).
  return acked.size() == events.size() && outbox.unreadable.empty();
}

void event_publisher::loop() {
  plan(time_.monotonic() + while_idle);
  microseconds retry = first_retry;
  for (;;) {
    bool stop = false;
    alarm_.wait_until(next_round(), [&] {
      stop = stopping_;
      return stopping_ || std::exchange(publish_now_, false);
    });
    if (stop) return;
    microseconds wait = retry;
    try {
      const bool had = state_.events_pending() > 0;
      if (publish_once()) {
        wait = had ? after_success : while_idle;
        retry = first_retry;
      } else {
        retry = std::min(retry * 2, longest_retry);
      }
    } catch (const std::exception& e) {
      spdlog::warn("deletion events: {}", e.what());
      retry = std::min(retry * 2, longest_retry);
    }
    plan(time_.monotonic() + wait);
    ++rounds_;  // after the next one is planned
  }
}

}  // namespace cdr::service
