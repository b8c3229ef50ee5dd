#include "audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/audit_record.h"
#include "cdr/core/hex.h"
#include "cdr/crypto/crypto.h"
#include "files.h"

namespace cdr::service {
namespace {

const std::string zero_hash(64, '0');

// A line's canonical form: without its "hash" member (nlohmann dumps
// members sorted).
std::string canonical(nlohmann::json line) {
  line.erase("hash");
  return line.dump();
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Checks that `lines` chain under `hash`; the first bad line's problem.
template <class Hash>
std::optional<std::pair<std::uint64_t, std::string>> first_break(const std::vector<nlohmann::json>& lines,
                                                                 Hash&& hash) {
  std::string prev = zero_hash;
  for (std::uint64_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    const auto seq = i + 1;
    if (!line.is_object() || !line.contains("hash") || !line["hash"].is_string()) {
      return std::pair{seq, std::string("not an audit entry")};
    }
    if (line.value("seq", std::uint64_t{0}) != seq) {
      return std::pair{seq, fmt::format("sequence number {} where {} was expected (an entry was removed or reordered)",
                                        line.value("seq", std::uint64_t{0}), seq)};
    }
    if (line.value("prev", std::string()) != prev)
      return std::pair{seq, std::string("does not chain to the previous entry")};
    if (hash(line) != line["hash"].get<std::string>()) {
      return std::pair{seq, std::string("its content does not match its hash (keyed: HMAC-SHA-256)")};
    }
    prev = line["hash"].get<std::string>();
  }
  return std::nullopt;
}

std::vector<nlohmann::json> parse_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text)) {
    if (!text.empty()) out.push_back(nlohmann::json::parse(text, nullptr, false));
  }
  return out;
}

}  // namespace

audit_trail::audit_trail(store::store& s, store::saved_state& state, const clock& time, std::string path,
                         audit_keying keying)
    : store_(s), state_(state), time_(time), path_(std::move(path)), keying_(std::move(keying)) {
  drain();
}

std::string audit_trail::hash_of(nlohmann::json line) const {
  return to_hex(crypto::hmac_sha256(keying_.key, canonical(std::move(line))));
}

void audit_trail::stage(store::change& c, std::uint64_t op, nlohmann::json entry, instant at) {
  state_.put_pending_audit(c, pending_audit{op, at, std::move(entry)});
}

std::string audit_trail::chained(audit_head& h, std::uint64_t op, instant at, nlohmann::json entry) const {
  nlohmann::json line{
      {"seq", h.seq + 1}, {"prev", h.hash}, {"op", op}, {"time", format_rfc3339(at)}, {"entry", std::move(entry)}};
  line["hash"] = hash_of(line);
  h.seq += 1;
  h.hash = line["hash"].get<std::string>();
  return line.dump() + "\n";
}

audit_trail::tail audit_trail::read_tail(audit_head head) const {
  tail t{head, 0, std::nullopt, 0};
  const auto size = file_size(path_);
  if (!t.head.bytes) {
    // A head from before the size was kept: count its lines' bytes.
    std::ifstream in(path_, std::ios::binary);
    std::string line;
    std::uint64_t bytes = 0;
    for (std::uint64_t n = 0; n < t.head.seq && std::getline(in, line); ++n) bytes += line.size() + 1;
    t.head.bytes = bytes;
  }
  const auto end = *t.head.bytes;
  if (size < end) {
    spdlog::error(
        "the audit trail {} is {} bytes shorter than recorded: entries were removed (audit verify says "
        "which)",
        path_, end - size);
    return t;
  }
  if (size == end) return t;
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(end));
  std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  // Complete lines that continue the chain: appended before a crash kept
  // the head from moving.
  for (auto nl = rest.find('\n'); nl != std::string::npos; nl = rest.find('\n', pos)) {
    const auto line = nlohmann::json::parse(std::string_view(rest).substr(pos, nl - pos), nullptr, false);
    if (!line.is_object() || line.value("seq", std::uint64_t{0}) != t.head.seq + 1 ||
        line.value("prev", std::string()) != t.head.hash || !line.contains("hash") || !line["hash"].is_string() ||
        hash_of(line) != line["hash"].get<std::string>()) {
      break;
    }
    t.head.seq += 1;
    t.head.hash = line["hash"].get<std::string>();
    t.appended_op = std::max(t.appended_op, line.value("op", std::uint64_t{0}));
    pos = nl + 1;
  }
  t.head.bytes = end + pos;
  if (pos < rest.size()) {
    t.cut_at = end + pos;
    t.cut_bytes = rest.size() - pos;
  }
  return t;
}

