#!/usr/bin/env bash
# Builds Debian 12's own RocksDB release (the source of librocksdb-dev,
# fetched with `apt-get source`) as an optimised library: NDEBUG (Debian's
# package keeps RocksDB's assertions and test sync points on) and SSE4.2
# (hardware CRC32C; Debian's package is built without it). The result is
# installed into a cache directory and reused: the next run does nothing.
#
#   deploy/dev/build-rocksdb.sh [PREFIX]
#
# PREFIX defaults to /var/cache/cdr-retention/rocksdb-release; its .complete
# file names the Debian version built (a new one is built again). The
# release preset and the container image link against it when it is there
# (CDR_ROCKSDB_PREFIX) and fall back to Debian's librocksdb-dev otherwise.
# docs/architecture.md ("The RocksDB build") has the measurements behind it.
# 12-21 minutes on 2 cores; run as root the first time (apt-get).
set -euo pipefail

usage="usage: build-rocksdb.sh [PREFIX] (default /var/cache/cdr-retention/rocksdb-release)"
case "${1:-}" in
  -h | --help)
    echo "$usage"
    exit 0
    ;;
  -*)
    echo "build-rocksdb: unknown option $1; $usage" >&2
    exit 2
    ;;
esac
if [ $# -gt 1 ]; then
  echo "build-rocksdb: one PREFIX at most; $usage" >&2
  exit 2
fi

version=$(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || true)
if [ -z "$version" ]; then
  echo "build-rocksdb: librocksdb-dev is not installed (deploy/dev/install-deps.sh first)" >&2
  exit 1
fi
# Absolute (the build runs in a temporary directory), and never a directory
# this script did not make: it is emptied before each install.
prefix=$(realpath -m "${1:-/var/cache/cdr-retention/rocksdb-release}")
if [ -e "$prefix" ] && [ ! -f "$prefix/.complete" ] && [ -n "$(ls -A "$prefix" 2>/dev/null)" ]; then
  echo "build-rocksdb: $prefix is not empty and holds no earlier build of this script; refusing to replace it" >&2
  exit 2
fi
if [ -f "$prefix/.complete" ] && [ "$(cat "$prefix/.complete")" = "$version" ]; then
  echo "build-rocksdb: $prefix holds RocksDB $version (release build); nothing to do"
  exit 0
fi

if ! apt-get source --print-uris rocksdb >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-rocksdb: no deb-src source for apt; run as root once to add it" >&2
    exit 1
  fi
  # Source entries beside the binary ones the machine already uses, from
  # either format (Debian images use deb822 .sources files, mmdebstrap a
  # one-line sources.list).
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -n 's/^Types: deb$/Types: deb-src/p; /^Types:/!p' "$f"
    echo
  done >/etc/apt/sources.list.d/cdr-retention-src.sources
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list >/etc/apt/sources.list.d/cdr-retention-src.list
  fi
  apt-get update -q
fi
if ! command -v dpkg-source >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dpkg-dev
fi

work=$(mktemp -d /tmp/cdr-rocksdb.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -q rocksdb="$version"
src=$(find . -maxdepth 1 -type d -name 'rocksdb-*' | head -n 1)
# Only the static library: no tools, tests or benchmarks of its own. With
# RTTI, as Debian builds it (a release build drops it by default, and the
# store's RocksDB subclasses need RocksDB's type information).
cmake -S "$src" -B build -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DPORTABLE=ON -DFORCE_SSE42=ON -DUSE_RTTI=ON -DFAIL_ON_WARNINGS=OFF \
  -DWITH_LZ4=ON -DWITH_ZSTD=ON -DWITH_SNAPPY=ON -DWITH_ZLIB=ON -DWITH_BZ2=ON \
  -DWITH_GFLAGS=OFF -DWITH_TESTS=OFF -DWITH_BENCHMARK_TOOLS=OFF -DWITH_TOOLS=OFF -DWITH_CORE_TOOLS=OFF \
  -DWITH_TRACE_TOOLS=OFF -DROCKSDB_BUILD_SHARED=OFF -DWITH_JNI=OFF
cmake --build build -j"$(nproc)"
rm -rf "$prefix"
cmake --install build
echo "$version" >"$prefix/.complete"
echo "build-rocksdb: installed RocksDB $version (release build) into $prefix"
