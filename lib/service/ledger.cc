#include "ledger.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "files.h"

namespace cdr::service {

std::string erasure_ledger::beside(const std::string& keystore_path) {
  return (std::filesystem::path(keystore_path).parent_path() / "erasures.jsonl").string();
}

erasure_ledger::erasure_ledger(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return;  // no erasure yet
  std::string line;
  std::uint64_t complete = 0;  // bytes up to the last newline
  std::size_t number = 0;
  while (std::getline(in, line)) {
    if (in.eof()) {
      // No newline after it: an append a crash interrupted. Its erasure
      // was never committed nor acknowledged.
      spdlog::warn("erasure ledger {}: cut off {} byte(s) of an incomplete last line", path_, line.size());
      if (::truncate(path_.c_str(), static_cast<off_t>(complete)) != 0) {
        fail_errno("cannot repair the erasure ledger " + path_);
      }
      break;
    }
    ++number;
    complete += line.size() + 1;
    if (const auto e = decode_ledger_entry(line); !e) {
      throw std::runtime_error(fmt::format(
          "erasure ledger {} line {}: {}; the daemon does not start until it is repaired (docs/operations.md, "
          "\"Erasure ledger\")",
          path_, number, e.error()));
    }
  }
  entries_ = number;
}

void erasure_ledger::append(const ledger_entry& e) {
  append_synced(path_, encode(e) + "\n", "the erasure ledger");
  ++entries_;
}

void erasure_ledger::for_each(const std::function<void(ledger_entry&&)>& fn) const {
  std::ifstream in(path_, std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    auto e = decode_ledger_entry(line);
    if (!e) throw std::runtime_error(fmt::format("erasure ledger {}: {}", path_, e.error()));
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
