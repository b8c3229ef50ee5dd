// Parse + validate + classify throughput of the event contract on one core.
//
//   cmake --preset release && cmake --build --preset release --target bench_parse
//   build/release/benchmarks/bench_parse --benchmark_min_time=2
//
// Events come from the project's deterministic generator (the same one the
// demo and the integration tests use); the parser is reused across events as
// the consumer loop reuses it.
#include <benchmark/benchmark.h>

#include <vector>

#include "cdr/core/event.h"
#include "cdr/core/event_generator.h"
#include "cdr/core/policy.h"

namespace {

std::vector<std::string> make_events(double usage_fraction, double malformed_fraction) {
  cdr::generator_options o;
  o.seed = 2025;
  o.usage_fraction = usage_fraction;
  o.malformed_fraction = malformed_fraction;
  o.late_fraction = 0.01;
  cdr::event_generator gen(o);
  std::vector<std::string> out;
  cdr::generated_event e;
  for (int i = 0; i < 65536; ++i) {
    gen.next(&e);
    out.push_back(e.json);
  }
  return out;
}

cdr::retention_policy policy_with_overrides() {
  cdr::class_rules kr;
  kr.metadata = {60, cdr::anchor::year_end};
  return cdr::retention_policy({}, {{1, "kr", {}, {"KR"}, kr}, {2, "vip", {"cust-007"}, {}, {}}});
}

void run(benchmark::State& state, const std::vector<std::string>& events) {
  cdr::event_parser parser;
  const auto policy = policy_with_overrides();
  cdr::parsed_event e;
  const auto now = cdr::generator_options{}.now;
  std::size_t i = 0;
  std::size_t bytes = 0;
  std::size_t rejected = 0;
  for (auto _ : state) {
    const auto& msg = events[i++ & (events.size() - 1)];
    bytes += msg.size();
    if (parser.parse(msg, now, &e)) {
      ++rejected;
      continue;
    }
    const auto cls = policy.classify(e.customer_id, e.country);
    benchmark::DoNotOptimize(cls);
    benchmark::DoNotOptimize(e.metadata.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["rejected"] = static_cast<double>(rejected);
}

void bm_realistic_mix(benchmark::State& state) {
  static const auto events = make_events(0.15, 0.01);
  run(state, events);
}
BENCHMARK(bm_realistic_mix);

void bm_cdr_only(benchmark::State& state) {
  static const auto events = make_events(0.0, 0.0);
  run(state, events);
}
BENCHMARK(bm_cdr_only);

}  // namespace

BENCHMARK_MAIN();
