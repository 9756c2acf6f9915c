#!/usr/bin/env bash
# Installs everything ferry needs to build, test and benchmark on Debian 12.
# Idempotent: packages already present are not re-downloaded; safe to run on every CI start.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ninja-build
  libboost1.81-dev liburing-dev libzstd-dev libxxhash-dev libssl-dev libcli11-dev
  googletest libgtest-dev
  # used by the tests and the benchmarks
  python3 openssl iproute2 procps xxhash
  # packaging tests: cpack -G DEB (dpkg-shlibdeps, file), man page rendering, unit checks
  dpkg-dev file man-db systemd
)
BENCH_PKGS=(rsync openssh-client openssh-server iperf3)

missing=()
for p in "${PKGS[@]}" ${FERRY_WITH_BENCH:+"${BENCH_PKGS[@]}"}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
