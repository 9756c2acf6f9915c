#!/usr/bin/env bash
# Sync benchmark: `ferry sync --delete` vs `rsync -a --delete --whole-file` (to
# an rsync daemon) on a 100,000-file tree in which 1% of the files changed,
# 50 were added and 50 deleted.
#
#   FERRY=./build/ferry bench/sync_bench.sh            # full run (100,000 files, 3 repetitions)
#   BENCH_FILES=10000 REPEAT=1 bench/sync_bench.sh     # quick run
#
# Both tools start from the same state: the source is fully synced to a ferry
# receiver and to a private rsync daemon, both copies are checked, then each
# repetition applies one set of changes to the source and times the two
# incremental syncs side by side (each against its own destination), then
# checks both destinations against the source again.
#
# If this ferry has no `sync` command yet, the ferry rows are skipped ("ferry
# sync not available") and the rsync half still runs.
#
# The report and the PASS/FAIL target line go to stdout; progress to stderr.
# The exit status is non-zero only if something is broken (a tool failed, a
# destination did not match its source, ...), never because the target was
# missed. See bench/README.md for the environment variables.
set -euo pipefail
export LC_ALL=C

# shared helpers (log, die, stop_pid, start_rsyncd, ...); also sets SCRIPT_DIR,
# REPO_DIR, GEN and PYTHON
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=sync

# ---------------------------------------------------------------------------
# configuration (all overridable from the environment)
# ---------------------------------------------------------------------------
set_default_ferry
FILES=${BENCH_FILES:-100000}                    # files in the tree
DIRS=${BENCH_DIRS:-100}                         # directories they are spread over
MIN_SIZE=${BENCH_MIN_SIZE:-1024}                # file sizes: uniform in [MIN, MAX] bytes
MAX_SIZE=${BENCH_MAX_SIZE:-16384}
CHANGED=${BENCH_CHANGED:-$((FILES / 100))}      # files rewritten per repetition (1%)
SAME_SIZE_PCT=${BENCH_SAME_SIZE_PCT:-50}        # % of the rewritten files that keep their size
d_adds=$((FILES / 2000)); ((d_adds >= 1)) || d_adds=1
ADDED=${BENCH_ADDED:-$d_adds}                   # new files per repetition (50 at 100,000)
DELETED=${BENCH_DELETED:-$d_adds}               # deleted files per repetition (50 at 100,000)
SEED=${BENCH_SEED:-1}
REPEAT=${REPEAT:-3}
TOOLS=${BENCH_TOOLS:-ferry rsync}
BENCH_NOOP=${BENCH_NOOP:-1}                     # 1 = also time a sync with nothing to do
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}                # seconds, per single sync
FERRY_URL_TIMEOUT=${FERRY_URL_TIMEOUT:-15}      # seconds for `ferry recv` to print its URL
FERRY_SYNC_ARGS=${FERRY_SYNC_ARGS:-}            # extra args for `ferry sync` (word-split)
RSYNC_EXTRA_ARGS=${RSYNC_EXTRA_ARGS:-}          # extra args for the rsync client
BENCH_TMPDIR=${BENCH_TMPDIR:-/dev/shm}
BENCH_CSV=${BENCH_CSV:-}                        # optional: write every single run here
BENCH_KEEP=${BENCH_KEEP:-0}                     # 1 = keep the work dir (debugging)

# ---------------------------------------------------------------------------
# state + cleanup
# ---------------------------------------------------------------------------
WORK=""
RSYNCD_PID=""
FERRY_RECV_PID=""
CLEANUP_PID_VARS=(FERRY_RECV_PID RSYNCD_PID)
install_cleanup_traps

# ---------------------------------------------------------------------------
# sanity checks
# ---------------------------------------------------------------------------
for v in FILES DIRS MIN_SIZE MAX_SIZE REPEAT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for v in CHANGED ADDED DELETED SAME_SIZE_PCT SEED; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((MIN_SIZE <= MAX_SIZE)) || die "BENCH_MIN_SIZE must be <= BENCH_MAX_SIZE"
((SAME_SIZE_PCT <= 100)) || die "BENCH_SAME_SIZE_PCT must be 0..100"
((CHANGED + DELETED <= FILES)) || die "BENCH_CHANGED + BENCH_DELETED must not exceed BENCH_FILES"
for t in $TOOLS; do
    case $t in ferry | rsync) ;; *) die "unknown tool '$t' in BENCH_TOOLS (ferry, rsync)" ;; esac
done
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
have_tool rsync && { command -v rsync >/dev/null || die "rsync not installed (apt-get install -y rsync)"; }

