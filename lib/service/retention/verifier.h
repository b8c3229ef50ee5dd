// `verify`: proves from the live SST files and WAL that what sweeps and
// erasures removed is gone from disk, and that stripped partitions' keys
// are destroyed.
#pragma once

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class verifier {
 public:
  explicit verifier(retention_context& ctx) : ctx_(ctx) {}

  nlohmann::json verify() const;

 private:
  // One partition or erased subject to check, and the ranges that must be gone.
  struct check {
    nlohmann::json report;
    std::vector<removal> ranges;
  };
  std::vector<check> partition_checks(std::size_t& live_keys) const;
  std::vector<check> subject_checks() const;

  retention_context& ctx_;
};

}  // namespace cdr::service
