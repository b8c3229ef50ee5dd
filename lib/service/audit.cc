#include "audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include "cdr/core/key_layout.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

// The hash of a line is the SHA-256 of the line without its "hash" member
// (nlohmann dumps members sorted, so this is canonical).
std::string line_hash(nlohmann::json line) {
  line.erase("hash");
  return crypto::sha256_hex(line.dump());
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace

audit_trail::audit_trail(store::store& s, store::saved_state& state, std::string path)
    : store_(s), state_(state), path_(std::move(path)) {
  drain();
}

void audit_trail::stage(store::change& c, std::uint64_t op, nlohmann::json entry, instant at) {
  state_.put_pending_audit(c, pending_audit{op, at, std::move(entry)});
}

void audit_trail::drain() {
  std::lock_guard lock(mutex_);
  const auto pending = state_.pending_audit_entries();
  if (pending.items.empty()) return;
  if (!pending.unreadable.empty()) {
    // Appending around an entry that cannot be read would make the trail
    // silently miss it: nothing is appended until it is repaired.
    spdlog::error("audit trail: {} pending entr(ies) not appended while {} does not decode", pending.items.size(),
                  pending.unreadable.front().key);
    return;
  }
  auto stored = state_.head();
  if (!stored) {
    spdlog::error("audit trail: not appended while its recorded head does not decode: {}", stored.error());
    return;
  }
  auto h = stored.value();
  // A crash after the append but before the head moved: the file is ahead
  // of the head by the lines of entries still pending. Those are not
  // appended twice.
  const auto lines = read_lines(path_);
  std::uint64_t appended_op = 0;
  if (!lines.empty()) {
    const auto last = nlohmann::json::parse(lines.back(), nullptr, false);
    if (last.is_object() && last.value("seq", std::uint64_t{0}) > h.seq) {
      appended_op = last.value("op", std::uint64_t{0});
      h.seq = last.value("seq", std::uint64_t{0});
      h.hash = last.value("hash", h.hash);
    }
  }
  std::string out;
  store::change c(store_);
  for (const auto& [op, entry] : pending.items) {
    state_.remove_pending_audit(c, op);
    if (entry.op <= appended_op) continue;
    nlohmann::json line{{"seq", h.seq + 1},
                        {"prev", h.hash},
                        {"op", entry.op},
                        {"time", format_rfc3339(entry.time)},
                        {"entry", entry.entry}};
    line["hash"] = line_hash(line);
    h.seq += 1;
    h.hash = line["hash"].get<std::string>();
    out += line.dump();
    out += '\n';
  }
  append(out);
  state_.put_head(c, h);
  store_.apply(c);
}

void audit_trail::append(const std::string& text) const {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open the audit trail {}: {}", path_, std::strerror(errno)));
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(fmt::format("cannot append to the audit trail {}: {}", path_, std::strerror(err)));
    }
    done += static_cast<std::size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) throw std::runtime_error(fmt::format("cannot fsync the audit trail {}", path_));
}

audit_trail::verdict audit_trail::verify() const {
  verdict v;
  const auto stored = state_.head();
  if (!stored) {
    v.ok = false;
    v.problem = "the recorded head of the chain does not decode: " + stored.error();
    return v;
  }
  const auto& h = stored.value();
  std::string prev(64, '0');
  std::uint64_t seq = 0;
  for (const auto& text : read_lines(path_)) {
    ++seq;
    const auto line = nlohmann::json::parse(text, nullptr, false);
    const auto fail = [&](std::string why) {
      v.ok = false;
      v.problem = std::move(why);
      v.line = seq;
      return v;
    };
    if (!line.is_object() || !line.contains("hash") || !line["hash"].is_string()) return fail("not an audit entry");
    if (line.value("seq", std::uint64_t{0}) != seq) {
      return fail(fmt::format("sequence number {} where {} was expected (an entry was removed or reordered)",
                              line.value("seq", std::uint64_t{0}), seq));
    }
    if (line.value("prev", std::string()) != prev) return fail("does not chain to the previous entry");
    if (line_hash(line) != line["hash"].get<std::string>()) return fail("its content does not match its hash");
    prev = line["hash"].get<std::string>();
    v.entries = seq;
  }
  if (v.entries < h.seq) {
    v.ok = false;
    v.problem = fmt::format("the trail ends at entry {} but {} were written (entries were removed from the end)",
                            v.entries, h.seq);
    v.line = v.entries + 1;
  } else if (v.entries == h.seq && prev != h.hash && h.seq != 0) {
    v.ok = false;
    v.problem = "the last entry does not match the recorded head of the chain";
    v.line = v.entries;
  }
  return v;
}

std::vector<nlohmann::json> audit_trail::read(std::optional<instant> since) const {
  std::vector<nlohmann::json> out;
  for (const auto& text : read_lines(path_)) {
    auto line = nlohmann::json::parse(text, nullptr, false);
    if (!line.is_object()) continue;
    if (since) {
      const auto t = parse_rfc3339(line.value("time", std::string()));
      if (!t || *t < *since) continue;
    }
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace cdr::service
