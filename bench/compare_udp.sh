#!/usr/bin/env bash
# WAN benchmark: ferry's UDP transport vs ferry over TCP (4 streams) vs single iperf3
# TCP flows (cubic, bbr), through an emulated 200 Mbit/s bottleneck (bench/linkemu,
# set up by bench/netns_link.sh between namespaces ferry-a and ferry-b), plus a
# loopback row for the throughput ceiling. See bench/README.md ("WAN: compare_udp.sh").
#
#   bench/compare_udp.sh                 full run (1 GiB per transfer; about 20-30 min)
#   QUICK=1 bench/compare_udp.sh         smoke run (64 MiB, rows 1 4 6)
#   ROWS="2" BENCH_TOOLS="cubic bbr" bench/compare_udp.sh
#
# Rows: (1) 100 ms RTT 1% loss, (2) 300 ms RTT no loss, (3) 100 ms RTT 5% loss,
# (4) ferry --policy fair against one iperf3 cubic flow (100 ms, no loss),
# (5) --policy low against a cubic flow, and low alone, (6) loopback without emulator.
# Every measurement brings the link up fresh (so linkemu's counters belong to it)
# and down again. A failed measurement prints FAIL in its cell and the run goes on;
# the table and target lines go to stdout, progress to stderr. Exit status: 0,
# 77 if namespaces/TUN are unavailable here, 1 if the benchmark itself is broken.
set -euo pipefail
export LC_ALL=C

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck disable=SC2034  # read by lib.sh
LOG_TAG=udp-bench
# shellcheck disable=SC2034
STOP_PID_TRIES=40

# ---------------------------------------------------------------------------
# configuration (all overridable from the environment)
# ---------------------------------------------------------------------------
set_default_ferry
if [[ -z ${LINKEMU:-} ]]; then
    LINKEMU=./build/linkemu
    [[ -e $LINKEMU ]] || LINKEMU="$REPO_DIR/build/linkemu"
fi
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    d_bytes=$((64 << 20)); d_compete=$((64 << 20)); d_rows="1 4 6"; d_iperf=10
else
    d_bytes=$((1 << 30)); d_compete=$((256 << 20)); d_rows="1 2 3 4 5 6"; d_iperf=30
fi
BYTES=${BENCH_BYTES:-$d_bytes}                  # rows 1-3, 5 alone, 6: size of the file sent
COMPETE_BYTES=${BENCH_COMPETE_BYTES:-$d_compete}  # rows 4-5: file sent against the cubic flow
ROWS=${ROWS:-$d_rows}
TOOLS=${BENCH_TOOLS:-udp tcp cubic bbr}         # which columns of rows 1-3 to measure
RATE=${RATE:-200M}                              # bottleneck, bits/s (K/M/G = 10^3/6/9)
IPERF_SECONDS=${IPERF_SECONDS:-$d_iperf}
COMPETE_WARMUP=${COMPETE_WARMUP:-5}             # s the cubic flow runs alone before ferry starts
SEED=${SEED:-1}                                 # linkemu loss seed
LOSS_REVERSE=${LOSS_REVERSE:-same}              # loss of the B->A (ACK) direction: same or a probability
UDP_POLICY=${UDP_POLICY:-}                      # --policy for rows 1-3 and 6 (empty: ferry's default)
UDP_TARGET_RATE=${UDP_TARGET_RATE:-800M}                 # above the link: the controller must find the bottleneck itself
UDP_MIN_RATE=${UDP_MIN_RATE:-50M}                # rows 1-3 and 6
COMPETE_MIN_RATE=${COMPETE_MIN_RATE:-}          # rows 4-5 (empty: no --min-rate, which would be a floor a scavenger cannot go below)
LOOPBACK_TARGET_RATE=${LOOPBACK_TARGET_RATE:-10G}
TCP_STREAMS=${TCP_STREAMS:-4}
COMPETE_TRANSPORT=${COMPETE_TRANSPORT:-udp}     # rows 4-5: tcp = ferry over TCP instead (policy ignored)
FERRY_UDP_ARGS=${FERRY_UDP_ARGS:-}              # extra args for `ferry send --transport udp`
FERRY_TCP_ARGS=${FERRY_TCP_ARGS:-}              # extra args for `ferry send` over TCP
FERRY_RECV_ARGS=${FERRY_RECV_ARGS:-}            # extra args for `ferry recv`
LINKEMU_ARGS=${LINKEMU_ARGS:-}                  # extra args for linkemu, e.g. --rt-priority 10
RUN_TIMEOUT=${RUN_TIMEOUT:-}                    # s per transfer; default 3 x ideal time + 60
FERRY_URL_TIMEOUT=${FERRY_URL_TIMEOUT:-15}
FERRY_EXIT_TIMEOUT=${FERRY_EXIT_TIMEOUT:-60}
BENCH_TMPDIR=${BENCH_TMPDIR:-/dev/shm}
BENCH_KEEP=${BENCH_KEEP:-0}
export FERRY_NS_A=${FERRY_NS_A:-ferry-a} FERRY_NS_B=${FERRY_NS_B:-ferry-b}
ADDR_B=10.99.0.2                                # netns_link.sh's address in ferry-b
NETNS_LINK="$SCRIPT_DIR/netns_link.sh"

