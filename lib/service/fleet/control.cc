#include "control.h"

#include <unistd.h>

#include <algorithm>

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
constexpr std::string_view query_seal_context = "cdr-retention control: query identifier";
// A streamed answer's parts stay well under Kafka's default 1 MB message.
constexpr std::size_t reply_items = 200;
constexpr std::size_t reply_bytes = 256 * 1024;
// Heartbeats' delivery ticket (publish() numbers its tickets from 1).
constexpr std::uint64_t heartbeat_ticket = 0;

std::string control_key_of(std::string_view subject_key) {
  return crypto::hmac_sha256(subject_key, "cdr-retention control seal v1");
}

kafka::client_options options_of(const daemon_config& c, const std::string& bootstrap, std::string_view role) {
  return {bootstrap, fmt::format("{}-{}", c.kafka.client_id, role), c.kafka.properties};
}

// The member a refused message claims to come from (for the log and the
// audit entry; never believed).
std::string claimed_member(std::string_view value) {
  const auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object()) return {};
  const auto it = j.find("member");
  return it != j.end() && it->is_string() ? it->get<std::string>().substr(0, 200) : std::string();
}

}  // namespace

control_channel::control_channel(const daemon_config& config, const std::string& bootstrap, const time_source& time,
                                 std::string_view subject_key, fleet_key key, fleet_port& keeper)
    : config_(config),
      time_(time),
      key_(std::move(key)),
      incarnation_(to_hex(crypto::random_bytes(8))),
      keeper_(keeper),
      member_(member_name(config.kafka)),
      topic_(config.kafka.topic_control),
      timeout_(std::chrono::duration_cast<std::chrono::milliseconds>(config.kafka.control_timeout)),
      seal_(control_key_of(subject_key)),
      alarm_(time),
      replies_topic_(config.kafka.topic_replies),
      heartbeat_(std::clamp<std::chrono::milliseconds>(
          std::chrono::duration_cast<std::chrono::milliseconds>(config.kafka.control_timeout) / 3, 1s, 10s)),
      bootstrap_(bootstrap) {
  for (auto& name : keeper_.known_members()) members_[std::move(name)];  // silent until heard
  producer_ = std::make_unique<kafka::producer>(
      options_of(config, bootstrap, "control"), [this](std::uint64_t ticket, bool ok, std::string_view error) {
        if (ticket == heartbeat_ticket) {  // nobody waits for it
          if (!ok) spdlog::warn("fleet: a heartbeat was not delivered to {}: {}", topic_, error);
          return;
        }
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
    check_key(low, high);
    answer_from_ = high;
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

void control_channel::check_key(std::int64_t low, std::int64_t high) {
  // The last messages before this start: heartbeats of every live member
  // are among them. Only a topic that holds signed messages, none of them
  // under a key this member holds, refuses it: junk and forgeries alone
  // (unsigned, or a MAC that fails under a key it holds) do not.
  constexpr std::int64_t window = 256;
  const auto from = std::max(low, high - window);
  if (from >= high) return;
  kafka::reader recent(options_of(config_, bootstrap_, "control-key-check"), topic_, 0, from);
  std::size_t ours = 0;
  std::map<std::string, std::set<std::string>> foreign;  // key id -> members named
  const auto deadline = time_.monotonic() + timeout_;
  for (std::int64_t next = from; next < high && time_.monotonic() < deadline;) {
    kafka::message m = recent.poll(200ms);
    if (!m || !m.error().empty()) continue;
    next = m.offset() + 1;
    if (m.value().empty()) continue;
    const auto verdict = key_.verify(topic_, m.key(), m.value());
    if (std::holds_alternative<std::string>(verdict)) {
      ++ours;
    } else if (std::get<control_rejection>(verdict) == control_rejection::unknown_key) {
      const auto split = split_signed(m.value());
      foreign[to_hex(std::get<signed_value>(split).key_id)].insert(claimed_member(m.value()));
    }
  }
  if (ours != 0 || foreign.empty()) return;
  std::vector<std::string> seen;
  for (const auto& [id, names] : foreign) seen.push_back(fmt::format("{} (by {})", id, fmt::join(names, ", ")));
  throw fleet_refused(fmt::format(
      "the control topic {}'s recent messages are signed with fleet key(s) {}, and none with this member's key {}"
      "{}: every member needs the same kafka.fleet_key_file (or, where it is empty, the same "
      "storage.subject_key_file). Copy it from a running member and start again (docs/operations.md, \"The fleet "
      "key\")",
      topic_, fmt::join(seen, "; "), key_.id(),
      key_.accepted_ids().size() > 1 ? fmt::format(" (it also accepts {})", fmt::join(key_.accepted_ids(), ", "))
                                     : std::string()));
}

void control_channel::refuse(const kafka::message& m, control_rejection why, std::string_view member) {
  const auto offset = static_cast<std::uint64_t>(m.offset());
  spdlog::warn(
      "fleet: control topic {} offset {} refused ({}): not applied; a forged, altered, replayed or foreign message "
      "(cdr_retention_control_rejected_total)",
      topic_, offset, name(why));
  auto& run = refused_run_;
  if (!run) run = refused_run{offset, offset, 0, {}, {}};
  run->last = offset;
  ++run->count;
  ++run->reasons[std::string(name(why))];
  if (!member.empty() && run->claimed.size() < 8) run->claimed.emplace(member);
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    ++refused_[why];
    next_ = offset + 1;
  });
  if (run->count >= 1000) flush_refused();
}

void control_channel::flush_refused() {
  if (!refused_run_) return;
  const auto run = std::exchange(refused_run_, std::nullopt);
  keeper_.refuse_control(run->last + 1, {{"action", "control_refused"},
                                         {"topic", topic_},
                                         {"first_offset", run->first},
                                         {"last_offset", run->last},
                                         {"messages", run->count},
                                         {"reasons", run->reasons},
                                         {"claimed_members", run->claimed}});
}

void control_channel::start() {
  spdlog::info("fleet member {}: applying control topic {} from offset {}; heartbeat every {} ms", member_, topic_,
               next_, heartbeat_.count());
  thread_ = std::thread([this] { run(); });
  answering_ = std::thread([this] { answer_queries(); });
}

void control_channel::stop() {
  alarm_.notify([this] { stop_ = true; });
  if (thread_.joinable()) thread_.join();
  if (answering_.joinable()) answering_.join();
}

void control_channel::set_blocked(std::string why) {
  std::lock_guard lock(mutex_);
  if (blocked_ != why) spdlog::critical("fleet: applying the control topic is stuck: {}", why);
  blocked_ = std::move(why);
}

void control_channel::run() {
  auto next_heartbeat = time_.monotonic();
  while (!stop_) {
    if (time_.monotonic() >= next_heartbeat) {
      send_heartbeat(false);
      next_heartbeat = time_.monotonic() + heartbeat_;
    }
    kafka::message m = reader_->poll(200ms);
    if (!m) {
      flush_refused();  // the topic is quiet: the refusals so far are audited
      continue;
    }
    if (!m.error().empty()) {
      spdlog::warn("fleet: reading control topic {}: {}", topic_, m.error());
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      if (static_cast<std::uint64_t>(m.offset()) < next_) continue;  // applied before
    }
    if (m.value().empty()) {  // a tombstone: an answered query's key deleted
      alarm_.notify([&] {
        std::lock_guard lock(mutex_);
        next_ = static_cast<std::uint64_t>(m.offset()) + 1;
      });
      continue;
    }
    // An authentic message that cannot be applied is never skipped unless
    // an operator says so (skip): sweeps wait for it (catch_up), and the
    // reason is logged and shown by status.
    while (!stop_ && !apply(m)) alarm_.wait_for(5s, [this] { return stop_.load() || skip_.has_value(); });
  }
  flush_refused();
}

bool control_channel::apply(const kafka::message& msg) {
  const auto offset = static_cast<std::uint64_t>(msg.offset());
  auto verified = key_.verify(topic_, msg.key(), msg.value());
  if (auto* why = std::get_if<control_rejection>(&verified)) {
    // Forged, altered, junk or signed under another key: never applied,
    // never blocking.
    refuse(msg, *why, claimed_member(msg.value()));
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
    keeper_.refuse_control(offset + 1, {{"action", "control_skip"},
                                        {"topic", topic_},
                                        {"offset", offset},
                                        {"why", decoded.error()},
                                        {"requested_by", *skipped_by}});
    spdlog::warn("fleet: control topic {} offset {} skipped by uid {}: {}", topic_, offset, *skipped_by,
                 decoded.error());
    advance(offset);
    return true;
  }
  const auto& m = decoded.value();
  if (!changes_state(m.kind)) {
    if (!note(m, msg)) {
      refuse(msg, control_rejection::replay, m.member);
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
      refuse(msg, control_rejection::replay, m.member);
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

void control_channel::advance(std::uint64_t offset) {
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    next_ = offset + 1;
    blocked_.clear();
    blocked_at_.reset();
  });
}

std::variant<nlohmann::json, std::string> control_channel::skip(std::uint64_t offset, std::uint32_t uid) {
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
  return nlohmann::json{{"skipped", offset}, {"topic", topic_}};
}

void control_channel::publish(const std::string& topic, const std::string& key, std::string_view value,
                              std::string_view what) {
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(mutex_);
    ticket = ++tickets_;
  }
  std::string error;
  // Tombstones (an answered query's key deleted) carry nothing to sign.
  const auto signed_value = value.empty() ? std::string() : key_.sign(topic, key, value);
  if (!producer_->produce(topic, key, signed_value, {}, ticket, &error)) {
    throw fleet_unavailable(fmt::format("{}: cannot publish to {}: {}", what, topic, error));
  }
  producer_->flush(timeout_);
  std::lock_guard lock(mutex_);
  const auto d = delivered_.find(ticket);
  if (d == delivered_.end()) {
    throw fleet_unavailable(fmt::format("{}: {} did not acknowledge it within {} ms; the fleet may still act on it",
                                        what, topic, timeout_.count()));
  }
  const auto failed = d->second;
  delivered_.erase(d);
  if (failed) throw fleet_unavailable(fmt::format("{}: cannot publish to {}: {}", what, topic, *failed));
}

void control_channel::leave() {
  send_heartbeat(true);
  spdlog::warn("fleet member {} left the fleet: the others no longer expect it", member_);
}

void control_channel::set_answerer(answer_fn f) {
  std::lock_guard lock(mutex_);
  answer_ = std::move(f);
}

void control_channel::send_heartbeat(bool leaving) {
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
  std::lock_guard lock(heartbeat_mutex_);
  if (left_) return;
  left_ = leaving;
  m.seq = ++heartbeat_seq_;
  if (!leaving) {
    // Not waited for: the control thread goes on applying while the broker
    // is away; a lost heartbeat is followed by the next.
    std::string error;
    const auto key = control_key(m);
    if (!producer_->produce(topic_, key, key_.sign(topic_, key, encode(m)), {}, heartbeat_ticket, &error)) {
      spdlog::warn("fleet: cannot publish a heartbeat to {}: {}", topic_, error);
    }
    producer_->poll();
    return;
  }
  try {
    publish(topic_, control_key(m), encode(m), "the leaving heartbeat");
  } catch (const fleet_unavailable& e) {
    spdlog::warn("fleet: {}", e.what());
  }
}

bool control_channel::note(const control_message& m, const kafka::message& raw) {
  if (m.kind == control_kind::heartbeat) {
    // Its age by the message's timestamp: a heartbeat replayed at start-up
    // from long ago does not make its member live. A replay of a recent
    // one is older than one seen already: its run ended, or its number
    // is not past the last.
    const auto age = raw.age().value_or(std::chrono::milliseconds(0));
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
  // A query asked before this member started, or older than the asker
  // waits, is not answered: nobody reads the answer. A member that left
  // the fleet answers none.
  if (left_ || raw.offset() < answer_from_ || raw.age().value_or(0ms) > timeout_) return true;
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    queries_.push_back(m);
  });
  return true;
}

