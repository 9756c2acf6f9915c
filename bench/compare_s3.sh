#!/usr/bin/env bash
# Uploads to one s3rver on loopback, side by side in one run: ferry vs `aws s3 cp
# --recursive` (Debian's awscli) vs `rclone copy` (Debian's rclone).
#
# Workloads: one 1 GiB file of random bytes; 2,000 files of 1 MiB. Every tool gets a fresh,
# empty s3rver (data in $WORK) for every run, so no tool sees another's objects. Reported:
# wall seconds, CPU seconds of the client (user + sys, from /usr/bin/time), the client's peak
# RSS, and s3rver's own CPU seconds during the run (from /proc), then ratios.
#
#   bench/compare_s3.sh                 # FERRY=build/ferry, WORK under /dev/shm
#   MEMORY=256M REPEAT=1 BENCH_TOOLS="ferry aws rclone" bench/compare_s3.sh
#   CHECKSUM=crc32c BENCH_TOOLS=ferry bench/compare_s3.sh   # ferry --checksum-algorithm crc32c
#
# Requirements: node + s3rver (packaging/install-deps.sh), awscli, rclone (FERRY_WITH_BENCH=1
# packaging/install-deps.sh), /usr/bin/time, python3.
set -euo pipefail
LOG_TAG=s3bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

set_default_ferry
FERRY=$(abs_path "$FERRY")
MEMORY=${MEMORY:-256M}
CONCURRENCY=${CONCURRENCY:-8}
CHECKSUM=${CHECKSUM:-md5}
REPEAT=${REPEAT:-1}
TOOLS=${BENCH_TOOLS:-"ferry aws rclone"}
S3RVER_JS=${FERRY_S3RVER:-/opt/ferry-test/s3rver/node_modules/s3rver/bin/s3rver.js}
AWS=${AWS:-/usr/bin/aws}
BASE=${BENCH_DIR:-/dev/shm}
WORK=$(mktemp -d "$BASE/ferry-s3-bench.XXXXXX")
BENCH_KEEP=${BENCH_KEEP:-0}
S3RVER_PID=
CLEANUP_PID_VARS=(S3RVER_PID)
install_cleanup_traps

[[ -x $FERRY ]] || die "no ferry binary at $FERRY (build first)"
[[ -f $S3RVER_JS ]] || die "s3rver not found at $S3RVER_JS (packaging/install-deps.sh)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
have_tool aws && { [[ -x $AWS ]] || die "awscli missing at $AWS"; }
have_tool rclone && { command -v rclone >/dev/null || die "rclone missing"; }
require_free_space "$BASE" $((8 << 30))

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null

log "generating data in $WORK"
mkdir -p "$WORK/one" "$WORK/many"
head -c $((1 << 30)) /dev/urandom >"$WORK/one/plate.bin"
"$PYTHON" - "$WORK/many" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(20):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for i in range(100):
        with open(f"{root}/d{d:02}/f{i:04}.bin", "wb") as f:
            f.write(os.urandom(1 << 20))
PY

# cpu_of PID: utime + stime of PID in seconds
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

start_s3rver() {
    rm -rf "$WORK/s3data"
    mkdir -p "$WORK/s3data"
    S3RVER_PORT=$(free_port)
    # --openssl-legacy-provider: s3rver's listing continuation tokens use DES
    node --openssl-legacy-provider "$S3RVER_JS" -d "$WORK/s3data" -a 127.0.0.1 -p "$S3RVER_PORT" -s --configure-bucket bench >/dev/null 2>&1 &
    S3RVER_PID=$!
    wait_listen "$S3RVER_PORT" "$S3RVER_PID" 30 || die "s3rver did not start"
    ENDPOINT=http://127.0.0.1:$S3RVER_PORT
}

