// Where a checkpoint goes (docs/operations.md, "Backups"): a new directory
// NAME under storage.checkpoint_dir, never anywhere else. NAME is one path
// component; it and NAME.tmp must not exist, symbolic links included (they
// are looked up without following any). The copy is written into a private
// staging directory the daemon creates (mode 0700, so nobody can plant a
// link inside), then renamed to NAME without replacing anything.
#pragma once

#include <stdexcept>
#include <string>

namespace cdr::service {

// A NAME the requester must change: the message says why.
class checkpoint_refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class checkpoint_place {
 public:
  // Throws checkpoint_refused for a bad or taken NAME, std::runtime_error
  // when the directory cannot be used.
  checkpoint_place(const std::string& dir, const std::string& name);
  ~checkpoint_place();  // removes the staging directory unless committed
  checkpoint_place(const checkpoint_place&) = delete;
  checkpoint_place& operator=(const checkpoint_place&) = delete;

  // Where the copy is to be written (does not exist yet).
  const std::string& staging() const { return staging_copy_; }
  // Moves the finished copy to dir/NAME (refused if NAME appeared
  // meanwhile); returns its path.
  std::string commit();

 private:
  int dir_fd_ = -1;
  std::string dir_;
  std::string name_;
  std::string staging_name_;  // under dir
  std::string staging_copy_;  // staging_name_/copy, as a path
  bool committed_ = false;
};

}  // namespace cdr::service
