#include "power_loss.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

namespace cdr::test {
namespace {

namespace fs = std::filesystem;

struct file_state {
  bool created = false;       // created while the ledger was kept
  bool entry_durable = true;  // its directory was synced since it was created or renamed here
  std::uint64_t synced = 0;   // bytes made durable
  bool ever_synced = false;
};

// A rename or delete whose directory was not synced since.
struct pending {
  bool rename = false;
  std::string from, to;               // a delete: `from` only
  std::string shadow;                 // the file it replaced or removed, kept aside ("-": none)
  std::optional<file_state> removed;  // a delete: the removed file's state
  std::string dir;                    // its sync makes it durable
};

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || (path.size() > prefix.size() && path.starts_with(prefix) && path[prefix.size()] == '/');
}

// Moves the states of `from` (a file, or a directory's files) to `to`.
void move_states(std::map<std::string, file_state>& files, const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, file_state>> moved;
  for (auto it = files.begin(); it != files.end();) {
    if (under(it->first, from)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = files.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [path, state] : moved) files[path] = state;
}

std::string parent_of(const std::string& path) { return fs::path(path).parent_path().string(); }

}  // namespace

power_loss apply_power_loss(const std::string& ledger_path, std::mt19937_64& rng, tear how) {
  std::map<std::string, file_state> files;
  std::vector<pending> undo;
  {
    std::ifstream in(ledger_path);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string op, a, b, c;
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
          if (parent_of(path) == a) f.entry_durable = true;
        }
        std::erase_if(undo, [&](const pending& p) { return p.dir == a; });
      } else if (op == "rename") {
        words >> b >> c;
        undo.push_back({true, a, b, c, std::nullopt, parent_of(b)});
        move_states(files, a, b);
      } else if (op == "delete") {
        words >> b;
        const auto it = files.find(a);
        undo.push_back({false, a, "", b, it == files.end() ? std::nullopt : std::optional(it->second), parent_of(a)});
        if (it != files.end()) files.erase(it);
      }
    }
  }
  power_loss out;
  std::error_code ec;
  // Renames and deletes the disk never recorded, the latest first.
  for (auto p = undo.rbegin(); p != undo.rend(); ++p) {
    ++out.undone;
    if (p->rename) {
      if (fs::exists(p->to, ec)) {
        fs::rename(p->to, p->from, ec);
        move_states(files, p->to, p->from);
      }
      if (p->shadow != "-") fs::rename(p->shadow, p->to, ec);  // what it replaced, as durable as it was
    } else if (p->shadow != "-") {
      fs::rename(p->shadow, p->from, ec);
      if (p->removed) files[p->from] = *p->removed;
    }
  }
  for (const auto& [path, f] : files) {
    if (!fs::is_regular_file(path, ec)) continue;
    const auto size = fs::file_size(path, ec);
    if (f.created && !f.entry_durable) {
      fs::remove(path, ec);
      ++out.files_removed;
      out.bytes_dropped += size;
    } else if ((f.ever_synced || f.created) && size > f.synced) {
      // Torn: some of the unsynced bytes may have reached the disk.
      const auto keep = how == tear::all ? f.synced : f.synced + rng() % (size - f.synced + 1);
      if (keep == size) continue;
      fs::resize_file(path, keep, ec);
      ++out.files_truncated;
      out.bytes_dropped += size - keep;
    }
  }
  fs::remove_all(ledger_path + ".shadow", ec);
  std::ofstream(ledger_path, std::ios::trunc);
  ::sync();
  return out;
}

}  // namespace cdr::test
