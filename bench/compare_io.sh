#!/usr/bin/env bash
# File I/O backends side by side: posix (pread/pwrite) vs uring (io_uring), on the same
# files in the same run, (a) in the page cache (/dev/shm) and (b) on the real disk
# (page cache dropped before every read run; writes include the fsync).
#
# Two levels:
#   standalone  bench/file_io/file_io_bench (the engine's FileIo only: K threads reading or
#               writing one file chunk by chunk, as ferry's workers do); on the disk also
#               with O_DIRECT (IO_DIRECT=1, the default) to decide whether --direct is worth
#               shipping.
#   e2e         `ferry send --io X` to `ferry recv --io X` over loopback (plaintext, so the
#               crypto does not hide the I/O), one large random file.
#
#   bench/compare_io.sh                        # defaults: 1 GiB, 2 threads, 4 MiB chunks
#   IO_BYTES=256M REPEAT=1 bench/compare_io.sh # quick
#
# Environment: FERRY (default build/ferry), FILE_IO_BENCH (build/file_io_bench), IO_BYTES
# (size of the file, default 1G), IO_THREADS (2), IO_CHUNK (4M), REPEAT (3, runs per cell,
# backends interleaved, the median is shown), DISK_DIR (a directory on the real disk,
# default /var/tmp), SHM_DIR (/dev/shm), IO_DIRECT (1), IO_LEVELS ("standalone e2e").
# Needs root for drop_caches (without it the disk read rows are skipped, saying so).
# Results: a table on stdout (MB/s = 10^6 bytes/s, u/p = uring / posix; "shared" is the
# bench-only one-ring-behind-a-mutex design, standalone only); progress on stderr.
set -euo pipefail
export LC_ALL=C
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=io
set_default_ferry
FILE_IO_BENCH=${FILE_IO_BENCH:-$(dirname "$FERRY")/file_io_bench}
IO_BYTES=${IO_BYTES:-1G}
IO_THREADS=${IO_THREADS:-2}
IO_CHUNK=${IO_CHUNK:-4M}
REPEAT=${REPEAT:-3}
DISK_DIR=${DISK_DIR:-/var/tmp}
SHM_DIR=${SHM_DIR:-/dev/shm}
IO_DIRECT=${IO_DIRECT:-1}
IO_LEVELS=${IO_LEVELS:-standalone e2e}
FERRY_URL_TIMEOUT=${FERRY_URL_TIMEOUT:-15}
BENCH_KEEP=${BENCH_KEEP:-0}

