// cdr-retentionctl: the admin CLI. Each command's flags and positional
// arguments come from the core command table (cdr/core/admin_protocol.h):
// `--name value` (or --name=value) sets the argument "name" (dashes as
// underscores), a flag takes no value, positional words fill the
// positional arguments in order. Anything the command does not declare is a
// usage error (exit 2) and nothing is sent.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/admin/client.h"
#include "cdr/core/admin_protocol.h"
#include "cdr/core/render.h"

namespace {

using cdr::admin::arg_spec;
using cdr::admin::arg_type;
using cdr::admin::command_spec;

constexpr int exit_ok = 0;
constexpr int exit_command_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3;
constexpr int exit_denied = 4;
constexpr int exit_no_reply = 5;    // sent, but no reply within --timeout
constexpr int exit_incomplete = 6;  // a --fleet answer without every member's part

// A usage error: the message, then exit 2 with nothing sent.
struct usage_error {
  std::string message;
  const command_spec* command = nullptr;  // whose usage to point at
};

// An argument as usage text shows it: ID, --dry-run, --as-of RFC3339.
std::string arg_word(const arg_spec& a) {
  if (a.positional) return std::string(a.metavar);
  if (a.type == arg_type::flag) return cdr::admin::cli_flag(a);
  return cdr::admin::cli_flag(a) + " " + std::string(a.metavar);
}

std::string synopsis(const command_spec& c) {
  std::string out(c.name);
  for (const auto& a : c.args) out += a.required ? " " + arg_word(a) : " [" + arg_word(a) + "]";
  return out;
}

// The value of the option at words[i]: after its '=' (at eq), else the next
// word (consumed); nullopt when there is none.
std::optional<std::string> option_value(const std::vector<std::string>& words, std::size_t& i, std::size_t eq) {
  if (eq != std::string::npos) return words[i].substr(eq + 1);
  if (i + 1 < words.size()) return words[++i];
  return std::nullopt;
}

// `debug`: also the test-only commands (debug ..., which only a daemon
// started with --fake-clock serves); --help leaves them out.
void print_usage(std::FILE* out, bool debug = false) {
  std::fputs(
      "Usage: cdr-retentionctl [--socket PATH] [--format text|json|yaml] [--timeout SECONDS] COMMAND [ARGS...]\n"
      "       cdr-retentionctl COMMAND --help\n"
      "       cdr-retentionctl --version\n"
      "       cdr-retentionctl completion bash   (a bash completion script)\n"
      "       cdr-retentionctl manpage           (this tool's man page, roff)\n\n"
      "Talks to cdr-retentiond over its admin socket (default $CDR_RETENTION_SOCKET,\n"
      "else /run/cdr-retention/admin.sock).\n\nCommands:\n",
      out);
  for (const auto& c : cdr::admin::commands()) {
    if (!debug && c.name.rfind("debug ", 0) == 0) continue;
    std::string words(c.name);
    for (const auto& a : c.args) {
      if (a.positional) words += " " + std::string(a.metavar);
    }
    std::fprintf(out, "  %-30s %s [%s]\n", words.c_str(), std::string(c.summary).c_str(),
                 std::string(cdr::admin::name(c.required)).c_str());
  }
  std::fputs(
      "\nOptions:\n"
      "  --socket PATH     admin socket path\n"
      "  --format FORMAT   text (default: lines and aligned tables), json (the daemon's\n"
      "                    reply as sent) or yaml; --json is --format json\n"
      "  --timeout SECONDS how long to wait for the reply (default 30; 0: as long as the\n"
      "                    command runs, e.g. a drain or a large export)\n"
      "  --version         print the version and exit\n"
      "\nExit codes: 0 success, 1 the daemon refused or failed the command (or verify found\n"
      "            a problem), 2 usage error (nothing was sent),\n"
      "            3 the daemon cannot be reached, 4 permission denied,\n"
      "            5 sent, but no reply within --timeout (the daemon may still be running it),\n"
      "            6 a --fleet answer lacks a member (silent, not answering, or answering with\n"
      "            an error; stderr names each, JSON says \"complete\": false).\n",
      out);
  if (!debug) {
    std::fputs("\nTest-only commands (for a daemon started with --fake-clock): cdr-retentionctl --help-debug\n", out);
  }
}

void print_command_usage(std::FILE* out, const command_spec& c) {
  std::fprintf(out,
               "Usage: cdr-retentionctl [--socket PATH] [--format text|json|yaml] [--timeout SECONDS] %s\n\n%s (needs "
               "%s rights)\n",
               synopsis(c).c_str(), std::string(c.summary).c_str(), std::string(cdr::admin::name(c.required)).c_str());
  if (c.args.empty()) return;
  std::fputs("\nArguments:\n", out);
  for (const auto& a : c.args) {
    const auto word = a.positional               ? std::string(a.metavar)
                      : a.type == arg_type::flag ? cdr::admin::cli_flag(a)
                                                 : cdr::admin::cli_flag(a) + " " + std::string(a.metavar);
    std::fprintf(out, "  %-28s %s%s\n", word.c_str(), std::string(a.help).c_str(), a.required ? " (required)" : "");
  }
}

// The man page (`cdr-retentionctl manpage`; installed as
// share/man/man1/cdr-retentionctl.1), generated from the command table
// like the help and the completion: every command, its arguments and rights.
std::string manpage() {
  std::string out =
      ".TH CDR-RETENTIONCTL 1 \"\" \"cdr-retention " + cdr::render::roff(CDR_VERSION) + "\" \"User Commands\"\n";
  out += ".SH NAME\ncdr-retentionctl \\- the admin client of cdr-retentiond\n";
  out += ".SH SYNOPSIS\n.B cdr-retentionctl\n" +
         cdr::render::roff("[--socket PATH] [--format text|json|yaml] [--timeout SECONDS] COMMAND [ARGS...]") + "\n";
  out += ".SH DESCRIPTION\n" +
         cdr::render::roff(
             "Talks to cdr-retentiond over its admin socket (default $CDR_RETENTION_SOCKET, else "
             "/run/cdr-retention/admin.sock). The daemon authorises each command by the caller's uid and "
             "groups: viewer or operator rights. Every command that changes or reveals data is written to "
             "the daemon's audit trail.") +
         "\n.SH COMMANDS\n";
  for (const auto& c : cdr::admin::commands()) {
    if (c.name.rfind("debug ", 0) == 0) continue;  // test-only: --help-debug
    out += ".TP\n.B " + cdr::render::roff(synopsis(c)) + "\n" + cdr::render::roff(c.summary) + " (needs " +
           cdr::render::roff(cdr::admin::name(c.required)) + " rights)\n";
    if (c.args.empty()) continue;
    out += ".RS\n";
    for (const auto& a : c.args) {
      const auto word = a.positional               ? std::string(a.metavar)
                        : a.type == arg_type::flag ? cdr::admin::cli_flag(a)
                                                   : cdr::admin::cli_flag(a) + " " + std::string(a.metavar);
      out += ".TP\n.B " + cdr::render::roff(word) + "\n" + cdr::render::roff(a.help) +
             (a.required ? " (required)" : "") + "\n";
    }
    out += ".RE\n";
  }
  out += ".SH OPTIONS\n";
  for (const auto& [option, text] : std::vector<std::pair<std::string, std::string>>{
           {"--socket PATH", "the admin socket"},
           {"--format FORMAT",
            "text (default), json (the daemon's reply as sent) or yaml (a YAML stream); --json is "
            "--format json"},
           {"--timeout SECONDS", "how long to wait for the reply (default 30; 0: as long as the command runs)"},
           {"COMMAND --help", "the command's usage with its real flags; nothing is sent"},
           {"--help-debug", "also the test-only commands, for a daemon started with --fake-clock"},
           {"--version", "the version"}}) {
    out += ".TP\n.B " + cdr::render::roff(option) + "\n" + cdr::render::roff(text) + "\n";
  }
  out += ".SH EXIT STATUS\n" +
         cdr::render::roff(
             "0 success; 1 the daemon failed or refused the command, or verify found a problem; 2 usage error "
             "(found by the CLI, nothing sent, or by the daemon: invalid_argument); 3 the daemon cannot be "
             "reached; 4 permission denied; 5 no reply within --timeout; 6 a --fleet answer lacks a member.") +
         "\n.SH SEE ALSO\ncdr-retentiond(8); docs/admin-protocol.md and docs/operations.md in the documentation\n";
  return out;
}

// A bash completion script for every command and option in the command
// table (`cdr-retentionctl completion bash`; installed as
// share/bash-completion/completions/cdr-retentionctl).
std::string bash_completion() {
  const std::string globals = "--socket --format --json --timeout --help";
  std::vector<std::string> first_words;
  std::vector<std::string> valued{"--socket", "--format", "--timeout"};  // options that take a value
  std::string cases;
  std::string groups;  // "hold" -> "add list release"
  std::vector<std::pair<std::string, std::string>> subcommands;
  for (const auto& c : cdr::admin::commands()) {
    const std::string name(c.name);
    const auto space = name.find(' ');
    const auto first = name.substr(0, space);
    if (std::find(first_words.begin(), first_words.end(), first) == first_words.end()) first_words.push_back(first);
    if (space != std::string::npos) {
      auto at = std::find_if(subcommands.begin(), subcommands.end(), [&](const auto& g) { return g.first == first; });
      if (at == subcommands.end()) at = subcommands.insert(subcommands.end(), {first, ""});
      at->second += (at->second.empty() ? "" : " ") + name.substr(space + 1);
    }
    std::string options;
    for (const auto& a : c.args) {
      if (a.positional) continue;
      const auto flag = cdr::admin::cli_flag(a);
      options += flag + " ";
      if (a.type != arg_type::flag && std::find(valued.begin(), valued.end(), flag) == valued.end()) {
        valued.push_back(flag);
      }
    }
    cases += "    \"" + name + "\"|\"" + name + " \"*) COMPREPLY=($(compgen -W \"" + options + globals +
             "\" -- \"$cur\")) ;;\n";
  }
  for (const auto& [group, words] : subcommands) {
    groups += "    \"" + group + "\") COMPREPLY=($(compgen -W \"" + words + "\" -- \"$cur\")) ;;\n";
  }
  std::string all;
  for (const auto& w : first_words) all += w + " ";
  std::string valued_pattern;
  for (const auto& v : valued) valued_pattern += (valued_pattern.empty() ? "" : "|") + v;
  // Values with a fixed set (e.g. --kind cdr|usage) complete from the metavar.
  std::string values;
  for (const auto& c : cdr::admin::commands()) {
    for (const auto& a : c.args) {
      const std::string metavar(a.metavar);
      if (a.positional || metavar.find('|') == std::string::npos) continue;
      std::string words = metavar;
      std::replace(words.begin(), words.end(), '|', ' ');
      const auto line =
          "    " + cdr::admin::cli_flag(a) + ") COMPREPLY=($(compgen -W \"" + words + "\" -- \"$cur\")); return ;;\n";
      if (values.find(line) == std::string::npos) values += line;
    }
  }
  return "# bash completion for cdr-retentionctl (generated by: cdr-retentionctl completion bash)\n"
         "_cdr_retentionctl() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
         "  COMPREPLY=()\n"
         "  case $prev in\n"
         "    --socket) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
         "    --format) COMPREPLY=($(compgen -W \"text json yaml\" -- \"$cur\")); return ;;\n" +
         values + "    " + valued_pattern +
         ") return ;;\n"
         "  esac\n"
         "  # The command's words so far, without options and their values.\n"
         "  local words='' i w skip=0\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    w=${COMP_WORDS[i]}\n"
         "    if ((skip)); then skip=0; continue; fi\n"
         "    case $w in\n"
         "      " +
         valued_pattern +
         ") skip=1 ;;\n"
         "      -*) ;;\n"
         "      *) words=\"${words:+$words }$w\" ;;\n"
         "    esac\n"
         "  done\n"
         "  case $words in\n"
         "    \"\") COMPREPLY=($(compgen -W \"" +
         all + globals + " --version\" -- \"$cur\")) ;;\n" + cases + groups +
         "  esac\n"
         "}\n"
         "complete -F _cdr_retentionctl cdr-retentionctl\n";
}

struct invocation {
  std::string socket;
  cdr::render::format format = cdr::render::format::text;
  long timeout_s = 30;
  const command_spec* command = nullptr;
  nlohmann::json args = nlohmann::json::object();
  bool help = false;
  bool help_debug = false;  // --help-debug: the test-only commands too
  bool version = false;
  bool completion = false;  // print the bash completion script
  bool manpage = false;     // print the man page
};

// An error message of the protocol, speaking of flags as people type them
// ("from_month" -> --from-month, "raw": true -> --raw).
std::string in_flags(const command_spec& spec, std::string message) {
  for (const auto& a : spec.args) {
    if (a.positional) continue;
    for (const auto& quoted : {"\"" + std::string(a.name) + "\": true", "\"" + std::string(a.name) + "\""}) {
      for (auto at = message.find(quoted); at != std::string::npos; at = message.find(quoted, at + 1)) {
        message.replace(at, quoted.size(), cdr::admin::cli_flag(a));
      }
    }
  }
  return message;
}

// Takes a global option at words[i]; false when words[i] is not one.
bool global_option(const std::vector<std::string>& words, std::size_t& i, invocation& inv) {
  const auto& w = words[i];
  if (w == "--json") {
    inv.format = cdr::render::format::json;
    return true;
  }
  if (w == "--socket" || w == "--timeout" || w == "--format" || w.rfind("--socket=", 0) == 0 ||
      w.rfind("--timeout=", 0) == 0 || w.rfind("--format=", 0) == 0) {
    const auto eq = w.find('=');
    const auto name = w.substr(0, eq);
    const auto given = option_value(words, i, eq);
    if (!given) throw usage_error{name + " needs a value"};
    const auto& value = *given;
    if (name == "--socket") {
      inv.socket = value;
    } else if (name == "--format") {
      const auto format = cdr::render::format_from_name(value);
      if (!format) throw usage_error{"--format is text, json or yaml"};
      inv.format = *format;
    } else {
      char* end = nullptr;
      inv.timeout_s = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || inv.timeout_s < 0) {
        throw usage_error{"--timeout takes a number of seconds (0: wait as long as the command runs)"};
      }
    }
    return true;
  }
  return false;
}

