#include "ledger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cdr/core/hex.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"
#include "cdr/service/daemon.h"
#include "files.h"

namespace cdr::service {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_errno("cannot read the erasure ledger " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "<count>:<head hex>"
std::optional<std::pair<std::size_t, std::string>> parse_record(std::string_view v) {
  const auto colon = v.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::size_t n = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + colon, n);
  const auto head = v.substr(colon + 1);
  if (ec != std::errc() || ptr != v.data() + colon || head.size() != 64 || !from_hex(head)) return std::nullopt;
  return std::pair{n, std::string(head)};
}

}  // namespace

std::string erasure_ledger::beside(const std::string& keystore_path) {
  return (std::filesystem::path(keystore_path).parent_path() / "erasures.jsonl").string();
}

std::string erasure_ledger::record_value(std::size_t entries, std::string_view head_hex) {
  return fmt::format("{}:{}", entries, head_hex);
}

void erasure_ledger::refuse(const std::string& why) const {
  throw start_refused(fmt::format(
      "erasure ledger {}: {}. An erasure it lost would come back from a restored store, so the daemon does not "
      "start: restore the file from the backup of the key store's directory, or see docs/operations.md, "
      "\"Erasure ledger\"",
      path_, why));
}

std::string erasure_ledger::hash_of(const nlohmann::json& line) const {
  auto body = line;
  body.erase("hash");
  return to_hex(crypto::hmac_sha256(chain_key_, body.dump()));
}

std::string erasure_ledger::chained(const ledger_entry& e) const {
  nlohmann::json line{{"seq", entries_ + 1}, {"prev", head_}, {"entry", nlohmann::json::parse(encode(e))}};
  line["hash"] = hash_of(line);
  return line.dump();
}

