#!/usr/bin/env bash
# Configures and builds ferry into ./build (or $FERRY_BUILD_DIR). Idempotent and incremental.
# Uses ccache when it is installed (paths are made relative, so git worktrees share hits).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FERRY_BUILD_DIR:-build}
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${FERRY_BUILD_TYPE:-RelWithDebInfo} "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
