#!/usr/bin/env bash
# Sanitizer CI step (issue 7): any AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer
# or ThreadSanitizer report fails it.
#   ./packaging/run-sanitizers.sh [asan|tsan|all]      (default all)
# asan: builds ./build-asan with -fsanitize=address,undefined and runs the WHOLE ctest suite.
# tsan: builds ./build-tsan with -fsanitize=thread, only the executables the selection needs,
#       and runs the pipeline and transport tests:
#         ctest -L '^(session|transport|udp|cc)$'   session scheduling/governor, frame sockets
#                                                   with TLS, UDP data path, congestion control
#         ctest -L '^e2e$' -R '^(TransferTest|UdpTransferTest)\.'
#                                                   whole sender/receiver pipelines, TCP and UDP
#         ctest -L '^s3$' -R "$tsan_s3"             S3 uploader and ferryd's S3 export sink
#       (the rest of the suite is parsers, files and processes around that pipeline: ASan's job).
# Every sanitized process (tests and the ferry/ferryd they start) logs reports to
# <build dir>/sanitizer-logs/ instead of stderr, so a report from a child process fails the
# step even when the test that started it did not notice. Sanitizers slow tests 2-10x:
# FERRY_SAN_TEST_TIMEOUT (default 2400 s) replaces ctest's per-test limit; nothing is skipped.
# Uses ccache like build.sh. Needs Debian's g++ 12 (packaging/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
case "$MODE" in asan|tsan|all) ;; *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;; esac
JOBS=$(nproc)
TIMEOUT=${FERRY_SAN_TEST_TIMEOUT:-2400}
SUPP=$PWD/packaging/sanitizer-suppressions

launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# -O1 -g1 instead of RelWithDebInfo's -O2 -g: the usual optimization level for sanitizer
# builds, and line tables are all a report's stack trace needs; both compile markedly faster
# than -O2 -g on the Asio-heavy sources, and the compile is most of this step's time.
configure() {  # DIR SANITIZERS
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    "${launcher[@]}" -DFERRY_SANITIZE="$2" -DFERRY_TEST_TIMEOUT="$TIMEOUT" >/dev/null
}

# Fails (after printing them) if any sanitized process wrote a report into DIR.
check_logs() {
  local dir=$1 found=0 f
  for f in "$dir"/*; do
    [ -s "$f" ] || continue
    found=1
    echo "=== sanitizer report: $f"
    cat "$f"
  done
  if ((found)); then
    echo "run-sanitizers: sanitizer reports above ($dir)" >&2
    return 1
  fi
}

# halt_on_error: the first report ends the process (non-zero), so it cannot be missed.
common=halt_on_error=1:print_stacktrace=1

run_asan() {
  local dir=build-asan logs rc
  # (set -e does not apply inside a function called with ||: every step checks itself.)
  configure "$dir" address,undefined || return 1
  cmake --build "$dir" -j "$JOBS" || return 1
  logs=$PWD/$dir/sanitizer-logs
  rm -rf "$logs" && mkdir -p "$logs"
  # detect_stack_use_after_return stays at its default (off) to keep the step's time down.
  ASAN_OPTIONS=$common:detect_leaks=1:abort_on_error=0:check_initialization_order=1:log_path=$logs/asan \
  LSAN_OPTIONS=suppressions=$SUPP/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=$common:log_path=$logs/ubsan \
    ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout "$TIMEOUT" && rc=0 || rc=$?
  check_logs "$logs" || rc=1
  return $rc
}

# The S3 pipelines: the uploader's worker threads on one budget (multipart, tree, resume
# after a kill) and ferryd's S3 export sink (TCP and UDP sessions feeding upload workers).
# Not the peak-RSS tests: TSan's shadow memory is most of the RSS they would measure.
tsan_s3='^(S3UploadTest\.(Large|Tree|Killed)|DaemonS3ExportTest\.(Tree|Sync|Udp|SenderKilled|BudgetSmaller))'

run_tsan() {
  local dir=build-tsan logs targets rc t
  configure "$dir" thread || return 1
  # Only what the selection runs (and the ferry/ferryd binaries the e2e tests start).
  targets=(ferry ferryd e2e_transfer_test e2e_udp_transfer_test s3_s3_upload_test s3_daemon_export_test)
  for t in tests/session/*_test.cc tests/transport/*_test.cc tests/udp/*_test.cc tests/cc/*_test.cc; do
    targets+=("$(basename "$(dirname "$t")")_$(basename "$t" .cc)")
  done
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}" || return 1
  logs=$PWD/$dir/sanitizer-logs
  rm -rf "$logs" && mkdir -p "$logs"
  export TSAN_OPTIONS=$common:second_deadlock_stack=1:suppressions=$SUPP/tsan.supp:log_path=$logs/tsan
  rc=0
  # setarch -R (no ASLR, inherited by every child): GCC 12's TSan cannot map its shadow
  # memory on kernels with vm.mmap_rnd_bits > 28 ("unexpected memory mapping").
  local run=(setarch "$(uname -m)" -R ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout "$TIMEOUT")
  "${run[@]}" -L '^(session|transport|udp|cc)$' || rc=1
  "${run[@]}" -L '^e2e$' -R '^(TransferTest|UdpTransferTest)\.' || rc=1
  "${run[@]}" -L '^s3$' -R "$tsan_s3" || rc=1
  unset TSAN_OPTIONS
  check_logs "$logs" || rc=1
  return $rc
}

status=0
if [ "$MODE" != tsan ]; then
  start=$SECONDS
  run_asan || status=1
  echo "run-sanitizers: asan+ubsan $([ $status = 0 ] && echo clean || echo FAILED) in $((SECONDS - start)) s"
fi
if [ "$MODE" != asan ]; then
  start=$SECONDS
  t=0
  run_tsan || t=1
  echo "run-sanitizers: tsan $([ $t = 0 ] && echo clean || echo FAILED) in $((SECONDS - start)) s"
  ((t == 0)) || status=1
fi
exit $status
