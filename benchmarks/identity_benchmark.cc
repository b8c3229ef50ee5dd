// What normalising one identifier costs, by spelling (docs/events.md,
// "Identifiers"): an E.164 value is not parsed; other phone spellings go
// through libphonenumber.
//
//   cmake --preset release && cmake --build --preset release --target bench_identity
//   build/release/benchmarks/bench_identity --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include "cdr/core/identity.h"
#include "cdr/phone/phone.h"

namespace {

void normalise(benchmark::State& state, const char* form, const char* value) {
  const cdr::identity ids(cdr::phone::parser(), form);
  for (auto _ : state) {
    auto n = ids.normalize(value);
    benchmark::DoNotOptimize(n.data());
  }
}

BENCHMARK_CAPTURE(normalise, e164_as_is, "e164:HR", "+385911234567");
BENCHMARK_CAPTURE(normalise, international_with_blanks, "e164:HR", "+385 91 123 4567");
BENCHMARK_CAPTURE(normalise, national_with_region, "e164:HR", "091 123 4567");
BENCHMARK_CAPTURE(normalise, international_00, "e164:HR", "00385911234567");
BENCHMARK_CAPTURE(normalise, email, "e164:HR", "Jane.Doe@Example.org");
BENCHMARK_CAPTURE(normalise, digits_form_with_blanks, "digits", "+385 91 123 4567");

}  // namespace

BENCHMARK_MAIN();
