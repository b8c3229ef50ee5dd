// A temporary directory under /tmp with a short path (Unix socket paths stop
// at 108 bytes), readable by every user so unprivileged peers can reach a
// socket inside it; removed with its contents at destruction.
#pragma once

#include <string>

namespace cdr::test {

class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

}  // namespace cdr::test