void control_channel::answer_queries() {
  while (!stop_) {
    std::optional<control_message> q;
    alarm_.wait_for(1s, [&] {
      std::lock_guard lock(mutex_);
      if (!queries_.empty()) {
        q = std::move(queries_.front());
        queries_.pop_front();
      }
      return q.has_value() || stop_;
    });
    if (!q) continue;
    try {
      answer(*q);
    } catch (const std::exception& e) {
      spdlog::warn("fleet: answering {} {} from member {}: {}", q->command, q->request, q->member, e.what());
    }
  }
}

void control_channel::answer(const control_message& q) {
  std::optional<std::string> identifier;
  if (!q.sealed_identifier.empty()) {
    std::lock_guard lock(seal_mutex_);
    identifier = seal_.open(q.sealed_identifier, query_seal_context);
  }
  fleet_reply r{q.request, member_, 0, false, {}, nullptr, {}};
  const auto send = [&] {
    publish(replies_topic_, q.request, encode(r), fmt::format("reply to {}", q.request));
    ++r.part;
    r.items.clear();
  };
  answer_fn answerer;
  {
    std::lock_guard lock(mutex_);
    answerer = answer_;
  }
  admin::reply out;
  if (!answerer) {
    out = admin::error{nullptr, admin::error_code::unavailable, "this member does not answer queries"};
  } else if (!q.sealed_identifier.empty() && !identifier) {
    out = admin::error{nullptr, admin::error_code::unavailable,
                       "the query's identifier does not open: this member's storage.subject_key_file differs"};
  } else {
    out = answerer(q, identifier);
  }
  if (auto* st = std::get_if<admin::stream>(&out)) {
    // Streamed in parts of at most reply_items items.
    std::size_t bytes = 0;
    try {
      r.result = st->run([&](nlohmann::json item) {
        bytes += item.dump().size();
        r.items.push_back(std::move(item));
        if (r.items.size() >= reply_items || bytes >= reply_bytes) {
          send();
          bytes = 0;
        }
      });
    } catch (const std::exception& e) {
      r.error = e.what();
    }
  } else if (auto* e = std::get_if<admin::error>(&out)) {
    r.error = fmt::format("{}: {}", admin::name(e->code), e->message);
  } else {
    r.result = std::get<nlohmann::json>(std::move(out));
  }
  r.last = true;
  send();
  spdlog::info("fleet: answered {} {} from member {} ({} part(s))", q.command, q.request, q.member, r.part);
}

