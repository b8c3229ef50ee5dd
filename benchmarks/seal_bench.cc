// The cost of sealing identifiers at ingest, same run: ingest's store stage
// (parse a generated event, classify it, add its record, index entries and
// id entry to a batch of 2000, commit with the WAL on) once as the daemon
// does it now (identifiers sealed with AES-256-GCM under the partition key,
// indexed with the partition's HMAC key) and once without sealing
// (identifiers as sent, indexed with one global HMAC key, as before the
// issue "Crypto-shredding"). Chunks of 50,000 events alternate between the
// two ways (which goes first alternates too), each into its own store, so
// both see the same machine state; RocksDB's background work for either
// store runs on the other core meanwhile, as in the daemon.
//
//   cmake --preset release && cmake --build --preset release --target bench_seal
//   build/release/benchmarks/bench_seal [N=2000000]
//
// Target: sealing costs < 10% of ingest throughput. This stage is a lower
// bound of an event's cost end to end (Kafka consumption comes on top), so
// its ratio bounds the end-to-end cost from above.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cdr/core/config.h"
#include "cdr/core/event.h"
#include "cdr/core/event_generator.h"
#include "cdr/core/identity.h"
#include "cdr/core/ingest.h"
#include "cdr/core/key_layout.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"
#include "cdr/crypto/keystore.h"
#include "cdr/store/store.h"
#include "vault.h"

namespace {

using namespace cdr;
using steady = std::chrono::steady_clock;

struct lane {
  lane(const daemon_config& base, const std::string& dir, bool seal) : config(base.storage), sealed(seal) {
    config.path = dir + "/data";
    s = std::make_unique<store::store>(config);
  }
  storage_config config;
  bool sealed;
  std::unique_ptr<store::store> s;
  double seconds = 0;
  std::uint64_t events = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const std::uint64_t n = argc > 1 ? std::stoull(argv[1]) : 2'000'000;
  const auto dir = std::filesystem::temp_directory_path() / ("cdr-bench-seal-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "plain");
  std::filesystem::create_directories(dir / "sealed");
  auto parsed = parse_config(default_config_toml, "defaults", {});
  const auto& config = std::get<daemon_config>(parsed);

  generator_options go;
  go.seed = 7;
  go.subjects = 100'000;
  event_generator gen(go);
  std::vector<std::string> events;
  events.reserve(n);
  std::uint64_t bytes = 0;
  generated_event g;
  for (std::uint64_t i = 0; i < n; ++i) {
    gen.next(&g);
    bytes += g.json.size();
    events.push_back(std::move(g.json));
  }
  std::printf("%llu generated events, %.0f bytes on average\n", static_cast<unsigned long long>(n),
              static_cast<double>(bytes) / static_cast<double>(n));

  crypto::keystore keystore((dir / "keystore.json").string(), crypto::random_bytes(32), true);
  service::vault keys(keystore, config.storage.max_seals_per_key);
  crypto::keyed_hasher global("bench-subject-key-0123456789abcdef");
  lane plain(config, (dir / "plain").string(), false);
  lane sealed(config, (dir / "sealed").string(), true);

  const auto run = [&](lane& l, std::uint64_t from, std::uint64_t to) {
    event_parser parser(config.events);
    parsed_event e;
    store::write_batch b(*l.s);
    std::string rk;
    std::string sealed_value;
    std::vector<std::string> subjects;
    std::vector<std::string> hashes;
    const auto t0 = steady::now();
    const auto lease = keys.lease();
    for (std::uint64_t i = from; i < to; ++i) {
      if (parser.parse(events[i], go.now, &e)) continue;
      const partition p{e.kind, e.month, config.retention.classify(e.customer_id, e.country)};
      const auto digest = content_digest(e.metadata, e.identifiers);
      const auto put = [&](std::string_view identifiers) {
        if (e.kind == record_kind::usage) {
          b.put_usage(p, e.id, e.metadata, identifiers, digest);
        } else {
          b.put_cdr(p, e.id, e.metadata, identifiers, digest);
        }
      };
      subjects.clear();
      for (const auto& [field, v] : e.identifier_strings) subjects.push_back(normalize_identifier(v));
      if (l.sealed && !e.identifiers.empty()) {
        assign_record_key(rk, p, e.id);
        keys.seal_indexed(key_scope::partition, p, rk, e.identifiers, subjects, sealed_value, hashes);
        put(sealed_value);
        for (const auto& h : hashes) b.put_subject(p, h, e.id);
      } else {
        put(e.identifiers);
        for (const auto& v : subjects) b.put_subject(p, global(v), e.id);
      }
      if (b.records() == config.kafka.batch_max_records) {
        b.set_offset("cdr", 0, static_cast<std::int64_t>(i));
        l.s->commit(b);
        b.clear();
      }
    }
    if (b.records() > 0) l.s->commit(b);
    l.seconds += std::chrono::duration<double>(steady::now() - t0).count();
    l.events += to - from;
  };
  // Alternating chunks: plain, sealed, sealed, plain, ... (each lane gets
  // the same events, in the same order, into its own store).
  const std::uint64_t chunk = 50'000;
  bool plain_first = true;
  for (std::uint64_t from = 0; from < n; from += chunk, plain_first = !plain_first) {
    const auto to = std::min(n, from + chunk);
    run(plain_first ? plain : sealed, from, to);
    run(plain_first ? sealed : plain, from, to);
  }
  const double rp = static_cast<double>(plain.events) / plain.seconds;
  const double rs = static_cast<double>(sealed.events) / sealed.seconds;
  std::printf("store stage without sealing: %.0f events/s\n", rp);
  std::printf("store stage with sealing:    %.0f events/s\n", rs);
  std::printf("cost of sealing: %.1f%% of throughput (%.2f us per event; target < 10%%)\n", 100.0 * (1.0 - rs / rp),
              1e6 * (1.0 / rs - 1.0 / rp));
  std::printf("keys created: %zu\n", keystore.live());
  plain.s.reset();
  sealed.s.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
