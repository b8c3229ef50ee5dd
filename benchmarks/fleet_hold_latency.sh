#!/usr/bin/env bash
# The latency of a fleet-wide legal hold (issue "The fleet"): three members
# in one group, member 1 hosting the embedded broker the other two use; each
# hold is added through member 1, and the time is taken from the command's
# start until `hold list` on members 2 and 3 shows it (publish -> applied on
# every member). Prints each hold's latency and the median and maximum.
#
#   cmake --preset release && cmake --build --preset release
#   benchmarks/fleet_hold_latency.sh [HOLDS=20]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CDR_BIN:-$root/build/release/daemon}
holds=${1:-20}
work=$(mktemp -d /tmp/cdr-fleet-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

head -c 32 /dev/urandom | base64 > "$work/subject.key"
config() {  # member brokers
  local d=$work/m$1
  mkdir -p "$d/keys"
  head -c 32 /dev/urandom | base64 > "$d/master.key"
  cat > "$d/cdr.toml" <<EOF
[kafka]
brokers = "$2"
group_id = "fleet-bench"
group_instance_id = "member-$1"
[storage]
path = "$d/data"
subject_key_file = "$work/subject.key"
keystore_path = "$d/keys/keystore.json"
master_key_file = "$d/master.key"
[admin]
socket = "$d/a.sock"
socket_group = ""
operator_group = ""
viewer_group = ""
[metrics]
listen = "127.0.0.1:0"
[log]
level = "warn"
EOF
}
ctl() { "$bin/cdr-retentionctl" --socket "$work/m$1/a.sock" --json "${@:2}"; }
start() {  # member
  "$bin/cdr-retentiond" --config "$work/m$1/cdr.toml" > "$work/m$1/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do ctl "$1" status > /dev/null 2>&1 && return; sleep 0.1; done
  echo "member $1 did not start:" >&2; cat "$work/m$1/log" >&2; exit 1
}

config 1 embedded
start 1
bootstrap=$(ctl 1 status | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["kafka"]["embedded_bootstrap"])')
for m in 2 3; do config $m "$bootstrap"; start $m; done

now_ms() { date +%s%3N; }
latencies=()
for i in $(seq "$holds"); do
  t0=$(now_ms)
  request=$(ctl 1 hold add --customer "bench-$i" --reason bench --reference "B-$i" |
            grep -o "member-1/[0-9a-f]*" | head -1)
  acked=$(now_ms)
  for m in 2 3; do
    until ctl $m hold list | grep -q "$request"; do :; done
  done
  t1=$(now_ms)
  latencies+=($((t1 - t0)))
  echo "hold $i: $((t1 - t0)) ms (acknowledged by member 1 after $((acked - t0)) ms)"
done
printf '%s\n' "${latencies[@]}" | sort -n | awk '{a[NR]=$1} END {printf "holds %d: median %d ms, max %d ms (publish through member 1 -> applied on members 2 and 3)\n", NR, a[int((NR+1)/2)], a[NR]}'