# "200M" -> 200000000
rate_bps() {
    awk -v r="$1" 'BEGIN { m = 1; s = substr(r, length(r))
        if (s == "K" || s == "k") m = 1e3; else if (s == "M" || s == "m") m = 1e6; else if (s == "G" || s == "g") m = 1e9
        if (m > 1) r = substr(r, 1, length(r) - 1)
        printf "%.0f", r * m }'
}
RATE_BPS=$(rate_bps "$RATE")
LINK_MBPS=$(awk -v r="$RATE_BPS" 'BEGIN { printf "%.1f", r / 1e6 }')

# ---------------------------------------------------------------------------
# state + cleanup
# ---------------------------------------------------------------------------
WORK=""
# shellcheck disable=SC2034  # read by lib.sh's cleanup; our processes die with the namespaces
CLEANUP_PID_VARS=()
link_down() { "$NETNS_LINK" down >>"$WORK/netns_link.log" 2>&1 || true; }
udp_cleanup() {
    local rc=$?
    [[ -n $WORK && -d $WORK ]] && link_down
    (exit "$rc")
    cleanup
}
trap udp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# sanity checks
# ---------------------------------------------------------------------------
if ((EUID != 0)); then echo "compare_udp.sh: needs root (network namespaces, TUN)" >&2; exit 77; fi
for r in $ROWS; do [[ $r == [1-6] ]] || die "unknown row '$r' in ROWS (1-6)"; done
for t in $TOOLS; do
    case $t in udp | tcp | cubic | bbr) ;; *) die "unknown tool '$t' in BENCH_TOOLS (udp tcp cubic bbr)" ;; esac
done
[[ -x $FERRY ]] || die "ferry binary not found: $FERRY (set FERRY=path/to/ferry)"
[[ -x $LINKEMU ]] || die "linkemu not found: $LINKEMU (cmake --build build --target linkemu, or set LINKEMU=)"
FERRY=$(abs_path "$FERRY")
LINKEMU=$(abs_path "$LINKEMU")
export LINKEMU
command -v iperf3 >/dev/null || die "iperf3 not installed (FERRY_WITH_BENCH=1 packaging/install-deps.sh)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
((RATE_BPS > 0)) || die "RATE must be a positive rate such as 200M"
for ns in "$FERRY_NS_A" "$FERRY_NS_B"; do
    [[ -e /run/netns/$ns ]] && die "namespace $ns exists (another run?); '$NETNS_LINK down' or set FERRY_NS_A/FERRY_NS_B"
done
[[ -d $BENCH_TMPDIR ]] || die "BENCH_TMPDIR $BENCH_TMPDIR does not exist"
require_free_space "$BENCH_TMPDIR" $((2 * BYTES + COMPETE_BYTES + (256 << 20)))

