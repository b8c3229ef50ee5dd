// Long operations in progress (sweep, purge, verify, checkpoint, export):
// what `status` shows under "operations", the sd_notify STATUS= line and the
// CLI's progress line read. Thread-safe; an operation is registered for the
// life of its scope.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "cdr/core/time_source.h"

namespace cdr::service {

class progress {
 public:
  struct operation {
    std::string kind;  // e.g. "sweep", "verify"
    std::string unit;  // what `done` and `total` count: "partitions", "files", "records"
    instant started{};
    mono_time started_monotonic{};
    std::uint64_t done = 0;
    std::uint64_t total = 0;  // 0: not known in advance
    std::uint64_t bytes = 0;
  };

  // One operation, registered until destroyed.
  class scope {
   public:
    scope(progress& p, std::string kind, std::string unit, std::uint64_t total);
    ~scope();
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    // Sets what is done (and the total and bytes when given).
    void set(std::uint64_t done, std::uint64_t total, std::uint64_t bytes);
    void step(std::uint64_t bytes = 0);  // one more done
    // A new phase of the same operation (e.g. a sweep's purge of files).
    void phase(std::string unit, std::uint64_t total);

   private:
    progress& p_;
    std::list<operation>::iterator it_;
  };

  explicit progress(const time_source& time) : time_(time) {}

  // Every operation in progress: kind, unit, started, done, total, bytes,
  // seconds (since started); [] when idle.
  nlohmann::json report() const;
  // One line for people: "verify: 12/40 files, 3.2 MiB, 4 s; sweep: ..."
  // ("" when idle).
  std::string line() const;
  // Called with report() after every change (tests).
  void watch(std::function<void(const nlohmann::json&)> fn);

 private:
  void changed();
  const time_source& time_;
  mutable std::mutex mutex_;
  std::list<operation> ops_;
  std::function<void(const nlohmann::json&)> watcher_;
};

}  // namespace cdr::service
