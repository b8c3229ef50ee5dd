#include "holds.h"

#include <spdlog/spdlog.h>

#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {

hold_registry::hold_registry(retention_context& ctx) : ctx_(ctx) {
  const auto c = ctx_.state.counter(store::counter_name::holds);
  counter_readable_ = c.ok();
  if (c) counter_ = c.value();
  load();
}

void hold_registry::load() {
  auto read = ctx_.state.holds();
  std::vector<hold> active;
  for (auto& [id, h] : read.items) active.push_back(std::move(h));
  auto matched = std::make_shared<std::vector<hold>>(active);
  if (!read.unreadable.empty()) {
    // Id 0 is never given to a hold: it stands for the ones that cannot be read.
    hold everything;
    everything.reason = "a saved legal hold does not decode";
    everything.reference = read.unreadable.front().key;
    matched->push_back(std::move(everything));
  }
  std::lock_guard lock(mutex_);
  matched_ = std::move(matched);
  active_ = std::move(active);
  unreadable_ = read.unreadable.size();
}

std::shared_ptr<const std::vector<hold>> hold_registry::snapshot() const {
  std::lock_guard lock(mutex_);
  return matched_;
}

std::vector<hold> hold_registry::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

std::size_t hold_registry::unreadable() const {
  std::lock_guard lock(mutex_);
  return unreadable_;
}

std::variant<hold, std::string> hold_registry::validate(const nlohmann::json& args) const {
  return hold_from_request(args, [this](std::string_view identifier) {
    return crypto::hmac_sha256(ctx_.subject_key, ctx_.ids.normalize(identifier));
  });
}

std::variant<hold, std::string> hold_registry::add(const nlohmann::json& args, std::uint32_t uid) {
  auto parsed = validate(args);
  if (auto* e = std::get_if<std::string>(&parsed)) return *e;
  auto h = std::get<hold>(std::move(parsed));
  h.created_at = ctx_.time.now();
  return add(std::move(h), uid, std::nullopt);
}

hold hold_registry::add(hold h, std::uint32_t uid, std::optional<control_step> control_next) {
  if (!counter_readable_) throw state_unreadable(ctx_.state.unreadable());
  store::change c(ctx_.store);
  if (control_next) ctx_.state.put_control_step(c, control_next->next, control_next->request);
  if (!h.origin_request.empty()) {
    if (const auto id = by_request(h.origin_request)) {
      // Applied before (the topic holds the message twice): once is enough.
      ctx_.store.apply(c);
      h.id = *id;
      return h;
    }
  }
  h.id = counter_ + 1;
  h.created_by = uid;
  ctx_.state.put_hold(c, h);
  ctx_.state.put_counter(c, store::counter_name::holds, h.id);
  ctx_.record(c, audit::hold_added{h, uid}, std::nullopt);
  ctx_.store.apply(c);
  counter_ = h.id;
  load();
  spdlog::info("legal hold {} added by uid {} (reference {}{})", h.id, uid, h.reference,
               h.origin_request.empty() ? "" : ", fleet request " + h.origin_request);
  return h;
}

std::optional<std::uint64_t> hold_registry::by_request(std::string_view request) const {
  std::lock_guard lock(mutex_);
  for (const auto& h : active_) {
    if (h.origin_request == request) return h.id;
  }
  return std::nullopt;
}

std::optional<hold> hold_registry::release(std::uint64_t id, std::uint32_t uid, const audit::request_note& note,
                                           std::optional<control_step> control_next) {
  auto stored = ctx_.state.hold_by_id(id);
  if (stored && !*stored) throw state_unreadable(ctx_.state.unreadable());
  store::change c(ctx_.store);
  if (control_next) ctx_.state.put_control_step(c, control_next->next, control_next->request);
  if (!stored) {
    if (!c.empty()) ctx_.store.apply(c);  // a fleet release of a hold not here: the position moves
    return std::nullopt;
  }
  const auto h = stored->value();
  ctx_.state.remove_hold(c, id);
  ctx_.record(c, audit::hold_released{h, uid, note}, std::nullopt);
  ctx_.store.apply(c);
  load();
  spdlog::info("legal hold {} released by uid {} (reference {})", id, uid, note.reference);
  return h;
}

}  // namespace cdr::service
