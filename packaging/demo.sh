#!/usr/bin/env bash
# The main job, end to end: installs dependencies, builds, starts the embedded receiver on
# loopback, sends a generated sample (an image sequence and a compressible cache file), and
# prints the summary. Fresh Debian 12 machine, as root: ./packaging/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
./packaging/build.sh
FERRY=${FERRY_BUILD_DIR:-build}/ferry

DEMO=${FERRY_DEMO_DIR:-/tmp/ferry-demo}
rm -rf "$DEMO"
mkdir -p "$DEMO/src/shot_010/plates" "$DEMO/src/shot_010/cache" "$DEMO/incoming"
echo "== generating a sample: 48 plate frames (4 MiB, incompressible) and a 128 MiB float cache"
for i in $(seq 1001 1048); do
  head -c $((4 << 20)) /dev/urandom > "$DEMO/src/shot_010/plates/plate.$i.exr"
done
python3 - "$DEMO/src/shot_010/cache/fluid_sim.0001.txt" <<'PY'
import math, sys
with open(sys.argv[1], "w") as f:
    size, i = 0, 0
    while size < 128 << 20:
        x = i * 0.001
        line = "%d %.4f %.4f %.4f\n" % (i, math.sin(x), math.cos(x) * 0.5, (i % 997) * 0.01)
        f.write(line); size += len(line); i += 1
PY

echo "== starting the receiver on loopback"
"$FERRY" recv --listen 127.0.0.1:0 --root "$DEMO/incoming" --once > "$DEMO/recv.url" 2> "$DEMO/recv.log" &
RECV_PID=$!
trap 'kill $RECV_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$DEMO/recv.url" ] && break; sleep 0.1; done
URL=$(head -n1 "$DEMO/recv.url")
echo "receiver URL: $URL"

echo "== sending"
"$FERRY" send --no-progress --json "$DEMO/src/shot_010" "${URL%%\?*}deliveries/?${URL#*\?}" > "$DEMO/summary.json"
wait $RECV_PID
python3 - "$DEMO/summary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("files sent      %d (skipped %d, failed %d)" % (d["files_sent"], d["files_skipped"], d["files_failed"]))
print("bytes on disk   %d" % d["bytes_on_disk"])
print("bytes on wire   %d  (%.0f%% of disk; on loopback the link outruns zstd, so --compress auto"
      " sends most chunks raw; on a WAN link it compresses the cache)" % (d["bytes_on_wire"], 100.0 * d["bytes_on_wire"] / max(1, d["bytes_on_disk"])))
print("time            %.2f s, %.0f MB/s" % (d["seconds"], d["throughput_MBps"]))
print("chunks resent   %d" % d["chunks_resent"])
cache = [f for f in d["files"] if f["path"].endswith(".txt")][0]
print("xxh3-128 of %s: %s" % (cache["path"], cache["xxh3_128"]))
print("full JSON summary: %s" % sys.argv[1])
PY
trap - EXIT

echo "== verifying"
if diff -r "$DEMO/src/shot_010" "$DEMO/incoming/deliveries/shot_010" >/dev/null; then
  echo "OK: $(find "$DEMO/incoming/deliveries" -type f | wc -l) files arrived byte-identical in $DEMO/incoming/deliveries"
else
  echo "MISMATCH between $DEMO/src and $DEMO/incoming" >&2
  exit 1
fi
