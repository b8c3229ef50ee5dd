#!/usr/bin/env bash
# The bash completion script the CLI generates completes commands, their
# options and fixed option values as a user would expect.
#   tests/deploy/completion.sh COMPLETION_SCRIPT
set -euo pipefail
source "$1"
fail=0
complete_line() {  # complete_line "WORDS TYPED" -> the candidates, space-separated
  local line="cdr-retentionctl $1"
  read -ra COMP_WORDS <<< "$line"
  [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  _cdr_retentionctl
  echo "${COMPREPLY[*]}"
}
expect() {  # expect "WORDS TYPED" "CANDIDATES"
  local got
  got=$(complete_line "$1")
  if [[ $got != "$2" ]]; then
    echo "completing '$1': got '$got', expected '$2'"
    fail=1
  fi
}
expect "ho" "hold"
expect "hold " "add list release"
expect "hold add --k" "--kind"
expect "hold add --kind " "cdr usage"
expect "--socket /run/x.sock subject e" "export erase"
expect "subject erase --identifier +385911234567 --re" "--reason --reference"
expect "--format " "text json yaml"
expect "sweep --as-of 2030-01-01T00:00:00Z --d" "--dry-run"
expect "drain --" "--socket --format --json --timeout --help"
exit $fail
