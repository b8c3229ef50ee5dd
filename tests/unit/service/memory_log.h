// The fleet's topics in memory (fleet/log.h), for in-process tests of the
// control log, membership and queries: appends are stored at once (or
// refused while `down`), each record stamped with the test's clock, and
// readers wake as soon as something is appended.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cdr/core/time_source.h"
#include "fleet/log.h"

namespace cdr::test {

class memory_log final : public service::fleet_log {
 public:
  explicit memory_log(const time_source& time) : time_(time) {}

  std::unique_ptr<service::log_cursor> read(const std::string& topic, std::int64_t offset) override {
    return std::make_unique<cursor>(*this, topic, offset);
  }
  std::optional<std::pair<std::int64_t, std::int64_t>> bounds(const std::string& topic,
                                                              std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    if (down) return std::nullopt;
    return std::pair<std::int64_t, std::int64_t>{0, static_cast<std::int64_t>(topics_[topic].size())};
  }
  std::optional<std::string> append(const std::string& topic, std::string_view key, std::string_view value,
                                    std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    if (down) return "the test broker is down";
    auto& t = topics_[topic];
    t.push_back({{static_cast<std::int64_t>(t.size()), std::string(key), std::string(value), {}}, time_.now()});
    arrived_.notify_all();
    return std::nullopt;
  }
  void post(const std::string& topic, std::string_view key, std::string_view value) override {
    static_cast<void>(append(topic, key, value, {}));
  }

  // Everything on `topic` so far.
  std::vector<service::log_record> records(const std::string& topic) {
    std::lock_guard lock(mutex_);
    std::vector<service::log_record> out;
    for (const auto& s : topics_[topic]) out.push_back(s.record);
    return out;
  }

  std::atomic<bool> down{false};  // appends and bounds fail while set

 private:
  struct stored {
    service::log_record record;
    instant written;
  };
  class cursor final : public service::log_cursor {
   public:
    cursor(memory_log& log, std::string topic, std::int64_t next) : log_(log), topic_(std::move(topic)), next_(next) {}
    std::optional<service::log_record> next(std::chrono::milliseconds timeout) override {
      std::unique_lock lock(log_.mutex_);
      auto& t = log_.topics_[topic_];
      if (!log_.arrived_.wait_for(lock, timeout, [&] { return static_cast<std::int64_t>(t.size()) > next_; })) {
        return std::nullopt;
      }
      const auto& s = t[static_cast<std::size_t>(next_++)];
      auto r = s.record;
      r.age = std::chrono::duration_cast<std::chrono::milliseconds>(log_.time_.now() - s.written);
      return r;
    }

   private:
    memory_log& log_;
    std::string topic_;
    std::int64_t next_;
  };

  const time_source& time_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<std::string, std::vector<stored>> topics_;  // guarded by mutex_
};

// One member's handle on a shared memory_log (a fleet_node owns its log).
class memory_log_view final : public service::fleet_log {
 public:
  explicit memory_log_view(memory_log& log) : log_(log) {}
  std::unique_ptr<service::log_cursor> read(const std::string& topic, std::int64_t offset) override {
    return log_.read(topic, offset);
  }
  std::optional<std::pair<std::int64_t, std::int64_t>> bounds(const std::string& topic,
                                                              std::chrono::milliseconds timeout) override {
    return log_.bounds(topic, timeout);
  }
  std::optional<std::string> append(const std::string& topic, std::string_view key, std::string_view value,
                                    std::chrono::milliseconds timeout) override {
    return log_.append(topic, key, value, timeout);
  }
  void post(const std::string& topic, std::string_view key, std::string_view value) override {
    log_.post(topic, key, value);
  }

 private:
  memory_log& log_;
};

}  // namespace cdr::test
