#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "cdr/logging/logging.h"

namespace cdr::logging {
namespace {

void append_escaped(spdlog::memory_buf_t& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          out.append(esc, esc + 6);
        } else {
          out.push_back(ch);
        }
    }
  }
}

// One JSON object per line: {"ts":..., "level":..., "logger":..., "msg":...}.
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ts = format_rfc3339(std::chrono::floor<microseconds>(msg.time));
    dest.append(std::string_view(R"({"ts":")"));
    dest.append(ts.data(), ts.data() + ts.size());
    dest.append(std::string_view(R"(","level":")"));
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.append(std::string_view(R"(","logger":")"));
    append_escaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    dest.append(std::string_view(R"(","msg":")"));
    append_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("\"}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

// Under systemd with stderr connected to the journal (JOURNAL_STREAM names
// stderr's device and inode), each line starts with its syslog priority,
// "<3>" for an error: journald takes it as the entry's PRIORITY (so
// `journalctl -p err` finds errors) and strips it from the message.
bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  return std::sscanf(stream, "%llu:%llu", &dev, &ino) == 2 && dev == st.st_dev && ino == st.st_ino;
}

int syslog_priority(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    default: return 7;
  }
}

class journal_formatter final : public spdlog::formatter {
 public:
  explicit journal_formatter(std::unique_ptr<spdlog::formatter> inner) : inner_(std::move(inner)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const char prefix[] = {'<', static_cast<char>('0' + syslog_priority(msg.level)), '>'};
    dest.append(prefix, prefix + 3);
    inner_->format(msg, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<journal_formatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

}  // namespace

void setup(const log_config& config) {
  const bool tty = isatty(STDERR_FILENO) == 1;
  const bool json = config.format == log_format::json || (config.format == log_format::automatic && !tty);
  std::shared_ptr<spdlog::logger> logger;
  if (json) {
    logger = std::make_shared<spdlog::logger>("cdr-retentiond", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_formatter(std::make_unique<json_formatter>());
  } else {
    logger =
        std::make_shared<spdlog::logger>("cdr-retentiond", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  if (stderr_is_journal()) {
    // The color sink's formatter is replaced too: no escape codes in the journal.
    std::unique_ptr<spdlog::formatter> inner =
        json ? std::unique_ptr<spdlog::formatter>(std::make_unique<json_formatter>())
             : std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%fZ %-5l %v",
                                                           spdlog::pattern_time_type::utc);
    logger->set_formatter(std::make_unique<journal_formatter>(std::move(inner)));
  }
  logger->set_level(spdlog::level::from_str(config.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

bool rate_limiter::allow(std::uint64_t* suppressed) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto next = next_.load();
  if (now >= next && next_.compare_exchange_strong(next, now + interval_.count())) {
    *suppressed = held_.exchange(0);
    return true;
  }
  held_.fetch_add(1);
  return false;
}

void set_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

}  // namespace cdr::logging
