#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and running the
# demo need. Idempotent: when nothing is missing it changes nothing and
# touches no network. Run as root.
#
#   deploy/dev/install-deps.sh [--release-rocksdb]
#
# --release-rocksdb also builds Debian's RocksDB source as a release library
# (NDEBUG, SSE4.2) into /var/cache/cdr-retention/rocksdb-release, once
# (deploy/dev/build-rocksdb.sh, about 12 minutes on 2 cores); the release
# preset and the container image link it when it is there.
set -euo pipefail

release_rocksdb=false
for arg in "$@"; do
  case "$arg" in
    --release-rocksdb) release_rocksdb=true ;;
    *)
      echo "install-deps: unknown argument $arg (usage: install-deps.sh [--release-rocksdb])" >&2
      exit 2
      ;;
  esac
done
finish() {
  if $release_rocksdb; then exec "$(dirname "$0")/build-rocksdb.sh"; fi
  exit 0
}

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries (docs/architecture.md says why each is here)
  librocksdb-dev librdkafka-dev libspdlog-dev libfmt-dev prometheus-cpp-dev libboost-dev
  libsimdjson-dev libtomlplusplus-dev nlohmann-json3-dev libssl-dev libsystemd-dev libphonenumber-dev
  # tests and benchmarks; clang and its libFuzzer runtime for deploy/dev/fuzz.sh
  libgtest-dev libgmock-dev libbenchmark-dev prometheus rocksdb-tools util-linux curl
  clang-14 libclang-rt-14-dev clang-format-14
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  finish
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (apt-get) to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
finish
