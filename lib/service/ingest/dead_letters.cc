// Rejected messages: forwarded unchanged to the dead-letter topic, their
// offsets durable only once the topic acknowledged them.
#include <spdlog/spdlog.h>

#include "ingest.h"

namespace cdr::service {
namespace {

constexpr std::uint64_t ticket_of(std::uint64_t generation, std::size_t index) {
  return (generation << 24) | static_cast<std::uint64_t>(index);
}

}  // namespace

void ingest::produce_reject(std::size_t index) {
  auto& r = pending_rejects_[index];
  const auto ticket = ticket_of(generation_, index);
  dead_letter_tickets_[ticket] = {{r.topic, r.partition}, r.offset};
  std::string error;
  // Sealed: a rejected message may hold identifiers nobody found (it did
  // not parse); its Kafka key may be one too, so the source stands for it.
  r.failed =
      !dead_letters_->produce(config_.kafka.topic_dead_letter, fmt::format("{}/{}/{}", r.topic, r.partition, r.offset),
                              dead_letter_seal_.seal({r.topic, r.partition, r.offset}, name(r.reason), r.key, r.value),
                              {{"cdr-retention-reason", std::string(name(r.reason))},
                               {"cdr-retention-source-topic", r.topic},
                               {"cdr-retention-source-partition", std::to_string(r.partition)},
                               {"cdr-retention-source-offset", std::to_string(r.offset)}},
                              ticket, &error);
  if (r.failed) dead_letter_tickets_.erase(ticket);
}

void ingest::deliver_rejects() {
  if (pending_rejects_.empty()) return;
  const auto deadline = time_.monotonic() + std::chrono::seconds(10);
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
    if (time_.monotonic() >= deadline || stop_requested_) {
      throw kafka::kafka_error("the dead-letter topic does not acknowledge writes");
    }
  }
}

void ingest::forget_dead_letters(const std::function<bool(const kafka::topic_partition&, std::int64_t)>& done) {
  std::erase_if(dead_lettered_, [&](const auto& d) { return done(d.first, d.second); });
}

}  // namespace cdr::service