erasure_ledger::erasure_ledger(std::string path, crypto::keystore& keys)
    : path_(std::move(path)), keys_(keys), chain_key_(keys.stable_secret("erasure ledger chain")) {
  std::optional<std::pair<std::size_t, std::string>> recorded;
  if (const auto r = keys_.record(record_name)) {
    recorded = parse_record(*r);
    if (!recorded) refuse("the key store's record of it does not decode");
  }
  const auto recorded_entries = recorded ? recorded->first : 0;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    if (errno != ENOENT) refuse(fmt::format("cannot be examined: {}", std::strerror(errno)));
    if (recorded_entries > 0) {
      refuse(fmt::format("is missing, but the key store records {} erasure(s) in it", recorded_entries));
    }
    return;  // no erasure yet
  }
  if (!S_ISREG(st.st_mode)) refuse("is not a regular file (a symbolic link, a device or a directory)");

  const auto text = read_all(path_);
  std::size_t pos = 0;
  bool legacy = false;
  std::vector<std::string> legacy_lines;
  const auto verify_line = [&](std::string_view raw) -> std::string {
    const auto j = nlohmann::json::parse(raw, nullptr, false);
    if (!j.is_object()) return "not a JSON object";
    if (!j.contains("hash") && entries_ == 0 && !recorded && decode_ledger_entry(raw)) {
      legacy = true;  // a build before the chain wrote it
      return {};
    }
    if (legacy) return decode_ledger_entry(raw) ? std::string() : decode_ledger_entry(raw).error();
    if (!j.contains("hash") || !j["hash"].is_string() || !j.contains("seq") || !j.contains("prev") ||
        !j.contains("entry") || !j["entry"].is_object()) {
      return "not a chained ledger line";
    }
    if (j["seq"] != entries_ + 1) return fmt::format("sequence {} where {} was due", j["seq"].dump(), entries_ + 1);
    if (j["prev"] != head_) return "it does not follow the line before it (a line removed, replaced or reordered)";
    if (!crypto::same_mac(hash_of(j), j["hash"].get<std::string>())) return "its hash does not verify (edited)";
    if (const auto e = decode_ledger_entry(j["entry"].dump()); !e) return e.error();
    return {};
  };
  const auto accept = [&](std::string_view raw) {
    ++entries_;
    if (legacy) {
      legacy_lines.emplace_back(raw);
    } else {
      head_ = nlohmann::json::parse(raw)["hash"].get<std::string>();
    }
  };
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    const auto raw = std::string_view(text).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    const auto why = verify_line(raw);
    if (nl == std::string::npos) {
      // A last line without its newline.
      if (why.empty()) {
        // Complete all the same (only the newline was lost): kept.
        append_synced(path_, "\n", "the erasure ledger");
        spdlog::warn("erasure ledger {}: line {} had lost its final newline; restored", path_, entries_ + 1);
        accept(raw);
        break;
      }
      if (!legacy && entries_ + 1 <= recorded_entries) {
        refuse(fmt::format("line {} is damaged ({}), and the erasure it records was acknowledged", entries_ + 1, why));
      }
      // An append a crash interrupted: never acknowledged. Kept aside.
      const auto aside = fmt::format("{}.cut-line{}-{}", path_, entries_ + 1, to_hex(crypto::random_bytes(4)));
      append_synced(aside, std::string(raw), "the cut-off ledger bytes");
      if (::truncate(path_.c_str(), static_cast<off_t>(pos)) != 0)
        fail_errno("cannot repair the erasure ledger " + path_);
      sync_dir_of(path_);
      spdlog::warn("erasure ledger {}: cut off {} byte(s) of an incomplete last line, never acknowledged; kept in {}",
                   path_, raw.size(), aside);
      break;
    }
    if (!why.empty()) refuse(fmt::format("line {}: {}", entries_ + 1, why));
    accept(raw);
    pos = nl + 1;
  }

  if (legacy) {
    // Chained once: every line as it was, now with its sequence and hashes.
    std::string out;
    const auto n = entries_;
    entries_ = 0;
    for (const auto& raw : legacy_lines) {
      const auto line = nlohmann::json::parse(chained(decode_ledger_entry(raw).value()));
      head_ = line["hash"].get<std::string>();
      ++entries_;
      out += line.dump() + "\n";
    }
    replace_synced(path_, path_ + ".chain", out, "the erasure ledger");
    spdlog::warn(
        "erasure ledger {} ({} entries) is chained: each line now carries an HMAC under a key derived from "
        "the master key",
        path_, n);
  } else if (entries_ < recorded_entries) {
    refuse(fmt::format("holds {} erasure(s), {} fewer than the key store records: lines were removed", entries_,
                       recorded_entries - entries_));
  } else if (recorded && entries_ == recorded_entries && head_ != recorded->second) {
    refuse("its last line is not the one the key store records: the file was replaced");
  }
  if (!recorded || entries_ != recorded_entries || head_ != recorded->second) {
    // A crash between an append and its record, a first start, or a chain made now.
    keys_.set_record(record_name, record_value(entries_, head_));
  }
}

void erasure_ledger::append(const ledger_entry& e) {
  const auto line = chained(e);
  append_synced(path_, line + "\n", "the erasure ledger");
  ++entries_;
  head_ = nlohmann::json::parse(line)["hash"].get<std::string>();
  keys_.set_record(record_name, record_value(entries_, head_));
}

void erasure_ledger::for_each(const std::function<void(ledger_entry&&)>& fn) const {
  std::ifstream in(path_, std::ios::binary);
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    auto e = j.is_object() && j.contains("entry") ? decode_ledger_entry(j["entry"].dump())
                                                  : result<ledger_entry>(failure{"not a chained ledger line"});
    if (!e) throw std::runtime_error(fmt::format("erasure ledger {} line {}: {}", path_, number, e.error()));
    fn(std::move(e).value());
  }
}

std::set<std::pair<std::string, std::string>> erasure_ledger::index_hashes() const {
  std::set<std::pair<std::string, std::string>> out;
  for_each([&](ledger_entry&& e) {
    for (auto& [name, hash] : e.indexes) out.emplace(name, std::move(hash));
  });
  return out;
}

}  // namespace cdr::service
