#!/usr/bin/env bash
# The service reads time and waits only through its time source
# (cdr/core/time_source.h); lib/service/system_time.* is the one place that
# touches the system's clocks. Fails naming each line that does otherwise.
# Usage: time_injected.sh SOURCE_DIR
set -euo pipefail
src=$1
found=$(grep -rnE 'steady_clock|system_clock|high_resolution_clock|this_thread::sleep|condition_variable' \
          "$src/lib/service" --include='*.cc' --include='*.h' | grep -v '/system_time\.' || true)
if [ -n "$found" ]; then
  echo "the service reads a clock or waits outside its time source:" >&2
  echo "$found" >&2
  exit 1
fi
echo "time is injected everywhere in lib/service"
