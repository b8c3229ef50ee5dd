#!/usr/bin/env bash
# Checks the deployment files: the systemd unit (systemd-analyze verify, and
# an exposure of at most 2.0 from `systemd-analyze security --offline=yes`),
# the sysusers file, and the Prometheus alert rules (promtool check rules,
# promtool test rules). Usage: check_deploy.sh SOURCE_DIR DAEMON_BINARY
set -euo pipefail
src=$1
daemon=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unit="$src/deploy/systemd/cdr-retention.service"
# verify needs an executable at ExecStart: point it at the built binary.
sed "s|/usr/local/bin/cdr-retentiond|$daemon|" "$unit" > "$work/cdr-retention.service"
systemd-analyze verify "$work/cdr-retention.service"
exposure=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "systemd exposure: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || { echo "exposure $exposure above 2.0" >&2; exit 1; }
for directive in Type=notify WatchdogSec= StateDirectory= RuntimeDirectory= User=cdr-retention \
                 ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes PrivateDevices=yes ProtectHome=yes \
                 "CapabilityBoundingSet=$" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
                 "SystemCallFilter=@system-service" MemoryDenyWriteExecute=yes; do
  grep -q "^$directive" "$unit" || { echo "unit lacks $directive" >&2; exit 1; }
done
grep -q '^u cdr-retention ' "$src/deploy/systemd/cdr-retention.sysusers.conf"

cd "$src/deploy/prometheus"
promtool check rules alerts.yml
promtool test rules alerts.test.yml
# Every alert has a runbook section in docs/operations.md.
for anchor in $(sed -n 's/.*runbook_url: "docs\/operations.md#\([a-z]*\)".*/\1/p' alerts.yml); do
  grep -qi "^### $anchor\$" "$src/docs/operations.md" || { echo "no runbook for $anchor" >&2; exit 1; }
done
echo "deployment files OK"
