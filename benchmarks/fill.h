// What the in-process retention benchmarks share: records as ingest
// writes them (sealed, indexed), with ids in time order.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cdr/core/identity.h"
#include "cdr/core/ingest.h"
#include "cdr/store/store.h"
#include "vault.h"

namespace bench {

using namespace cdr;

constexpr std::string_view subject_secret = "bench-subject-key-0123456789abcdef";

inline std::string id_of(std::uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

inline std::string metadata_of(const std::string& id, month m) {
  return R"({"type":"cdr","id":")" + id + R"(","customer_id":"acme-eu-1","occurred_at":")" + m.to_string() +
         R"(-14T09:26:53.589Z","channel":"sms","direction":"outbound","status":"delivered","parts":1,)"
         R"("route":{"country":"DE","carrier":"26201","via":"smpp-fra-2"},"price":{"amount":"0.0070","currency":"EUR"}})";
}

// Commits as ingest does: while RocksDB stops writes (a flush or a
// compaction behind), waits and writes the same batch again.
inline void commit(store::store& s, store::write_batch& b) {
  for (;;) {
    try {
      s.commit(b);
      return;
    } catch (const store::store_error& e) {
      if (e.which() != store::store_error::kind::stall) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

// Writes n records of month m in batches of `batch` (ingest writes up to
// 2000), each with two identifiers, sealed as ingest seals them, and their
// subject-index entries.
inline void fill(store::store& s, service::vault& keys, month m, std::uint64_t first, std::uint64_t n,
                 const std::function<std::string(std::uint64_t)>& phone = {}, std::size_t batch = 2000) {
  store::write_batch b(s);
  const partition p{record_kind::cdr, m, 0};
  std::string sealed;
  std::vector<std::string> hashes;
  for (std::uint64_t i = first; i < first + n; ++i) {
    const auto id = id_of(i);
    const auto from = phone ? phone(i) : "+4915112" + std::to_string(1000000 + i % 9000000);
    const auto to = "user" + std::to_string(i % 100000) + "@example.org";
    const auto lease = keys.lease();
    keys.seal_indexed(key_scope::partition, p, record_key(p, id), R"({"from":")" + from + R"(","to":")" + to + R"("})",
                      {normalize_identifier(from), normalize_identifier(to)}, sealed, hashes);
    b.put_cdr(p, id, metadata_of(id, m), sealed, i);
    for (const auto& h : hashes) b.put_subject(p, h, id);
    if (b.records() == batch) {
      commit(s, b);
      b.clear();
    }
  }
  if (b.records() > 0) commit(s, b);
}

}  // namespace bench