WORK=$(mktemp -d "$BENCH_TMPDIR/ferry-udp-bench.XXXXXX")
RES="$WORK/results"
mkdir -p "$WORK/src" "$WORK/dst" "$RES"
SRC_BIG="$WORK/src/big.bin"
SRC_COMPETE="$WORK/src/compete.bin"

# ideal_seconds BYTES MBPS -> transfer time at that rate
ideal_seconds() { awk -v b="$1" -v m="$2" 'BEGIN { printf "%d", b * 8 / (m * 1e6) + 1 }'; }
# timeout_for BYTES -> seconds a transfer of BYTES may take at the link rate
timeout_for() {
    if [[ -n $RUN_TIMEOUT ]]; then echo "$RUN_TIMEOUT"; return; fi
    echo $(($(ideal_seconds "$1" "$LINK_MBPS") * 3 + 60))
}

# ---------------------------------------------------------------------------
# the link
# ---------------------------------------------------------------------------
# row_link ROW -> "DELAY_MS LOSS" (one-way delay, loss each way); empty for row 6
row_link() {
    case $1 in
        1) echo "50 0.01" ;;
        2) echo "150 0" ;;
        3) echo "50 0.05" ;;
        4 | 5) echo "50 0" ;;
        6) echo "" ;;
    esac
}
row_label() {
    case $1 in
        1) echo "1: 100ms RTT 1% loss" ;;
        2) echo "2: 300ms RTT 0% loss" ;;
        3) echo "3: 100ms RTT 5% loss" ;;
        4) echo "4: fair vs cubic" ;;
        5) echo "5: low vs cubic" ;;
        5alone) echo "5: low alone" ;;
        6) echo "6: loopback (no emu)" ;;
    esac
}

# link_up ROW: the row's link, queue = 1 BDP (rate x RTT), stats to $WORK/link.json
link_up() {
    local delay loss
    read -r delay loss <<<"$(row_link "$1")"
    local rtt=$((2 * delay))
    local -a args=(--delay-ms "$delay" --rate "$RATE" --queue-ms "$rtt" --loss "$loss" --seed "$SEED"
        --stats-json "$WORK/link.json")
    [[ $LOSS_REVERSE == same ]] || args+=(--loss-ba "$LOSS_REVERSE")
    local -a extra=()
    [[ -n $LINKEMU_ARGS ]] && read -r -a extra <<<"$LINKEMU_ARGS"
    rm -f "$WORK/link.json"
    "$NETNS_LINK" up "${args[@]}" "${extra[@]}" >>"$WORK/netns_link.log" 2>&1
}

# link_stat DIR KEY: a number from the last link's stats JSON ("" if there is none)
link_stat() {
    "$PYTHON" - "$WORK/link.json" "$1" "$2" <<'EOF' 2>/dev/null || true
import json, sys
try:
    print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])
except Exception:
    pass
EOF
}

# ---------------------------------------------------------------------------
# measurements; each runs in a subshell and writes "key value" lines to stdout
# ---------------------------------------------------------------------------
bail() { echo "FAILED: $*" >&2; exit 1; }

