#include "control_log.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

using namespace std::chrono_literals;

// Bound to the message kind: a sealed identifier cannot be replayed as
// anything else.
constexpr std::string_view seal_context = "cdr-retention control: subject_erase identifier";

}  // namespace

control_log::control_log(const time_source& time, std::string member, signed_topic control, fleet_port& keeper,
                         refusals& refused, std::string_view seal_key, std::chrono::milliseconds timeout,
                         notice_fn notice)
    : time_(time),
      member_(std::move(member)),
      control_(std::move(control)),
      keeper_(keeper),
      refused_(refused),
      timeout_(timeout),
      notice_(std::move(notice)),
      seal_(std::string(seal_key)),
      alarm_(time) {
  next_ = keeper_.control_position();
  // A position beyond the topic's end: the topic was created anew (an
  // embedded broker always is). One before its start: messages this member
  // never applied are gone (the topic's retention is not infinite). Decided
  // here, before any sweep can ask catch_up().
  if (const auto b = control_.log.bounds(control_.topic, timeout_)) {
    const auto [low, high] = *b;
    check_key(low, high);
    end_at_start_ = high;
    if (next_ > static_cast<std::uint64_t>(high)) {
      spdlog::warn("control topic {} ends at {}, before this member's position {}: a new topic; applying it from {}",
                   control_.topic, high, next_, low);
      next_ = static_cast<std::uint64_t>(low);
    } else if (next_ < static_cast<std::uint64_t>(low)) {
      spdlog::critical(
          "control topic {} starts at {}, after this member's position {}: control messages this member never applied "
          "are gone (the topic must be compacted or kept forever; docs/operations.md, \"The fleet\")",
          control_.topic, low, next_);
    }
  }
  cursor_ = control_.log.read(control_.topic, static_cast<std::int64_t>(next_));
}

control_log::~control_log() { stop(); }

void control_log::check_key(std::int64_t low, std::int64_t high) {
  // The last messages before this start: heartbeats of every live member
  // are among them. Only a topic that holds signed messages, none of them
  // under a key this member holds, refuses it: junk and forgeries alone
  // (unsigned, or a MAC that fails under a key it holds) do not.
  constexpr std::int64_t window = 256;
  const auto from = std::max(low, high - window);
  if (from >= high) return;
  const auto recent = control_.log.read(control_.topic, from);
  std::size_t ours = 0;
  std::map<std::string, std::set<std::string>> foreign;  // key id -> members named
  const auto deadline = time_.monotonic() + timeout_;
  for (std::int64_t next = from; next < high && time_.monotonic() < deadline;) {
    const auto r = recent->next(200ms);
    if (!r) continue;
    next = r->offset + 1;
    if (r->value.empty()) continue;
    const auto verdict = control_.verify(*r);
    if (std::holds_alternative<std::string>(verdict)) {
      ++ours;
    } else if (std::get<control_rejection>(verdict) == control_rejection::unknown_key) {
      const auto split = split_signed(r->value);
      foreign[to_hex(std::get<signed_value>(split).key_id)].insert(claimed_member(r->value));
    }
  }
  if (ours != 0 || foreign.empty()) return;
  std::vector<std::string> seen;
  for (const auto& [id, names] : foreign) seen.push_back(fmt::format("{} (by {})", id, fmt::join(names, ", ")));
  const auto& key = control_.key;
  throw fleet_refused(fmt::format(
      "the control topic {}'s recent messages are signed with fleet key(s) {}, and none with this member's key {}"
      "{}: every member needs the same kafka.fleet_key_file (or, where it is empty, the same "
      "storage.subject_key_file). Copy it from a running member and start again (docs/operations.md, \"The fleet "
      "key\")",
      control_.topic, fmt::join(seen, "; "), key.id(),
      key.accepted_ids().size() > 1 ? fmt::format(" (it also accepts {})", fmt::join(key.accepted_ids(), ", "))
                                    : std::string()));
}

