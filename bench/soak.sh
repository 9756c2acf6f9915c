#!/usr/bin/env bash
# Fault-injection soak: seeded transfers killed with SIGKILL at random moments and re-run
# to completion, with a watcher checking the destination all along (bench/README.md).
#
#   bench/soak.sh [ITERATIONS [SEED]]     default 30 iterations, SEED from the clock
#
# Iteration i uses seed SEED+i-1. Each one, chosen by its seed: a tree of 2-3 large files
# (SOAK_LARGE_MIN_MIB to SOAK_LARGE_MAX_MIB, 32-128) and 200-500 small ones, random bytes;
# transport udp (through linkemu: delay and loss) or tcp (loopback, or through linkemu);
# receiver `ferry recv` or `ferryd`; chunk size 1M or 4M; one SIGKILL (or, one time in
# three, a second one during the first re-run): its victim, the sender or the
# receiver/daemon, and its moment, when 2-95% of the bytes still missing have reached the
# receiver's disk. After a kill it restarts what was killed; it re-runs the same send until
# it exits 0, then compares the whole tree and checks that no temporary file or journal is
# left. All the while `soak_tree.py watch` polls the destination every 50 ms and hashes every
# file visible under a final (non-temporary) name: wrong bytes there fail the iteration.
# `bench/soak.sh 1 S` replays the iteration that printed seed S: the same tree, path,
# victims and kill points (the timing of everything else is the machine's).
#
# One line per iteration on stdout, then a summary. Exit status: 0 all passed, 1 some
# failed (the seeds are printed), 77 cannot run here (not root, no netns/TUN), 2 usage.
#
# Environment: FERRY, FERRYD, LINKEMU (default build/<name>), SOAK_TMPDIR (/dev/shm),
# SOAK_LARGE_MIN_MIB (32), SOAK_LARGE_MAX_MIB (128), SOAK_LINK (linkemu options, default
# "--delay-ms 10 --rate 300M --loss 0.005"), SOAK_RUNS (re-runs before giving up, 8),
# SOAK_RUN_TIMEOUT (seconds per send, 600), SOAK_KEEP=1 keeps failed iterations' files.
set -euo pipefail

LOG_TAG=soak
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ITERATIONS=${1:-30}
BASE_SEED=${2:-$(($(date +%s) % 100000 * 100))}
[[ $ITERATIONS =~ ^[0-9]+$ && $BASE_SEED =~ ^[0-9]+$ ]] || { echo "usage: $0 [ITERATIONS [SEED]]" >&2; exit 2; }

set_default_ferry
FERRYD=${FERRYD:-$(dirname "$FERRY")/ferryd}
LINKEMU=${LINKEMU:-$(dirname "$FERRY")/linkemu}
SOAK_TMPDIR=${SOAK_TMPDIR:-/dev/shm}
LARGE_MIN=${SOAK_LARGE_MIN_MIB:-32}
LARGE_MAX=${SOAK_LARGE_MAX_MIB:-128}
LINK_ARGS=${SOAK_LINK:---delay-ms 10 --rate 300M --loss 0.005}
MAX_RUNS=${SOAK_RUNS:-8}
RUN_TIMEOUT=${SOAK_RUN_TIMEOUT:-600}
BENCH_KEEP=${SOAK_KEEP:-0}
TREE_PY="$SCRIPT_DIR/soak_tree.py"
NETNS_LINK="$SCRIPT_DIR/netns_link.sh"

# Our own namespaces, devices and addresses, so a benchmark on ferry-a/ferry-b can run too.
export FERRY_NS_A=${FERRY_NS_A:-soak-a} FERRY_NS_B=${FERRY_NS_B:-soak-b}
export FERRY_DEV_A=${FERRY_DEV_A:-stun0} FERRY_DEV_B=${FERRY_DEV_B:-stun1}
export FERRY_ADDR_A=${FERRY_ADDR_A:-10.97.0.1} FERRY_ADDR_B=${FERRY_ADDR_B:-10.97.0.2}
export LINKEMU
NS_A=$FERRY_NS_A NS_B=$FERRY_NS_B ADDR_B=$FERRY_ADDR_B
# Inside NS_B (a private network stack) fixed ports cannot collide with anything else.
RECV_PORT=7400 FERRYD_PORT=7500

