#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and running the
# demo need. Idempotent: when nothing is missing it changes nothing and
# touches no network. Run as root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries (docs/architecture.md says why each is here)
  librocksdb-dev librdkafka-dev libspdlog-dev libfmt-dev prometheus-cpp-dev libboost-dev
  libsimdjson-dev libtomlplusplus-dev nlohmann-json3-dev libssl-dev libsystemd-dev libphonenumber-dev
  # tests and benchmarks; clang and its libFuzzer runtime for deploy/dev/fuzz.sh
  libgtest-dev libgmock-dev libbenchmark-dev prometheus rocksdb-tools util-linux curl
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
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