std::optional<nlohmann::json> audit_trail::migrate(audit_head& head) {
  // Once per process: after the first look the trail is keyed (re-keyed,
  // keyed already, or empty and appended to keyed), or refused for good.
  // (Reading it at every drain made each audited action cost the whole
  // trail while the key store did not mark it keyed yet.)
  if (!keying_.migrate_legacy || std::exchange(migration_checked_, true)) return std::nullopt;
  auto lines = parse_lines(path_);
  if (lines.empty()) return std::nullopt;
  const auto& first = lines.front();
  if (first.is_object() && first.contains("hash") && first["hash"].is_string() &&
      hash_of(first) == first["hash"].get<std::string>()) {
    return std::nullopt;  // keyed already
  }
  const auto sha = [](const nlohmann::json& line) { return crypto::sha256_hex(canonical(line)); };
  if (auto bad = first_break(lines, sha);
      bad || (head.seq > 0 && (head.seq > lines.size() || lines[head.seq - 1]["hash"] != head.hash))) {
    spdlog::critical(
        "the audit trail {} is neither keyed nor a consistent legacy trail (line {}): not re-keyed; "
        "audit verify reports it",
        path_, bad ? bad->first : head.seq);
    return std::nullopt;
  }
  const auto legacy_head = lines.back()["hash"].get<std::string>();
  std::string out;
  audit_head h;
  for (auto& line : lines) {
    line["prev"] = h.hash;
    line["hash"] = hash_of(line);
    h.seq += 1;
    h.hash = line["hash"].get<std::string>();
    out += line.dump() + "\n";
  }
  replace_synced(path_, path_ + ".rekey", out, "the audit trail");
  h.bytes = out.size();
  head = h;
  spdlog::warn(
      "the audit trail {} ({} entries) is re-keyed: its chain is now an HMAC under a key derived from the "
      "master key",
      path_, lines.size());
  return audit::encode(audit::audit_rekeyed{lines.size(), legacy_head});
}

std::vector<audit_trail::appended> audit_trail::drain() {
  std::lock_guard lock(mutex_);
  std::vector<appended> done;
  const auto pending = state_.pending_audit_entries();
  if (!pending.unreadable.empty()) {
    // Appending around an entry that cannot be read would make the trail
    // silently miss it: nothing is appended until it is repaired.
    spdlog::error("audit trail: {} pending entr(ies) not appended while {} does not decode", pending.items.size(),
                  pending.unreadable.front().key);
    return done;
  }
  auto stored = state_.head();
  if (!stored) {
    spdlog::error("audit trail: not appended while its recorded head does not decode: {}", stored.error());
    return done;
  }
  auto head = stored.value();
  const auto rekeyed = migrate(head);
  auto t = read_tail(head);
  std::string out;
  if (rekeyed) out += chained(t.head, 0, time_.now(), *rekeyed);
  if (t.cut_at) {
    // A partial last line: cut it off, and say so in the trail.
    if (::truncate(path_.c_str(), static_cast<off_t>(*t.cut_at)) != 0) fail_errno("cannot repair the audit trail");
    spdlog::warn("audit trail {}: cut off {} byte(s) of an incomplete last entry", path_, t.cut_bytes);
    out += chained(t.head, 0, time_.now(), audit::encode(audit::audit_tail_repaired{t.cut_bytes, t.head.seq}));
  }
  store::change c(store_);
  for (const auto& [op, entry] : pending.items) {
    state_.remove_pending_audit(c, op);
    if (entry.op <= t.appended_op) continue;
    out += chained(t.head, entry.op, entry.time, entry.entry);
    done.push_back({entry.op, t.head.seq, t.head.hash});
  }
  if (out.empty() && c.empty() && t.head == stored.value()) return done;
  append(out);
  t.head.bytes = *t.head.bytes + out.size();
  state_.put_head(c, t.head);
  store_.apply(c);
  return done;
}

void audit_trail::append(const std::string& text) const { append_synced(path_, text, "the audit trail"); }

audit_trail::verdict audit_trail::verify() const {
  verdict v;
  const auto stored = state_.head();
  if (!stored) {
    v.ok = false;
    v.problem = "the recorded head of the chain does not decode: " + stored.error();
    return v;
  }
  const auto& h = stored.value();
  const auto lines = parse_lines(path_);
  if (auto bad = first_break(lines, [this](const nlohmann::json& line) { return hash_of(line); })) {
    v.ok = false;
    v.line = bad->first;
    v.problem = bad->second;
    v.entries = bad->first - 1;
    return v;
  }
  v.entries = lines.size();
  const auto last = lines.empty() ? zero_hash : lines.back()["hash"].get<std::string>();
  if (v.entries < h.seq) {
    v.ok = false;
    v.problem = fmt::format("the trail ends at entry {} but {} were written (entries were removed from the end)",
                            v.entries, h.seq);
    v.line = v.entries + 1;
  } else if (v.entries == h.seq && last != h.hash && h.seq != 0) {
    v.ok = false;
    v.problem = "the last entry does not match the recorded head of the chain";
    v.line = v.entries;
  }
  return v;
}

std::size_t audit_trail::for_each(std::optional<instant> since, const std::function<void(nlohmann::json)>& fn) const {
  std::ifstream in(path_);
  std::string text;
  std::size_t n = 0;
  for (std::uint64_t number = 1; std::getline(in, text); ++number) {
    auto line = nlohmann::json::parse(text, nullptr, false);
    if (!line.is_object()) {
      // Never skipped: whoever reads the trail sees that a line is damaged
      // (its time unknown, so whatever `since` says), and where.
      fn({{"line", number}, {"unreadable", "not a JSON object"}, {"text", text}});
      ++n;
      continue;
    }
    if (since) {
      const auto t = parse_rfc3339(line.value("time", std::string()));
      if (!t || *t < *since) continue;
    }
    fn(std::move(line));
    ++n;
  }
  return n;
}

}  // namespace cdr::service
