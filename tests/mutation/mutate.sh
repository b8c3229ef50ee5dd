#!/usr/bin/env bash
# Mutation checks of the guarantees (issue "Checks that can fail"): applies,
# one at a time, a change to the source that breaks one guarantee, builds
# what it touches in build/$CDR_MUTATION_PRESET (default dev), runs the
# tests that must catch it, and
# fails unless they do. The source is restored after each (and on any
# exit), and the build is rebuilt from the restored source at the end.
# docs/architecture.md, "Mutation checks", lists which test catches which
# mutation.
#   tests/mutation/mutate.sh [NAME...]     (default: every mutation)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
preset=${CDR_MUTATION_PRESET:-dev}
build=build/$preset
[ -f "$build/build.ninja" ] || cmake --preset "$preset" >/dev/null

# name | file | line as it stands | line mutated | targets | test binary | gtest filter | environment
mutations=(
  "wal_sync|lib/service/ingest/batch.cc|  store_.sync_wal();|  /* mutation */;|cdr-retentiond cdr_fault_tests|cdr_fault_tests|faults.power_loss_right_after_the_group_took_the_offsets_loses_nothing|"
  "purge|lib/service/retention/purger.cc|    pass.run();|    /* mutation */;|cdr_service_tests|cdr_service_tests|verify_controls.an_erased_subjects_key_left_on_disk_is_named|"
  "hold_check|lib/core/src/retention.cc|      if (!h.covers_partition(p)) continue;|      continue;|cdr_service_tests|cdr_service_tests|sweep_steps.*|"
  "verify_wal|lib/adapters/store/disk_check.cc|  out.wal_files = impl_->wal_residues(ranges, out.residues);|  out.wal_files = 0;|cdr_service_tests|cdr_service_tests|verify_controls.a_stripped_key_left_in_a_wal_record_and_then_in_an_sst_file_is_named|"
  "nonce|lib/adapters/crypto/aead.cc|    used += nonce_size;|    used += 0;|cdr_unit_tests|cdr_unit_tests|crypto.every_seal_draws_a_fresh_nonce|"
  "control_mac|lib/service/fleet/control_log.cc|  auto verified = control_.verify(r);|  std::variant<std::string, control_rejection> verified = r.value; { auto j = nlohmann::json::parse(r.value, nullptr, false); if (j.is_object()) { j.erase(\"auth\"); verified = j.dump(); } }|cdr_service_tests|cdr_service_tests|fleet_parts.forged_altered_foreign_and_junk_messages_are_refused_audited_and_never_block|"
  "keystore_dirsync|lib/adapters/crypto/keystore.cc|  sync_dir(target.parent_path());|  if (std::getenv(\"CDR_NEVER\") != nullptr) sync_dir(target.parent_path());|cdr-retentiond cdr_fault_tests|cdr_fault_tests|faults.power_loss_at_random_points_of_ingest_sweeps_hold_releases_and_erasures|CDR_FAULT_ROUNDS=4"
)

selected=("$@")
backup=$(mktemp -d)
touched=()
restore() {
  for f in "${touched[@]}"; do cp "$backup/$(echo "$f" | tr / _)" "$f"; done
  touched=()
}
trap 'restore; rm -rf "$backup"' EXIT

# Replaces the one line equal to $2 in file $1 with $3; fails when the line
# is not there exactly once (the mutation would otherwise rot in silence).
mutate() {
  local file=$1 from=$2 to=$3 n
  n=$(grep -cxF -- "$from" "$file" || true)
  if [ "$n" != 1 ]; then
    echo "mutate.sh: \"$from\" stands $n times in $file, not once: update the mutation" >&2
    exit 2
  fi
  cp "$file" "$backup/$(echo "$file" | tr / _)"
  touched+=("$file")
  awk -v from="$from" -v to="$to" '$0 == from { print to; next } { print }' "$file" > "$file.mutated"
  mv "$file.mutated" "$file"
}

failed=0
caught=0
all_targets=()
for m in "${mutations[@]}"; do
  IFS='|' read -r name file from to targets binary filter env <<<"$m"
  all_targets+=($targets)
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $name "* ]]; then continue; fi
  echo "== mutation $name: $file"
  mutate "$file" "$from" "$to"
  # shellcheck disable=SC2086
  if ! cmake --build "$build" --target $targets -j2 >"$build/mutation-$name.build.log" 2>&1; then
    echo "mutation $name: does not build (see $build/mutation-$name.build.log)" >&2
    failed=$((failed + 1))
    restore
    continue
  fi
  # shellcheck disable=SC2086
  if env $env "$build/tests/$binary" --gtest_filter="$filter" >"$build/mutation-$name.log" 2>&1; then
    echo "mutation $name: NOT caught by $binary $filter (log $build/mutation-$name.log)" >&2
    failed=$((failed + 1))
  else
    echo "mutation $name: caught by $filter"
    caught=$((caught + 1))
  fi
  restore
done

echo "== rebuilding from the restored source"
# shellcheck disable=SC2046
cmake --build "$build" --target $(printf '%s\n' "${all_targets[@]}" | sort -u) -j2 >/dev/null
echo "mutations: $caught caught, $failed not caught"
[ "$failed" -eq 0 ]
