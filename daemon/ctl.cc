// cdr-retentionctl: the admin CLI. It mirrors the admin protocol: the words
// of a command are the protocol's command name, `--name value` becomes the
// argument "name", and positional words fill the command's positional
// arguments in order.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/admin/client.h"
#include "cdr/core/admin_protocol.h"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_command_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3;
constexpr int exit_denied = 4;

// Positional arguments of each command, by protocol argument name.
const std::map<std::string, std::vector<std::string>> positionals{
    {"debug advance-clock", {"duration"}},
    {"hold release", {"id"}},
};

void print_usage(std::FILE* out) {
  std::fputs(
      "Usage: cdr-retentionctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS...]\n\n"
      "Talks to cdr-retentiond over its admin socket (default $CDR_RETENTION_SOCKET,\n"
      "else /run/cdr-retention/admin.sock).\n\nCommands:\n",
      out);
  for (const auto& c : cdr::admin::commands()) {
    std::string words(c.name);
    if (auto it = positionals.find(words); it != positionals.end()) {
      for (const auto& p : it->second) {
        words += ' ';
        words += p == "duration" ? "DURATION" : "ID";
      }
    }
    std::fprintf(out, "  %-32s %s [%s]\n", words.c_str(), std::string(c.summary).c_str(),
                 std::string(cdr::admin::name(c.required)).c_str());
  }
  std::fputs(
      "\nOptions:\n"
      "  --socket PATH     admin socket path\n"
      "  --json            print the daemon's JSON response instead of text\n"
      "  --timeout SECONDS how long to wait for the daemon (default 30)\n"
      "\nExit codes: 0 success, 1 the daemon refused or failed the command (or verify found\n"
      "            a problem), 2 usage error,\n"
      "            3 the daemon cannot be reached, 4 permission denied.\n",
      out);
}

// Flattens nested objects to "a.b: value" lines for people.
void print_human(const nlohmann::json& v, const std::string& prefix) {
  if (v.is_object() && !v.empty()) {
    for (const auto& [k, child] : v.items()) {
      std::string key = prefix;
      if (!key.empty()) key += '.';
      key += k;
      print_human(child, key);
    }
    return;
  }
  const auto text = v.is_string() ? v.get<std::string>() : v.dump();
  if (prefix.empty()) {
    std::printf("%s\n", text.c_str());
  } else {
    std::printf("%s: %s\n", prefix.c_str(), text.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket = std::getenv("CDR_RETENTION_SOCKET") ? std::getenv("CDR_RETENTION_SOCKET")
                                                           : "/run/cdr-retention/admin.sock";
  bool json = false;
  long timeout_s = 30;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) words.emplace_back(argv[i]);

  // Global options come before the command.
  std::size_t i = 0;
  for (; i < words.size() && words[i].rfind("--", 0) == 0; ++i) {
    const auto& w = words[i];
    if (w == "--help" || w == "-h") {
      print_usage(stdout);
      return exit_ok;
    }
    if (w == "--json") {
      json = true;
    } else if ((w == "--socket" || w == "--timeout") && i + 1 < words.size()) {
      if (w == "--socket") {
        socket = words[++i];
      } else {
        char* end = nullptr;
        timeout_s = std::strtol(words[++i].c_str(), &end, 10);
        if (*end != '\0' || timeout_s <= 0) {
          std::fprintf(stderr, "cdr-retentionctl: --timeout takes a positive number of seconds\n");
          return exit_usage;
        }
      }
    } else {
      std::fprintf(stderr, "cdr-retentionctl: unknown option %s\n", w.c_str());
      print_usage(stderr);
      return exit_usage;
    }
  }

  // The longest run of words that names a command.
  std::string command;
  std::size_t used = 0;
  std::string candidate;
  for (std::size_t j = i; j < words.size() && words[j].rfind("--", 0) != 0; ++j) {
    if (j != i) candidate += ' ';
    candidate += words[j];
    if (cdr::admin::find_command(candidate) != nullptr) {
      command = candidate;
      used = j + 1;
    }
  }
  if (command.empty()) {
    if (i < words.size()) std::fprintf(stderr, "cdr-retentionctl: unknown command: %s\n", words[i].c_str());
    print_usage(stderr);
    return exit_usage;
  }

  nlohmann::json args = nlohmann::json::object();
  std::vector<std::string> loose;
  for (std::size_t j = used; j < words.size(); ++j) {
    const auto& w = words[j];
    if (w.rfind("--", 0) == 0) {
      auto name = w.substr(2);
      std::string value;
      bool flag = true;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        flag = false;
      } else if (j + 1 < words.size() && words[j + 1].rfind("--", 0) != 0) {
        value = words[++j];
        flag = false;
      }
      for (auto& c : name) c = c == '-' ? '_' : c;
      if (flag) {
        args[name] = true;
      } else {
        args[name] = value;
      }
    } else {
      loose.push_back(w);
    }
  }
  const auto pos = positionals.find(command);
  const std::size_t expected = pos == positionals.end() ? 0 : pos->second.size();
  if (loose.size() != expected) {
    std::fprintf(stderr, "cdr-retentionctl: \"%s\" takes %zu positional argument(s), got %zu\n", command.c_str(),
                 expected, loose.size());
    return exit_usage;
  }
  for (std::size_t j = 0; j < loose.size(); ++j) args[pos->second[j]] = loose[j];

  nlohmann::json response;
  try {
    cdr::admin::client c(socket, std::chrono::seconds(timeout_s));
    // Streamed items (subject export) are JSON lines on stdout in both modes.
    response = c.call(command, args, [](const nlohmann::json& item) { std::printf("%s\n", item.dump().c_str()); });
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "cdr-retentionctl: cannot reach the daemon at %s: %s\n", socket.c_str(),
                 e.code().message().c_str());
    return e.code().value() == EACCES ? exit_denied : exit_unreachable;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cdr-retentionctl: %s\n", e.what());
    return exit_unreachable;
  }

  const bool ok = response.value("ok", false);
  if (json) {
    std::printf("%s\n", response.dump(2).c_str());
  } else if (ok && (command == "subject export" || command == "audit export")) {
    // stdout holds only the streamed JSON lines; the summary goes to stderr.
    std::fprintf(stderr, "%s %s\n", response["result"]["records"].dump().c_str(),
                 command == "audit export" ? "entries" : "records");
  } else if (ok) {
    print_human(response["result"], "");
  } else {
    const auto& err = response["error"];
    std::fprintf(stderr, "cdr-retentionctl: %s: %s\n", err.value("code", "error").c_str(),
                 err.value("message", "").c_str());
  }
  // verify and audit verify succeed as commands but may find a problem.
  if (ok && response["result"].is_object() && response["result"].value("ok", true) == false) return exit_command_failed;
  if (ok) return exit_ok;
  return response["error"].value("code", "") == "permission_denied" ? exit_denied : exit_command_failed;
}