// The longest run of words at words[i] that names a command.
const command_spec* take_command(const std::vector<std::string>& words, std::size_t& i) {
  const command_spec* found = nullptr;
  std::size_t used = i;
  std::string candidate;
  for (std::size_t j = i; j < words.size() && words[j].rfind("--", 0) != 0; ++j) {
    if (j != i) candidate += ' ';
    candidate += words[j];
    if (const auto* c = cdr::admin::find_command(candidate)) {
      found = c;
      used = j + 1;
    }
  }
  i = used;
  return found;
}

invocation parse(const std::vector<std::string>& words) {
  invocation inv;
  inv.socket =
      std::getenv("CDR_RETENTION_SOCKET") ? std::getenv("CDR_RETENTION_SOCKET") : "/run/cdr-retention/admin.sock";
  std::size_t i = 0;
  for (; i < words.size() && words[i].rfind("--", 0) == 0; ++i) {
    if (words[i] == "--help" || words[i] == "-h" || words[i] == "--help-debug") {
      inv.help = true;
      inv.help_debug = words[i] == "--help-debug";
      return inv;
    }
    if (words[i] == "--version") {
      inv.version = true;
      return inv;
    }
    if (!global_option(words, i, inv)) throw usage_error{"unknown option " + words[i]};
  }
  if (i == words.size()) throw usage_error{"no command given"};
  if (words[i] == "manpage") {
    if (i + 1 != words.size()) throw usage_error{"usage: cdr-retentionctl manpage"};
    inv.manpage = true;
    return inv;
  }
  if (words[i] == "completion") {
    if (i + 2 != words.size() || words[i + 1] != "bash") throw usage_error{"usage: cdr-retentionctl completion bash"};
    inv.completion = true;
    return inv;
  }
  const auto word = words[i];
  inv.command = take_command(words, i);
  if (inv.command == nullptr) {
    // A group's name alone ("hold"): its subcommands.
    std::string group;
    for (const auto& c : cdr::admin::commands()) {
      if (c.name.starts_with(word + " ")) group += "\n  cdr-retentionctl " + std::string(c.name);
    }
    if (!group.empty())
      throw usage_error{word + " needs a subcommand:" + group + "\n(cdr-retentionctl COMMAND --help for more)"};
    throw usage_error{"unknown command: " + word};
  }
  const auto& spec = *inv.command;
  std::vector<const arg_spec*> positionals;
  for (const auto& a : spec.args) {
    if (a.positional) positionals.push_back(&a);
  }
  std::size_t next_positional = 0;
  for (; i < words.size(); ++i) {
    const auto& w = words[i];
    if (w == "--help" || w == "-h") {
      inv.help = true;
      return inv;
    }
    if (w.rfind("--", 0) != 0) {
      if (next_positional == positionals.size()) {
        throw usage_error{"unexpected argument \"" + w + "\" for " + std::string(spec.name), &spec};
      }
      inv.args[std::string(positionals[next_positional++]->name)] = w;
      continue;
    }
    if (global_option(words, i, inv)) continue;
    const auto eq = w.find('=');
    const auto flag = w.substr(0, eq);
    const arg_spec* a = nullptr;
    for (const auto& candidate : spec.args) {
      if (!candidate.positional && cdr::admin::cli_flag(candidate) == flag) a = &candidate;
    }
    if (a == nullptr) throw usage_error{"unknown option " + flag + " for " + std::string(spec.name), &spec};
    const std::string name(a->name);
    if (inv.args.contains(name)) throw usage_error{flag + " given twice", &spec};
    if (a->type == arg_type::flag) {
      if (eq != std::string::npos) throw usage_error{flag + " takes no value", &spec};
      inv.args[name] = true;
      continue;
    }
    const auto value = option_value(words, i, eq);
    if (!value) throw usage_error{flag + " needs a value (" + std::string(a->metavar) + ")", &spec};
    inv.args[name] = *value;  // text: the daemon converts (a count's digits too)
  }
  if (next_positional < positionals.size() && positionals[next_positional]->required) {
    throw usage_error{std::string(spec.name) + " needs " + std::string(positionals[next_positional]->metavar), &spec};
  }
  // The same check the daemon makes: types, required arguments.
  cdr::admin::request req{nullptr, std::string(spec.name), spec.id, inv.args};
  if (auto e = cdr::admin::check_args(spec, req)) {
    throw usage_error{in_flags(spec, e->message), &spec};
  }
  return inv;
}

