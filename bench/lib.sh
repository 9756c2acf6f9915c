# shellcheck shell=bash
# Helpers shared by the benchmark scripts (compare_tcp.sh, resume_bench.sh,
# sync_bench.sh).  Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing only defines functions and the common paths below; nothing runs.
# The including script sets LOG_TAG (the word in front of every progress line),
# and, before it calls install_cleanup_traps, WORK, BENCH_KEEP and
# CLEANUP_PID_VARS.  Functions that talk to daemons use the script's globals
# named in their comments (WORK, RSYNC_PORT, RSYNCD_PID, FERRY, FERRY_URL_TIMEOUT,
# DST, TOOLS).

# ---------------------------------------------------------------------------
# common paths
# ---------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)   # bench/
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck disable=SC2034  # used by the including scripts
GEN="$SCRIPT_DIR/gen_data.py"
PYTHON=${PYTHON:-python3}

# ---------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------
# log MSG...: a timestamped progress line "[LOG_TAG HH:MM:SS] MSG" on stderr
log() { printf '[%s %(%H:%M:%S)T] %s\n' "$LOG_TAG" -1 "$*" >&2; }

# die MSG...: print "BENCH FAILED: MSG" on stderr and exit 1 (runs the cleanup trap)
die() {
    printf '\nBENCH FAILED: %s\n' "$*" >&2
    exit 1
}

# tail_file FILE: show the first 20 lines of FILE (if not empty) on stderr, indented
tail_file() { if [[ -s $1 ]]; then sed -n '1,20p' "$1" | sed 's/^/    | /' >&2; fi; }

# ---------------------------------------------------------------------------
# words, numbers and sizes
# ---------------------------------------------------------------------------
# has "WORD WORD ..." WORD: is WORD in the space-separated list?
has() { [[ " $1 " == *" $2 "* ]]; }

# have_tool TOOL: is TOOL in $TOOLS (the script's BENCH_TOOLS)?
have_tool() { has "$TOOLS" "$1"; }

# elapsed T0 T1: T1 - T0 in seconds (from $EPOCHREALTIME), 6 decimals
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

# median N...: the median of the numbers, 6 decimals
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) printf "%.6f\n", v[(NR + 1) / 2];
              else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# human BYTES: a short binary-unit size such as "64MiB"
human() {
    awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1
        while (b >= 1024 && i < 5) { b /= 1024; i++ }
        printf "%.4g%s", b, u[i] }'
}

# ---------------------------------------------------------------------------
# setup checks
# ---------------------------------------------------------------------------
# set_default_ferry: if FERRY is unset or empty, use ./build/ferry, or else
# build/ferry of this repository
set_default_ferry() {
    if [[ -z ${FERRY:-} ]]; then
        FERRY=./build/ferry
        [[ -e $FERRY ]] || FERRY="$REPO_DIR/build/ferry"
    fi
}

# abs_path FILE: FILE with its directory made absolute (the directory must exist)
abs_path() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

# require_free_space DIR BYTES: die unless the file system of DIR has BYTES free
require_free_space() {
    local avail
    avail=$(($(df -P -k "$1" | awk 'NR == 2 { print $4 }') * 1024))
    ((avail >= $2)) || die "$1 has $(human "$avail") free, need about $(human "$2")"
}

# ferry_version: the first line of `$FERRY --version` (empty if it fails)
ferry_version() { timeout 5 "$FERRY" --version 2>/dev/null | head -n 1 || true; }

# host_stamp: "DATE UTC, KERNEL, N cores" for the report header
host_stamp() { echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) cores"; }

# reset_dst: empty the destination directory $DST (the directory itself stays)
reset_dst() { find "$DST" -mindepth 1 -delete; }

# ---------------------------------------------------------------------------
# processes, ports and cleanup
# ---------------------------------------------------------------------------
# free_port: print a TCP port on 127.0.0.1 that is free right now
free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# is_listening PORT: is something listening on 127.0.0.1/any:PORT (checked
# without connecting, which matters for the one-shot iperf3 server)
is_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_listen PORT PID TIMEOUT_S: 0 once PORT is listening, 1 if PID died or
# TIMEOUT_S passed first
wait_listen() {
    local port=$1 pid=$2 deadline=$((SECONDS + $3))
    while ! is_listening "$port"; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# stop_pid PID: SIGTERM, wait up to STOP_PID_TRIES x 0.05 s, then SIGKILL, and
# reap it; an empty PID is a no-op
STOP_PID_TRIES=100
stop_pid() {
    local pid=$1
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 "$STOP_PID_TRIES"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    # the braces keep bash's "Killed" job message quiet
    { wait "$pid"; } 2>/dev/null || true
}

# cleanup: EXIT trap: stop every process whose pid is in one of the variables
# named in CLEANUP_PID_VARS (in that order), remove $WORK unless BENCH_KEEP=1,
# and exit with the script's status
CLEANUP_PID_VARS=()
cleanup() {
    local rc=$? v
    trap - EXIT INT TERM
    for v in "${CLEANUP_PID_VARS[@]}"; do stop_pid "${!v}"; done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $BENCH_KEEP == 1 ]]; then
            log "keeping work dir $WORK (BENCH_KEEP=1)"
        else
            rm -rf -- "$WORK"
        fi
    fi
    exit "$rc"
}

