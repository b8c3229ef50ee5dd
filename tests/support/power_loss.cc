#include "power_loss.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace cdr::test {
namespace {

struct file_state {
  bool created = false;       // created while the ledger was kept
  bool entry_durable = true;  // its directory was synced after it was created
  std::uint64_t synced = 0;   // bytes made durable
  bool ever_synced = false;
};

}  // namespace

power_loss apply_power_loss(const std::string& ledger_path) {
  namespace fs = std::filesystem;
  std::map<std::string, file_state> files;
  std::ifstream in(ledger_path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string op, a, b;
    words >> op >> a;
    if (op == "create") {
      files[a] = {true, false, 0, false};
    } else if (op == "sync") {
      std::uint64_t size = 0;
      words >> size;
      auto& f = files[a];
      f.synced = size;
      f.ever_synced = true;
    } else if (op == "dirsync") {
      for (auto& [path, f] : files) {
        if (fs::path(path).parent_path() == fs::path(a)) f.entry_durable = true;
      }
    } else if (op == "rename") {
      words >> b;
      if (auto it = files.find(a); it != files.end()) {
        files[b] = it->second;
        files.erase(it);
      }
    } else if (op == "delete") {
      files.erase(a);
    }
  }
  power_loss out;
  for (const auto& [path, f] : files) {
    std::error_code ec;
    if (!fs::exists(path, ec)) continue;
    const auto size = fs::file_size(path, ec);
    if (f.created && !f.entry_durable) {
      fs::remove(path, ec);
      ++out.files_removed;
      out.bytes_dropped += size;
    } else if ((f.ever_synced || f.created) && size > f.synced) {
      fs::resize_file(path, f.synced, ec);
      ++out.files_truncated;
      out.bytes_dropped += size - f.synced;
    }
  }
  std::ofstream(ledger_path, std::ios::trunc);
  ::sync();
  return out;
}

}  // namespace cdr::test
