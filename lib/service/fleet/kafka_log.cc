#include <map>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/kafka/client.h"
#include "log.h"

namespace cdr::service {
namespace {

using namespace std::chrono_literals;

// Posted messages' delivery ticket (append() numbers its tickets from 1).
constexpr std::uint64_t posted = 0;

class kafka_cursor final : public log_cursor {
 public:
  kafka_cursor(const kafka::client_options& o, const std::string& topic, std::int64_t offset)
      : topic_(topic), reader_(o, topic, 0, offset) {}

  std::optional<log_record> next(std::chrono::milliseconds timeout) override {
    kafka::message m = reader_.poll(timeout);
    if (!m) return std::nullopt;
    if (!m.error().empty()) {
      spdlog::warn("fleet: reading {}: {}", topic_, m.error());
      return std::nullopt;
    }
    return log_record{m.offset(), std::string(m.key()), std::string(m.value()), m.age().value_or(0ms)};
  }

 private:
  std::string topic_;
  kafka::reader reader_;
};

class kafka_fleet_log final : public fleet_log {
 public:
  kafka_fleet_log(const daemon_config& c, const std::string& bootstrap)
      : options_{bootstrap, fmt::format("{}-fleet", c.kafka.client_id), c.kafka.properties},
        producer_(options_, [this](std::uint64_t ticket, bool ok, std::string_view error) {
          if (ticket == posted) {  // nobody waits for it
            if (!ok) spdlog::warn("fleet: a heartbeat was not delivered: {}", error);
            return;
          }
          std::lock_guard lock(mutex_);
          delivered_[ticket] = ok ? std::nullopt : std::optional<std::string>(error);
        }) {}

  std::unique_ptr<log_cursor> read(const std::string& topic, std::int64_t offset) override {
    return std::make_unique<kafka_cursor>(options_, topic, offset);
  }

  std::optional<std::pair<std::int64_t, std::int64_t>> bounds(const std::string& topic,
                                                              std::chrono::milliseconds timeout) override {
    kafka::reader* probe = nullptr;
    {
      std::lock_guard lock(mutex_);
      auto& p = probes_[topic];
      if (!p) p = std::make_unique<kafka::reader>(options_, topic, 0, 0);
      probe = p.get();
    }
    return probe->watermarks(timeout);
  }

  std::optional<std::string> append(const std::string& topic, std::string_view key, std::string_view value,
                                    std::chrono::milliseconds timeout) override {
    std::uint64_t ticket = 0;
    {
      std::lock_guard lock(mutex_);
      ticket = ++tickets_;
    }
    std::string error;
    if (!producer_.produce(topic, key, value, {}, ticket, &error)) return error;
    producer_.flush(timeout);
    std::lock_guard lock(mutex_);
    const auto d = delivered_.find(ticket);
    if (d == delivered_.end())
      return fmt::format("not acknowledged within {} ms (the fleet may still act on it)", timeout.count());
    auto failed = std::move(d->second);
    delivered_.erase(d);
    return failed;
  }

  void post(const std::string& topic, std::string_view key, std::string_view value) override {
    std::string error;
    if (!producer_.produce(topic, key, value, {}, posted, &error)) {
      spdlog::warn("fleet: cannot publish a heartbeat to {}: {}", topic, error);
    }
    producer_.poll();
  }

 private:
  const kafka::client_options options_;
  std::mutex mutex_;
  std::map<std::uint64_t, std::optional<std::string>> delivered_;  // ticket -> error, guarded by mutex_
  std::uint64_t tickets_ = 0;                                      // guarded by mutex_
  std::map<std::string, std::unique_ptr<kafka::reader>> probes_;   // guarded by mutex_
  kafka::producer producer_;
};

}  // namespace

std::unique_ptr<fleet_log> kafka_log(const daemon_config& config, const std::string& bootstrap) {
  return std::make_unique<kafka_fleet_log>(config, bootstrap);
}

}  // namespace cdr::service
