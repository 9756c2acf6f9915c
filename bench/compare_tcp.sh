#!/usr/bin/env bash
# Throughput benchmark: ferry vs rsync (daemon, --whole-file) vs scp, with an
# iperf3 single-stream measurement as the loopback ceiling.
#
# Everything runs on 127.0.0.1 with source and destination under /dev/shm.
# See bench/README.md for usage, environment variables and column meanings.
#
#   FERRY=./build/ferry bench/compare_tcp.sh            # full run
#   BENCH_SCALE=small bench/compare_tcp.sh              # quick run
#
# The results table and the target PASS/FAIL lines go to stdout; progress
# goes to stderr.  The exit status is non-zero only if something is broken
# (a tool failed, a destination did not match its source, ...), never because
# a performance target was missed.
set -euo pipefail
export LC_ALL=C

# shared helpers (log, die, stop_pid, start_rsyncd, ...); also sets SCRIPT_DIR,
# REPO_DIR, GEN and PYTHON
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=bench
STOP_PID_TRIES=40       # 2 s for a process to exit on SIGTERM

# ---------------------------------------------------------------------------
# configuration (all overridable from the environment)
# ---------------------------------------------------------------------------
set_default_ferry

BENCH_SCALE=${BENCH_SCALE:-full}
case $BENCH_SCALE in
    full)
        d_a_bytes=$((2 << 30)); d_b_files=10000; d_b_dirs=100
        d_c_bytes=$((1 << 30)); d_c_files=8 ;;
    small)
        d_a_bytes=$((64 << 20)); d_b_files=500; d_b_dirs=10
        d_c_bytes=$((64 << 20)); d_c_files=2 ;;
    *) echo "compare_tcp.sh: BENCH_SCALE must be 'full' or 'small'" >&2; exit 2 ;;
esac
A_BYTES=${BENCH_A_BYTES:-$d_a_bytes}            # (a) size of the single random file
B_FILES=${BENCH_B_FILES:-$d_b_files}            # (b) number of small files
B_FILE_BYTES=${BENCH_B_FILE_BYTES:-65536}       # (b) size of each small file
B_DIRS=${BENCH_B_DIRS:-$d_b_dirs}               # (b) directories they are spread over
C_BYTES=${BENCH_C_BYTES:-$d_c_bytes}            # (c) total size of the compressible data
C_FILES=${BENCH_C_FILES:-$d_c_files}            # (c) number of files it is split into
REPEAT=${REPEAT:-3}
WORKLOADS=${BENCH_WORKLOADS:-a b c}
TOOLS=${BENCH_TOOLS:-ferry rsync scp iperf3}
IPERF_SECONDS=${IPERF_SECONDS:-5}
IPERF_CC=${IPERF_CC:-cubic}
C_TIME_TOLERANCE=${C_TIME_TOLERANCE:-0.05}      # (c) auto may be this much slower than none
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}                # seconds, per single transfer
FERRY_URL_TIMEOUT=${FERRY_URL_TIMEOUT:-15}      # seconds for `ferry recv` to print its URL
FERRY_EXIT_TIMEOUT=${FERRY_EXIT_TIMEOUT:-60}    # seconds for `ferry recv` to exit after send
FERRY_SEND_ARGS=${FERRY_SEND_ARGS:-}            # extra args for `ferry send` (word-split)
RSYNC_EXTRA_ARGS=${RSYNC_EXTRA_ARGS:-}          # extra args for the rsync client
SCP_EXTRA_ARGS=${SCP_EXTRA_ARGS:-}              # extra args for scp, e.g. "-O" or "-c aes128-gcm@openssh.com"
SSHD_BIN=${SSHD_BIN:-/usr/sbin/sshd}
BENCH_TMPDIR=${BENCH_TMPDIR:-/dev/shm}
BENCH_CSV=${BENCH_CSV:-}                        # optional: write every single run here
BENCH_KEEP=${BENCH_KEEP:-0}                     # 1 = keep the work dir (debugging)

# ---------------------------------------------------------------------------
# state + cleanup
# ---------------------------------------------------------------------------
WORK=""
RSYNCD_PID=""
SSHD_PID=""
IPERF_SRV_PID=""
FERRY_RECV_PID=""
CLEANUP_PID_VARS=(FERRY_RECV_PID IPERF_SRV_PID RSYNCD_PID SSHD_PID)
install_cleanup_traps

