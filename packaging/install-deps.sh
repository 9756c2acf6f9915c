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
  # S3 tests: awscli reads objects back, python3-botocore cross-checks SigV4 signatures
  awscli python3-botocore
  # fuzzing (packaging/run-fuzz.sh): clang 14; libclang-rt-14-dev has libFuzzer and clang's
  # sanitizer runtimes (only recommended by clang); llvm-14 has llvm-symbolizer for stacks
  clang libclang-rt-14-dev llvm-14
)
BENCH_PKGS=(rsync openssh-client openssh-server iperf3 rclone time)

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

# Node.js runs s3rver, the S3-compatible server the S3 tests start on loopback. A Node.js
# that did not come from Debian (e.g. NodeSource, which bundles npm) is used as it is:
# installing Debian's npm beside it would conflict.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi
S3RVER_PREFIX=${FERRY_S3RVER_PREFIX:-/opt/ferry-test/s3rver}
if [ ! -f "$S3RVER_PREFIX/node_modules/s3rver/bin/s3rver.js" ]; then
  echo "install-deps: installing s3rver into $S3RVER_PREFIX"
  mkdir -p "$S3RVER_PREFIX"
  npm install --prefix "$S3RVER_PREFIX" --no-audit --no-fund s3rver@3.7.1
else
  echo "install-deps: s3rver present"
fi