skip() { echo "soak: cannot run here: $*" >&2; exit 77; }
((EUID == 0)) || skip "must run as root (network namespaces, TUN devices)"
for b in "$FERRY" "$FERRYD" "$LINKEMU"; do [[ -x $b ]] || { echo "soak: $b not found (build it, or set FERRY/FERRYD/LINKEMU)" >&2; exit 2; }; done
FERRY=$(abs_path "$FERRY") FERRYD=$(abs_path "$FERRYD") LINKEMU=$(abs_path "$LINKEMU")
command -v openssl >/dev/null || skip "openssl (the tool) is needed for ferryd's test certificate"

WORK=$(mktemp -d "$SOAK_TMPDIR/ferry-soak.XXXXXX")
SENDER_PID="" RX_PID="" WATCH_PID="" LINK_UP=0
CLEANUP_PID_VARS=(SENDER_PID WATCH_PID RX_PID)
soak_cleanup() {
    local rc=$?
    set +e   # clean up as much as possible, whatever already went away
    trap - EXIT INT TERM
    for v in "${CLEANUP_PID_VARS[@]}"; do [[ -n ${!v} ]] && kill -9 "${!v}" 2>/dev/null; done
    ((LINK_UP)) && "$NETNS_LINK" down >>"$WORK/netns_link.log" 2>&1
    if [[ $BENCH_KEEP == 1 ]] && ((FAILED > 0)); then log "kept $WORK (SOAK_KEEP=1)"; else rm -rf -- "$WORK"; fi
    exit "$rc"
}
FAILED=0
trap soak_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the link and ferryd's identity (once) ----------------------------------------------
if "$NETNS_LINK" status >/dev/null 2>&1; then
    echo "soak: the link $NS_A--$NS_B is up: another soak running? (if not: FERRY_NS_A=$NS_A FERRY_NS_B=$NS_B $NETNS_LINK down)" >&2
    exit 1
fi
"$NETNS_LINK" down >/dev/null 2>&1 || true   # namespaces left by a soak that was killed
rc=0
# shellcheck disable=SC2086  # LINK_ARGS is a list of options
"$NETNS_LINK" up $LINK_ARGS >"$WORK/netns_link.log" 2>&1 || rc=$?
((rc == 77)) && { cat "$WORK/netns_link.log" >&2; skip "netns_link.sh cannot run here"; }
((rc == 0)) || { cat "$WORK/netns_link.log" >&2; echo "soak: netns_link.sh up failed" >&2; exit 1; }
LINK_UP=1

DAEMON_DIR="$WORK/ferryd"
mkdir -p "$DAEMON_DIR/state" "$WORK/dst"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DAEMON_DIR/key.pem" \
    -out "$DAEMON_DIR/cert.pem" -days 2 -subj /CN=ferry-soak \
    -addext "subjectAltName=IP:127.0.0.1,IP:$ADDR_B" >/dev/null 2>&1 || { echo "soak: openssl failed" >&2; exit 1; }
DST="$WORK/dst"   # the receiver's root (ferry recv --root, ferryd's export "soak")
cat >"$DAEMON_DIR/ferryd.toml" <<EOF
[server]
listen = ["0.0.0.0:$FERRYD_PORT"]
state_dir = "$DAEMON_DIR/state"
log_level = "info"

[tls]
cert = "$DAEMON_DIR/cert.pem"
key = "$DAEMON_DIR/key.pem"

[[export]]
name = "soak"
path = "$DST"
EOF
TOKEN=$("$FERRYD" token new --config "$DAEMON_DIR/ferryd.toml" --name soak --grant soak:rw | head -n 1)
[[ -n $TOKEN ]] || { echo "soak: ferryd token new failed" >&2; exit 1; }

