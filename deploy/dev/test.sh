#!/usr/bin/env bash
# README command (b), and what CI runs (.ci/run): install what is missing,
# build with warnings as errors, run the whole test suite and the mutation
# checks, then build with
# AddressSanitizer + UndefinedBehaviorSanitizer and run the tests again,
# then fuzz the parsers (CDR_FUZZ_SECONDS each, default 60).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
deploy/dev/install-deps.sh

export CDR_WERROR=ON
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev
# Each guarantee broken on purpose, one at a time: the tests that must
# catch it fail (about 3 minutes; docs/architecture.md, "Mutation checks").
tests/mutation/mutate.sh

cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan

# The parsers under libFuzzer, a minute each (deploy/dev/fuzz.sh).
deploy/dev/fuzz.sh "${CDR_FUZZ_SECONDS:-60}"