# ferry_transfer WHERE(link|loopback) MODE(udp|tcp) POLICY SRC TIMEOUT
# prints: mbps, data_mbps, retrans, redundant, seconds, timeout
ferry_transfer() {
    local where=$1 mode=$2 policy=$3 src=$4 tmo=$5
    local -a in_a=() in_b=()
    local listen=127.0.0.1:0 target=$LOOPBACK_TARGET_RATE
    if [[ $where == link ]]; then
        in_a=(ip netns exec "$FERRY_NS_A")
        in_b=(ip netns exec "$FERRY_NS_B")
        listen=$ADDR_B:0
        target=$UDP_TARGET_RATE
    fi
    find "$WORK/dst" -mindepth 1 -delete
    local -a rextra=()
    [[ -n $FERRY_RECV_ARGS ]] && read -r -a rextra <<<"$FERRY_RECV_ARGS"
    local rout="$WORK/recv.out" rerr="$WORK/recv.err"
    : >"$rout"
    "${in_b[@]}" "$FERRY" recv --listen "$listen" --root "$WORK/dst" --once -q "${rextra[@]}" >"$rout" 2>"$rerr" &
    local rpid=$!
    local url
    wait_recv_url url "$rpid" "$rout" "$rerr"
    local -a send=(send --no-progress --json --compress none)
    local -a extra=()
    if [[ $mode == udp ]]; then
        send+=(--transport udp --target-rate "$target")
        local min_rate=$UDP_MIN_RATE
        [[ $policy == low || -n ${COMPETING:-} ]] && min_rate=$COMPETE_MIN_RATE
        [[ -n $min_rate ]] && send+=(--min-rate "$min_rate")
        [[ -n $policy ]] && send+=(--policy "$policy")
        [[ -n $FERRY_UDP_ARGS ]] && read -r -a extra <<<"$FERRY_UDP_ARGS"
    else
        send+=(--streams "$TCP_STREAMS")
        [[ -n $FERRY_TCP_ARGS ]] && read -r -a extra <<<"$FERRY_TCP_ARGS"
    fi
    local rc=0 t0 t1
    t0=$EPOCHREALTIME
    timeout --signal=INT --kill-after=10 "$tmo" "${in_a[@]}" "$FERRY" "${send[@]}" "${extra[@]}" \
        "$src" "$(ferry_url_path "$url" dest/)" >"$WORK/send.json" 2>"$WORK/send.err" || rc=$?
    t1=$EPOCHREALTIME
    echo "t0 $t0"
    echo "t1 $t1"
    echo "seconds $(elapsed "$t0" "$t1")"
    if ((rc == 124 || rc == 137)); then
        echo "timeout 1"
        stop_pid "$rpid"
        log "  ferry $mode timed out after ${tmo}s"
        return 0
    fi
    if ((rc != 0)); then
        tail_file "$WORK/send.err"
        stop_pid "$rpid"
        bail "ferry send ($mode) exited with status $rc"
    fi
    local deadline=$((SECONDS + FERRY_EXIT_TIMEOUT))
    while kill -0 "$rpid" 2>/dev/null; do
        ((SECONDS < deadline)) || { stop_pid "$rpid"; bail "ferry recv --once did not exit after the transfer"; }
        sleep 0.05
    done
    wait "$rpid" || { tail_file "$rerr"; bail "ferry recv exited with an error"; }
    local got
    got="$WORK/dst/dest/$(basename "$src")"
    [[ -f $got ]] || got="$WORK/dst/dest"
    cmp -s "$src" "$got" || bail "received file $got differs from the source"
    "$PYTHON" - "$WORK/send.json" "$(elapsed "$t0" "$t1")" <<'EOF'
import json, sys
txt = open(sys.argv[1]).read()
try:
    d = json.loads(txt[txt.index("{"):txt.rindex("}") + 1])
except ValueError as e:
    sys.exit("cannot parse ferry send --json: %s" % e)
if d.get("ok") is False:
    sys.exit("ferry JSON reports ok=false: %s" % d.get("error", ""))
wall = float(sys.argv[2])
size = int(d["bytes_on_disk"])
print("bytes", size)
print("mbps %.1f" % (size * 8 / wall / 1e6))
udp = d.get("udp") if isinstance(d.get("udp"), dict) else {}
def first(*names):
    for n in names:
        for src in (udp, d):
            if isinstance(src.get(n), (int, float)):
                return src[n]
    return None
# The data-phase rate, under whichever name the transport reports it.
secs = first("data_phase_seconds", "data_seconds")
rate = first("data_phase_bps", "data_rate_bps")
mbps = first("data_phase_mbps", "data_phase_Mbps", "data_rate_mbps")
if secs:
    print("data_mbps %.1f" % (size * 8 / secs / 1e6))
elif rate:
    print("data_mbps %.1f" % (rate / 1e6))
elif mbps:
    print("data_mbps %.1f" % mbps)
for key in ("retransmitted_bytes", "redundant_bytes"):
    if isinstance(udp.get(key), (int, float)):
        print("%s %d" % (key, udp[key]))
EOF
}

