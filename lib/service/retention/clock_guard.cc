#include "clock_guard.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cdr::service {

clock_guard::clock_guard(retention_context& ctx, microseconds limit) : ctx_(ctx), limit_us_(limit.count()) {
  const auto stored = ctx_.state.clock_mark();
  if (stored && stored->ok()) mark_us_ = static_cast<std::int64_t>(stored->value());
  // From the start, the monotonic clock has seen nothing of the time the
  // daemon was down: the reference is the last sweep's instant (or now).
  ref_wall_ = mark_us_ != 0 ? instant{microseconds{mark_us_.load()}} : ctx_.time.now();
  ref_mono_ = ctx_.time.monotonic();
}

instant clock_guard::late_now() const {
  auto now = ctx_.time.now();
  {
    // While a forward jump waits for its confirmation, the last trusted
    // instant: nothing is stripped or dropped on arrival because of it.
    std::lock_guard lock(mutex_);
    const auto trusted = ref_wall_ + std::chrono::duration_cast<microseconds>(ctx_.time.monotonic() - ref_mono_);
    if (now - trusted > microseconds(limit_us_.load())) now = trusted;
  }
  return std::max(now, instant{microseconds{mark_us_.load()}});
}

microseconds clock_guard::jump() const {
  std::lock_guard lock(mutex_);
  const auto wall = ctx_.time.now() - ref_wall_;
  const auto mono = std::chrono::duration_cast<microseconds>(ctx_.time.monotonic() - ref_mono_);
  return std::chrono::duration_cast<microseconds>(wall) - mono;
}

void clock_guard::check(instant now) const {
  const auto j = jump();
  if (j <= microseconds(limit_us_.load())) return;
  throw clock_jumped(fmt::format(
      "the wall clock ({}) is {} ahead of where the monotonic clock puts it since the last sweep (or the start): "
      "destructive sweeps wait until an operator confirms the clock with `cdr-retentionctl clock confirm`, or it "
      "comes back (sweep.max_clock_jump {}; docs/operations.md, \"CdrRetentionClockJump\")",
      format_rfc3339(now), format_duration(std::chrono::duration_cast<std::chrono::seconds>(j)),
      format_duration(microseconds(limit_us_.load()))));
}

void clock_guard::record_sweep(store::change& c, instant now) {
  const auto us = now.time_since_epoch().count();
  if (us > mark_us_) {
    mark_us_ = us;
    ctx_.state.put_clock_mark(c, static_cast<std::uint64_t>(us));
  }
  std::lock_guard lock(mutex_);
  ref_wall_ = now;
  ref_mono_ = ctx_.time.monotonic();
}

microseconds clock_guard::accept() {
  const auto j = jump();
  std::lock_guard lock(mutex_);
  ref_wall_ = ctx_.time.now();
  ref_mono_ = ctx_.time.monotonic();
  return j;
}

nlohmann::json clock_guard::status() const {
  const auto j = jump();
  nlohmann::json out{{"jump_seconds", std::chrono::duration<double>(j).count()},
                     {"max_jump", format_duration(microseconds(limit_us_.load()))},
                     {"sweeps_paused", j > microseconds(limit_us_.load())}};
  if (mark_us_ != 0) out["last_sweep_at"] = format_rfc3339(instant{microseconds{mark_us_.load()}});
  return out;
}

}  // namespace cdr::service