FERRY_NA=""
if have_tool ferry; then
    if [[ ! -x $FERRY ]]; then
        FERRY_NA="ferry binary not found or not executable: $FERRY"
    else
        FERRY=$(abs_path "$FERRY")
        # an older ferry prints its top-level help for `sync --help`: require sync's own --delete
        if ! help=$(timeout 10 "$FERRY" sync --help 2>&1) || ! grep -q -- '--delete' <<<"$help"; then
            FERRY_NA="$FERRY has no sync command (\`ferry sync --help\` fails or lacks --delete)"
        fi
    fi
    if [[ -n $FERRY_NA ]]; then
        echo "ferry sync not available: $FERRY_NA; the ferry rows are skipped"
        log "ferry sync not available: $FERRY_NA; skipping ferry"
    fi
fi
ferry_on() { have_tool ferry && [[ -z $FERRY_NA ]]; }
have_tool rsync || ferry_on || die "nothing to run: no rsync in BENCH_TOOLS and no ferry sync"
[[ -d $BENCH_TMPDIR ]] || die "BENCH_TMPDIR $BENCH_TMPDIR does not exist"

# source + two destinations, each file rounded up to pages, plus slack
need=$((3 * (FILES + ADDED * REPEAT) * ((MIN_SIZE + MAX_SIZE) / 2 + 4096) + (256 << 20)))
require_free_space "$BENCH_TMPDIR" "$need"

WORK=$(mktemp -d "$BENCH_TMPDIR/ferry-sync.XXXXXX")
SRC="$WORK/src"
FERRY_ROOT="$WORK/ferry-root"     # receiver root; the copy is $FERRY_ROOT/tree
RSYNC_ROOT="$WORK/rsync-root"     # daemon module path; the copy is $RSYNC_ROOT/tree
mkdir -p "$SRC" "$FERRY_ROOT" "$RSYNC_ROOT"
TOOL_PY="$WORK/synctool.py"
RSYNC_PORT=${RSYNC_PORT:-$(free_port)}

if [[ -n $BENCH_CSV ]]; then
    echo "phase,tool,run,seconds,exit,wire_bytes" >"$BENCH_CSV"
fi

# ---------------------------------------------------------------------------
# tree generation and changes (Python, stdlib only; not timed)
# ---------------------------------------------------------------------------
cat >"$TOOL_PY" <<'EOF'
import hashlib, os, random, sys, time

def write(path, data, mtime_ns=None):
    with open(path, "wb") as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))