[[ -x $FERRY ]] || die "no ferry binary at $FERRY (build first, or set FERRY)"
[[ -x $FILE_IO_BENCH ]] || die "no file_io_bench at $FILE_IO_BENCH (cmake --build build --target file_io_bench)"
bytes=$("$PYTHON" -c "
import sys; t=sys.argv[1].upper(); m={'K':1<<10,'M':1<<20,'G':1<<30}
print(int(float(t[:-1])*m[t[-1]]) if t[-1] in m else int(t))" "$IO_BYTES")

WORK=""
SHM_WORK=$(mktemp -d "$SHM_DIR/ferry-io-XXXXXX")
DISK_WORK=$(mktemp -d "$DISK_DIR/ferry-io-XXXXXX")
RX_PID=""
CLEANUP_PID_VARS=(RX_PID)
# Both work dirs go; lib.sh's cleanup removes $WORK only, so chain it.
cleanup_io() { if [[ $BENCH_KEEP != 1 ]]; then rm -rf -- "$SHM_WORK" "$DISK_WORK"; fi; cleanup; }
trap cleanup_io EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
require_free_space "$DISK_WORK" $((bytes * 3))
require_free_space "$SHM_WORK" $((bytes * 3))

can_drop=0
if [[ -w /proc/sys/vm/drop_caches ]]; then can_drop=1; fi
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# run_standalone IO OP FILE [EXTRA...]: MB/s of one file_io_bench run
run_standalone() {
    local io=$1 op=$2 file=$3
    shift 3
    "$FILE_IO_BENCH" --io "$io" --op "$op" --file "$file" --size "$bytes" --threads "$IO_THREADS" \
        --chunk "$IO_CHUNK" "$@" | sed -n 's/.*MBps=\([0-9.]*\).*/\1/p'
}

# run_e2e IO SRC_FILE DST_DIR: MB/s of one ferry send --io IO to a ferry recv --io IO
run_e2e() {
    local io=$1 src=$2 dst=$3 url t0 t1
    rm -rf -- "$dst"; mkdir -p "$dst"
    "$FERRY" recv --listen 127.0.0.1:0 --root "$dst" --once -q --plaintext --io "$io" \
        >"$SHM_WORK/rx.out" 2>"$SHM_WORK/rx.err" &
    RX_PID=$!
    wait_recv_url url "$RX_PID" "$SHM_WORK/rx.out" "$SHM_WORK/rx.err"
    t0=$EPOCHREALTIME
    "$FERRY" send -q --no-progress --plaintext --compress none --io "$io" "$src" "$url" \
        2>"$SHM_WORK/tx.err" || { tail_file "$SHM_WORK/tx.err"; die "ferry send --io $io failed"; }
    t1=$EPOCHREALTIME
    wait "$RX_PID" || { tail_file "$SHM_WORK/rx.err"; die "ferry recv --io $io failed"; }
    RX_PID=""
    cmp -s "$src" "$dst/$(basename "$src")" || die "e2e --io $io: destination differs from source"
    awk -v b="$bytes" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f\n", b / s / 1e6 }'
}

ROWS=()
# row NAME BACKENDS PREP CMD...: REPEAT x each backend of BACKENDS, interleaved; PREP runs
# before each run with the backend as $1 (e.g. drop caches); CMD gets the backend as its
# first argument and prints MB/s. Columns: posix, uring, uring-shared ("-" when not run),
# then uring / posix.
row() {
    local name=$1 backends=$2 prep=$3
    shift 3
    local -A runs=()
    local v io
    for _ in $(seq 1 "$REPEAT"); do
        for io in $backends; do
            $prep "$io"
            v=$("$@" "$io") || die "$name ($io) failed"
            [[ -n $v ]] || die "$name ($io): no result"
            runs[$io]+="$v "
        done
    done
    local -A med=()
    for io in posix uring uring-shared; do
        # shellcheck disable=SC2086  # the runs are space-separated numbers
        if [[ -n ${runs[$io]:-} ]]; then med[$io]=$(median ${runs[$io]}); else med[$io]="-"; fi
    done
    log "$name: posix ${runs[posix]}| uring ${runs[uring]}| uring-shared ${runs[uring-shared]:--}"
    ROWS+=("$(printf '%-44s %10.1f %10.1f %12s %7.2f' "$name" "${med[posix]}" "${med[uring]}" \
        "$([[ ${med[uring-shared]} == - ]] && echo - || printf '%.1f' "${med[uring-shared]}")" \
        "$(awk -v a="${med[uring]}" -v b="${med[posix]}" 'BEGIN { print a / b }')")")
}
SA="posix uring uring-shared"   # standalone: the engine's two backends and the shared-ring design
E2E="posix uring"

nothing() { :; }
dropped() { drop_caches; }
# Reads need the file to exist: written once per place by the posix backend, untimed.
make_file() { "$FILE_IO_BENCH" --io posix --op write --file "$1" --size "$bytes" --chunk 4M --fsync >/dev/null; }

sa_write_shm() { run_standalone "$1" write "$SHM_WORK/w.bin"; }
sa_read_shm() { run_standalone "$1" read "$SHM_WORK/r.bin"; }
sa_write_disk() { run_standalone "$1" write "$DISK_WORK/w.bin" --fsync; }
sa_read_disk() { run_standalone "$1" read "$DISK_WORK/r.bin"; }
sa_write_disk_direct() { run_standalone "$1" write "$DISK_WORK/w.bin" --fsync --direct; }
sa_read_disk_direct() { run_standalone "$1" read "$DISK_WORK/r.bin" --direct; }
e2e_shm() { run_e2e "$1" "$SHM_WORK/src.bin" "$SHM_WORK/dst"; }
e2e_disk() { run_e2e "$1" "$DISK_WORK/src.bin" "$DISK_WORK/dst"; }

log "$(host_stamp); $(ferry_version); file $(human "$bytes"), $IO_THREADS threads, chunk $IO_CHUNK, repeat $REPEAT"
if has "$IO_LEVELS" standalone; then
    make_file "$SHM_WORK/r.bin"
    cat "$SHM_WORK/r.bin" >/dev/null
    make_file "$DISK_WORK/r.bin"
    row "standalone write, page cache (/dev/shm)" "$SA" nothing sa_write_shm
    row "standalone read, page cache (/dev/shm)" "$SA" nothing sa_read_shm
    row "standalone write + fsync, disk" "$SA" nothing sa_write_disk
    if ((can_drop)); then
        row "standalone read, disk (cold cache)" "$SA" dropped sa_read_disk
    else
        log "not root: skipping the cold-cache disk reads (drop_caches is not writable)"
    fi
    if [[ $IO_DIRECT == 1 ]]; then
        row "standalone write + fsync, disk, O_DIRECT" "$SA" nothing sa_write_disk_direct
        ((can_drop)) && row "standalone read, disk (cold), O_DIRECT" "$SA" dropped sa_read_disk_direct
    fi
    rm -f "$SHM_WORK/r.bin" "$SHM_WORK/w.bin" "$DISK_WORK/r.bin" "$DISK_WORK/w.bin"
fi
if has "$IO_LEVELS" e2e; then
    head -c "$bytes" /dev/urandom >"$SHM_WORK/src.bin"
    cp "$SHM_WORK/src.bin" "$DISK_WORK/src.bin"
    row "e2e ferry send/recv, page cache (/dev/shm)" "$E2E" nothing e2e_shm
    if ((can_drop)); then
        row "e2e ferry send/recv, disk (cold cache)" "$E2E" dropped e2e_disk
    else
        row "e2e ferry send/recv, disk (warm cache)" "$E2E" nothing e2e_disk
    fi
fi

printf '\n%s; %s\n' "$(host_stamp)" "$(ferry_version)"
printf 'file %s, %s threads, chunk %s, median of %s\n' "$(human "$bytes")" "$IO_THREADS" "$IO_CHUNK" "$REPEAT"
printf '%-44s %10s %10s %12s %7s\n' "case" "posix MB/s" "uring MB/s" "shared MB/s" "u/p"
printf '%s\n' "${ROWS[@]}"
