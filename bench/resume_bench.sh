#!/usr/bin/env bash
# Resume benchmark: kill a 2 GiB transfer at about 50% (kill -9 of the sender,
# then separately of the receiver), re-run it, and measure what the second run
# still sends.
#
#   FERRY=./build/ferry bench/resume_bench.sh          # full run (2 GiB, 3 repetitions)
#   BENCH_BYTES=$((256 << 20)) REPEAT=1 bench/resume_bench.sh   # quick run
#
# The kill is the test-only hook FERRY_TEST_SIGKILL_AFTER_CHUNKS=N: the process
# raises SIGKILL on itself after N chunks (the sender: handed to the kernel; the
# receiver: written), a reproducible point that a kill from outside could not hit.
#
# The report and the PASS/FAIL target lines go to stdout; progress to stderr.
# The exit status is non-zero only if something is broken (a run that exits
# with an unexpected status, a destination that does not match the source, a
# journal that is never released), never because the target was missed.
# See bench/README.md for the environment variables.
set -euo pipefail
export LC_ALL=C
unset FERRY_TEST_SIGKILL_AFTER_CHUNKS   # only set explicitly, per process, below

# shared helpers (log, die, stop_pid, wait_recv_url, ...); also sets SCRIPT_DIR,
# REPO_DIR, GEN and PYTHON
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=resume

# ---------------------------------------------------------------------------
# configuration (all overridable from the environment)
# ---------------------------------------------------------------------------
set_default_ferry
BENCH_BYTES=${BENCH_BYTES:-$((2 << 30))}        # size of the random file
CHUNK_SIZE=${CHUNK_SIZE:-4M}                    # --chunk-size of every send
REPEAT=${REPEAT:-3}
SCENARIOS=${BENCH_SCENARIOS:-sender receiver}   # which kills to run
BENCH_BASELINE=${BENCH_BASELINE:-1}             # 1 = also time an uninterrupted transfer
WIRE_TARGET_PCT=${WIRE_TARGET_PCT:-55}          # run 2 may send at most this % of the file
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}                # seconds, per single send
FERRY_URL_TIMEOUT=${FERRY_URL_TIMEOUT:-15}      # seconds for `ferry recv` to print its URL
JOURNAL_TIMEOUT=${JOURNAL_TIMEOUT:-300}         # seconds for the receiver to release its journals
FERRY_SEND_ARGS=${FERRY_SEND_ARGS:-}            # extra args for every `ferry send` (word-split)
BENCH_TMPDIR=${BENCH_TMPDIR:-/dev/shm}
BENCH_CSV=${BENCH_CSV:-}                        # optional: write every single run here
BENCH_KEEP=${BENCH_KEEP:-0}                     # 1 = keep the work dir (debugging)

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }

# "4M" -> bytes (binary multiples, like ferry)
parse_size() {
    local s=${1^^} n m=1
    case $s in
        *K) m=$((1 << 10)) ;; *M) m=$((1 << 20)) ;; *G) m=$((1 << 30)) ;; *T) m=$((1 << 40)) ;;
    esac
    n=${s%[KMGT]}
    [[ $n =~ ^[0-9]+$ ]] || return 1
    echo $((n * m))
}

# ---------------------------------------------------------------------------
# state + cleanup
# ---------------------------------------------------------------------------
WORK=""
RECV_PID=""
RECV_URL=""

CLEANUP_PID_VARS=(RECV_PID)
install_cleanup_traps

# ---------------------------------------------------------------------------
# sanity checks
# ---------------------------------------------------------------------------
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer"
[[ $BENCH_BYTES =~ ^[1-9][0-9]*$ ]] || die "BENCH_BYTES must be a positive number of bytes"
for s in $SCENARIOS; do
    case $s in sender | receiver) ;; *) die "unknown scenario '$s' in BENCH_SCENARIOS (sender, receiver)" ;; esac
