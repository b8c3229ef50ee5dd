#include "control.h"

#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

using namespace std::chrono_literals;

// Bound to the message kind: a sealed identifier cannot be replayed as
// anything else.
constexpr std::string_view seal_context = "cdr-retention control: subject_erase identifier";

std::string control_key_of(std::string_view subject_key) {
  return crypto::hmac_sha256(subject_key, "cdr-retention control seal v1");
}

kafka::client_options options_of(const daemon_config& c, const std::string& bootstrap, std::string_view role) {
  return {bootstrap, fmt::format("{}-{}", c.kafka.client_id, role), c.kafka.properties};
}

}  // namespace

std::string member_name(const kafka_config& k) {
  if (!k.group_instance_id.empty()) return k.group_instance_id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return k.client_id;
  return fmt::format("{}@{}", k.client_id, host);
}

control_channel::control_channel(const daemon_config& config, const std::string& bootstrap, const time_source& time,
                                 std::string_view subject_key, retention& keeper)
    : config_(config),
      time_(time),
      keeper_(keeper),
      member_(member_name(config.kafka)),
      topic_(config.kafka.topic_control),
      timeout_(std::chrono::duration_cast<std::chrono::milliseconds>(config.kafka.control_timeout)),
      seal_(control_key_of(subject_key)),
      alarm_(time) {
  producer_ = std::make_unique<kafka::producer>(
      options_of(config, bootstrap, "control"), [this](std::uint64_t ticket, bool ok, std::string_view error) {
        std::lock_guard lock(mutex_);
        delivered_[ticket] = ok ? std::nullopt : std::optional<std::string>(error);
      });
  next_ = keeper_.control_position();
  // A position beyond the topic's end: the topic was created anew (an
  // embedded broker always is). One before its start: messages this member
  // never applied are gone (the topic's retention is not infinite). Decided
  // here, before any sweep can ask catch_up().
  reader_ = std::make_unique<kafka::reader>(options_of(config, bootstrap, "control-reader"), topic_, 0,
                                            static_cast<std::int64_t>(next_));
  if (const auto w = reader_->watermarks(timeout_)) {
    const auto [low, high] = *w;
    if (next_ > static_cast<std::uint64_t>(high)) {
      spdlog::warn("control topic {} ends at {}, before this member's position {}: a new topic; applying it from {}",
                   topic_, high, next_, low);
      next_ = static_cast<std::uint64_t>(low);
      reader_ = std::make_unique<kafka::reader>(options_of(config, bootstrap, "control-reader"), topic_, 0, low);
    } else if (next_ < static_cast<std::uint64_t>(low)) {
      spdlog::critical(
          "control topic {} starts at {}, after this member's position {}: control messages this member never applied "
          "are gone (the topic must be compacted or kept forever; docs/operations.md, \"The fleet\")",
          topic_, low, next_);
    }
  }
}

control_channel::~control_channel() { stop(); }

void control_channel::start() {
  spdlog::info("fleet member {}: applying control topic {} from offset {}", member_, topic_, next_);
  thread_ = std::thread([this] { run(); });
}

void control_channel::stop() {
  alarm_.notify([this] { stop_ = true; });
  if (thread_.joinable()) thread_.join();
}

void control_channel::set_blocked(std::string why) {
  std::lock_guard lock(mutex_);
  if (blocked_ != why) spdlog::critical("fleet: applying the control topic is stuck: {}", why);
  blocked_ = std::move(why);
}

void control_channel::run() {
  while (!stop_) {
    kafka::message m = reader_->poll(200ms);
    if (!m) continue;
    if (!m.error().empty()) {
      spdlog::warn("fleet: reading control topic {}: {}", topic_, m.error());
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      if (static_cast<std::uint64_t>(m.offset()) < next_) continue;  // applied before
    }
    // A message that cannot be applied is never skipped: sweeps wait for it
    // (catch_up), and the reason is logged and shown by status.
    while (!stop_ && !apply(m)) alarm_.wait_for(5s, [this] { return stop_.load(); });
  }
}

