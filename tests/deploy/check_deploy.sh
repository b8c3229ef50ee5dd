#!/usr/bin/env bash
# Checks the deployment files: the systemd unit (systemd-analyze verify, and
# an exposure of at most 2.0 from `systemd-analyze security --offline=yes`),
# the sysusers file, and the Prometheus alert rules (promtool check rules,
# promtool test rules), and that the container and Kubernetes files use
# configurations, flags, commands and metrics that exist.
# Usage: check_deploy.sh SOURCE_DIR DAEMON_BINARY CTL_BINARY
set -euo pipefail
src=$1
daemon=$2
ctl=$3
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
                 "SystemCallFilter=@system-service" MemoryDenyWriteExecute=yes RestartPreventExitStatus=2 \
                 "LoadCredential=subject.key:" "LoadCredentialEncrypted=master.key:"; do
  grep -q "^$directive" "$unit" || { echo "unit lacks $directive" >&2; exit 1; }
done
grep -q '^u cdr-retention ' "$src/deploy/systemd/cdr-retention.sysusers.conf"

cd "$src/deploy/prometheus"
promtool check rules alerts.yml
promtool test rules alerts.test.yml
# Every alert has a description and an absolute runbook link to its section
# of docs/operations.md.
alerts=$(grep -c -- '- alert:' alerts.yml)
[ "$(grep -c '^ *description: ' alerts.yml)" = "$alerts" ] || { echo "an alert lacks a description" >&2; exit 1; }
anchors=$(sed -n "s/.*runbook_url: '.*{{ end }}\/operations.md#\([a-z]*\)'.*/\1/p" alerts.yml)
[ "$(wc -w <<< "$anchors")" = "$alerts" ] || { echo "an alert lacks an absolute runbook_url" >&2; exit 1; }
for anchor in $anchors; do
  grep -qi "^### $anchor\$" "$src/docs/operations.md" || { echo "no runbook for $anchor" >&2; exit 1; }
done
# No rule names a scrape job (the PodMonitor's job is "<namespace>/<name>").
! grep -n 'job=' alerts.yml || { echo "an alert selects a scrape job" >&2; exit 1; }
# The Kubernetes PrometheusRule is alerts.yml, regenerated.
diff <(./prometheusrule.sh) "$src/deploy/kubernetes/prometheusrule.yaml" ||
  { echo "deploy/kubernetes/prometheusrule.yaml is stale: run deploy/prometheus/prometheusrule.sh" >&2; exit 1; }

# Container and Kubernetes: their configurations are valid, the flags and
# commands their entrypoints and probes use exist.
# (The keys they name are mounted at run time: stand-ins here.)
head -c 32 /dev/urandom > "$work/subject.key"
head -c 32 /dev/urandom > "$work/master.key"
keys=(--set "storage.subject_key_file=\"$work/subject.key\"" --set "storage.master_key_file=\"$work/master.key\"")
"$daemon" --check-config --config "$src/deploy/container/cdr-retention.toml" "${keys[@]}" > /dev/null
"$daemon" --check-config --config "$src/deploy/kubernetes/cdr-retention.toml" "${keys[@]}" \
  --set 'kafka.client_id="cdr-retention-0"' > /dev/null
help=$("$ctl" --help)
for word in "--timeout" "--socket" " status "; do
  grep -q -- "$word" <<< "$help" || { echo "cdr-retentionctl has no $word" >&2; exit 1; }
done
grep -q 'ENTRYPOINT \["/usr/local/bin/cdr-retentiond", "--config", "/etc/cdr-retention/cdr-retention.toml"\]' \
  "$src/deploy/container/Containerfile"
grep -q 'COPY --from=build /opt/cdr-retention/bin/ /usr/local/bin/' "$src/deploy/container/Containerfile"
for f in statefulset.yaml service.yaml podmonitor.yaml prometheusrule.yaml poddisruptionbudget.yaml cdr-retention.toml; do
  grep -q "$f" "$src/deploy/kubernetes/kustomization.yaml"
done
grep -q 'startupProbe:' "$src/deploy/kubernetes/statefulset.yaml"
# The probes use the HTTP port's /healthz and /readyz, not the admin socket.
[ "$(grep -c 'httpGet: {path: /healthz, port: metrics}' "$src/deploy/kubernetes/statefulset.yaml")" = 2 ] ||
  { echo "startup and liveness probes are not /healthz" >&2; exit 1; }
grep -q 'httpGet: {path: /readyz, port: metrics}' "$src/deploy/kubernetes/statefulset.yaml" ||
  { echo "the readiness probe is not /readyz" >&2; exit 1; }
! grep -q 'exec:.*status' "$src/deploy/kubernetes/statefulset.yaml" || { echo "a probe still runs status" >&2; exit 1; }
grep -q '^TimeoutStartSec=' "$src/deploy/systemd/cdr-retention.service" || { echo "the unit sets no TimeoutStartSec" >&2; exit 1; }
for setting in 'fsGroupChangePolicy: OnRootMismatch' 'podManagementPolicy: Parallel' \
               'automountServiceAccountToken: false' 'topologySpreadConstraints:'; do
  grep -q "$setting" "$src/deploy/kubernetes/statefulset.yaml" || { echo "statefulset.yaml lacks $setting" >&2; exit 1; }
done
grep -q 'networkpolicy.yaml' "$src/deploy/kubernetes/kustomization.yaml"
for label in title version revision source; do
  grep -q "org.opencontainers.image.$label=" "$src/deploy/container/Containerfile" ||
    { echo "Containerfile lacks the OCI label $label" >&2; exit 1; }
done
grep -q '^images:' "$src/deploy/kubernetes/kustomization.yaml"
! grep -q ':latest' "$src/deploy/kubernetes/statefulset.yaml" || { echo "an image pinned to :latest" >&2; exit 1; }
# A local build directory or the repository never reaches the image's build stage.
for ignore in "$src/.containerignore" "$src/.dockerignore"; do
  grep -qx 'build/' "$ignore" && grep -qx '.git/' "$ignore" || { echo "$ignore lets build/ or .git/ in" >&2; exit 1; }
done
grep -q '^ARG BASE=' "$src/deploy/container/Containerfile"
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$src/deploy/grafana/cdr-retention.json"
# Every metric the dashboard and the alerts use is documented (and so exists).
for m in $(grep -ohE 'cdr_retention_[a-z0-9_]+' "$src/deploy/grafana/cdr-retention.json" "$src/deploy/prometheus/alerts.yml" |
           sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  grep -q "\`$m\`" "$src/docs/metrics.md" || { echo "undocumented metric $m" >&2; exit 1; }
done
echo "deployment files OK"
