#include "progress.h"

#include "cdr/core/render.h"

namespace cdr::service {
namespace {

nlohmann::json to_json(const progress::operation& o, const time_source& time) {
  return {{"kind", o.kind},
          {"unit", o.unit},
          {"started", format_rfc3339(o.started)},
          {"seconds", seconds_since(time, o.started_monotonic)},
          {"done", o.done},
          {"total", o.total == 0 ? nlohmann::json(nullptr) : nlohmann::json(o.total)},
          {"bytes", o.bytes}};
}

}  // namespace

progress::scope::scope(progress& p, std::string kind, std::string unit, std::uint64_t total) : p_(p) {
  {
    std::lock_guard lock(p_.mutex_);
    it_ = p_.ops_.insert(
        p_.ops_.end(), operation{std::move(kind), std::move(unit), p_.time_.now(), p_.time_.monotonic(), 0, total, 0});
  }
  p_.changed();
}

progress::scope::~scope() {
  {
    std::lock_guard lock(p_.mutex_);
    p_.ops_.erase(it_);
  }
  p_.changed();
}

void progress::scope::set(std::uint64_t done, std::uint64_t total, std::uint64_t bytes) {
  {
    std::lock_guard lock(p_.mutex_);
    it_->done = done;
    it_->total = total;
    it_->bytes = bytes;
  }
  p_.changed();
}

void progress::scope::step(std::uint64_t bytes) {
  {
    std::lock_guard lock(p_.mutex_);
    ++it_->done;
    it_->bytes += bytes;
  }
  p_.changed();
}

void progress::scope::phase(std::string unit, std::uint64_t total) {
  {
    std::lock_guard lock(p_.mutex_);
    it_->unit = std::move(unit);
    it_->total = total;
    it_->done = 0;
  }
  p_.changed();
}

nlohmann::json progress::report() const {
  std::lock_guard lock(mutex_);
  auto out = nlohmann::json::array();
  for (const auto& o : ops_) out.push_back(to_json(o, time_));
  return out;
}

std::string progress::line() const {
  std::string out;
  for (const auto& op : report()) out += (out.empty() ? "" : "; ") + render::operation_line(op);
  return out;
}

void progress::watch(std::function<void(const nlohmann::json&)> fn) {
  std::lock_guard lock(mutex_);
  watcher_ = std::move(fn);
}

void progress::changed() {
  std::function<void(const nlohmann::json&)> fn;
  {
    std::lock_guard lock(mutex_);
    fn = watcher_;
  }
  if (fn) fn(report());
}

}  // namespace cdr::service