void control_log::refuse(const log_record& r, control_rejection why, std::string_view member) {
  const auto offset = static_cast<std::uint64_t>(r.offset);
  spdlog::warn(
      "fleet: control topic {} offset {} refused ({}): not applied; a forged, altered, replayed or foreign message "
      "(cdr_retention_control_rejected_total)",
      control_.topic, offset, name(why));
  auto& run = refused_run_;
  if (!run) run = refused_run{offset, offset, 0, {}, {}};
  run->last = offset;
  ++run->count;
  ++run->reasons[std::string(name(why))];
  if (!member.empty() && run->claimed.size() < 8) run->claimed.emplace(member);
  refused_.count(why);
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    next_ = offset + 1;
  });
  if (run->count >= 1000) flush_refused();
}

void control_log::flush_refused() {
  if (!refused_run_) return;
  const auto run = std::exchange(refused_run_, std::nullopt);
  keeper_.refuse_control(run->last + 1, audit::control_refused{control_.topic, run->first, run->last, run->count,
                                                               run->reasons, run->claimed});
}

void control_log::start() {
  spdlog::info("fleet member {}: applying control topic {} from offset {}", member_, control_.topic, position());
  thread_ = std::thread([this] { run(); });
}

void control_log::stop() {
  alarm_.notify([this] { stop_ = true; });
  if (thread_.joinable()) thread_.join();
}

void control_log::set_blocked(std::string why) {
  std::lock_guard lock(mutex_);
  if (blocked_ != why) spdlog::critical("fleet: applying the control topic is stuck: {}", why);
  blocked_ = std::move(why);
}

void control_log::run() {
  while (!stop_) {
    const auto r = cursor_->next(200ms);
    if (!r) {
      flush_refused();  // the topic is quiet: the refusals so far are audited
      continue;
    }
    if (static_cast<std::uint64_t>(r->offset) < position()) continue;  // applied before
    if (r->value.empty()) {                                            // a tombstone: an answered query's key deleted
      alarm_.notify([&] {
        std::lock_guard lock(mutex_);
        next_ = static_cast<std::uint64_t>(r->offset) + 1;
      });
      continue;
    }
    // An authentic message that cannot be applied is never skipped unless
    // an operator says so (skip): sweeps wait for it (catch_up), and the
    // reason is logged and shown by status.
    while (!stop_ && !apply(*r)) alarm_.wait_for(5s, [this] { return stop_.load() || skip_.has_value(); });
  }
  flush_refused();
}

bool control_log::apply(const log_record& r) {
  const auto offset = static_cast<std::uint64_t>(r.offset);
  auto verified = control_.verify(r);
  if (auto* why = std::get_if<control_rejection>(&verified)) {
    // Forged, altered, junk or signed under another key: never applied,
    // never blocking.
    refuse(r, *why, claimed_member(r.value));
    return true;
  }
  flush_refused();  // audited in order, before anything after them is applied
  auto decoded = decode_control(std::get<std::string>(verified));
  if (!decoded) {
    std::optional<std::uint32_t> skipped_by;
    {
      std::lock_guard lock(mutex_);
      blocked_at_ = offset;
      if (skip_ && skip_->first == offset) skipped_by = skip_->second;
      skip_.reset();
    }
    if (!skipped_by) {
      set_blocked(fmt::format(
          "offset {}: {} (an authentic message this build cannot apply: upgrade this member, or skip it with "
          "`cdr-retentionctl control skip --offset {}`)",
          offset, decoded.error(), offset));
      return false;
    }
    keeper_.refuse_control(offset + 1, audit::control_skipped{control_.topic, offset, decoded.error(), *skipped_by});
    spdlog::warn("fleet: control topic {} offset {} skipped by uid {}: {}", control_.topic, offset, *skipped_by,
                 decoded.error());
    advance(offset);
    return true;
  }
  const auto& m = decoded.value();
  if (!changes_state(m.kind)) {
    if (!notice_(m, r)) {
      refuse(r, control_rejection::replay, m.member);
      return true;
    }
    advance(offset);
    return true;
  }
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
    if (keeper_.control_applied(m.request)) {
      // An authentic message applied before: a replay (or the topic holds
      // it twice). Once is enough.
      refuse(r, control_rejection::replay, m.member);
      flush_refused();
      return true;
    }
    result = keeper_.apply_control(m, identifier, offset + 1);
  } catch (const std::exception& e) {
    set_blocked(fmt::format("offset {} ({} {}): {}", offset, name(m.kind), m.request, e.what()));
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    if (waiting_.contains(m.request)) results_[m.request] = std::move(result);
  }
  advance(offset);
  spdlog::info("fleet: applied {} {} from member {} uid {} (offset {})", name(m.kind), m.request, m.member, m.uid,
               offset);
  return true;
}