# iperf_tcp CC: one iperf3 TCP flow ferry-a -> ferry-b; prints mbps (receiver-reported)
iperf_tcp() {
    local cc=$1
    ip netns exec "$FERRY_NS_B" iperf3 -s -1 -B "$ADDR_B" >"$WORK/iperf-srv.log" 2>&1 &
    local spid=$!
    sleep 0.3
    local rc=0
    timeout $((IPERF_SECONDS + 60)) ip netns exec "$FERRY_NS_A" iperf3 -c "$ADDR_B" -t "$IPERF_SECONDS" \
        -C "$cc" -J >"$WORK/iperf.json" 2>&1 || rc=$?
    stop_pid "$spid"
    "$PYTHON" - "$WORK/iperf.json" "$cc" "$rc" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit("iperf3 (rc=%s) gave no JSON: %s" % (sys.argv[3], e))
if d.get("error"):
    sys.exit("iperf3: %s" % d["error"])
end = d["end"]
if end.get("sender_tcp_congestion", sys.argv[2]) != sys.argv[2]:
    sys.exit("iperf3 ran %s, not %s" % (end.get("sender_tcp_congestion"), sys.argv[2]))
print("mbps %.1f" % (end["sum_received"]["bits_per_second"] / 1e6))
print("retrans %d" % end["sum_sent"].get("retransmits", 0))
EOF
}

# compete POLICY: a cubic iperf3 flow starts, COMPETE_WARMUP s later ferry --policy POLICY
# sends COMPETE_BYTES; prints ferry's and cubic's Mbit/s while both ran, and ferry's share
compete() {
    local policy=$1 tmo
    tmo=$(timeout_for "$COMPETE_BYTES")
    ip netns exec "$FERRY_NS_B" iperf3 -s -1 -B "$ADDR_B" -J >"$WORK/iperf-srv.json" 2>&1 &
    local spid=$!
    sleep 0.3
    local c0=$EPOCHREALTIME
    ip netns exec "$FERRY_NS_A" iperf3 -c "$ADDR_B" -t $((COMPETE_WARMUP + tmo + 30)) -C cubic -J \
        >"$WORK/iperf.json" 2>&1 &
    local cpid=$!
    sleep "$COMPETE_WARMUP"
    kill -0 "$cpid" 2>/dev/null || bail "the iperf3 cubic flow ended early: $(head -c 300 "$WORK/iperf.json")"
    COMPETING=1 ferry_transfer link "$COMPETE_TRANSPORT" "$policy" "$SRC_COMPETE" "$tmo" >"$WORK/ferry.kv"
    cat "$WORK/ferry.kv"
    kill -INT "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
    stop_pid "$spid"
    local t0 t1 fm
    t0=$(awk '$1 == "t0" { print $2 }' "$WORK/ferry.kv")
    t1=$(awk '$1 == "t1" { print $2 }' "$WORK/ferry.kv")
    fm=$(awk '$1 == "mbps" { print $2 }' "$WORK/ferry.kv")
    # The server's per-second intervals are what cubic delivered; its clock starts about
    # when the client connects (c0 + a few RTTs of setup; the error is < 1 s of a long window).
    "$PYTHON" - "$WORK/iperf-srv.json" "$c0" "$t0" "$t1" "${fm:-}" <<'EOF'
import json, sys
txt = open(sys.argv[1]).read()
try:
    d = json.loads(txt[txt.index("{"):txt.rindex("}") + 1])
except ValueError as e:
    sys.exit("iperf3 server gave no JSON: %s" % e)
c0, t0, t1 = float(sys.argv[2]) + 0.3, float(sys.argv[3]), float(sys.argv[4])
seen, got, total = set(), 0.0, 0
for iv in d.get("intervals", []):
    s = iv["sum"]
    key = (round(s["start"], 3), round(s["end"], 3))
    if key in seen or s["end"] <= s["start"]:
        continue
    seen.add(key)
    total += s["bytes"]
    a, b = c0 + s["start"], c0 + s["end"]
    overlap = max(0.0, min(b, t1) - max(a, t0))
    got += s["bytes"] * overlap / (b - a)
cubic = got * 8 / (t1 - t0) / 1e6
print("cubic_mbps %.1f" % cubic)
print("cubic_total_bytes %d" % total)
if sys.argv[5]:
    f = float(sys.argv[5])
    print("share %.2f" % (f / (f + cubic) if f + cubic > 0 else 0))
EOF
}

