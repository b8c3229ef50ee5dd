#include "queries.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

using namespace std::chrono_literals;

// Bound to the message kind: an erasure's sealed identifier does not open
// as a query's, nor the reverse.
constexpr std::string_view seal_context = "cdr-retention control: query identifier";
// A streamed answer's parts stay well under Kafka's default 1 MB message.
constexpr std::size_t reply_items = 200;
constexpr std::size_t reply_bytes = 256 * 1024;

}  // namespace

nlohmann::json fleet_answers::report() const {
  nlohmann::json members = nlohmann::json::object();
  for (const auto& [name, r] : results) members[name] = r;
  for (const auto& [name, e] : errors) members[name] = {{"error", e}};
  return {{"members", std::move(members)}, {"missing", missing}, {"silent", silent}};
}

fleet_queries::fleet_queries(const time_source& time, signed_topic control, signed_topic replies,
                             fleet_membership& members, fleet_port& keeper, refusals& refused,
                             std::string_view seal_key, std::int64_t answer_from, std::chrono::milliseconds timeout)
    : time_(time),
      control_(std::move(control)),
      replies_(std::move(replies)),
      members_(members),
      keeper_(keeper),
      refused_(refused),
      answer_from_(answer_from),
      timeout_(timeout),
      seal_(std::string(seal_key)),
      alarm_(time) {}

fleet_queries::~fleet_queries() { stop(); }

void fleet_queries::start() {
  thread_ = std::thread([this] {
    while (!stop_) {
      std::optional<control_message> q;
      alarm_.wait_for(1s, [&] {
        std::lock_guard lock(mutex_);
        if (!waiting_.empty()) {
          q = std::move(waiting_.front());
          waiting_.pop_front();
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
  });
}

void fleet_queries::stop() {
  alarm_.notify([this] { stop_ = true; });
  if (thread_.joinable()) thread_.join();
}

void fleet_queries::set_answerer(answer_fn f) {
  std::lock_guard lock(mutex_);
  answer_ = std::move(f);
}

void fleet_queries::note(const control_message& q, const log_record& r) {
  if (members_.left() || r.offset < answer_from_ || r.age > timeout_) return;
  alarm_.notify([&] {
    std::lock_guard lock(mutex_);
    waiting_.push_back(q);
  });
}

std::string fleet_queries::seal(std::string_view normalized) {
  std::lock_guard lock(seal_mutex_);
  return seal_.seal(normalized, seal_context);
}

void fleet_queries::answer(const control_message& q) {
  std::optional<std::string> identifier;
  if (!q.sealed_identifier.empty()) {
    std::lock_guard lock(seal_mutex_);
    identifier = seal_.open(q.sealed_identifier, seal_context);
  }
  fleet_reply r{q.request, members_.member(), 0, false, {}, nullptr, {}};
  const auto send = [&] {
    replies_.publish(q.request, encode(r), fmt::format("reply to {}", q.request), timeout_);
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

void fleet_queries::refuse(const log_record& r, const std::string& request, control_rejection why) {
  // A forged answer never stands in for a member's own.
  const auto claimed = claimed_member(r.value);
  spdlog::warn("fleet: a reply to {} on {} offset {} refused ({}), claiming member \"{}\"", request, replies_.topic,
               r.offset, name(why), claimed);
  refused_.count(why);
  const auto offset = static_cast<std::uint64_t>(r.offset);
  keeper_.refuse_control(
      std::nullopt,
      audit::control_refused{replies_.topic, offset, offset, 1, {{std::string(name(why)), 1}}, {claimed}});
}

fleet_answers fleet_queries::gather(
    const std::string& command, nlohmann::json args, std::string sealed_identifier,
    const std::function<void(const std::string& member, nlohmann::json item)>& on_item) {
  const auto& self = members_.member();
  control_message m;
  m.kind = control_kind::query;
  m.member = self;
  m.request = fmt::format("{}/{}", self, to_hex(crypto::random_bytes(8)));
  m.at = time_.now();
  m.command = command;
  m.args = std::move(args);
  m.sealed_identifier = std::move(sealed_identifier);
  fleet_answers out;
  std::set<std::string> expected{self};
  for (const auto& k : members_.members()) {
    if (k.live) {
      expected.insert(k.name);
    } else {
      out.silent.push_back(k.name);
    }
  }
  // Replies are read from the topic's end as it is before the query goes out.
  const auto bounds = replies_.log.bounds(replies_.topic, timeout_);
  if (!bounds) throw fleet_unavailable(fmt::format("the end of replies topic {} cannot be read", replies_.topic));
  const auto replies = replies_.log.read(replies_.topic, bounds->second);
  control_.publish(control_key(m), encode(m), fmt::format("query {}", m.request), timeout_);
  std::map<std::string, std::uint32_t> next_part;
  std::set<std::string> done;
  const auto deadline = time_.monotonic() + timeout_;
  while (!std::includes(done.begin(), done.end(), expected.begin(), expected.end()) && time_.monotonic() < deadline &&
         !stop_) {
    const auto msg = replies->next(100ms);
    if (!msg || msg->key != m.request) continue;
    auto verified = replies_.verify(*msg);
    if (auto* why = std::get_if<control_rejection>(&verified)) {
      refuse(*msg, m.request, *why);
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
    control_.publish(control_key(m), {}, fmt::format("query {} tombstone", m.request), timeout_);
  } catch (const fleet_unavailable& e) {
    spdlog::warn("fleet: {}", e.what());
  }
  return out;
}

}  // namespace cdr::service
