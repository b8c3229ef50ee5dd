// A stopped daemon's store, counted by a raw scan of its record families
// (not through a key that cannot hold two copies): every record key, the
// records of each id across partitions, and each partition's stored
// count beside the keys really there. A record written twice under one key
// leaves one key and a count one too high; written under two partitions, one
// id with two keys. The fault and ingest suites check both after kills.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cdr/core/key_layout.h"

namespace cdr::test {

struct store_census {
  // "<kind>/<id>" -> whether it has identifiers (its first copy)
  std::map<std::string, bool> records;
  // Ids found under more than one key, and partitions whose stored count
  // differs from the keys found in them ("<partition>: count N, keys M").
  std::vector<std::string> twice;
  std::vector<std::string> miscounted;
};

store_census take_census(const std::string& data_dir);

// The input offsets a stopped daemon's store holds (durable), summed over
// the partitions of `topics`: behind what was produced, events were in flight.
std::uint64_t durable_offsets(const std::string& data_dir, const std::vector<std::string>& topics);

}  // namespace cdr::test