# --- receivers ------------------------------------------------------------------------------
# start_receiver KIND HOST: ferry recv or ferryd in NS_B; sets RX_PID and (recv) RECV_URL
start_receiver() {
    local kind=$1 host=$2 n=$((++RX_STARTS))
    if [[ $kind == recv ]]; then
        : >"$IT/recv.$n.out"
        ip netns exec "$NS_B" "$FERRY" recv --listen "$host:$RECV_PORT" --root "$DST" -q \
            >"$IT/recv.$n.out" 2>"$IT/recv.$n.err" &
        RX_PID=$!
        FERRY_URL_TIMEOUT=20 wait_recv_url RECV_URL "$RX_PID" "$IT/recv.$n.out" "$IT/recv.$n.err"
    else
        ip netns exec "$NS_B" "$FERRYD" --config "$DAEMON_DIR/ferryd.toml" 2>"$IT/ferryd.$n.err" &
        RX_PID=$!
        local deadline=$((SECONDS + 20))
        until grep -q 'msg=ready' "$IT/ferryd.$n.err" 2>/dev/null; do
            kill -0 "$RX_PID" 2>/dev/null || { tail_file "$IT/ferryd.$n.err"; die "ferryd exited at start"; }
            ((SECONDS < deadline)) || die "ferryd not ready within 20 s"
            sleep 0.05
        done
    fi
}

stop_receiver() {
    [[ -n $RX_PID ]] || return 0
    kill -TERM "$RX_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 200); do kill -0 "$RX_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$RX_PID" 2>/dev/null || true
    { wait "$RX_PID"; } 2>/dev/null || true
    RX_PID=""
}

# send_cmd: the send command line of this iteration into the array SEND (recv: current URL)
send_cmd() {
    local url ns=$NS_A
    [[ $PATH_KIND == loopback ]] && ns=$NS_B
    if [[ $RECEIVER == recv ]]; then
        url=$(ferry_url_path "$RECV_URL" "in/")
        SEND=(ip netns exec "$ns" "$FERRY" send)
    else
        url="ferry://$HOST:$FERRYD_PORT/soak/in/"
        SEND=(ip netns exec "$ns" "$FERRY" send --token "$TOKEN" --ca-file "$DAEMON_DIR/cert.pem")
    fi
    SEND+=(--json --no-progress --retry-timeout 0 --chunk-size "$CHUNK" --transport "$TRANSPORT")
    [[ $TRANSPORT == tcp ]] && SEND+=(--streams "$STREAMS")
    SEND+=("$SRC/tree" "$url")
}

json_num() { grep -o "\"$2\":[0-9]*" "$1" 2>/dev/null | head -n 1 | cut -d: -f2; }

