#!/usr/bin/env bash
# Every benchmark once, at a tiny size, so that none rots (CI runs it on the
# release build; issue "Checks that can fail"). The figures mean nothing at
# these sizes: docs/performance.md has the real runs. A benchmark that
# fails, hangs (5 minutes) or prints nothing fails this script, with its log.
#   benchmarks/smoke.sh [BUILD_DIR]      (default build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "${1:-$root/build/release}" && pwd)/benchmarks
logs=$(mktemp -d /tmp/cdr-bench-smoke.XXXXXX)
trap 'rm -rf "$logs"' EXIT

run() {
  local name=$1
  shift
  local log="$logs/$name.log"
  local start=$SECONDS
  if ! timeout 300 "$dir/$name" "$@" >"$log" 2>&1; then
    echo "benchmark $name $* failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  if [ ! -s "$log" ]; then
    echo "benchmark $name $* printed nothing" >&2
    exit 1
  fi
  echo "ok  $name $* ($((SECONDS - start)) s)"
}

run bench_parse --benchmark_min_time=0.01
run bench_identity --benchmark_min_time=0.01
run bench_seal 20000
run bench_sweep 20000 40000
run bench_erasure 20000 3 200 0.2
run bench_subject 2000
run bench_ingest_e2e 20000
# The drain (a second member joining, the group settling, the handover)
# takes minutes even at this size; the daemon's drain has tests of its own.
DRAIN=0 INGEST=20000 RERUN=1 DIR="$logs/scale" run bench_scale 20000
run bench_layout per-month 20000 20000
