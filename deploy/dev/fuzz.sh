#!/usr/bin/env bash
# Fuzzes the three parsers a peer or an operator feeds (events, admin
# requests, the configuration) with libFuzzer under ASan + UBSan, each for
# SECONDS (default 60), starting from the committed seed corpora. A crash
# stops with its input under build/fuzz/artifacts/: copy it into
# tests/fuzz/regressions/TARGET/ (the unit suite replays it) and fix it.
# Prints each target's executions and coverage.
#   deploy/dev/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
seconds=${1:-60}
deploy/dev/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/artifacts
for target in event admin_request config; do
  work=build/fuzz/corpus-$target
  rm -rf "$work" && mkdir -p "$work"
  cp tests/fuzz/corpus/$target/* "$work"/
  echo "== fuzz_$target for ${seconds}s"
  build/fuzz/tests/fuzz/fuzz_$target "$work" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/$target- \
    2> build/fuzz/$target.log || { tail -60 build/fuzz/$target.log; echo "fuzz_$target found a crash" >&2; exit 1; }
  grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb" build/fuzz/$target.log || true
  echo "corpus: $(ls "$work" | wc -l) inputs"
done