// The daemon's name for the operation a command starts (`status`
// "operations"), for the progress line; empty: a command without one.
std::vector<std::string_view> operation_kinds(std::string_view command, const nlohmann::json& args) {
  if (command == "sweep" && !args.value("dry_run", false)) return {"sweep", "sweep purge"};
  if (command == "subject purge") return {"purge"};
  if (command == "verify" || command == "checkpoint" || command == "subject export") return {command};
  return {};
}

// On a terminal, a line on stderr with the progress of the command's
// operation, read from `status` over a second connection twice a second;
// cleared when the command ends. Not when stderr is piped or redirected.
class progress_line {
 public:
  progress_line(const invocation& inv) {
    const auto kinds = operation_kinds(inv.command->name, inv.args);
    if (kinds.empty() || isatty(fileno(stderr)) == 0) return;
    watcher_ = std::thread([this, socket = inv.socket, kinds] {
      std::unique_lock lock(mutex_);
      while (!done_) {
        if (cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return done_; })) break;
        lock.unlock();
        const auto text = read(socket, kinds);
        lock.lock();
        if (!text.empty() && !done_) {
          std::fprintf(stderr, "\r\033[K%s", text.c_str());
          shown_ = true;
        }
      }
    });
  }
  ~progress_line() {
    if (!watcher_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    watcher_.join();
    if (shown_) std::fputs("\r\033[K", stderr);
  }
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;

 private:
  static std::string read(const std::string& socket, const std::vector<std::string_view>& kinds) {
    try {
      cdr::admin::client c(socket, std::chrono::seconds(2));
      const auto r = c.call("status", nlohmann::json::object(), [](const nlohmann::json&) {});
      std::string out;
      for (const auto& op : r.value(nlohmann::json::json_pointer("/result/operations"), nlohmann::json::array())) {
        if (std::find(kinds.begin(), kinds.end(), op.value("kind", "")) == kinds.end()) continue;
        out += (out.empty() ? "" : "; ") + cdr::render::operation_line(op);
      }
      return out;
    } catch (const std::exception&) {
      return {};  // the line is a courtesy: the command's own reply decides
    }
  }

  std::thread watcher_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  bool shown_ = false;
};