done
CHUNK_BYTES=$(parse_size "$CHUNK_SIZE") || die "CHUNK_SIZE '$CHUNK_SIZE' is not a size (e.g. 4M)"
TOTAL_CHUNKS=$(((BENCH_BYTES + CHUNK_BYTES - 1) / CHUNK_BYTES))
((TOTAL_CHUNKS >= 4)) || die "BENCH_BYTES must hold at least 4 chunks of $CHUNK_SIZE"
KILL_AFTER=${KILL_AFTER_CHUNKS:-$((TOTAL_CHUNKS / 2))}   # 2 GiB / 4M -> 256 = 50%
if ! [[ $KILL_AFTER =~ ^[1-9][0-9]*$ ]] || ((KILL_AFTER >= TOTAL_CHUNKS)); then
    die "KILL_AFTER_CHUNKS must be between 1 and $((TOTAL_CHUNKS - 1))"
fi
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
command -v flock >/dev/null || die "flock not found (util-linux)"
command -v sha1sum >/dev/null || die "sha1sum not found (coreutils)"
[[ -x $FERRY ]] || die "ferry binary not found or not executable: $FERRY (set FERRY=path/to/ferry)"
FERRY=$(abs_path "$FERRY")
"$FERRY" send --help 2>/dev/null | grep -q -- '--retry-timeout' ||
    die "$FERRY send has no --retry-timeout: this ferry has no resume support"
[[ -d $BENCH_TMPDIR ]] || die "BENCH_TMPDIR $BENCH_TMPDIR does not exist"

need=$((2 * BENCH_BYTES + (256 << 20)))   # source + one destination copy + slack
require_free_space "$BENCH_TMPDIR" "$need"

WORK=$(mktemp -d "$BENCH_TMPDIR/ferry-resume.XXXXXX")
SRC_DIR="$WORK/src"
DST="$WORK/dst"
mkdir -p "$SRC_DIR" "$DST"
SRC="$SRC_DIR/random.bin"

if [[ -n $BENCH_CSV ]]; then
    echo "scenario,run,run1_seconds,run2_seconds,run2_bytes_on_wire,chunks_sent,chunks_resumed,bytes_resumed,reconnects" >"$BENCH_CSV"
fi
EXTRA_SEND=()
[[ -n $FERRY_SEND_ARGS ]] && read -r -a EXTRA_SEND <<<"$FERRY_SEND_ARGS"

# ---------------------------------------------------------------------------
# ferry processes
# ---------------------------------------------------------------------------
# start_recv LISTEN [KILL_AFTER]  -> RECV_PID, RECV_URL  (no --once: it must outlive a dead sender)
start_recv() {
    local listen=$1 kill_after=${2:-}
    local out="$WORK/recv.out" err="$WORK/recv.err"
    local -a envs=(env)
    [[ -n $kill_after ]] && envs+=("FERRY_TEST_SIGKILL_AFTER_CHUNKS=$kill_after")
    : >"$out"
    "${envs[@]}" "$FERRY" recv --listen "$listen" --root "$DST" -q >"$out" 2>"$err" &
    RECV_PID=$!
    wait_recv_url RECV_URL "$RECV_PID" "$out" "$err" "ferry recv --listen $listen exited before printing its URL"
}

# wait_recv_death -> the receiver's exit status (it killed itself: 137)
wait_recv_death() {
    local rc=0 deadline=$((SECONDS + 60))
    while kill -0 "$RECV_PID" 2>/dev/null; do
        ((SECONDS < deadline)) || die "the receiver is still alive 60 s after the sender gave up"
        sleep 0.02
    done
    { wait "$RECV_PID"; } 2>/dev/null || rc=$?
    RECV_PID=""
    echo "$rc"
}

# send_once OUT_JSON ERR [KILL_AFTER] [extra send args...] -> sets SEND_RC, SEND_SECONDS
send_once() {
    local out=$1 err=$2 kill_after=$3
    shift 3
    local -a envs=(env)
    [[ -n $kill_after ]] && envs+=("FERRY_TEST_SIGKILL_AFTER_CHUNKS=$kill_after")
    local t0 t1
    SEND_RC=0
    t0=$EPOCHREALTIME
    # the braces keep bash's "Killed" job message out of the report
    { timeout "$RUN_TIMEOUT" "${envs[@]}" "$FERRY" send --no-progress --json --chunk-size "$CHUNK_SIZE" \
        "$@" "${EXTRA_SEND[@]}" "$SRC" "$RECV_URL" >"$out" 2>"$err"; } 2>/dev/null || SEND_RC=$?
    t1=$EPOCHREALTIME
    SEND_SECONDS=$(elapsed "$t0" "$t1")
    ((SEND_RC != 124)) || die "ferry send did not finish within RUN_TIMEOUT=${RUN_TIMEOUT}s"
}

