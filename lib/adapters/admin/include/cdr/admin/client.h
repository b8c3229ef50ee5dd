// A blocking admin-socket client, used by cdr-retentionctl and the tests.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cdr::admin {

class client {
 public:
  // Connects; throws std::system_error (errno preserved) when it cannot.
  client(const std::string& socket_path, std::chrono::milliseconds timeout);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends one line (a newline is appended) and returns the next line the
  // daemon sends, without its newline. Throws std::system_error on I/O
  // errors or timeout and std::runtime_error when the daemon hangs up.
  std::string exchange(std::string_view line);
  // Reads one more line (streamed responses).
  std::string read_line();
  // Convenience: sends {"id":1,"command":...,"args":...} and parses the reply.
  nlohmann::json call(std::string_view command, const nlohmann::json& args = nlohmann::json::object());
  // Like call(), handing each streamed item to on_item; returns the final
  // response.
  nlohmann::json call(std::string_view command, const nlohmann::json& args,
                      const std::function<void(const nlohmann::json&)>& on_item);

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace cdr::admin
