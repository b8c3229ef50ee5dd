#!/usr/bin/env bash
# RocksDB stays behind the store adapter (issue "The store at the real
# scale", item 5): no public header of lib/adapters/store/include and no
# file of the core, the service or the daemon includes a RocksDB header.
# Fails naming each line that does. Usage: store_boundary.sh SOURCE_DIR
set -euo pipefail
src=$1
found=$(grep -rnE '#include\s*[<"]rocksdb/' \
          "$src/lib/adapters/store/include" "$src/lib/core" "$src/lib/service" "$src/daemon" \
          --include='*.cc' --include='*.h' || true)
if [ -n "$found" ]; then
  echo "RocksDB is named outside the store adapter's private files:" >&2
  echo "$found" >&2
  exit 1
fi
echo "RocksDB is included only by the store adapter's private files"