void control_log::advance(std::uint64_t offset) {
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    next_ = offset + 1;
    blocked_.clear();
    blocked_at_.reset();
  });
}

std::variant<nlohmann::json, std::string> control_log::skip(std::uint64_t offset, std::uint32_t uid) {
  {
    std::lock_guard lock(mutex_);
    if (!blocked_at_ || *blocked_at_ != offset) {
      return blocked_at_ ? fmt::format("applying is stuck at offset {}, not {}", *blocked_at_, offset)
                         : fmt::format("applying is not stuck on an undecodable message (offset {} is not)", offset);
    }
  }
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    skip_ = std::pair{offset, uid};
  });
  const bool done = alarm_.wait_for(timeout_, [&] {
    std::lock_guard lock(mutex_);
    return next_ > offset || stop_;
  });
  if (!done) return fmt::format("offset {} was not skipped within {} ms", offset, timeout_.count());
  return nlohmann::json{{"skipped", offset}, {"topic", control_.topic}};
}

std::string control_log::seal(std::string_view normalized) {
  std::lock_guard lock(seal_mutex_);
  return seal_.seal(normalized, seal_context);
}

std::variant<nlohmann::json, std::string> control_log::act(control_message m) {
  m.member = member_;
  m.request = fmt::format("{}/{}", member_, to_hex(crypto::random_bytes(8)));
  m.at = time_.now();
  if (m.kind == control_kind::hold_add) {
    m.new_hold.created_at = m.at;
    m.new_hold.origin_member = m.member;
    m.new_hold.origin_request = m.request;
  }
  {
    std::lock_guard lock(mutex_);
    waiting_.insert(m.request);
  }
  // However this ends, nobody waits for the result any more.
  struct forget {
    control_log& self;
    const std::string& request;
    ~forget() {
      std::lock_guard lock(self.mutex_);
      self.waiting_.erase(request);
      self.results_.erase(request);
    }
  } forget_on_exit{*this, m.request};
  control_.publish(control_key(m), encode(m), fmt::format("request {}", m.request), timeout_);
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

void control_log::catch_up() {
  const auto b = control_.log.bounds(control_.topic, timeout_);
  if (!b) {
    throw fleet_unavailable(fmt::format(
        "the end of control topic {} cannot be read: the sweep waits, as a hold published on another member may not "
        "be applied here yet",
        control_.topic));
  }
  const auto end = static_cast<std::uint64_t>(b->second);
  const bool done = alarm_.wait_for(timeout_, [&] {
    std::lock_guard lock(mutex_);
    return next_ >= end || stop_;
  });
  std::lock_guard lock(mutex_);
  if (stop_) throw fleet_unavailable("stopping: the sweep does not start");
  if (!done) {
    throw fleet_unavailable(fmt::format("control topic {} is applied up to offset {}, not yet to its end {}{}",
                                        control_.topic, next_, end, blocked_.empty() ? "" : ": " + blocked_));
  }
}

std::uint64_t control_log::position() const {
  std::lock_guard lock(mutex_);
  return next_;
}

std::string control_log::blocked() const {
  std::lock_guard lock(mutex_);
  return blocked_;
}

}  // namespace cdr::service
