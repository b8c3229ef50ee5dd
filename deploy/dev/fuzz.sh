#!/usr/bin/env bash
# Fuzzes the three parsers a peer or an operator feeds (events, admin
# requests, the configuration) with libFuzzer under ASan + UBSan, each for
# SECONDS (default 60), starting from the committed seed corpora and the
# corpus earlier runs grew (build/fuzz/corpus-TARGET, kept between runs).
# Undefined behaviour aborts (the fuzz preset builds without sanitizer
# recovery), and a run whose log holds any sanitizer report fails, crash or
# not. A crash's input is copied to tests/fuzz/regressions/TARGET/ (the unit
# suite replays every file there, in name order, in every build): commit it
# with the fix. Prints each target's executions and coverage.
#   deploy/dev/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
seconds=${1:-60}
case "$seconds" in
  '' | *[!0-9]*)
    echo "fuzz.sh: SECONDS must be a whole number (usage: deploy/dev/fuzz.sh [SECONDS])" >&2
    exit 2
    ;;
esac
deploy/dev/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/artifacts
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
sanitizer_report='runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer'
for target in event admin_request config; do
  work=build/fuzz/corpus-$target
  mkdir -p "$work"
  cp tests/fuzz/corpus/$target/* "$work"/
  echo "== fuzz_$target for ${seconds}s ($(ls "$work" | wc -l) inputs to start from)"
  status=0
  build/fuzz/tests/fuzz/fuzz_$target "$work" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/$target- \
    2> build/fuzz/$target.log || status=$?
  if [ "$status" -ne 0 ] || grep -qE "$sanitizer_report" build/fuzz/$target.log; then
    tail -60 build/fuzz/$target.log
    for crash in build/fuzz/artifacts/$target-*; do
      [ -e "$crash" ] || continue
      cp "$crash" "tests/fuzz/regressions/$target/$(basename "$crash")"
      echo "fuzz.sh: kept $crash as tests/fuzz/regressions/$target/$(basename "$crash")" >&2
    done
    echo "fuzz_$target found a crash or a sanitizer report (exit $status; log build/fuzz/$target.log)" >&2
    exit 1
  fi
  grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb" build/fuzz/$target.log || true
  echo "corpus: $(ls "$work" | wc -l) inputs"
done