# --- one iteration ------------------------------------------------------------------------
# run_iteration I SEED: prints one line; returns 1 when the iteration failed
run_iteration() {
    local i=$1 seed=$2 t0=$EPOCHREALTIME
    IT="$WORK/it$i" SRC="$WORK/it$i/src" RX_STARTS=0
    mkdir -p "$SRC"
    rm -rf "$DST" && mkdir -p "$DST"
    # Every choice from bash's generator seeded here, in this shell (a command substitution
    # would draw in a subshell and leave this sequence where it was).
    RANDOM=$seed
    local tree_seed kills=1 k victims=() pcts=()
    TRANSPORT=tcp PATH_KIND=linkemu RECEIVER=recv CHUNK=4M
    ((RANDOM % 2)) && TRANSPORT=udp
    [[ $TRANSPORT == tcp ]] && ((RANDOM % 2)) && PATH_KIND=loopback
    HOST=$ADDR_B
    [[ $PATH_KIND == loopback ]] && HOST=127.0.0.1
    ((RANDOM % 2)) && RECEIVER=ferryd
    ((RANDOM % 2)) && CHUNK=1M
    STREAMS=$((1 + RANDOM % 4))
    tree_seed=$((RANDOM * 32768 + RANDOM))
    # One kill, or (one iteration in three) a second one during the first re-run, so
    # resuming a resumed transfer gets killed too. The k-th kill comes once pct% of what
    # was still missing has reached the disk.
    ((RANDOM % 3 == 0)) && kills=2
    for ((k = 0; k < kills; k++)); do
        if ((RANDOM % 2)); then victims+=(sender); else victims+=(receiver); fi
        pcts+=($((2 + RANDOM % 94)))
    done

    local gen large large_bytes small total
    gen=$("$PYTHON" "$TREE_PY" gen "$SRC/tree" "$tree_seed" "$LARGE_MIN" "$LARGE_MAX")
    read -r large large_bytes small total <<<"$gen"
    "$PYTHON" "$TREE_PY" hashes "$SRC/tree" "$IT/hashes"
    local desc="$TRANSPORT/$PATH_KIND $RECEIVER chunk $CHUNK$([[ $TRANSPORT == tcp ]] && echo " x$STREAMS"), $large large + $small small = $(human "$total")"

    start_receiver "$RECEIVER" "$HOST"
    mkdir -p "$DST/in/tree"   # the watcher's root; ferry creates the rest
    : >"$IT/violations"
    "$PYTHON" "$TREE_PY" watch "$IT/hashes" "$DST/in/tree" "$IT/watch.stop" "$IT/violations" 0.05 \
        2>"$IT/watch.err" &
    WATCH_PID=$!

    local problems=() rcs=() run=0 last=1 killed_at kill_desc=() vname
    for ((k = 0; k < kills && last != 0; k++)); do
        run=$((run + 1))
        vname=${victims[k]}
        [[ $vname == receiver && $RECEIVER == ferryd ]] && vname=daemon
        send_cmd
        "${SEND[@]}" >"$IT/send.$run.json" 2>"$IT/send.$run.err" &
        SENDER_PID=$!
        # SIGKILL the victim once pcts[k]% of the bytes still missing take space under DST
        # (du counts allocated blocks, so sparse temporaries count only what was written).
        local have want tk0=$EPOCHREALTIME
        have=$(du -sB1 "$DST" | cut -f1)
        want=$((have + (total > have ? total - have : 0) * pcts[k] / 100))
        killed_at=""
        while kill -0 "$SENDER_PID" 2>/dev/null; do
            if (($(du -sB1 "$DST" 2>/dev/null | cut -f1) >= want)); then
                killed_at=$(elapsed "$tk0" "$EPOCHREALTIME")
                if [[ ${victims[k]} == sender ]]; then kill -9 "$SENDER_PID" 2>/dev/null || true
                else kill -9 "$RX_PID" 2>/dev/null || true; fi
                break
            fi
            sleep 0.05
        done
        # (the braces keep bash's "Killed" notices of this and the killed receiver quiet)
        { wait "$SENDER_PID" && last=0 || last=$?; } 2>/dev/null
        SENDER_PID=""
        rcs+=("$last")
        if [[ -z $killed_at ]]; then
            kill_desc+=("none (run $run finished first)")
        else
            # rc 0 after a kill: the sender had already finished (the kill hit an exited
            # process, or a receiver with nothing left to do)
            if ((last == 0)); then kill_desc+=("none ($vname at ${pcts[k]}%, after run $run had finished)")
            else kill_desc+=("$vname at ${pcts[k]}% (${killed_at%????}s)"); fi
            if [[ ${victims[k]} == receiver ]]; then
                { wait "$RX_PID"; } 2>/dev/null || true
                start_receiver "$RECEIVER" "$HOST"
            fi
        fi
        KILLS[${kill_desc[-1]%% *}]=$((${KILLS[${kill_desc[-1]%% *}]:-0} + 1))
    done
    # Re-run until it succeeds (a run may also meet the superseded session of the last one).
    while ((last != 0 && run < MAX_RUNS)); do
        run=$((run + 1))
        if ! kill -0 "$RX_PID" 2>/dev/null; then
            problems+=("the receiver died unexpectedly (see $IT)")
            start_receiver "$RECEIVER" "$HOST"
        fi
        send_cmd
        last=0
        timeout "$RUN_TIMEOUT" "${SEND[@]}" >"$IT/send.$run.json" 2>"$IT/send.$run.err" || last=$?
        rcs+=("$last")
        ((last == 0)) || sleep 1
    done
    ((last == 0)) || problems+=("no run exited 0 after $run runs (last: $(tail -n 1 "$IT/send.$run.err"))")
    kill -0 "$RX_PID" 2>/dev/null || problems+=("the receiver died unexpectedly (see $IT)")

    touch "$IT/watch.stop"
    wait "$WATCH_PID" || problems+=("the watcher failed: $(tail -n 1 "$IT/watch.err")")
    WATCH_PID=""
    if [[ -s $IT/violations ]]; then
        problems+=("watcher: $(wc -l <"$IT/violations") files under a final name with wrong content, first: $(head -n 1 "$IT/violations")")
    fi
    if ((last == 0)); then
        "$PYTHON" "$TREE_PY" compare "$IT/hashes" "$DST/in/tree" 2>"$IT/compare.err" ||
            problems+=("destination differs: $(head -n 1 "$IT/compare.err")")
        local journals
        journals=$(find "$DST/.ferry/journal" -name '*.fj' 2>/dev/null | wc -l)
        ((journals == 0)) || problems+=("$journals journal(s) left after the transfer completed")
    fi
    stop_receiver
    local resumed=""
    local j="$IT/send.$run.json"
    ((run > 1)) && resumed="; last run: skipped $(json_num "$j" files_skipped) files, resumed $(json_num "$j" chunks_resumed) chunks, sent $(json_num "$j" chunks_sent)"
    local secs
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    local watched
    watched=$(sed -n 's/^soak_watch: \([0-9]*\) scans, \([0-9]*\) files hashed.*/watcher \1 scans, \2 hashes/p' "$IT/watch.err")
    local verdict=ok
    if ((${#problems[@]})); then
        verdict="FAILED (seed $seed): $(IFS=';'; echo "${problems[*]}")"
    fi
    printf 'iter %d/%d seed %d: %s; kill %s; runs rc %s%s; %s; %ss: %s\n' "$i" "$ITERATIONS" "$seed" "$desc" \
        "$(IFS='|'; echo "${kill_desc[*]}" | sed 's/|/, then /g')" "$(IFS=,; echo "${rcs[*]}")" "$resumed" "$watched" \
        "$secs" "$verdict"
    if ((${#problems[@]})); then
        [[ $BENCH_KEEP == 1 ]] || rm -rf "$IT"
        return 1
    fi
    rm -rf "$IT"
}

declare -A KILLS
FAILED_SEEDS=()
T_START=$EPOCHREALTIME
log "$ITERATIONS iterations, seeds $BASE_SEED..$((BASE_SEED + ITERATIONS - 1)); link: linkemu $LINK_ARGS; work dir $WORK"
for ((i = 1; i <= ITERATIONS; i++)); do
    seed=$((BASE_SEED + i - 1))
    if ! run_iteration "$i" "$seed"; then
        FAILED=$((FAILED + 1))
        FAILED_SEEDS+=("$seed")
    fi
done
total_s=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')
kills=$(for k in "${!KILLS[@]}"; do printf '%s %s, ' "$k" "${KILLS[$k]}"; done)
printf 'soak: %d iterations, %d failed%s; %dm%02ds; victims: %s\n' "$ITERATIONS" "$FAILED" \
    "$( ((FAILED)) && echo " (seeds ${FAILED_SEEDS[*]}; replay one with: $0 1 SEED)")" \
    $((total_s / 60)) $((total_s % 60)) "${kills%, }"
((FAILED == 0))
