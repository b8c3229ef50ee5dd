// `verify`: proves from the live SST files and WAL that what sweeps and
// erasures removed is gone from disk, and that stripped partitions' keys
// are destroyed. An erasure whose keys wait for the erasure purge pass is
// listed with its deadline instead of checked; verify fails once one is
// overdue.
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
  // The subjects waiting for the purge pass; counts those overdue.
  nlohmann::json pending_purge_report(std::size_t& overdue) const;

  retention_context& ctx_;
};

}  // namespace cdr::service
