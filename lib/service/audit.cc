#include "audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "cdr/core/key_layout.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

constexpr std::string_view pending_prefix = "audit/";
constexpr std::string_view head_key = "audit_head";

// The hash of a line is the SHA-256 of the line without its "hash" member
// (nlohmann dumps members sorted, so this is canonical).
std::string line_hash(nlohmann::json line) {
  line.erase("hash");
  return crypto::sha256_hex(line.dump());
}

struct head {
  std::uint64_t seq = 0;
  std::string hash = std::string(64, '0');
};

head read_head(const store::store& s) {
  head h;
  if (auto v = s.entry(head_key)) {
    const auto j = nlohmann::json::parse(*v, nullptr, false);
    if (j.is_object()) {
      h.seq = j.value("seq", std::uint64_t{0});
      h.hash = j.value("hash", h.hash);
    }
  }
  return h;
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

audit_trail::audit_trail(store::store& s, std::string path) : store_(s), path_(std::move(path)) { drain(); }

void audit_trail::stage(store::change& c, std::uint64_t op, nlohmann::json entry, instant at) {
  nlohmann::json pending{{"op", op}, {"time", format_rfc3339(at)}, {"entry", std::move(entry)}};
  c.put_entry(std::string(pending_prefix) + be64(op), pending.dump());
}

void audit_trail::drain() {
  std::lock_guard lock(mutex_);
  const auto pending = store_.entries(pending_prefix);
  if (pending.empty()) return;
  auto h = read_head(store_);
  // A crash after the append but before the head moved: the file is ahead
  // of the head by the lines of entries still pending. Those are not
  // appended twice.
  const auto lines = read_lines(path_);
  std::uint64_t file_seq = 0;
  std::string file_hash = h.hash;
  if (!lines.empty()) {
    const auto last = nlohmann::json::parse(lines.back(), nullptr, false);
    if (last.is_object()) {
      file_seq = last.value("seq", std::uint64_t{0});
      file_hash = last.value("hash", file_hash);
    }
  }
  std::uint64_t appended_op = 0;
  if (file_seq > h.seq && !lines.empty()) {
    const auto last = nlohmann::json::parse(lines.back(), nullptr, false);
    appended_op = last.value("op", std::uint64_t{0});
    h.seq = file_seq;
    h.hash = file_hash;
  }
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open the audit trail {}: {}", path_, std::strerror(errno)));
  std::string out;
  store::change c(store_);
  for (const auto& [key, value] : pending) {
    c.remove_entry(key);
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object()) continue;
    if (j.value("op", std::uint64_t{0}) <= appended_op) continue;
    nlohmann::json line{{"seq", h.seq + 1}, {"prev", h.hash}, {"op", j["op"]}, {"time", j["time"]},
                        {"entry", j["entry"]}};
    line["hash"] = line_hash(line);
    h.seq += 1;
    h.hash = line["hash"].get<std::string>();
    out += line.dump();
    out += '\n';
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const auto n = ::write(fd, out.data() + done, out.size() - done);
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
  c.put_entry(head_key, nlohmann::json{{"seq", h.seq}, {"hash", h.hash}}.dump());
  store_.apply(c);
}

audit_trail::verdict audit_trail::verify() const {
  verdict v;
  const auto h = read_head(store_);
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
