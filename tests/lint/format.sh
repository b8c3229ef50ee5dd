#!/usr/bin/env bash
# The style gate's format half: every C++ source the repository tracks is
# formatted as .clang-format says (clang-format 14, Debian's). Fails naming
# each file that is not, with the first differences; fix with
#   git ls-files '*.cc' '*.h' | xargs clang-format-14 -i
# Usage: format.sh SOURCE_DIR
set -euo pipefail
cd "$1"
if ! command -v clang-format-14 >/dev/null; then
  echo "clang-format-14 is not installed (deploy/dev/install-deps.sh installs it)" >&2
  exit 1
fi
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find lib daemon tests benchmarks -name '*.cc' -o -name '*.h')
# shellcheck disable=SC2086
if ! out=$(clang-format-14 --dry-run --Werror $files 2>&1); then
  echo "not formatted as .clang-format says:" >&2
  grep -o '^[^:]*\.\(cc\|h\)' <<< "$out" | sort -u >&2
  head -20 <<< "$out" >&2
  exit 1
fi
echo "every source is formatted ($(wc -w <<< "$files") files)"