# measure ROW WHAT: one measurement on a fresh link; results in $RES/ROW.WHAT
measure() {
    local row=$1 what=$2 out="$RES/$1.$2" logf="$WORK/$1.$2.log"
    log "row $row: $what"
    local rc=0
    set +e
    (
        set -e
        trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT   # errexit applies to traps too
        if [[ $row != 6 ]]; then
            link_up "$row" || { rc=$?; ((rc == 77)) && exit 77; bail "netns_link.sh up failed (rc=$rc)"; }
        fi
        case $what in
            udp) ferry_transfer link udp "$UDP_POLICY" "$SRC_BIG" "$(timeout_for "$BYTES")" ;;
            tcp) ferry_transfer link tcp "" "$SRC_BIG" "$(timeout_for "$BYTES")" ;;
            cubic | bbr) iperf_tcp "$what" ;;
            fair | low) compete "$what" ;;
            lowalone) ferry_transfer link udp low "$SRC_BIG" "$(timeout_for "$BYTES")" ;;
            loopudp) ferry_transfer loopback udp "$UDP_POLICY" "$SRC_BIG" "$(timeout_for "$BYTES")" ;;
            iperfudp)
                port=$(free_port)
                iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$WORK/iperf-srv.log" 2>&1 &
                sleep 0.3
                timeout $((IPERF_SECONDS + 60)) iperf3 -c 127.0.0.1 -p "$port" -u -l 1400 -b 0 \
                    -t "$(( IPERF_SECONDS < 10 ? IPERF_SECONDS : 10 ))" -J >"$WORK/iperf.json" 2>&1 || true
                "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("mbps %.1f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$WORK/iperf.json" ;;
        esac
    ) >"$out" 2>"$logf"
    rc=$?
    set -e
    [[ $row != 6 ]] && link_down
    if ((rc == 77)); then
        tail_file "$logf"
        log "namespaces or TUN are not available here; see above"
        exit 77
    fi
    if [[ -s $WORK/link.json && $row != 6 ]]; then
        {
            echo "qdelay_ms $(link_stat a_to_b queue_delay_median_ms)"
            echo "qdelay_p95_ms $(link_stat a_to_b queue_delay_p95_ms)"
            echo "link_bytes $(link_stat a_to_b bytes_forwarded)"
        } >>"$out"
    fi
    if ((rc != 0)); then
        echo "status FAIL" >>"$out"
        log "  FAIL:"; tail_file "$logf"
        return 0
    fi
    if grep -q '^timeout 1' "$out"; then
        # Timed out: estimate goodput from what linkemu forwarded (headers included). In rows
        # 4-5 linkemu also forwarded the cubic flow (warm-up included): take off everything
        # iperf3's server received, as IP bytes (1448-byte segments in 1500-byte packets).
        local lb secs cb cm
        lb=$(awk '$1 == "link_bytes" { print $2 }' "$out")
        secs=$(awk '$1 == "seconds" { print $2 }' "$out")
        cb=$(awk '$1 == "cubic_total_bytes" { print $2 }' "$out")
        cm=$(awk '$1 == "cubic_mbps" { print $2 }' "$out")
        if [[ -n $lb && -n $cb ]]; then
            lb=$(awk -v l="$lb" -v c="$cb" 'BEGIN { v = l - c * 1500 / 1448; printf "%.0f", (v > 0 ? v : 0) }')
        fi
        if [[ -n $lb && -n $secs ]]; then
            local fm
            fm=$(awk -v b="$lb" -v s="$secs" 'BEGIN { printf "%.1f", b * 8 / s / 1e6 }')
            echo "mbps ~$fm" >>"$out"
            [[ -n $cm ]] && echo "share ~$(awk -v f="$fm" -v c="$cm" 'BEGIN { printf "%.2f", (f + c > 0 ? f / (f + c) : 0) }')" >>"$out"
        fi
    fi
    log "  $(tr '\n' ' ' <"$out")"
}