# run_tool TOOL SRC_DIR: uploads SRC_DIR's contents to s3://bench/up/ and prints
# "wall cpu rss_kib server_cpu"
run_tool() {
    local tool=$1 src=$2 t0 t1 server0 server1
    start_s3rver
    local cmd
    case $tool in
        ferry) cmd=("$FERRY" send --no-progress -q --memory "$MEMORY" --s3-concurrency "$CONCURRENCY"
                    --checksum-algorithm "$CHECKSUM" --state-dir "$WORK/state" --endpoint "$ENDPOINT" "$src/" s3://bench/up/) ;;
        aws) cmd=("$AWS" --endpoint-url "$ENDPOINT" s3 cp --recursive --only-show-errors "$src/" s3://bench/up/) ;;
        rclone) cmd=(env -u AWS_CA_BUNDLE RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT="$ENDPOINT"
                     RCLONE_CONFIG_B_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_B_SECRET_ACCESS_KEY=S3RVER
                     rclone copy --config /dev/null "$src/" b:bench/up/) ;;
    esac
    server0=$(cpu_of "$S3RVER_PID")
    t0=$EPOCHREALTIME
    /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "${cmd[@]}" >"$WORK/out.txt" 2>"$WORK/err.txt" ||
        { tail_file "$WORK/err.txt"; die "$tool failed"; }
    t1=$EPOCHREALTIME
    server1=$(cpu_of "$S3RVER_PID")
    # Check: every object there, with the right total size.
    local listing count bytes want_count want_bytes
    listing=$("$AWS" --endpoint-url "$ENDPOINT" s3 ls --recursive --summarize s3://bench/up/)
    count=$(awk '/Total Objects:/ { print $3 }' <<<"$listing")
    bytes=$(awk '/Total Size:/ { print $3 }' <<<"$listing")
    want_count=$(find "$src" -type f | wc -l)
    want_bytes=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
    [[ $count == "$want_count" && $bytes == "$want_bytes" ]] ||
        die "$tool: bucket holds $count objects / $bytes bytes, expected $want_count / $want_bytes"
    stop_pid "$S3RVER_PID"
    S3RVER_PID=
    read -r user sys rss <"$WORK/time.txt"
    echo "$(elapsed "$t0" "$t1") $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }') $rss \
$(awk -v a="$server0" -v b="$server1" 'BEGIN { printf "%.2f", b - a }')"
}

declare -A WALL CPU RSS SRV
for workload in one many; do
    for tool in $TOOLS; do
        walls=() cpus=() rsss=() srvs=()
        for ((r = 0; r < REPEAT; r++)); do
            log "$workload: $tool (run $((r + 1))/$REPEAT)"
            run_tool "$tool" "$WORK/$workload" >"$WORK/result.txt"
            read -r w c m s <"$WORK/result.txt"
            walls+=("$w") cpus+=("$c") rsss+=("$m") srvs+=("$s")
        done
        WALL[$workload.$tool]=$(median "${walls[@]}")
        CPU[$workload.$tool]=$(median "${cpus[@]}")
        RSS[$workload.$tool]=$(median "${rsss[@]}")
        SRV[$workload.$tool]=$(median "${srvs[@]}")
    done
done

echo
echo "# S3 upload to s3rver on loopback — $(host_stamp)"
echo "# $(ferry_version); ferry --memory $MEMORY --s3-concurrency $CONCURRENCY --checksum-algorithm $CHECKSUM; median of $REPEAT"
printf '%-22s %-7s %9s %9s %11s %12s\n' workload tool wall_s cpu_s peak_rss s3rver_cpu_s
for workload in one many; do
    label=$([[ $workload == one ]] && echo "1 GiB, one file" || echo "2,000 x 1 MiB")
    for tool in $TOOLS; do
        printf '%-22s %-7s %9.2f %9.2f %9.0fMiB %12.2f\n' "$label" "$tool" "${WALL[$workload.$tool]}" \
            "${CPU[$workload.$tool]}" "$(awk -v k="${RSS[$workload.$tool]}" 'BEGIN { print k / 1024 }')" "${SRV[$workload.$tool]}"
    done
done
echo
echo "# ratios (ferry / other; < 1 means ferry is lower)"
for workload in one many; do
    for tool in $TOOLS; do
        [[ $tool == ferry ]] && continue
        has "$TOOLS" ferry || continue
        awk -v w="$workload" -v t="$tool" -v fw="${WALL[$workload.ferry]}" -v ow="${WALL[$workload.$tool]}" \
            -v fc="${CPU[$workload.ferry]}" -v oc="${CPU[$workload.$tool]}" \
            'BEGIN { printf "%-5s vs %-7s wall %.2fx  cpu %.2fx\n", w, t, fw / ow, (oc > 0 ? fc / oc : 0) }'
    done
done
has "$TOOLS" ferry && awk -v m="$MEMORY" -v a="${RSS[one.ferry]}" -v b="${RSS[many.ferry]}" 'BEGIN {
    printf "ferry peak RSS: %.0f MiB (one file), %.0f MiB (many files) with --memory %s\n", a / 1024, b / 1024, m }'