# ---------------------------------------------------------------------------
# sanity checks
# ---------------------------------------------------------------------------
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer"
for w in $WORKLOADS; do [[ $w == [abc] ]] || die "unknown workload '$w' in BENCH_WORKLOADS"; done
for t in $TOOLS; do
    case $t in ferry | rsync | scp | iperf3) ;; *) die "unknown tool '$t' in BENCH_TOOLS" ;; esac
done
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
if have_tool ferry; then
    [[ -x $FERRY ]] || die "ferry binary not found or not executable: $FERRY (set FERRY=path/to/ferry)"
    FERRY=$(abs_path "$FERRY")
fi
have_tool rsync && { command -v rsync >/dev/null || die "rsync not installed (apt-get install -y rsync)"; }
have_tool iperf3 && { command -v iperf3 >/dev/null || die "iperf3 not installed (apt-get install -y iperf3)"; }
[[ -d $BENCH_TMPDIR ]] || die "BENCH_TMPDIR $BENCH_TMPDIR does not exist"

need=0
for w in $WORKLOADS; do
    case $w in
        a) sz=$A_BYTES ;;
        b) sz=$((B_FILES * (B_FILE_BYTES + 4096))) ;;
        c) sz=$C_BYTES ;;
    esac
    ((sz > need)) && need=$sz
done
need=$((2 * need + (256 << 20)))     # source + one destination copy + slack
require_free_space "$BENCH_TMPDIR" "$need"

WORK=$(mktemp -d "$BENCH_TMPDIR/ferry-bench.XXXXXX")
SRC_ROOT="$WORK/src"
DST="$WORK/dst"
mkdir -p "$SRC_ROOT" "$DST"

RSYNC_PORT=${RSYNC_PORT:-$(free_port)}
SSH_PORT=${SSH_PORT:-$(free_port)}
IPERF_PORT=${IPERF_PORT:-$(free_port)}

if [[ -n $BENCH_CSV ]]; then
    echo "workload,tool,run,seconds,bytes,wire_bytes" >"$BENCH_CSV"
fi

# ---------------------------------------------------------------------------
# result bookkeeping
# ---------------------------------------------------------------------------
declare -A TIMES=()     # "wl|tool" -> "t1 t2 ..."
declare -A WIRES=()     # "wl|tool" -> "w1 w2 ..."
declare -A WL_BYTES=()  # wl -> source bytes
declare -A WL_FILES=()  # wl -> source files
declare -A WL_LABEL=()
declare -A WL_SRC=()

record() {   # wl tool run seconds [wire]
    local key="$1|$2"
    TIMES[$key]="${TIMES[$key]:-} $4"
    [[ -n ${5:-} ]] && WIRES[$key]="${WIRES[$key]:-} $5"
    if [[ -n $BENCH_CSV ]]; then
        echo "$1,$2,$3,$4,${WL_BYTES[$1]},${5:-}" >>"$BENCH_CSV"
    fi
    log "  $2 run $3: $4 s$([[ -n ${5:-} ]] && echo ", wire $5 B")"
}

# verify WL DIR: DIR must hold exactly the files of the workload source
verify() {
    if ! "$PYTHON" "$GEN" verify "$WORK/manifest.$1" "$2"; then
        die "destination of $3 for workload $1 does not match the source (see above)"
    fi
}