// One line on stderr for each member a --fleet answer lacks, and why.
void warn_incomplete(const nlohmann::json& result) {
  const auto names = [&](const char* list) { return result.value(list, nlohmann::json::array()); };
  for (const auto& m : names("silent")) {
    std::fprintf(stderr,
                 "cdr-retentionctl: warning: member %s is silent (no heartbeat lately): its part is not in this "
                 "answer\n",
                 m.get<std::string>().c_str());
  }
  for (const auto& m : names("missing")) {
    std::fprintf(stderr,
                 "cdr-retentionctl: warning: member %s did not answer within kafka.control_timeout: its part is not "
                 "in this answer\n",
                 m.get<std::string>().c_str());
  }
  // Held in a variable: a range-for over items() of a temporary would read
  // it after its end (C++20 extends only the temporary items() returns).
  const auto members = result.value("members", nlohmann::json::object());
  for (const auto& [member, r] : members.items()) {
    if (r.is_object() && r.contains("error")) {
      std::fprintf(stderr, "cdr-retentionctl: warning: member %s answered with an error: %s\n", member.c_str(),
                   r["error"].dump().c_str());
    }
  }
}

int run(const invocation& inv) {
  nlohmann::json response;
  const auto& command = inv.command->name;
  try {
    const progress_line progress(inv);
    cdr::admin::client c(inv.socket, std::chrono::seconds(inv.timeout_s));
    // Streamed items (subject export, audit export) are JSON lines on stdout in both modes.
    // Streamed items: JSON lines, or with --format yaml one YAML document
    // each (the reply is the last document), so a YAML parser reads the
    // whole output as a stream.
    const bool yaml = inv.format == cdr::render::format::yaml;
    response = c.call(command, inv.args, [yaml](const nlohmann::json& item) {
      if (yaml) {
        std::printf("---\n%s", cdr::render::yaml(item).c_str());
      } else {
        std::printf("%s\n", item.dump().c_str());
      }
    });
  } catch (const std::system_error& e) {
    if (e.code().value() == ETIMEDOUT) {
      std::fprintf(stderr,
                   "cdr-retentionctl: \"%s\" was sent to %s but no reply came within %ld s; the daemon may still "
                   "be running it (its log and the audit trail say when it is done; --timeout 0 waits as long as "
                   "it runs)\n",
                   std::string(command).c_str(), inv.socket.c_str(), inv.timeout_s);
      return exit_no_reply;
    }
    std::fprintf(stderr, "cdr-retentionctl: cannot reach the daemon at %s: %s\n", inv.socket.c_str(),
                 e.code().message().c_str());
    return e.code().value() == EACCES ? exit_denied : exit_unreachable;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cdr-retentionctl: %s\n", e.what());
    return exit_unreachable;
  }
  const bool ok = response.value("ok", false);
  if (inv.format == cdr::render::format::json) {
    std::printf("%s\n", response.dump(2).c_str());
  } else if (inv.format == cdr::render::format::yaml) {
    std::fputs(("---\n" + cdr::render::yaml(response)).c_str(), stdout);
  } else if (ok && (command == "subject export" || command == "audit export")) {
    // stdout holds only the streamed JSON lines; the summary goes to stderr,
    // after them (with 2>&1 it never lands inside a line).
    std::fflush(stdout);
    const auto n = response["result"].value("records", static_cast<std::int64_t>(0));
    const bool audit = command == "audit export";
    std::fprintf(stderr, "%lld %s\n", static_cast<long long>(n),
                 n == 1 ? (audit ? "entry" : "record") : (audit ? "entries" : "records"));
  } else if (ok) {
    const auto& result = response["result"];
    if (command == "status" && !inv.args.value("all", false) && result.contains("summary")) {
      // The health summary first and alone, its verdict and problems on
      // top; --all for every figure.
      std::istringstream lines(cdr::render::text(result["summary"]));
      std::string top;
      std::string rest;
      for (std::string line; std::getline(lines, line);) {
        (line.rfind("health:", 0) == 0 || line.rfind("problems", 0) == 0 ? top : rest) += line + "\n";
      }
      std::fputs((top + rest).c_str(), stdout);
      std::fputs("(cdr-retentionctl status --all: every figure)\n", stdout);
    } else {
      std::fputs(cdr::render::text(result).c_str(), stdout);
    }
  } else {
    const auto& err = response["error"];
    std::fprintf(stderr, "cdr-retentionctl: %s: %s\n", err.value("code", "error").c_str(),
                 in_flags(*inv.command, err.value("message", "")).c_str());
  }
  // A fleet-wide answer without a member's part is not the whole answer.
  if (ok && response["result"].is_object() && response["result"].value("complete", true) == false) {
    warn_incomplete(response["result"]);
    return exit_incomplete;
  }
  // verify and audit verify succeed as commands but may find a problem.
  if (ok && response["result"].is_object() && response["result"].value("ok", true) == false) return exit_command_failed;
  if (ok) return exit_ok;
  const auto code = response["error"].value("code", "");
  // The daemon refused the arguments (a hold with no selector, a month
  // range backwards): a usage error, like the ones found before sending.
  if (code == "invalid_argument") return exit_usage;
  return code == "permission_denied" ? exit_denied : exit_command_failed;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  invocation inv;
  try {
    inv = parse(words);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "cdr-retentionctl: %s\n", e.message.c_str());
    if (e.command != nullptr) {
      std::fprintf(stderr, "usage: cdr-retentionctl %s\n(cdr-retentionctl %s --help for more)\n",
                   synopsis(*e.command).c_str(), std::string(e.command->name).c_str());
    } else {
      print_usage(stderr);
    }
    return exit_usage;
  }
  if (inv.version) {
    std::printf("cdr-retentionctl %s (%s)\n", CDR_VERSION, CDR_REVISION);
    return exit_ok;
  }
  if (inv.completion) {
    std::fputs(bash_completion().c_str(), stdout);
    return exit_ok;
  }
  if (inv.manpage) {
    std::fputs(manpage().c_str(), stdout);
    return exit_ok;
  }
  if (inv.help) {
    if (inv.command != nullptr) {
      print_command_usage(stdout, *inv.command);
    } else {
      print_usage(stdout, inv.help_debug);
    }
    return exit_ok;
  }
  return run(inv);
}