def gen(root, files, dirs, lo, hi, seed):
    rng = random.Random(seed)
    # every file starts two days old, so a rewrite always moves its mtime by
    # whole seconds: no quick check (size + mtime) can miss it
    t0 = (int(time.time()) - 2 * 86400) * 10**9
    per_dir = [files // dirs + (1 if d < files % dirs else 0) for d in range(dirs)]
    n = 0
    for d, count in enumerate(per_dir):
        dp = os.path.join(root, "d%03d" % d)
        os.makedirs(dp, exist_ok=True)
        sizes = [rng.randint(lo, hi) for _ in range(count)]
        buf = os.urandom(sum(sizes))   # one batch per directory
        off = 0
        for i, s in enumerate(sizes):
            write(os.path.join(dp, "f%06d.bin" % n), buf[off:off + s], t0)
            off += s
            n += 1

def listing(root):
    out = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for fn in fns:
            out.append(os.path.relpath(os.path.join(dp, fn), root))
    out.sort()
    return out

def mutate(root, rnd, changed, same_pct, added, deleted, lo, hi, seed, deleted_list):
    rng = random.Random(seed * 1000003 + rnd)
    files = listing(root)
    picked = rng.sample(files, changed + deleted)
    to_change, to_delete = picked[:changed], picked[changed:]
    same = changed * same_pct // 100
    now = time.time_ns()
    nbytes = 0
    for i, rel in enumerate(to_change):
        p = os.path.join(root, rel)
        st = os.stat(p)
        if i < same:
            size = st.st_size
        else:
            size = st.st_size
            while size == st.st_size and lo < hi:
                size = rng.randint(lo, hi)
        # at least one whole second newer than before
        mt = max(now, (st.st_mtime_ns // 10**9 + 1) * 10**9)
        write(p, os.urandom(size), mt)
        nbytes += size
    dirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    for i in range(added):
        d = dirs[rng.randrange(len(dirs))]
        size = rng.randint(lo, hi)
        write(os.path.join(root, d, "new-r%d-%04d.bin" % (rnd, i)), os.urandom(size))
        nbytes += size
    with open(deleted_list, "w") as f:
        for rel in to_delete:
            os.unlink(os.path.join(root, rel))
            f.write(rel + "\n")
    print("%d changed (%d same size), %d added, %d deleted, %d bytes written"
          % (changed, same, added, deleted, nbytes))

def manifest(root):
    """{relpath: (sha1, size)} of every regular file under root (hidden ones too)"""
    out = {}
    for dp, dns, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb", buffering=0) as f:
                data = f.read()
            out[os.path.relpath(p, root)] = (hashlib.sha1(data).hexdigest(), len(data))
    return out

def check(src, deleted_list, dests):
    """each destination must hold exactly the source's files (SHA-1, size, same
    set), and none of the files deleted this round (same checks as
    gen_data.py verify, single-threaded: much faster on 100,000 small files)"""
    want = manifest(src)
    gone = [r for r in open(deleted_list).read().split("\n") if r] if deleted_list != "-" else []
    bad = False
    for d in dests:
        if not os.path.isdir(d):
            print("check: destination %s does not exist" % d, file=sys.stderr)
            bad = True
            continue
        got = manifest(d)
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        differ = sorted(r for r in set(want) & set(got) if want[r] != got[r])
        still = [r for r in gone if os.path.lexists(os.path.join(d, r))]
        if not (missing or extra or differ or still):
            continue
        bad = True
        print("check: %s does NOT match the source: %d missing, %d extra, %d differ, %d deleted files still there"
              % (d, len(missing), len(extra), len(differ), len(still)), file=sys.stderr)
        for label, items in (("missing", missing), ("extra", extra), ("differ", differ),
                             ("deleted but still there", still)):
            for r in items[:5]:
                print("  %s: %s" % (label, r), file=sys.stderr)
            if len(items) > 5:
                print("  ... %d more %s" % (len(items) - 5, label), file=sys.stderr)
    sys.exit(1 if bad else 0)

cmd = sys.argv[1]
if cmd == "gen":
    gen(sys.argv[2], *map(int, sys.argv[3:8]))
elif cmd == "mutate":
    mutate(sys.argv[2], *map(int, sys.argv[3:11]), sys.argv[11])
elif cmd == "check":
    check(sys.argv[2], sys.argv[3], sys.argv[4:])
else:
    sys.exit("unknown command " + cmd)
EOF

# ---------------------------------------------------------------------------
# daemons
# ---------------------------------------------------------------------------
FERRY_URL=""
start_ferry_recv() {   # one long-lived receiver (no --once) for every sync
    local out="$WORK/ferry-recv.out" err="$WORK/ferry-recv.err"
    : >"$out"
    "$FERRY" recv --listen 127.0.0.1:0 --root "$FERRY_ROOT" -q >"$out" 2>"$err" &
    FERRY_RECV_PID=$!
    wait_recv_url FERRY_URL "$FERRY_RECV_PID" "$out" "$err"
    log "ferry receiver at $FERRY_URL (root $FERRY_ROOT, pid $FERRY_RECV_PID)"
}

# ---------------------------------------------------------------------------
# result bookkeeping
# ---------------------------------------------------------------------------
declare -A TIMES=()   # "phase|tool" -> "t1 t2 ..."
declare -A WIRES=()   # "phase|tool" -> "w1 w2 ..."

record() {   # phase tool run seconds exit [wire]
    local key="$1|$2"
    TIMES[$key]="${TIMES[$key]:-} $4"
    [[ -n ${6:-} ]] && WIRES[$key]="${WIRES[$key]:-} $6"
    [[ -z $BENCH_CSV ]] || echo "$1,$2,$3,$4,$5,${6:-}" >>"$BENCH_CSV"
    log "  $2 ($1) run $3: $4 s, exit $5$([[ -n ${6:-} ]] && echo ", wire $6 B")"
}

# ---------------------------------------------------------------------------
# the two syncs
# ---------------------------------------------------------------------------
# ferry sync PHASE RUN [--delete]
run_ferry() {
    local phase=$1 run=$2
    shift 2
    local -a extra=()
    [[ -n $FERRY_SYNC_ARGS ]] && read -r -a extra <<<"$FERRY_SYNC_ARGS"
    local out="$WORK/ferry-sync.json" err="$WORK/ferry-sync.err" rc=0 t0 t1
    kill -0 "$FERRY_RECV_PID" 2>/dev/null || die "the ferry receiver is gone"
    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" "$FERRY" sync "$@" --json "${extra[@]}" "$SRC" "$(ferry_url_path "$FERRY_URL" tree)" \
        >"$out" 2>"$err" || rc=$?
    t1=$EPOCHREALTIME
    case $rc in
        0) ;;
        10) [[ $phase == noop ]] || log "warning: ferry sync reported nothing to do (exit 10) in phase $phase" ;;
        *)
            tail_file "$err"; tail_file "$out"
            die "ferry sync ($phase) exited with status $rc" ;;
    esac
    [[ $phase != noop || $rc == 10 ]] || log "warning: ferry sync exited $rc with nothing to do (expected 10)"
    local parsed
    parsed=$("$PYTHON" - "$out" <<'EOF'
import json, sys
txt = open(sys.argv[1]).read()
try:
    d = json.loads(txt[txt.index("{"):txt.rindex("}") + 1])
except ValueError:
    sys.exit(0)   # no JSON: no wire figure
w = d.get("bytes_on_wire")
if isinstance(w, (int, float)):
    print(int(w))
else:
    print("-")
keys = [k for k in ("files_sent", "files_skipped", "files_failed") if k in d]
parts = ["%s=%s" % (k, d[k]) for k in keys]
if isinstance(d.get("sync"), dict):   # the plan: send, update, delete, skip, ...
    parts += ["sync.%s=%s" % kv for kv in d["sync"].items() if kv[0] != "dry_run"]
print(" ".join(parts))
EOF
    ) || parsed=""
    local wire="" summary=""
    { read -r wire; read -r summary; } <<<"$parsed" || true
    [[ $wire != - ]] || wire=""
    [[ -z $summary ]] || log "  ferry JSON: $summary"
    record "$phase" ferry "$run" "$(elapsed "$t0" "$t1")" "$rc" "$wire"
}