fleet_answers control_channel::gather(
    const std::string& command, nlohmann::json args, std::string sealed_identifier,
    const std::function<void(const std::string& member, nlohmann::json item)>& on_item) {
  control_message m;
  m.kind = control_kind::query;
  m.member = member_;
  m.request = fmt::format("{}/{}", member_, to_hex(crypto::random_bytes(8)));
  m.at = time_.now();
  m.command = command;
  m.args = std::move(args);
  m.sealed_identifier = std::move(sealed_identifier);
  fleet_answers out;
  std::set<std::string> expected{member_};
  for (const auto& k : members()) {
    if (k.live) {
      expected.insert(k.name);
    } else {
      out.silent.push_back(k.name);
    }
  }
  // Replies are read from the topic's end as it is before the query goes out.
  const auto opts = options_of(config_, bootstrap_, "replies-reader");
  std::int64_t from = 0;
  {
    kafka::reader probe(opts, replies_topic_, 0, 0);
    const auto w = probe.watermarks(timeout_);
    if (!w) throw fleet_unavailable(fmt::format("the end of replies topic {} cannot be read", replies_topic_));
    from = w->second;
  }
  kafka::reader replies(opts, replies_topic_, 0, from);
  publish(topic_, control_key(m), encode(m), fmt::format("query {}", m.request));
  std::map<std::string, std::uint32_t> next_part;
  std::set<std::string> done;
  const auto deadline = time_.monotonic() + timeout_;
  while (!std::includes(done.begin(), done.end(), expected.begin(), expected.end()) && time_.monotonic() < deadline &&
         !stop_) {
    kafka::message msg = replies.poll(100ms);
    if (!msg || !msg.error().empty() || msg.key() != m.request) continue;
    auto verified = key_.verify(replies_topic_, msg.key(), msg.value());
    if (auto* why = std::get_if<control_rejection>(&verified)) {
      // A forged answer never stands in for a member's own.
      spdlog::warn("fleet: a reply to {} on {} offset {} refused ({}), claiming member \"{}\"", m.request,
                   replies_topic_, msg.offset(), name(*why), claimed_member(msg.value()));
      {
        std::lock_guard lock(mutex_);
        ++refused_[*why];
      }
      keeper_.refuse_control(std::nullopt, {{"action", "control_refused"},
                                            {"topic", replies_topic_},
                                            {"first_offset", msg.offset()},
                                            {"last_offset", msg.offset()},
                                            {"messages", 1},
                                            {"reasons", {{name(*why), 1}}},
                                            {"claimed_members", {claimed_member(msg.value())}}});
      continue;
    }
    auto decoded = decode_reply(std::get<std::string>(verified));
    if (!decoded) {
      spdlog::warn("fleet: a reply to {} does not decode: {}", m.request, decoded.error());
      continue;
    }
    auto& r = decoded.value();
    // A repeat; or a member not asked (a reply names the member that signed
    // it, so only members hold the key: still, it answers for itself only).
    if (done.contains(r.member) || r.part != next_part[r.member]) continue;
    ++next_part[r.member];
    for (auto& item : r.items) on_item(r.member, std::move(item));
    if (!r.last) continue;
    done.insert(r.member);
    if (r.error.empty()) {
      out.results[r.member] = std::move(r.result);
    } else {
      out.errors[r.member] = std::move(r.error);
    }
  }
  for (const auto& name : expected) {
    if (!done.contains(name)) out.missing.push_back(name);
  }
  // The answered query's key is deleted: compaction removes it.
  try {
    publish(topic_, control_key(m), std::string_view(), fmt::format("query {} tombstone", m.request));
  } catch (const fleet_unavailable& e) {
    spdlog::warn("fleet: {}", e.what());
  }
  return out;
}