bool control_channel::apply(const kafka::message& msg) {
  const auto offset = static_cast<std::uint64_t>(msg.offset());
  auto decoded = decode_control(msg.value());
  if (!decoded) {
    set_blocked(
        fmt::format("offset {}: {} (a message this build cannot apply; upgrade this member)", offset, decoded.error()));
    return false;
  }
  const auto& m = decoded.value();
  std::optional<std::string> identifier;
  if (m.kind == control_kind::subject_erase) {
    std::lock_guard lock(seal_mutex_);
    identifier = seal_.open(m.sealed_identifier, seal_context);
    if (!identifier) {
      set_blocked(fmt::format(
          "offset {}: the erasure's identifier does not open: this member's storage.subject_key_file differs from "
          "the member {} that published it (every member must share it)",
          offset, m.member));
      return false;
    }
  }
  std::variant<nlohmann::json, std::string> result;
  try {
    result = keeper_.apply_control(m, identifier, offset + 1);
  } catch (const std::exception& e) {
    set_blocked(fmt::format("offset {} ({} {}): {}", offset, name(m.kind), m.request, e.what()));
    return false;
  }
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    next_ = offset + 1;
    blocked_.clear();
    if (waiting_.contains(m.request)) results_[m.request] = std::move(result);
  });
  spdlog::info("fleet: applied {} {} from member {} (offset {})", name(m.kind), m.request, m.member, offset);
  return true;
}

std::string control_channel::seal(std::string_view normalized) {
  std::lock_guard lock(seal_mutex_);
  return seal_.seal(normalized, seal_context);
}

std::variant<nlohmann::json, std::string> control_channel::act(control_message m) {
  m.member = member_;
  m.request = fmt::format("{}/{}", member_, to_hex(crypto::random_bytes(8)));
  m.at = time_.now();
  if (m.kind == control_kind::hold_add) {
    m.new_hold.created_at = m.at;
    m.new_hold.origin_member = m.member;
    m.new_hold.origin_request = m.request;
  }
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(mutex_);
    ticket = ++tickets_;
    waiting_.insert(m.request);
  }
  // However this ends, nobody waits for the result any more.
  struct forget {
    control_channel& self;
    const std::string& request;
    ~forget() {
      std::lock_guard lock(self.mutex_);
      self.waiting_.erase(request);
      self.results_.erase(request);
    }
  } forget_on_exit{*this, m.request};
  std::string error;
  if (!producer_->produce(topic_, control_key(m), encode(m), {}, ticket, &error)) {
    throw fleet_unavailable(fmt::format("cannot publish to control topic {}: {}", topic_, error));
  }
  producer_->flush(timeout_);
  {
    std::lock_guard lock(mutex_);
    const auto d = delivered_.find(ticket);
    if (d == delivered_.end()) {
      throw fleet_unavailable(fmt::format(
          "request {}: control topic {} did not acknowledge it within {} ms; it may still be applied by every member",
          m.request, topic_, timeout_.count()));
    }
    const auto failed = d->second;
    delivered_.erase(d);
    if (failed) throw fleet_unavailable(fmt::format("cannot publish to control topic {}: {}", topic_, *failed));
  }
  const bool applied = alarm_.wait_for(timeout_, [&] {
    std::lock_guard lock(mutex_);
    return results_.contains(m.request) || stop_;
  });
  std::lock_guard lock(mutex_);
  if (!applied) {
    throw fleet_unavailable(
        fmt::format("request {} is published but not applied on this member within {} ms{}; every member applies it "
                    "in turn (status shows the control position)",
                    m.request, timeout_.count(), blocked_.empty() ? "" : ": " + blocked_));
  }
  auto out = std::move(results_[m.request]);
  if (auto* j = std::get_if<nlohmann::json>(&out); j && j->is_object()) {
    (*j)["fleet"] = {{"request", m.request}, {"member", member_}};
  }
  return out;
}

void control_channel::catch_up() {
  const auto w = reader_->watermarks(timeout_);
  if (!w) {
    throw fleet_unavailable(fmt::format(
        "the end of control topic {} cannot be read: the sweep waits, as a hold published on another member may not "
        "be applied here yet",
        topic_));
  }
  const auto end = static_cast<std::uint64_t>(w->second);
  const bool done = alarm_.wait_for(timeout_, [&] {
    std::lock_guard lock(mutex_);
    return next_ >= end || stop_;
  });
  std::lock_guard lock(mutex_);
  if (stop_) throw fleet_unavailable("stopping: the sweep does not start");
  if (!done) {
    throw fleet_unavailable(fmt::format("control topic {} is applied up to offset {}, not yet to its end {}{}", topic_,
                                        next_, end, blocked_.empty() ? "" : ": " + blocked_));
  }
}

std::pair<std::uint64_t, bool> control_channel::figures() const {
  std::lock_guard lock(mutex_);
  return {next_, !blocked_.empty()};
}

nlohmann::json control_channel::report() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out{{"member", member_}, {"control_topic", topic_}, {"control_position", next_}};
  if (!blocked_.empty()) out["blocked"] = blocked_;
  return out;
}

}  // namespace cdr::service
