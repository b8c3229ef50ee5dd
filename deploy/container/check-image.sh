#!/usr/bin/env bash
# Builds the container image from a Debian 12 base made on this machine and
# runs it for real (docs/operations.md, "The container image, checked"):
#   deploy/container/check-image.sh            # as root; prints each check
#   KEEP=1 deploy/container/check-image.sh     # leave the container running
#
# Only Debian packages: mmdebstrap makes the base (minbase bookworm, cached as
# localhost/debian:bookworm), podman builds and runs the image with the runc
# runtime, cgroupfs and no default ulimits (crun cannot set rlimits in some
# sandboxes). The container runs the daemon on its embedded broker with demo
# traffic, a read-only root file system and a volume per store; the script
# checks `cdr-retentionctl status` inside it, the HEALTHCHECK command (/healthz), the
# uid, the read-only root, that records reach the data volume, and that a
# restart on the same volumes finds them. Exit 0 when every check holds.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
name=cdr-retention-check
image=localhost/cdr-retention:check
base=localhost/debian:bookworm
started=$(date +%s)

say() { printf '%s check-image: %s\n' "$(date +%T)" "$*"; }
fail() {
  say "FAILED: $*"
  podman logs --tail 40 "$name" 2>&1 | sed 's/^/  | /' || true
  exit 1
}

missing=()
for tool in podman mmdebstrap runc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman mmdebstrap runc uidmap
fi

work=$(mktemp -d /tmp/cdr-image.XXXXXX)
cleanup() {
  if [ -z "${KEEP:-}" ]; then
    podman rm -f "$name" >/dev/null 2>&1 || true
    podman volume rm -f cdr-check-store cdr-check-keys >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$work/containers.conf"

if ! podman image exists "$base"; then
  say "making the base image (mmdebstrap --variant=minbase bookworm)"
  mmdebstrap --quiet --variant=minbase bookworm "$work/base.tar"
  podman import "$work/base.tar" "$base" >/dev/null
fi

say "building $image from $base"
build_started=$(date +%s)
podman build --quiet --format docker --build-arg BASE="$base" -f "$root/deploy/container/Containerfile" -t "$image" "$root" >/dev/null
say "built in $(($(date +%s) - build_started)) s"

# The keys as the secrets a real deployment mounts (here: files, read-only).
head -c 32 /dev/urandom >"$work/subject.key"
head -c 32 /dev/urandom >"$work/master.key"
chmod 0444 "$work/subject.key" "$work/master.key"

podman rm -f "$name" >/dev/null 2>&1 || true
podman volume rm -f cdr-check-store cdr-check-keys >/dev/null 2>&1 || true
run() {
  podman run -d --name "$name" --read-only \
    --tmpfs /run/cdr-retention:rw,U \
    -v cdr-check-store:/var/lib/cdr-retention -v cdr-check-keys:/var/lib/cdr-retention-keys \
    -v "$work/subject.key:/run/secrets/subject.key:ro" -v "$work/master.key:/run/secrets/master.key:ro" \
    -p 127.0.0.1::9745 "$image" \
    --set 'kafka.brokers="embedded"' --set 'demo.enabled=true' --set 'demo.events_per_second=200.0' >/dev/null
}
status() { podman exec "$name" cdr-retentionctl --format json status; }
wait_ready() {
  for _ in $(seq 1 120); do
    if status >"$work/status.json" 2>/dev/null; then return 0; fi
    [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || fail "the container stopped"
    sleep 1
  done
  fail "cdr-retentionctl status never answered"
}
stored() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["storage"]["records"]["cdr"])' "$work/status.json"; }

say "running it on the embedded broker (read-only root, data volumes)"
run
wait_ready
say "ok: cdr-retentionctl status answers inside the container"

healthcheck=$(podman image inspect -f '{{join .HealthCheck.Test " "}}' "$image")
case "$healthcheck" in */healthz*) ;; *) fail "no HEALTHCHECK asking /healthz: $healthcheck" ;; esac
# (podman schedules the periodic checks with systemd timers; without systemd
# it says so on stderr, and `healthcheck run` still runs the command.)
podman healthcheck run "$name" >/dev/null || fail "the HEALTHCHECK command failed"
say "ok: the HEALTHCHECK command passes ($healthcheck)"

uid=$(podman exec "$name" id -u)
[ "$uid" != 0 ] || fail "runs as root"
say "ok: runs as uid $uid"

if podman exec "$name" sh -c 'touch /usr/local/bin/x' 2>/dev/null; then fail "the root file system is writable"; fi
[ "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$name")" = true ] || fail "not run read-only"
say "ok: the root file system is read-only"

for _ in $(seq 1 60); do
  status >"$work/status.json"
  [ "$(stored)" -gt 0 ] && break
  sleep 1
done
before=$(stored)
[ "$before" -gt 0 ] || fail "no record stored after a minute of demo traffic"
podman exec "$name" test -f /var/lib/cdr-retention/data/CURRENT || fail "no store on the data volume"
port=$(podman port "$name" 9745/tcp | head -1)
curl -fsS "http://$port/metrics" | grep -q '^cdr_retention_events_total' || fail "no metrics on $port"
say "ok: $before records on the data volume, metrics on $port"

say "restarting on the same volumes"
podman stop -t 30 "$name" >/dev/null
[ "$(podman inspect -f '{{.State.ExitCode}}' "$name")" = 0 ] || fail "stopped with exit $(podman inspect -f '{{.State.ExitCode}}' "$name")"
podman rm "$name" >/dev/null
run
wait_ready
after=$(stored)
[ "$after" -ge "$before" ] || fail "records lost across the restart: $before then $after"
say "ok: $after records after the restart (had $before)"

say "all checks hold in $(($(date +%s) - started)) s"