# rsync PHASE RUN
run_rsync() {
    local phase=$1 run=$2
    local -a extra=()
    [[ -n $RSYNC_EXTRA_ARGS ]] && read -r -a extra <<<"$RSYNC_EXTRA_ARGS"
    local rc=0 t0 t1
    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" rsync -a --delete --whole-file --stats "${extra[@]}" \
        "$SRC/" "rsync://127.0.0.1:$RSYNC_PORT/bench/tree/" >"$WORK/rsync.out" 2>"$WORK/rsync.err" || rc=$?
    t1=$EPOCHREALTIME
    if ((rc != 0)); then
        tail_file "$WORK/rsync.err"
        die "rsync ($phase) exited with status $rc"
    fi
    local wire
    wire=$(rsync_sent_bytes "$WORK/rsync.out")
    record "$phase" rsync "$run" "$(elapsed "$t0" "$t1")" "$rc" "$wire"
}

# both destinations must hold exactly the source's files (SHA-1, size, same
# set) and none of the files deleted in this repetition
verify_all() {   # what [deleted-list]
    local what=$1 t0=$SECONDS
    local -a dests=()
    ferry_on && dests+=("$FERRY_ROOT/tree")
    have_tool rsync && dests+=("$RSYNC_ROOT/tree")
    "$PYTHON" "$TOOL_PY" check "$SRC" "${2:--}" "${dests[@]}" ||
        die "$what: a destination does not match the source (see above)"
    log "  $what: ${#dests[@]} destination(s) match the source ($((SECONDS - t0)) s to check)"
}

# tools take turns; the first one alternates between repetitions
sync_both() {   # phase run
    local phase=$1 run=$2 t
    local -a order=(ferry rsync)
    ((run % 2)) || order=(rsync ferry)
    for t in "${order[@]}"; do
        case $t in
            ferry) if ferry_on; then
                       if [[ $phase == initial ]]; then run_ferry "$phase" "$run"; else run_ferry "$phase" "$run" --delete; fi
                   fi ;;
            rsync) if have_tool rsync; then run_rsync "$phase" "$run"; fi ;;
        esac
    done
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
log "work dir $WORK, $FILES files in $DIRS dirs ($MIN_SIZE-$MAX_SIZE B), repeat=$REPEAT, tools='$TOOLS'"
ferry_on && log "ferry: $FERRY"

t0=$SECONDS
log "generating the tree"
"$PYTHON" "$TOOL_PY" gen "$SRC" "$FILES" "$DIRS" "$MIN_SIZE" "$MAX_SIZE" "$SEED"
read -r SRC_FILES SRC_BYTES < <("$PYTHON" "$GEN" stats "$SRC")
log "  $SRC_FILES files, $(human "$SRC_BYTES"), generated in $((SECONDS - t0)) s"

