#!/usr/bin/env bash
# README command (a): install what is missing, build, and start the daemon on
# its embedded default (in-process Kafka mock broker, local data directory).
# Stop it with Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
deploy/dev/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release

work=${CDR_DEMO_DIR:-$root/build/demo}
mkdir -p "$work"
# The secrets, random, made once, kept with the demo data: the subject hash's
# HMAC key and the master key that wraps the key store's data keys.
for key in subject.key master.key; do
  [ -s "$work/$key" ] || (umask 077; head -c 32 /dev/urandom > "$work/$key")
done
ctl="$root/build/release/daemon/cdr-retentionctl --socket $work/admin.sock"
cat <<MSG

cdr-retentiond is starting on its embedded default (Ctrl-C stops it): an
in-process Kafka broker fed with 200 generated events per second (1% late,
1% malformed). After the group join (~3 s), in another terminal:
  $ctl status                       # health summary; --all: offsets, lag, events by outcome, records
  $ctl subject export --identifier +385900000042
  $ctl sweep --dry-run --as-of 2030-01-01T00:00:00Z   # what a sweep then would remove
  $ctl sweep && $ctl verify && $ctl audit verify     # sweep now, prove it, check the trail
  curl -s http://127.0.0.1:9745/metrics | grep ^cdr_retention_

MSG
exec "$root/build/release/daemon/cdr-retentiond" --config "$root/config/demo.toml" \
  --set "storage.path=$work/data" --set "storage.subject_key_file=$work/subject.key" \
  --set "storage.keystore_path=$work/keys/keystore.json" --set "storage.master_key_file=$work/master.key" \
  --set "admin.socket=$work/admin.sock" "$@"
