#!/usr/bin/env bash
# An emulated WAN link between two network namespaces, for kernels without netem.
#
#   bench/netns_link.sh up [linkemu options]   e.g. up --delay-ms 50 --rate 200M --loss 0.01
#   bench/netns_link.sh down                   stop linkemu, delete the namespaces (idempotent)
#   bench/netns_link.sh status                 is it up? the last lines of linkemu's log
#
# `up` creates namespaces $FERRY_NS_A (default ferry-a) and $FERRY_NS_B (ferry-b),
# starts bench/linkemu in the background (it creates a TUN device in each), gives the
# devices 10.99.0.1/24 (in A) and 10.99.0.2/24 (in B), MTU 1500, brings up lo, and
# raises the TCP buffer limits inside the namespaces so a 7.5 MB BDP fits. Run
# commands at either end with `ip netns exec ferry-a ...`.
#
# Global state: net.core.rmem_max / wmem_max are not per namespace (the kernel
# refuses them inside one), and UDP transports need them above the 4 MB default for
# SO_RCVBUF / SO_SNDBUF. `up` raises them to $NETNS_LINK_CORE_MAX (64 MiB) if they
# are lower and remembers the old values; the `down` of the last link that is up
# restores them. NETNS_LINK_GLOBAL_SYSCTL=0 leaves them alone.
#
# Exit status: 0 ok, 77 = cannot run here (not root, no `ip netns`, no /dev/net/tun;
# the reason is printed), 1 = failed, 2 = usage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

NS_A=${FERRY_NS_A:-ferry-a}
NS_B=${FERRY_NS_B:-ferry-b}
DEV_A=${FERRY_DEV_A:-ftun0}
DEV_B=${FERRY_DEV_B:-ftun1}
ADDR_A=${FERRY_ADDR_A:-10.99.0.1}
ADDR_B=${FERRY_ADDR_B:-10.99.0.2}
PREFIX=${FERRY_PREFIX:-24}
MTU=${FERRY_MTU:-1500}
# The TUN device's packet ring (txqueuelen) must absorb bursts while linkemu's reader
# is not scheduled; overflows are drops *before* the emulator, which it cannot count.
TXQUEUELEN=${FERRY_TXQUEUELEN:-10000}
STATE_DIR=${NETNS_LINK_STATE_DIR:-/run/ferry-netns-link}
GLOBAL_SYSCTL=${NETNS_LINK_GLOBAL_SYSCTL:-1}
CORE_MAX=${NETNS_LINK_CORE_MAX:-67108864}       # net.core.{r,w}mem_max while a link is up
TCP_MEM_MAX=${NETNS_LINK_TCP_MAX:-67108864}     # max of net.ipv4.tcp_{r,w}mem in the namespaces
READY_TIMEOUT=${NETNS_LINK_READY_TIMEOUT:-10}   # seconds for linkemu to open its devices

PAIR="$NS_A--$NS_B"
PIDFILE="$STATE_DIR/$PAIR.pid"
LOGFILE="$STATE_DIR/$PAIR.log"

msg() { echo "netns_link: $*" >&2; }
unavailable() { msg "cannot run here: $*"; exit 77; }
fail() { msg "$*"; exit 1; }

find_linkemu() {
    if [[ -n ${LINKEMU:-} ]]; then echo "$LINKEMU"; return; fi
    local c
    for c in ./build/linkemu "$REPO_DIR/build/linkemu"; do
        [[ -x $c ]] && { echo "$c"; return; }
    done
    echo ""
}

check_environment() {
    ((EUID == 0)) || unavailable "must run as root (network namespaces and TUN devices)"
    command -v ip >/dev/null || unavailable "'ip' (iproute2) is not installed"
    ip netns list >/dev/null 2>&1 || unavailable "'ip netns' does not work: $(ip netns list 2>&1 | head -n 1)"
    [[ -c /dev/net/tun ]] || unavailable "/dev/net/tun does not exist (no TUN support; try 'modprobe tun')"
}

ns_exists() { [[ -e /run/netns/$1 ]]; }

# in_ns NS CMD...: run CMD inside namespace NS
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- global sysctls, reference-counted over the links that are up -----------
# with_lock CMD...: run CMD holding $STATE_DIR/lock (parallel up/down of other pairs)
with_lock() {
    mkdir -p "$STATE_DIR/users"
    exec {lockfd}>"$STATE_DIR/lock"
    flock "$lockfd"
    "$@"
    exec {lockfd}>&-
}

raise_global_sysctls() {
    local orig="$STATE_DIR/core-mem.orig"
    [[ -e $orig ]] || echo "$(sysctl -n net.core.rmem_max) $(sysctl -n net.core.wmem_max)" >"$orig"
    touch "$STATE_DIR/users/$PAIR"
    local k
    for k in net.core.rmem_max net.core.wmem_max; do
        if (($(sysctl -n "$k") < CORE_MAX)); then
            sysctl -qw "$k=$CORE_MAX" || msg "warning: cannot raise $k"
        fi
    done
}

restore_global_sysctls() {
    local orig="$STATE_DIR/core-mem.orig"
    rm -f "$STATE_DIR/users/$PAIR"
    [[ -e $orig ]] || return 0
    if [[ -z $(ls -A "$STATE_DIR/users" 2>/dev/null) ]]; then
        local r w
        read -r r w <"$orig"
        sysctl -qw net.core.rmem_max="$r" net.core.wmem_max="$w" || msg "warning: cannot restore net.core.*mem_max"
        rm -f "$orig"
    fi
}

# --- up / down ---------------------------------------------------------------
linkemu_pid() {
    local pid
    [[ -s $PIDFILE ]] || return 1
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # only a live linkemu counts, not a recycled pid
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == linkemu ]] || return 1
    echo "$pid"
}