have_tool rsync && start_rsyncd "$RSYNC_ROOT"
ferry_on && start_ferry_recv

log "initial full sync"
sync_both initial 1
verify_all "initial sync"

CHANGE_DESC=""
for ((r = 1; r <= REPEAT; r++)); do
    log "repetition $r: changing the source"
    CHANGE_DESC=$("$PYTHON" "$TOOL_PY" mutate "$SRC" "$r" "$CHANGED" "$SAME_SIZE_PCT" "$ADDED" "$DELETED" \
        "$MIN_SIZE" "$MAX_SIZE" "$SEED" "$WORK/deleted.$r")
    log "  $CHANGE_DESC"
    sync_both incremental "$r"
    verify_all "repetition $r" "$WORK/deleted.$r"
done

if [[ $BENCH_NOOP == 1 ]]; then
    log "sync with nothing to do"
    for ((r = 1; r <= REPEAT; r++)); do sync_both noop "$r"; done
    verify_all "no-change syncs"
fi

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
med() {   # key -> median seconds, or empty
    # shellcheck disable=SC2086
    if [[ -n ${TIMES[$1]:-} ]]; then median ${TIMES[$1]}; fi
}
medw() {
    # shellcheck disable=SC2086
    if [[ -n ${WIRES[$1]:-} ]]; then median ${WIRES[$1]} | awk '{ printf "%.0f", $1 }'; fi
}
fmt='%-26s %-6s %5s %10s %17s %14s\n'
{
    echo
    echo "# ferry sync benchmark -- $(host_stamp)"
    echo "# tree: $SRC_FILES files in $DIRS dirs, $MIN_SIZE-$MAX_SIZE B random, $(human "$SRC_BYTES"); loopback, data in $BENCH_TMPDIR"
    echo "# per repetition: $CHANGED changed ($((CHANGED * SAME_SIZE_PCT / 100)) same size), $ADDED added, $DELETED deleted; median of $REPEAT run(s)"
    echo "# ferry: ferry sync --delete --json SRC ferry://127.0.0.1:PORT/tree   rsync: rsync -a --delete --whole-file SRC/ rsync://127.0.0.1:PORT/bench/tree/"
    if ferry_on; then
        echo "# ferry: $FERRY ($(ferry_version))"
    elif have_tool ferry; then
        echo "# ferry sync not available: $FERRY_NA"
    fi
    echo
    # shellcheck disable=SC2059
    printf "$fmt" phase tool runs median_s ratio_ferry/rsync wire_bytes
    phases="initial incremental"
    [[ $BENCH_NOOP == 1 ]] && phases+=" noop"
    for ph in $phases; do
        case $ph in
            initial) label="initial full sync"; n=1 ;;
            incremental) label="incremental (1% changed)"; n=$REPEAT ;;
            noop) label="no changes"; n=$REPEAT ;;
        esac
        [[ $ph == incremental && $CHANGED != $((FILES / 100)) ]] && label="incremental ($CHANGED changed)"
        for tool in $TOOLS; do
            s=$(med "$ph|$tool")
            if [[ -z $s ]]; then
                # shellcheck disable=SC2059
                printf "$fmt" "$label" "$tool" "$n" n/a - -
                continue
            fi
            ratio="-"
            fs=$(med "$ph|ferry") rs=$(med "$ph|rsync")
            if [[ $tool == ferry && -n $fs && -n $rs ]]; then
                ratio=$(awk -v a="$fs" -v b="$rs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
            fi
            w=$(medw "$ph|$tool")
            # shellcheck disable=SC2059
            printf "$fmt" "$label" "$tool" "$n" "$(printf '%.3f' "$s")" "$ratio" "${w:--}"
        done
    done
    echo
    echo "targets:"
    fs=$(med "incremental|ferry") rs=$(med "incremental|rsync")
    if [[ -n $fs && -n $rs ]]; then
        v=$(awk -v a="$fs" -v b="$rs" 'BEGIN { print (a + 0 <= b + 0) ? "PASS" : "FAIL" }')
        printf '  ferry sync <= 1x rsync wall time (incremental): %.3f s vs %.3f s (ratio %s)  %s\n' \
            "$fs" "$rs" "$(awk -v a="$fs" -v b="$rs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" "$v"
    elif [[ -n $FERRY_NA ]]; then
        echo "  ferry sync <= 1x rsync wall time (incremental): SKIP (ferry sync not available)"
    else
        echo "  ferry sync <= 1x rsync wall time (incremental): SKIP (ferry or rsync not measured)"
    fi
}

log "done"