std::vector<fleet_member> control_channel::members() const {
  const auto now = time_.monotonic();
  const auto window = 3 * std::chrono::duration_cast<microseconds>(heartbeat_);
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

nlohmann::json fleet_answers::report() const {
  nlohmann::json members = nlohmann::json::object();
  for (const auto& [name, r] : results) members[name] = r;
  for (const auto& [name, e] : errors) members[name] = {{"error", e}};
  return {{"members", std::move(members)}, {"missing", missing}, {"silent", silent}};
}

std::string control_channel::seal(std::string_view normalized) {
  std::lock_guard lock(seal_mutex_);
  return seal_.seal(normalized, seal_context);
}

std::string control_channel::seal_query(std::string_view normalized) {
  std::lock_guard lock(seal_mutex_);
  return seal_.seal(normalized, query_seal_context);
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
  {
    std::lock_guard lock(mutex_);
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
  publish(topic_, control_key(m), encode(m), fmt::format("request {}", m.request));
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

void control_channel::figures(metrics::retention_snapshot& out) const {
  const auto now = time_.now();
  for (const auto& k : members()) {
    ++(k.live ? out.fleet_members_live : out.fleet_members_silent);
    if (!k.live && k.next_deadline && *k.next_deadline <= now) ++out.fleet_silent_members_past_deadline;
  }
  std::lock_guard lock(mutex_);
  out.control_position = next_;
  out.control_blocked = !blocked_.empty();
  for (const auto why : all_control_rejections) {
    const auto it = refused_.find(why);
    out.control_rejected[std::string(name(why))] = it == refused_.end() ? 0 : it->second;
  }
}

nlohmann::json control_channel::report() const {
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
  std::lock_guard lock(mutex_);
  nlohmann::json out{{"member", member_},
                     {"left", left_.load()},
                     {"control_topic", topic_},
                     {"control_position", next_},
                     {"heartbeat_interval_ms", heartbeat_.count()},
                     {"fleet_key", key_.id()},
                     {"members", std::move(known)}};
  nlohmann::json refused = nlohmann::json::object();
  for (const auto& [why, n] : refused_) refused[std::string(name(why))] = n;
  out["refused"] = std::move(refused);
  if (!blocked_.empty()) out["blocked"] = blocked_;
  return out;
}

}  // namespace cdr::service
