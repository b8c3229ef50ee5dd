#include "membership.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/crypto/aead.h"

namespace cdr::service {

fleet_membership::fleet_membership(const time_source& time, std::string member, std::chrono::milliseconds interval,
                                   signed_topic control, fleet_port& keeper, std::chrono::milliseconds leave_timeout)
    : time_(time),
      member_(std::move(member)),
      interval_(interval),
      control_(std::move(control)),
      keeper_(keeper),
      leave_timeout_(leave_timeout),
      incarnation_(to_hex(crypto::random_bytes(8))),
      alarm_(time) {
  for (auto& name : keeper_.known_members()) members_[std::move(name)];  // silent until heard
}

fleet_membership::~fleet_membership() { stop(); }

void fleet_membership::start() {
  thread_ = std::thread([this] {
    while (!stop_ && !left_) {
      send(false);
      alarm_.wait_for(interval_, [this] { return stop_.load(); });
    }
  });
}

void fleet_membership::stop() {
  alarm_.notify([this] { stop_ = true; });
  if (thread_.joinable()) thread_.join();
}

void fleet_membership::send(bool leaving) {
  control_message m;
  m.kind = control_kind::heartbeat;
  m.member = member_;
  m.request = fmt::format("{}/heartbeat", member_);
  m.at = time_.now();
  m.leaving = leaving;
  m.incarnation = incarnation_;
  std::tie(m.records, m.next_deadline) = keeper_.holdings();
  // After the leaving heartbeat, none: the others must not see this member
  // come back.
  std::lock_guard lock(send_mutex_);
  if (left_) return;
  left_ = leaving;
  m.seq = ++seq_;
  const auto key = control_key(m);
  if (!leaving) {
    // Not waited for: a lost heartbeat is followed by the next.
    control_.post(key, encode(m));
    return;
  }
  try {
    control_.publish(key, encode(m), "the leaving heartbeat", leave_timeout_);
  } catch (const fleet_unavailable& e) {
    spdlog::warn("fleet: {}", e.what());
  }
}

void fleet_membership::leave() {
  send(true);
  alarm_.notify();
  spdlog::warn("fleet member {} left the fleet: the others no longer expect it", member_);
}

bool fleet_membership::note(const control_message& m, std::chrono::milliseconds age) {
  // Its age by the message's timestamp: a heartbeat replayed at start-up
  // from long ago does not make its member live. A replay of a recent one
  // is older than one seen already: its run ended, or its number is not
  // past the last.
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = members_.try_emplace(m.member);
    auto& k = it->second;
    if (k.retired.contains(m.incarnation) || (k.incarnation == m.incarnation && m.seq <= k.seq)) return false;
    if (!k.incarnation.empty() && k.incarnation != m.incarnation) k.retired.insert(k.incarnation);
    first = fresh || k.leaving;
    k.incarnation = m.incarnation;
    k.seq = m.seq;
    k.heard = true;
    k.last_seen = time_.monotonic() - std::chrono::duration_cast<microseconds>(age);
    k.leaving = m.leaving;
    k.records = m.records;
    k.next_deadline = m.next_deadline;
  }
  // Known across restarts until it says it leaves: a member that stops
  // without a drain stays silent, never forgotten.
  if (m.leaving) {
    keeper_.set_known_member(m.member, false);
    spdlog::warn("fleet: member {} left the fleet (its own signed heartbeat says so)", m.member);
  } else if (first) {
    keeper_.set_known_member(m.member, true);
  }
  return true;
}

std::vector<fleet_member> fleet_membership::members() const {
  const auto now = time_.monotonic();
  const auto window = 3 * std::chrono::duration_cast<microseconds>(interval_);
  std::vector<fleet_member> out;
  std::lock_guard lock(mutex_);
  bool self = false;
  for (const auto& [name, k] : members_) {
    if (k.leaving) continue;
    const bool me = name == member_;
    self = self || me;
    out.push_back({name, me || (k.heard && now - k.last_seen <= window), k.records, k.next_deadline,
                   std::chrono::duration<double>(now - k.last_seen).count(), k.heard});
  }
  if (!self) out.push_back({member_, true, 0, std::nullopt, 0, true});
  return out;
}

void fleet_membership::figures(metrics::retention_snapshot& out) const {
  const auto now = time_.now();
  for (const auto& k : members()) {
    ++(k.live ? out.fleet_members_live : out.fleet_members_silent);
    if (!k.live && k.next_deadline && *k.next_deadline <= now) ++out.fleet_silent_members_past_deadline;
  }
}

nlohmann::json fleet_membership::report() const {
  auto known = nlohmann::json::array();
  for (const auto& k : members()) {
    known.push_back({{"member", k.name},
                     {"live", k.live},
                     {"records", k.records},
                     {"next_deadline", k.next_deadline ? nlohmann::json(format_rfc3339(*k.next_deadline)) : nullptr},
                     {"seconds_since_heartbeat", k.name == member_ ? nlohmann::json(0.0)
                                                 : k.heard         ? nlohmann::json(k.silent_seconds)
                                                                   : nlohmann::json(nullptr)}});
  }
  return known;
}

}  // namespace cdr::service