# ---------------------------------------------------------------------------
# daemons
# ---------------------------------------------------------------------------
SCP_NA=""
SSH_OPTS=()
SSH_USER=$(id -un)
start_sshd() {   # returns 1 and sets SCP_NA when sshd cannot be used
    local d="$WORK/ssh"
    mkdir -p "$d" && chmod 700 "$d"
    if [[ ! -x $SSHD_BIN ]]; then SCP_NA="$SSHD_BIN not found (apt-get install -y openssh-server)"; return 1; fi
    if ! command -v scp >/dev/null || ! command -v ssh-keygen >/dev/null; then
        SCP_NA="scp/ssh-keygen not found (apt-get install -y openssh-client)"; return 1
    fi
    if ! mkdir -p /run/sshd 2>"$d/err" || ! chmod 755 /run/sshd 2>>"$d/err"; then
        SCP_NA="cannot create /run/sshd: $(head -c 300 "$d/err")"; return 1
    fi
    ssh-keygen -q -t ed25519 -N '' -C ferry-bench-host -f "$d/host_ed25519" </dev/null
    ssh-keygen -q -t ed25519 -N '' -C ferry-bench-client -f "$d/client_ed25519" </dev/null
    cp "$d/client_ed25519.pub" "$d/authorized_keys"
    chmod 600 "$d/authorized_keys"
    cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
    if ! "$SSHD_BIN" -t -f "$d/sshd_config" >"$d/test.out" 2>&1; then
        SCP_NA="sshd config test failed: $(tr '\n' ' ' <"$d/test.out" | head -c 300)"; return 1
    fi
    if is_listening "$SSH_PORT"; then SCP_NA="SSH_PORT $SSH_PORT is already in use"; return 1; fi
    "$SSHD_BIN" -D -e -f "$d/sshd_config" >"$d/sshd.log" 2>&1 &
    SSHD_PID=$!
    if ! wait_listen "$SSH_PORT" "$SSHD_PID" 10; then
        SCP_NA="sshd did not start: $(tr '\n' ' ' <"$d/sshd.log" | head -c 300)"
        stop_pid "$SSHD_PID"; SSHD_PID=""; return 1
    fi
    SSH_OPTS=(-F /dev/null -i "$d/client_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
    if ! ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true >"$d/login.out" 2>&1 </dev/null; then
        SCP_NA="ssh login to the private sshd failed: $(tr '\n' ' ' <"$d/login.out" | head -c 300)"
        stop_pid "$SSHD_PID"; SSHD_PID=""; return 1
    fi
    log "private sshd listening on 127.0.0.1:$SSH_PORT (pid $SSHD_PID)"
}

# ---------------------------------------------------------------------------
# iperf3 ceiling
# ---------------------------------------------------------------------------
IPERF_NA=""
IPERF_RUNS=()
run_iperf_once() {
    local out="$WORK/iperf.json"
    if is_listening "$IPERF_PORT"; then IPERF_NA="IPERF_PORT $IPERF_PORT is already in use"; return 1; fi
    iperf3 -s -1 -B 127.0.0.1 -p "$IPERF_PORT" >"$WORK/iperf-server.log" 2>&1 &
    IPERF_SRV_PID=$!
    if ! wait_listen "$IPERF_PORT" "$IPERF_SRV_PID" 10; then
        IPERF_NA="iperf3 server did not start: $(tr '\n' ' ' <"$WORK/iperf-server.log" | head -c 200)"
        stop_pid "$IPERF_SRV_PID"; IPERF_SRV_PID=""; return 1
    fi
    local rc=0
    iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t "$IPERF_SECONDS" -C "$IPERF_CC" -J >"$out" 2>&1 || rc=$?
    # the one-shot server exits by itself after the test
    for _ in $(seq 1 100); do kill -0 "$IPERF_SRV_PID" 2>/dev/null || break; sleep 0.05; done
    stop_pid "$IPERF_SRV_PID"; IPERF_SRV_PID=""
    local parsed
    if ! parsed=$("$PYTHON" - "$out" "$IPERF_CC" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("cannot parse iperf3 JSON: %s" % e); sys.exit(1)
if d.get("error"):
    print("iperf3: %s" % d["error"]); sys.exit(1)
end = d.get("end", {})
bps = end.get("sum_received", {}).get("bits_per_second")
if not bps:
    print("iperf3 JSON has no end.sum_received.bits_per_second"); sys.exit(1)
cc = end.get("sender_tcp_congestion", sys.argv[2])
print("%.6f %s" % (bps, cc))
EOF
    ); then
        IPERF_NA="$parsed (rc=$rc)"
        return 1
    fi
    local bps cc
    read -r bps cc <<<"$parsed"
    [[ $cc == "$IPERF_CC" ]] || log "warning: iperf3 reports congestion control '$cc', asked for '$IPERF_CC'"
    IPERF_RUNS+=("$(awk -v b="$bps" 'BEGIN { printf "%.3f", b / 8 / 1e6 }')")
    log "  iperf3 run: ${IPERF_RUNS[-1]} MB/s ($cc)"
}

# ---------------------------------------------------------------------------
# transfers
# ---------------------------------------------------------------------------
# ferry WL MODE RUN
run_ferry() {
    local wl=$1 mode=$2 run=$3 tool="ferry($2)"
    local src=${WL_SRC[$wl]} name
    name=$(basename "$src")
    reset_dst
    local rout="$WORK/ferry-recv.out" rerr="$WORK/ferry-recv.err"
    local sout="$WORK/ferry-send.json" serr="$WORK/ferry-send.err"
    : >"$rout"
    "$FERRY" recv --listen 127.0.0.1:0 --root "$DST" --once -q >"$rout" 2>"$rerr" &
    FERRY_RECV_PID=$!

    # wait until the first complete line (the URL) shows up
    local deadline url=""
    wait_recv_url url "$FERRY_RECV_PID" "$rout" "$rerr" "ferry recv exited before printing its URL" \
        "ferry recv printed no URL line within ${FERRY_URL_TIMEOUT}s (is stdout flushed after the URL line?)"

    local -a extra=()
    [[ -n $FERRY_SEND_ARGS ]] && read -r -a extra <<<"$FERRY_SEND_ARGS"
    local rc=0 t0 t1
    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" "$FERRY" send --no-progress --json --compress "$mode" "${extra[@]}" \
        "$src" "$(ferry_url_path "$url" dest/)" >"$sout" 2>"$serr" || rc=$?
    t1=$EPOCHREALTIME
    if ((rc != 0)); then
        tail_file "$serr"
        die "ferry send ($mode, workload $wl) exited with status $rc"
    fi

    # the receiver must exit on its own after the transfer (--once)
    deadline=$((SECONDS + FERRY_EXIT_TIMEOUT))
    while kill -0 "$FERRY_RECV_PID" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            tail_file "$rerr"
            die "ferry recv --once still running ${FERRY_EXIT_TIMEOUT}s after send finished"
        fi
        sleep 0.02
    done
    rc=0
    wait "$FERRY_RECV_PID" || rc=$?
    FERRY_RECV_PID=""
    if ((rc != 0)); then
        tail_file "$rerr"
        die "ferry recv exited with status $rc"
    fi

    local parsed
    if ! parsed=$("$PYTHON" - "$sout" <<'EOF'
import json, sys
txt = open(sys.argv[1]).read()
try:
    d = json.loads(txt)
except ValueError:
    try:
        d = json.loads(txt[txt.index("{"):txt.rindex("}") + 1])
    except ValueError as e:
        print("cannot parse ferry send --json output: %s" % e); sys.exit(1)
if not isinstance(d, dict):
    print("ferry send --json output is not a JSON object"); sys.exit(1)
missing = [k for k in ("bytes_on_disk", "bytes_on_wire", "seconds", "files") if k not in d]
if missing:
    print("ferry JSON lacks %s" % ", ".join(missing)); sys.exit(1)
if d.get("ok") is False:
    print("ferry JSON reports ok=false: %s" % d.get("error", "")); sys.exit(1)
files = d["files"]
if isinstance(files, list):   # per-entry list: count regular files
    files = sum(1 for f in files if not isinstance(f, dict) or f.get("type", "file") == "file")
print(int(d["bytes_on_wire"]), int(d["bytes_on_disk"]), int(files), float(d["seconds"]))
EOF
    ); then
        tail_file "$sout"
        die "$parsed"
    fi
    local wire disk files jsec
    read -r wire disk files jsec <<<"$parsed"
    [[ $disk == "${WL_BYTES[$wl]}" ]] ||
        log "warning: ferry JSON bytes_on_disk=$disk, source has ${WL_BYTES[$wl]} bytes"
    [[ $files == "${WL_FILES[$wl]}" ]] ||
        log "warning: ferry JSON files=$files, source has ${WL_FILES[$wl]} files"
    log "  (ferry JSON: seconds=$jsec bytes_on_wire=$wire)"

    # ferry may place SRC as dest/<name>/... or its contents directly in dest/
    local got="$DST/dest"
    [[ -d $got/$name ]] && got="$got/$name"
    verify "$wl" "$got" "$tool"
    record "$wl" "$tool" "$run" "$(elapsed "$t0" "$t1")" "$wire"
}

run_rsync() {
    local wl=$1 run=$2
    local src=${WL_SRC[$wl]} name
    name=$(basename "$src")
    reset_dst
    local -a extra=()
    [[ -n $RSYNC_EXTRA_ARGS ]] && read -r -a extra <<<"$RSYNC_EXTRA_ARGS"
    local rc=0 t0 t1
    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" rsync -a --whole-file --stats "${extra[@]}" \
        "$src" "rsync://127.0.0.1:$RSYNC_PORT/bench/" >"$WORK/rsync.out" 2>"$WORK/rsync.err" || rc=$?
    t1=$EPOCHREALTIME
    if ((rc != 0)); then
        tail_file "$WORK/rsync.err"
        die "rsync (workload $wl) exited with status $rc"
    fi
    local wire
    wire=$(rsync_sent_bytes "$WORK/rsync.out")
    verify "$wl" "$DST/$name" rsync
    record "$wl" rsync "$run" "$(elapsed "$t0" "$t1")" "$wire"
}

run_scp() {
    local wl=$1 run=$2
    local src=${WL_SRC[$wl]} name
    name=$(basename "$src")
    reset_dst
    local -a extra=()
    [[ -n $SCP_EXTRA_ARGS ]] && read -r -a extra <<<"$SCP_EXTRA_ARGS"
    local rc=0 t0 t1
    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" scp -r -q -P "$SSH_PORT" "${SSH_OPTS[@]}" "${extra[@]}" \
        "$src" "$SSH_USER@127.0.0.1:$DST/" >"$WORK/scp.out" 2>&1 </dev/null || rc=$?
    t1=$EPOCHREALTIME
    if ((rc != 0)); then
        tail_file "$WORK/scp.out"
        die "scp (workload $wl) exited with status $rc"
    fi
    verify "$wl" "$DST/$name" scp
    record "$wl" scp "$run" "$(elapsed "$t0" "$t1")"
}

# ---------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------
prepare_workload() {
    local wl=$1 dir t0
    t0=$SECONDS
    case $wl in
        a)
            dir="$SRC_ROOT/a_random"
            log "generating (a): one $(human "$A_BYTES") random file"
            "$PYTHON" "$GEN" random "$dir" --bytes "$A_BYTES"
            WL_LABEL[a]="a: 1x$(human "$A_BYTES") random" ;;
        b)
            dir="$SRC_ROOT/b_tree"
            log "generating (b): $B_FILES x $(human "$B_FILE_BYTES") random files in $B_DIRS dirs"
            "$PYTHON" "$GEN" tree "$dir" --files "$B_FILES" --size "$B_FILE_BYTES" --dirs "$B_DIRS"
            WL_LABEL[b]="b: ${B_FILES}x$(human "$B_FILE_BYTES")" ;;
        c)
            dir="$SRC_ROOT/c_cache"
            log "generating (c): $(human "$C_BYTES") compressible cache data in $C_FILES files"
            "$PYTHON" "$GEN" cache "$dir" --bytes "$C_BYTES" --files "$C_FILES"
            WL_LABEL[c]="c: $(human "$C_BYTES") cache" ;;
    esac
    WL_SRC[$wl]=$dir
    local files bytes
    read -r files bytes < <("$PYTHON" "$GEN" stats "$dir")
    WL_FILES[$wl]=$files
    WL_BYTES[$wl]=$bytes
    "$PYTHON" "$GEN" manifest "$dir" >"$WORK/manifest.$wl"
    log "  $files files, $bytes bytes, generated in $((SECONDS - t0)) s"
    if [[ $wl == c ]] && command -v zstd >/dev/null; then
        local z
        z=$(find "$dir" -type f -print0 | sort -z | xargs -0 cat | zstd -1 -T1 -c | wc -c)
        C_ZSTD_RATIO=$(awk -v a="$bytes" -v b="$z" 'BEGIN { printf "%.2f", a / b }')
        log "  zstd -1 ratio of (c): $C_ZSTD_RATIO"
    fi
}

