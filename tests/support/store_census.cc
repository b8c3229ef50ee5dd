#include "store_census.h"

#include <fmt/format.h>

#include "cdr/core/config.h"
#include "cdr/store/store.h"

namespace cdr::test {

store_census take_census(const std::string& data_dir) {
  storage_config sc;
  sc.path = data_dir;
  sc.block_cache_bytes = 8 << 20;
  store::store s(sc);
  store_census out;
  std::map<partition, std::int64_t> keys;
  for (auto kind : {record_kind::cdr, record_kind::usage}) {
    s.for_each_record(kind, [&](const partition& p, std::string_view id, bool ids) {
      ++keys[p];
      const auto key = fmt::format("{}/{}", name(kind), id);
      if (!out.records.emplace(key, ids).second) out.twice.push_back(key);
    });
  }
  const auto counts = s.counts();
  for (const auto& [p, n] : keys) {
    const auto c = counts.find(p);
    const auto counted = c == counts.end() ? 0 : c->second;
    if (counted != n) out.miscounted.push_back(fmt::format("{}: count {}, keys {}", p.to_string(), counted, n));
  }
  return out;
}

std::uint64_t durable_offsets(const std::string& data_dir, const std::vector<std::string>& topics) {
  storage_config sc;
  sc.path = data_dir;
  sc.block_cache_bytes = 8 << 20;
  const store::store s(sc);
  std::uint64_t total = 0;
  for (const auto& topic : topics) {
    for (std::int32_t p = 0; p < 1024; ++p) {
      if (const auto next = s.offset(topic, p)) total += static_cast<std::uint64_t>(*next);
    }
  }
  return total;
}

}  // namespace cdr::test