# get ROW WHAT KEY -> value or ""
get() { [[ -f $RES/$1.$2 ]] && awk -v k="$3" '$1 == k { v = $2 } END { if (v != "") print v }' "$RES/$1.$2"; return 0; }
# cell ROW WHAT KEY -> value, FAIL, n/a or - (not measured)
cell() {
    [[ -f $RES/$1.$2 ]] || { echo "-"; return; }
    if [[ $(get "$1" "$2" status) == FAIL ]]; then echo FAIL; return; fi
    local v
    v=$(get "$1" "$2" "$3")
    echo "${v:-n/a}"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
log "work dir $WORK; rows '$ROWS', tools '$TOOLS', link $RATE, file $(human "$BYTES"), compete $(human "$COMPETE_BYTES")"
log "generating $(human "$BYTES") of random data"
"$PYTHON" "$GEN" random "$WORK/src" --bytes "$BYTES" --name big.bin
if has "$ROWS" 4 || has "$ROWS" 5; then head -c "$COMPETE_BYTES" "$SRC_BIG" >"$SRC_COMPETE"; fi

for row in $ROWS; do
    case $row in
        1 | 2 | 3) for t in $TOOLS; do measure "$row" "$t"; done ;;
        4) measure 4 fair ;;
        5) measure 5 low; measure 5 lowalone ;;
        6) measure 6 loopudp; measure 6 iperfudp ;;
    esac