C_ZSTD_RATIO=""

run_workload() {
    local wl=$1 r
    prepare_workload "$wl"
    log "workload ${WL_LABEL[$wl]}: $REPEAT repetition(s)"
    for ((r = 1; r <= REPEAT; r++)); do
        if have_tool ferry; then
            run_ferry "$wl" auto "$r"
            [[ $wl == c ]] && run_ferry "$wl" none "$r"
        fi
        have_tool rsync && run_rsync "$wl" "$r"
        if have_tool scp; then
            [[ -n $SCP_NA ]] || run_scp "$wl" "$r"
        fi
    done
    reset_dst
    rm -rf -- "${WL_SRC[$wl]}"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
log "work dir $WORK, scale=$BENCH_SCALE, repeat=$REPEAT, workloads='$WORKLOADS', tools='$TOOLS'"
have_tool ferry && log "ferry: $FERRY"

if have_tool iperf3; then
    log "iperf3 single stream, $IPERF_SECONDS s, congestion control $IPERF_CC"
    for ((r = 1; r <= REPEAT; r++)); do
        run_iperf_once || break
    done
    if [[ -n $IPERF_NA ]]; then
        log "iperf3 n/a: $IPERF_NA"
        IPERF_RUNS=()
    fi
fi
have_tool rsync && start_rsyncd "$DST"
if have_tool scp; then
    start_sshd || log "scp n/a: $SCP_NA"
fi

for wl in $WORKLOADS; do
    run_workload "$wl"
done

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
declare -A MED_S=() MBPS=() MED_W=()
for key in "${!TIMES[@]}"; do
    wl=${key%%|*}
    # shellcheck disable=SC2086
    MED_S[$key]=$(median ${TIMES[$key]})
    MBPS[$key]=$(awk -v b="${WL_BYTES[$wl]}" -v s="${MED_S[$key]}" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
    if [[ -n ${WIRES[$key]:-} ]]; then
        # shellcheck disable=SC2086
        MED_W[$key]=$(median ${WIRES[$key]} | awk '{ printf "%.0f", $1 }')
    fi
done
IPERF_MBPS=""
((${#IPERF_RUNS[@]})) && IPERF_MBPS=$(median "${IPERF_RUNS[@]}" | awk '{ printf "%.1f", $1 }')

fmt='%-20s %-14s %9s %10s %15s %14s\n'
{
    echo
    echo "# ferry throughput benchmark -- $(host_stamp)"
    echo "# loopback 127.0.0.1, data in $BENCH_TMPDIR, scale=$BENCH_SCALE, median of $REPEAT run(s), MB = 10^6 bytes"
    if have_tool ferry; then
        echo "# ferry: $FERRY ($(ferry_version))"
    fi
    if [[ -n $C_ZSTD_RATIO ]]; then echo "# workload c: zstd -1 compresses the source ${C_ZSTD_RATIO}x"; fi
    echo
    # shellcheck disable=SC2059
    printf "$fmt" workload tool median_s MB/s ratio_vs_rsync wire_bytes
    if have_tool iperf3; then
        # shellcheck disable=SC2059
        printf "$fmt" "loopback ceiling" "iperf3($IPERF_CC)" "-" "${IPERF_MBPS:-n/a}" "-" "-"
    fi
    for wl in $WORKLOADS; do
        tools=()
        if have_tool ferry; then tools+=("ferry(auto)"); [[ $wl == c ]] && tools+=("ferry(none)"); fi
        have_tool rsync && tools+=(rsync)
        have_tool scp && tools+=(scp)
        for tool in "${tools[@]}"; do
            key="$wl|$tool"
            if [[ -z ${MED_S[$key]:-} ]]; then
                # shellcheck disable=SC2059
                printf "$fmt" "${WL_LABEL[$wl]}" "$tool" n/a n/a n/a -
                continue
            fi
            ratio="-"
            rk="$wl|rsync"
            if [[ -n ${MBPS[$rk]:-} ]]; then
                ratio=$(awk -v a="${MBPS[$key]}" -v b="${MBPS[$rk]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
            fi
            # shellcheck disable=SC2059
            printf "$fmt" "${WL_LABEL[$wl]}" "$tool" "$(printf '%.3f' "${MED_S[$key]}")" \
                "${MBPS[$key]}" "$ratio" "${MED_W[$key]:--}"
        done
    done
    if [[ -n $SCP_NA ]] && have_tool scp; then echo "# scp n/a: $SCP_NA"; fi
    if [[ -n $IPERF_NA ]]; then echo "# iperf3 n/a: $IPERF_NA"; fi

    # ---- targets ----------------------------------------------------------
    echo
    echo "targets:"
    verdict() { awk -v x="$1" -v y="$2" 'BEGIN { print (x + 0 >= y + 0) ? "PASS" : "FAIL" }'; }
    fa="${MBPS[a|ferry(auto)]:-}" ra="${MBPS[a|rsync]:-}"
    if [[ -n $fa && -n $ra ]]; then
        want=$(awk -v r="$ra" 'BEGIN { printf "%.1f", 1.5 * r }')
        echo "  (a) ferry(auto) >= 1.5x rsync MB/s:               $fa vs $want (1.5 x $ra)  $(verdict "$fa" "$want")"
    else
        echo "  (a) ferry(auto) >= 1.5x rsync MB/s:               SKIP (ferry or rsync not measured on a)"
    fi
    if [[ -n $fa && -n $IPERF_MBPS ]]; then
        want=$(awk -v r="$IPERF_MBPS" 'BEGIN { printf "%.1f", 0.6 * r }')
        echo "  (a) ferry(auto) >= 60% of iperf3 single stream:   $fa vs $want (0.6 x $IPERF_MBPS)  $(verdict "$fa" "$want")"
    else
        echo "  (a) ferry(auto) >= 60% of iperf3 single stream:   SKIP (ferry on a or iperf3 not measured)"
    fi
    fb="${MBPS[b|ferry(auto)]:-}" rb="${MBPS[b|rsync]:-}"
    if [[ -n $fb && -n $rb ]]; then
        want=$(awk -v r="$rb" 'BEGIN { printf "%.1f", 2 * r }')
        echo "  (b) ferry(auto) >= 2x rsync MB/s:                 $fb vs $want (2 x $rb)  $(verdict "$fb" "$want")"
    else
        echo "  (b) ferry(auto) >= 2x rsync MB/s:                 SKIP (ferry or rsync not measured on b)"
    fi
    wc_auto="${MED_W[c|ferry(auto)]:-}"
    if [[ -n $wc_auto ]]; then
        v=$(awk -v w="$wc_auto" -v s="${WL_BYTES[c]}" 'BEGIN { print (w + 0 < s + 0) ? "PASS" : "FAIL" }')
        r=$(awk -v w="$wc_auto" -v s="${WL_BYTES[c]}" 'BEGIN { printf "%.2f", (w > 0 ? s / w : 0) }')
        echo "  (c) ferry(auto) wire bytes < source bytes:        $wc_auto vs ${WL_BYTES[c]} (${r}x)  $v"
    else
        echo "  (c) ferry(auto) wire bytes < source bytes:        SKIP (ferry not measured on c)"
    fi
    ta="${MED_S[c|ferry(auto)]:-}" tn="${MED_S[c|ferry(none)]:-}"
    if [[ -n $ta && -n $tn ]]; then
        pct=$(awk -v t="$C_TIME_TOLERANCE" 'BEGIN { printf "%g", t * 100 }')
        lim=$(awk -v n="$tn" -v t="$C_TIME_TOLERANCE" 'BEGIN { printf "%.3f", n * (1 + t) }')
        v=$(awk -v a="$ta" -v l="$lim" 'BEGIN { print (a + 0 <= l + 0) ? "PASS" : "FAIL" }')
        printf '  (c) ferry(auto) time <= ferry(none) time x %s (%s%% tolerance): %.3f s vs %s s  %s\n' \
            "$(awk -v t="$C_TIME_TOLERANCE" 'BEGIN { printf "%g", 1 + t }')" "$pct" "$ta" "$lim" "$v"
    else
        echo "  (c) ferry(auto) time <= ferry(none) time x $(awk -v t="$C_TIME_TOLERANCE" 'BEGIN { printf "%g", 1 + t }'):  SKIP (ferry not measured on c)"
    fi
}

log "done"
