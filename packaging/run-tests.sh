#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite with ctest.
# Fresh Debian 12 machine, as root: ./packaging/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
./packaging/build.sh
ctest --test-dir "${FERRY_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 900