# every journal the receiver keeps must be unlocked (its session for the dead
# sender has ended) before the re-run, or the re-run is refused as a duplicate
wait_journals_released() {
    local dir="$DST/.ferry/journal" deadline=$((SECONDS + JOURNAL_TIMEOUT)) t0=$EPOCHREALTIME f busy
    while :; do
        busy=""
        if [[ -d $dir ]]; then
            for f in "$dir"/*.fj; do
                [[ -e $f ]] || continue
                if ! flock -n "$f" true 2>/dev/null; then busy=$f; break; fi
            done
        fi
        [[ -n $busy ]] || break
        ((SECONDS < deadline)) || die "journal $busy still locked ${JOURNAL_TIMEOUT}s after the sender died"
        kill -0 "$RECV_PID" 2>/dev/null || die "the receiver died while the journal was locked"
        sleep 0.05
    done
    log "  journals released after $(awk -v s="$(elapsed "$t0" "$EPOCHREALTIME")" 'BEGIN { printf "%.2f", s }') s"
}

# parse_json FILE -> "wire chunks_sent chunks_resumed bytes_resumed reconnects seconds"
parse_json() {
    "$PYTHON" - "$1" <<'EOF'
import json, sys
txt = open(sys.argv[1]).read()
try:
    d = json.loads(txt)
except ValueError:
    try:
        d = json.loads(txt[txt.index("{"):txt.rindex("}") + 1])
    except ValueError as e:
        print("cannot parse ferry send --json output: %s" % e); sys.exit(1)
keys = ("bytes_on_wire", "chunks_sent", "chunks_resumed", "bytes_resumed", "reconnects", "seconds")
missing = [k for k in keys if k not in d]
if missing:
    print("ferry JSON lacks %s" % ", ".join(missing)); sys.exit(1)
if d.get("ok") is False:
    print("ferry JSON reports ok=false: %s" % d.get("error", "")); sys.exit(1)
print(" ".join(str(d[k]) for k in keys))
EOF
}

SRC_SHA1=""
verify_dst() {   # what
    local got="$DST/random.bin" sum left
    [[ -f $got ]] || die "$1: $got does not exist after the re-run"
    sum=$(sha1sum <"$got" | awk '{ print $1 }')
    [[ $sum == "$SRC_SHA1" ]] || die "$1: destination SHA-1 $sum != source $SRC_SHA1"
    left=$(find "$DST" -path "$DST/.ferry" -prune -o -type f ! -name random.bin -print | head -n 5)
    [[ -z $left ]] || die "$1: leftover files in the destination: $(echo "$left" | tr '\n' ' ')"
    log "  destination verified (SHA-1 $sum)"
}

# ---------------------------------------------------------------------------
# result bookkeeping
# ---------------------------------------------------------------------------
declare -A R1=() R2=() WIRE=() CSENT=() CRES=() BRES=() RECON=()

record() {   # scenario run run1_s run2_s "wire sent resumed bresumed reconnects jsec"
    local sc=$1 run=$2 wire sent res bres recon jsec
    read -r wire sent res bres recon jsec <<<"$5"
    R1[$sc]="${R1[$sc]:-} $3"
    R2[$sc]="${R2[$sc]:-} $4"
    WIRE[$sc]="${WIRE[$sc]:-} $wire"
    CSENT[$sc]="${CSENT[$sc]:-} $sent"
    CRES[$sc]="${CRES[$sc]:-} $res"
    BRES[$sc]="${BRES[$sc]:-} $bres"
    RECON[$sc]="${RECON[$sc]:-} $recon"
    [[ -z $BENCH_CSV ]] || echo "$sc,$run,$3,$4,$wire,$sent,$res,$bres,$recon" >>"$BENCH_CSV"
    log "  $sc killed, run $run: run1 $3 s, run2 $4 s (ferry: $jsec s), wire $wire B" \
        "($(awk -v w="$wire" -v b="$BENCH_BYTES" 'BEGIN { printf "%.1f", 100 * w / b }')%)," \
        "chunks_sent=$sent chunks_resumed=$res bytes_resumed=$bres reconnects=$recon"
}

# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------
run_sender_killed() {
    local run=$1 rc r1 parsed
    reset_dst
    start_recv 127.0.0.1:0
    log "sender killed, run $run: send, kill -9 itself after $KILL_AFTER of $TOTAL_CHUNKS chunks ($RECV_URL)"
    send_once "$WORK/send1.json" "$WORK/send1.err" "$KILL_AFTER"
    r1=$SEND_SECONDS
    if ((SEND_RC != 137)); then
        tail_file "$WORK/send1.err"
        die "run 1: ferry send exited with status $SEND_RC, expected 137 (its own SIGKILL)"
    fi
    kill -0 "$RECV_PID" 2>/dev/null || die "the receiver died with the sender"
    wait_journals_released
    send_once "$WORK/send2.json" "$WORK/send2.err" ""
    if ((SEND_RC != 0)); then
        tail_file "$WORK/send2.err"; tail_file "$WORK/send2.json"
        die "run 2: ferry send exited with status $SEND_RC"
    fi
    parsed=$(parse_json "$WORK/send2.json") || die "$parsed"
    stop_pid "$RECV_PID"; RECV_PID=""
    verify_dst "sender killed, run $run"
    record sender "$run" "$r1" "$SEND_SECONDS" "$parsed"
}

run_receiver_killed() {
    local run=$1 rc r1 parsed port url1
    reset_dst
    port=$(free_port)
    start_recv "127.0.0.1:$port" "$KILL_AFTER"
    url1=$RECV_URL
    log "receiver killed, run $run: the receiver kills -9 itself after writing $KILL_AFTER of $TOTAL_CHUNKS chunks ($RECV_URL)"
    send_once "$WORK/send1.json" "$WORK/send1.err" "" --retry-timeout 0
    r1=$SEND_SECONDS
    rc=$(wait_recv_death)
    ((rc == 137)) || die "run 1: the receiver exited with status $rc, expected 137 (its own SIGKILL)"
    if ((SEND_RC != 3)); then
        tail_file "$WORK/send1.err"
        die "run 1: ferry send exited with status $SEND_RC, expected 3 (network error: receiver lost)"
    fi
    start_recv "127.0.0.1:$port"
    # a new receiver has a new certificate and token; the same address is what matters
    [[ ${RECV_URL%%\?*} == "${url1%%\?*}" ]] || die "the restarted receiver printed $RECV_URL, expected ${url1%%\?*}..."
    send_once "$WORK/send2.json" "$WORK/send2.err" "" --retry-timeout 0
    if ((SEND_RC != 0)); then
        tail_file "$WORK/send2.err"; tail_file "$WORK/send2.json"
        die "run 2: ferry send exited with status $SEND_RC"
    fi
    parsed=$(parse_json "$WORK/send2.json") || die "$parsed"
    stop_pid "$RECV_PID"; RECV_PID=""
    verify_dst "receiver killed, run $run"
    record receiver "$run" "$r1" "$SEND_SECONDS" "$parsed"
}

BASE_S=() BASE_W=()
run_baseline() {
    local run=$1 parsed wire
    reset_dst
    start_recv 127.0.0.1:0
    send_once "$WORK/send0.json" "$WORK/send0.err" ""
    if ((SEND_RC != 0)); then
        tail_file "$WORK/send0.err"
        die "uninterrupted run: ferry send exited with status $SEND_RC"
    fi
    parsed=$(parse_json "$WORK/send0.json") || die "$parsed"
    stop_pid "$RECV_PID"; RECV_PID=""
    verify_dst "uninterrupted, run $run"
    read -r wire _ <<<"$parsed"
    BASE_S+=("$SEND_SECONDS"); BASE_W+=("$wire")
    [[ -z $BENCH_CSV ]] || echo "uninterrupted,$run,,$SEND_SECONDS,$wire,,,," >>"$BENCH_CSV"
    log "uninterrupted, run $run: $SEND_SECONDS s, wire $wire B"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
log "work dir $WORK, $(human "$BENCH_BYTES") file, chunk $CHUNK_SIZE ($TOTAL_CHUNKS chunks), kill after $KILL_AFTER, repeat=$REPEAT, scenarios='$SCENARIOS'"
log "ferry: $FERRY"
log "generating one $(human "$BENCH_BYTES") random file"
"$PYTHON" "$GEN" random "$SRC_DIR" --bytes "$BENCH_BYTES" --name random.bin
SRC_SHA1=$(sha1sum <"$SRC" | awk '{ print $1 }')
log "  source SHA-1 $SRC_SHA1"

for ((r = 1; r <= REPEAT; r++)); do
    # scenarios take turns within each repetition, so drift in load spreads over all
    has "$SCENARIOS" sender && run_sender_killed "$r"
    has "$SCENARIOS" receiver && run_receiver_killed "$r"
    [[ $BENCH_BASELINE == 1 ]] && run_baseline "$r"
done
reset_dst

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
pct() { awk -v w="$1" -v b="$BENCH_BYTES" 'BEGIN { printf "%.1f", 100 * w / b }'; }
fmt='%-17s %8s %8s %16s %7s %12s %15s %15s %11s\n'
{
    echo
    echo "# ferry resume benchmark -- $(host_stamp)"
    echo "# one $(human "$BENCH_BYTES") random file ($BENCH_BYTES B), loopback, data in $BENCH_TMPDIR, chunk $CHUNK_SIZE ($TOTAL_CHUNKS chunks)"
    echo "# kill -9 after $KILL_AFTER chunks ($(awk -v k="$KILL_AFTER" -v t="$TOTAL_CHUNKS" 'BEGIN { printf "%.1f", 100 * k / t }')%), median of $REPEAT run(s)"
    echo "# ferry: $FERRY ($(ferry_version))"
    echo
    # shellcheck disable=SC2059
    printf "$fmt" killed run1_s run2_s run2_wire_bytes wire_% chunks_sent chunks_resumed bytes_resumed reconnects
    for sc in $SCENARIOS; do
        # shellcheck disable=SC2086,SC2059
        {
            w=$(median ${WIRE[$sc]} | awk '{ printf "%.0f", $1 }')
            printf "$fmt" "$sc" "$(median ${R1[$sc]} | awk '{ printf "%.3f", $1 }')" \
                "$(median ${R2[$sc]} | awk '{ printf "%.3f", $1 }')" "$w" "$(pct "$w")" \
                "$(median ${CSENT[$sc]} | awk '{ printf "%.0f", $1 }')" \
                "$(median ${CRES[$sc]} | awk '{ printf "%.0f", $1 }')" \
                "$(median ${BRES[$sc]} | awk '{ printf "%.0f", $1 }')" \
                "$(median ${RECON[$sc]} | awk '{ printf "%.0f", $1 }')"
        }
    done
    if ((${#BASE_S[@]})); then
        w=$(median "${BASE_W[@]}" | awk '{ printf "%.0f", $1 }')
        # shellcheck disable=SC2059
        printf "$fmt" "(uninterrupted)" - "$(median "${BASE_S[@]}" | awk '{ printf "%.3f", $1 }')" "$w" "$(pct "$w")" - - - -
    fi
    echo
    echo "# run1_s / run2_s: wall time of the killed run and of the re-run (script-timed)."
    echo "# run2_wire_bytes, chunks_sent, chunks_resumed, bytes_resumed, reconnects: run 2's send --json."
    echo
    echo "targets:"
    for sc in $SCENARIOS; do
        # shellcheck disable=SC2086
        w=$(median ${WIRE[$sc]} | awk '{ printf "%.0f", $1 }')
        # shellcheck disable=SC2086
        worst=$(maximum ${WIRE[$sc]})
        lim=$(awk -v b="$BENCH_BYTES" -v p="$WIRE_TARGET_PCT" 'BEGIN { printf "%.0f", b * p / 100 }')
        v=$(awk -v w="$w" -v l="$lim" 'BEGIN { print (w + 0 <= l + 0) ? "PASS" : "FAIL" }')
        printf '  %-8s killed: run 2 wire bytes <= %s%% of the file: %s (%s%%, worst %s%%) vs %s  %s\n' \
            "$sc" "$WIRE_TARGET_PCT" "$w" "$(pct "$w")" "$(pct "$worst")" "$lim" "$v"
    done
}

log "done"