# report_hidden_drops: packets the kernel dropped on the TUN devices before linkemu
# read them (a full ring); they are not in linkemu's counters, so say so
report_hidden_drops() {
    local ns dev n
    for ns_dev in "$NS_A:$DEV_A" "$NS_B:$DEV_B"; do
        ns=${ns_dev%%:*} dev=${ns_dev#*:}
        n=$(ip -n "$ns" -s link show "$dev" 2>/dev/null | awk '/TX:/ { getline; print $4; exit }')
        if [[ -n $n && $n != 0 ]]; then
            msg "warning: $ns/$dev dropped $n packets before linkemu read them (TUN ring full; raise FERRY_TXQUEUELEN or use --rt-priority)"
        fi
    done
}

do_down() {
    local pid
    if pid=$(linkemu_pid); then
        report_hidden_drops
        kill -TERM "$pid" 2>/dev/null || true
        # SIGTERM makes linkemu print (and write) its final counters; give it time
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        if kill -0 "$pid" 2>/dev/null; then
            msg "linkemu (pid $pid) ignored SIGTERM for 5 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDFILE"
    local ns
    for ns in "$NS_A" "$NS_B"; do
        if ns_exists "$ns"; then
            # Processes still inside would keep the namespace alive; end them.
            local p
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || msg "warning: cannot delete namespace $ns"
        fi
    done
    if [[ $GLOBAL_SYSCTL == 1 ]]; then with_lock restore_global_sysctls; fi
}

do_up() {
    local linkemu
    linkemu=$(find_linkemu)
    [[ -n $linkemu && -x $linkemu ]] ||
        fail "linkemu binary not found (build it: cmake --build build --target linkemu, or set LINKEMU=path)"
    if linkemu_pid >/dev/null; then
        fail "link $PAIR is already up (linkemu pid $(linkemu_pid)); run '$0 down' first"
    fi
    ns_exists "$NS_A" && fail "namespace $NS_A already exists; run '$0 down' first"
    ns_exists "$NS_B" && fail "namespace $NS_B already exists; run '$0 down' first"
    mkdir -p "$STATE_DIR"

    # From here on, a failure removes what was set up. STARTED_PID is killed directly:
    # right after the fork it may not be called "linkemu" yet, which do_down insists on.
    STARTED_PID=""
    trap 'rc=$?; if ((rc != 0)); then [[ -n $STARTED_PID ]] && kill -KILL "$STARTED_PID" 2>/dev/null; do_down; fi; exit $rc' EXIT
    local ns err
    for ns in "$NS_A" "$NS_B"; do
        err=$(ip netns add "$ns" 2>&1) || unavailable "ip netns add $ns: $err"
        # IPv6 off: no router solicitations or MLD reports on the link, so the
        # packet counters (and the loss pattern of a seed) see only the traffic
        # the user sends. TCP may autotune to 64 MiB for a 7.5 MB BDP.
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        in_ns "$ns" sysctl -qw net.ipv4.tcp_rmem="4096 131072 $TCP_MEM_MAX" \
            net.ipv4.tcp_wmem="4096 16384 $TCP_MEM_MAX" net.ipv4.tcp_no_metrics_save=1
        in_ns "$ns" ip link set lo up
    done
    if [[ $GLOBAL_SYSCTL == 1 ]]; then with_lock raise_global_sysctls; fi

    setsid "$linkemu" --ns-a "$NS_A" --ns-b "$NS_B" --dev-a "$DEV_A" --dev-b "$DEV_B" "$@" \
        </dev/null >"$LOGFILE" 2>&1 &
    local pid=$!
    STARTED_PID=$pid
    echo "$pid" >"$PIDFILE"
    local deadline=$((SECONDS + READY_TIMEOUT))
    until grep -q '^linkemu: ready' "$LOGFILE" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            local rc=0
            wait "$pid" || rc=$?
            sed 's/^/    | /' "$LOGFILE" >&2
            ((rc == 77)) && unavailable "linkemu cannot open its TUN devices (see above)"
            fail "linkemu exited with status $rc (log above)"
        fi
        ((SECONDS < deadline)) || fail "linkemu did not get ready within ${READY_TIMEOUT}s (log: $LOGFILE)"
        sleep 0.02
    done
    in_ns "$NS_A" ip link set "$DEV_A" mtu "$MTU" txqueuelen "$TXQUEUELEN" up
    in_ns "$NS_B" ip link set "$DEV_B" mtu "$MTU" txqueuelen "$TXQUEUELEN" up
    in_ns "$NS_A" ip addr add "$ADDR_A/$PREFIX" dev "$DEV_A"
    in_ns "$NS_B" ip addr add "$ADDR_B/$PREFIX" dev "$DEV_B"
    trap - EXIT
    grep '^linkemu: [ab]->' "$LOGFILE" | sed 's/^/    /' >&2 || true
    msg "up: $NS_A ($ADDR_A on $DEV_A) <-> $NS_B ($ADDR_B on $DEV_B); linkemu pid $pid, log $LOGFILE"
}

do_status() {
    local pid
    if pid=$(linkemu_pid); then
        msg "up: linkemu pid $pid, namespaces $NS_A $NS_B, log $LOGFILE"
        tail -n 4 "$LOGFILE" >&2 || true
    else
        msg "down (no linkemu running for $PAIR)"
        return 3
    fi
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
    up) check_environment; do_up "$@" ;;
    down) check_environment; do_down ;;
    status) do_status ;;
    *) echo "usage: $0 up [linkemu options] | down | status   (see the comment at the top)" >&2; exit 2 ;;
esac
