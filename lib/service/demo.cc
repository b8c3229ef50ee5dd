#include "demo.h"

#include <spdlog/spdlog.h>

#include "cdr/core/event_generator.h"
#include "cdr/kafka/client.h"

namespace cdr::service {

demo_traffic::demo_traffic(const daemon_config& config, std::string bootstrap, const time_source& time)
    : config_(config), bootstrap_(std::move(bootstrap)), time_(time), alarm_(time), thread_([this] { run(); }) {}

demo_traffic::~demo_traffic() {
  alarm_.notify([this] { stop_ = true; });
  thread_.join();
}

void demo_traffic::run() {
  try {
    kafka::producer out({bootstrap_, "cdr-retention-demo", {}}, nullptr);
    generator_options o;
    o.seed = config_.demo.seed;
    o.late_fraction = config_.demo.late_fraction;
    o.malformed_fraction = config_.demo.malformed_fraction;
    o.now = time_.now();
    event_generator gen(o);
    generated_event e;
    const auto tick = std::chrono::milliseconds(20);
    double owed = 0;
    spdlog::info("demo traffic: {} events/s to {} and {}", config_.demo.events_per_second, config_.kafka.topic_cdr,
                 config_.kafka.topic_usage);
    for (;;) {
      owed += config_.demo.events_per_second * std::chrono::duration<double>(tick).count();
      gen.set_now(time_.now());
      for (; owed >= 1; owed -= 1) {
        gen.next(&e);
        const auto& topic = e.kind == record_kind::usage ? config_.kafka.topic_usage : config_.kafka.topic_cdr;
        std::string error;
        if (out.produce(topic, e.id, e.json, {}, 0, &error)) ++produced_;
      }
      out.poll();
      if (alarm_.wait_for(tick, [this] { return stop_; })) return;
    }
  } catch (const std::exception& ex) {
    spdlog::error("demo traffic stopped: {}", ex.what());
  }
}

}  // namespace cdr::service