done

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { a = a; sub(/^~/, "", a); if (a + 0 > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
pct_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", 100 * a / b; else print "-" }'; }
fmt='%-22s %9s %9s %9s %9s %9s %8s %6s %9s %12s %12s %9s\n'
{
    echo
    echo "# ferry UDP/WAN benchmark -- $(host_stamp)"
    echo "# link: linkemu $RATE each way, queue 1 BDP, loss both ways (B->A: $LOSS_REVERSE), seed $SEED; file $(human "$BYTES") (rows 4-5: $(human "$COMPETE_BYTES") over ferry $COMPETE_TRANSPORT vs cubic), random data in $BENCH_TMPDIR"
    echo "# TCP congestion control of ferry tcp (system default): $(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo '?')"
    echo "# ferry: $FERRY ($(ferry_version)); udp policy rows 1-3/6: ${UDP_POLICY:-default}, --target-rate $UDP_TARGET_RATE --min-rate $UDP_MIN_RATE (rows 4-5 and low: ${COMPETE_MIN_RATE:-none}); tcp: --streams $TCP_STREAMS; iperf3: single flow, ${IPERF_SECONDS}s"
    echo "# Mbit/s = 10^6 bit/s of goodput; ferry from file bytes / wall time; iperf3 receiver-reported; ~ = timed out, estimated from linkemu's forwarded bytes"
    echo
    # shellcheck disable=SC2059
    printf "$fmt" row udp_Mbps udp_data tcp4_Mbps cubic bbr udp/link share qdelay_ms retrans_B redundant_B iperf3u
    for row in $ROWS; do
        case $row in
            1 | 2 | 3)
                u=$(cell "$row" udp mbps)
                # shellcheck disable=SC2059
                printf "$fmt" "$(row_label "$row")" "$u" "$(cell "$row" udp data_mbps)" "$(cell "$row" tcp mbps)" \
                    "$(cell "$row" cubic mbps)" "$(cell "$row" bbr mbps)" "$(ratio "$u" "$LINK_MBPS")" - \
                    "$(cell "$row" udp qdelay_ms)" "$(cell "$row" udp retransmitted_bytes)" \
                    "$(cell "$row" udp redundant_bytes)" - ;;
            4 | 5)
                w=$([[ $row == 4 ]] && echo fair || echo low)
                u=$(cell "$row" "$w" mbps)
                # shellcheck disable=SC2059
                printf "$fmt" "$(row_label "$row")" "$u" "$(cell "$row" "$w" data_mbps)" - "$(cell "$row" "$w" cubic_mbps)" - \
                    "$(ratio "$u" "$LINK_MBPS")" "$(cell "$row" "$w" share)" "$(cell "$row" "$w" qdelay_ms)" \
                    "$(cell "$row" "$w" retransmitted_bytes)" "$(cell "$row" "$w" redundant_bytes)" -
                if [[ $row == 5 ]]; then
                    u=$(cell 5 lowalone mbps)
                    # shellcheck disable=SC2059
                    printf "$fmt" "$(row_label 5alone)" "$u" "$(cell 5 lowalone data_mbps)" - - - \
                        "$(ratio "$u" "$LINK_MBPS")" - "$(cell 5 lowalone qdelay_ms)" \
                        "$(cell 5 lowalone retransmitted_bytes)" "$(cell 5 lowalone redundant_bytes)" -
                fi ;;
            6)
                # shellcheck disable=SC2059
                printf "$fmt" "$(row_label 6)" "$(cell 6 loopudp mbps)" "$(cell 6 loopudp data_mbps)" - - - - - - \
                    "$(cell 6 loopudp retransmitted_bytes)" "$(cell 6 loopudp redundant_bytes)" "$(cell 6 iperfudp mbps)" ;;
        esac
    done
    echo "# queueing delay (linkemu a->b median, ms) of the iperf3 flows:$(for r in 1 2 3; do
        for c in cubic bbr; do [[ -f $RES/$r.$c ]] && printf ' row %s %s %s' "$r" "$c" "$(cell "$r" "$c" qdelay_ms)"; done; done)"

    # ---- targets ----------------------------------------------------------
    echo
    echo "targets:"
    check() {  # check LABEL VALUE OP LIMIT SHOWN_LIMIT
        local label=$1 v=$2 op=$3 lim=$4 shown=$5 verdict
        if [[ -z $v || $v == - ]]; then
            printf '  %-44s %s\n' "$label" "SKIP (not measured)"; return
        fi
        if [[ $v == n/a || $v == FAIL ]]; then
            printf '  %-44s %s\n' "$label" "SKIP ($v)"; return
        fi
        verdict=$(awk -v v="${v#\~}" -v l="$lim" -v op="$op" 'BEGIN {
            ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "PASS" : "FAIL" }')
        printf '  %-44s %s vs %s  %s\n' "$label" "$v" "$shown" "$verdict"
    }
    for row in 1 2 3; do
        has "$ROWS" "$row" || continue
        want=$([[ $row == 3 ]] && echo 0.90 || echo 0.95)
        lim=$(awk -v w="$want" -v l="$LINK_MBPS" 'BEGIN { printf "%.1f", w * l }')
        check "($row) udp >= $(awk -v w="$want" 'BEGIN { print w * 100 }')% of link (Mbit/s)" "$(cell "$row" udp mbps)" ">=" "$lim" "$lim"
        red=$(cell "$row" udp redundant_bytes) by=$(cell "$row" udp bytes)
        if [[ $red =~ ^[0-9]+$ && $by =~ ^[0-9]+$ ]]; then
            check "($row) udp redundant <= 1% of file bytes" "$(pct_of "$red" "$by")%" "<=" 1 "1%"
        else
            check "($row) udp redundant <= 1% of file bytes" "$red" "<=" 1 "1%"
        fi
        check "($row) udp median queueing <= 20 ms" "$(cell "$row" udp qdelay_ms)" "<=" 20 "20 ms"
    done
    if has "$ROWS" 4; then
        s=$(cell 4 fair share)
        check "(4) fair share vs cubic >= 30%" "$s" ">=" 0.30 0.30
        check "(4) fair share vs cubic <= 70%" "$s" "<=" 0.70 0.70
    fi
    if has "$ROWS" 5; then
        check "(5) low share vs cubic <= 20%" "$(cell 5 low share)" "<=" 0.20 0.20
        lim=$(awk -v l="$LINK_MBPS" 'BEGIN { printf "%.1f", 0.9 * l }')
        check "(5) low alone >= 90% of link (Mbit/s)" "$(cell 5 lowalone mbps)" ">=" "$lim" "$lim"
    fi
}
log "done"