# install_cleanup_traps: run cleanup on exit; INT and TERM exit with 130 / 143
install_cleanup_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------
# daemons
# ---------------------------------------------------------------------------
# start_rsyncd MODULE_PATH: a private rsync daemon on 127.0.0.1:$RSYNC_PORT
# with one writable module "bench" at MODULE_PATH (config and logs in $WORK);
# sets RSYNCD_PID, dies if it does not come up
start_rsyncd() {
    local conf="$WORK/rsyncd.conf"
    {
        echo "use chroot = false"
        echo "log file = $WORK/rsyncd.log"
        echo "lock file = $WORK/rsyncd.lock"
        echo "[bench]"
        echo "    path = $1"
        echo "    read only = false"
        if ((EUID == 0)); then
            echo "    uid = root"
            echo "    gid = root"
        fi
    } >"$conf"
    is_listening "$RSYNC_PORT" && die "RSYNC_PORT $RSYNC_PORT is already in use"
    rsync --daemon --no-detach --address=127.0.0.1 --port="$RSYNC_PORT" --config="$conf" \
        >"$WORK/rsyncd.out" 2>&1 &
    RSYNCD_PID=$!
    if ! wait_listen "$RSYNC_PORT" "$RSYNCD_PID" 10; then
        tail_file "$WORK/rsyncd.out"; tail_file "$WORK/rsyncd.log"
        die "rsync daemon did not start on port $RSYNC_PORT"
    fi
    log "rsync daemon listening on 127.0.0.1:$RSYNC_PORT (pid $RSYNCD_PID)"
}

# rsync_sent_bytes FILE: "Total bytes sent" from the --stats output in FILE
rsync_sent_bytes() {
    awk -F: '/^Total bytes sent:/ { gsub(/[^0-9]/, "", $2); print $2 }' "$1"
}

# wait_recv_url VAR PID OUT ERR [EXIT_MSG] [TIMEOUT_MSG]: wait up to
# FERRY_URL_TIMEOUT seconds for the first complete stdout line (the URL) of a
# `ferry recv` (PID) that writes to OUT, check it is a ferry:// URL and store it
# in the variable named VAR (it ends in "/?token=...&fp=..." with TLS, "/" with
# --plaintext; add a destination with ferry_url_path).  Dies, showing ERR (its
# stderr), with EXIT_MSG if the receiver exits first or TIMEOUT_MSG on timeout.
wait_recv_url() {
    local -n _wru_url=$1
    local _wru_pid=$2 _wru_out=$3 _wru_err=$4
    local _wru_exit_msg=${5:-"ferry recv exited before printing its URL"}
    local _wru_timeout_msg=${6:-"ferry recv printed no URL within ${FERRY_URL_TIMEOUT}s"}
    local _wru_deadline=$((SECONDS + FERRY_URL_TIMEOUT))
    _wru_url=""
    while :; do
        if [[ $(wc -l <"$_wru_out") -ge 1 ]]; then
            _wru_url=$(head -n 1 "$_wru_out" | tr -d '\r' | awk '{ print $1 }')
            break
        fi
        if ! kill -0 "$_wru_pid" 2>/dev/null; then
            tail_file "$_wru_err"
            die "$_wru_exit_msg"
        fi
        ((SECONDS < _wru_deadline)) || { tail_file "$_wru_err"; die "$_wru_timeout_msg"; }
        sleep 0.02
    done
    [[ $_wru_url == ferry://* ]] || die "ferry recv's first stdout line is not a ferry:// URL: '$_wru_url'"
    [[ $_wru_url == *\?* || $_wru_url == */ ]] || _wru_url="$_wru_url/"
}

# ferry_url_path URL PATH: URL with PATH inserted before its query
# ("ferry://h:1/?token=x" "dest/" -> "ferry://h:1/dest/?token=x").
ferry_url_path() {
    local url=$1 path=$2
    if [[ $url == *\?* ]]; then
        printf '%s%s?%s\n' "${url%%\?*}" "$path" "${url#*\?}"
    else
        printf '%s%s\n' "$url" "$path"
    fi
}
