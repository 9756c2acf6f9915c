#!/usr/bin/env bash
# Fuzzing CI step (issue 7): builds the libFuzzer targets of tests/fuzz/ into ./build-fuzz
# (clang, -fsanitize=fuzzer,address,undefined) and runs each for SECONDS (default 30),
# failing on any crash, leak, timeout, out-of-memory or sanitizer report.
#   ./packaging/run-fuzz.sh            CI: 30 s per target
#   ./packaging/run-fuzz.sh 600        longer local run (or: cmake --build build-fuzz --target fuzz_long)
#   FERRY_FUZZ_TARGETS="frame_decoder journal_reader" ./packaging/run-fuzz.sh 60   some targets only
# Each target starts from its committed seeds, tests/fuzz/corpus/<target>/ (read only; crash
# inputs committed there are replayed as regressions on every run). Inputs it discovers go to
# build-fuzz/fuzz-corpus/<target>/ and carry over between local runs; a failing input is
# saved as build-fuzz/fuzz-artifacts/<target>-crash-... (add it to the seeds with the fix).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
DIR=${FERRY_FUZZ_BUILD_DIR:-build-fuzz}

targets=()
for src in tests/fuzz/*_fuzz.cc; do
  name=$(basename "$src" _fuzz.cc)
  if [ -n "${FERRY_FUZZ_TARGETS:-}" ] && [[ " $FERRY_FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  targets+=("$name")
done

if [ -z "${FERRY_FUZZ_NO_BUILD:-}" ]; then
  launcher=()
  if command -v ccache >/dev/null; then
    export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  CC=clang CXX=clang++ cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
    -DFERRY_FUZZ=ON >/dev/null
  cmake --build "$DIR" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
fi

# The first report ends the run with a non-zero status; leaks are reported (libFuzzer checks
# for them after every input that allocated more than it freed).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=()
for name in "${targets[@]}"; do
  work=$DIR/fuzz-corpus/$name
  mkdir -p "$work" "$DIR/fuzz-artifacts"
  log=$DIR/fuzz-artifacts/$name.log
  echo "run-fuzz: $name for ${SECONDS_PER_TARGET}s"
  # -timeout: one input running 25 s is a hang, reported as a failure like a crash.
  if "$DIR/tests/fuzz/fuzz_$name" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=25 \
       -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$DIR/fuzz-artifacts/$name-" \
       "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$log" | tail -2 | sed "s/^/  /"
  else
    echo "run-fuzz: $name FAILED; its log ($log) ends:" >&2
    tail -n 60 "$log" >&2
    failed+=("$name")
  fi
done
if ((${#failed[@]})); then
  echo "run-fuzz: failures in: ${failed[*]} (inputs in $DIR/fuzz-artifacts/)" >&2
  exit 1
fi
echo "run-fuzz: ${#targets[@]} targets clean"
