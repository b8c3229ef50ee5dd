#!/usr/bin/env bash
# README command (b), and what CI runs (.ci/run): install what is missing,
# build the shipped (release) build with warnings as errors, run the whole
# test suite on it, every benchmark once at a tiny size and the mutation
# checks, then build with AddressSanitizer + UndefinedBehaviorSanitizer and
# run the tests again, then fuzz the parsers (CDR_FUZZ_SECONDS each,
# default 60). The dev preset (Debug) is the inner loop's: README, "Develop".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
deploy/dev/install-deps.sh

export CDR_WERROR=ON
# What the demo runs and a package ships: the tests run on it, not on a
# build nobody deploys.
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release
# Every benchmark once, tiny, so none rots (about a minute).
benchmarks/smoke.sh build/release
# Each guarantee broken on purpose, one at a time: the tests that must
# catch it fail (a few minutes; docs/architecture.md, "Mutation checks").
CDR_MUTATION_PRESET=release tests/mutation/mutate.sh

cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan

# The parsers under libFuzzer, a minute each (deploy/dev/fuzz.sh).
deploy/dev/fuzz.sh "${CDR_FUZZ_SECONDS:-60}"
