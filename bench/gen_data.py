#!/usr/bin/env python3
"""Data generation and verification helpers for bench/compare_tcp.sh.

Python 3 standard library only.

Subcommands
  random   DIR --bytes N [--name random.bin]
           one file of N random bytes (os.urandom).
  tree     DIR --files N --size S --dirs D
           N files of S random bytes spread over D sub-directories.
  cache    DIR --bytes N --files K [--seed X] [--jobs J]
           ~N bytes of compressible, simulation-like text "cache" data
           (rows of smooth float fields printed with limited precision,
           zstd -1 compresses it roughly 2.5-3.5x), split into K files.
  manifest DIR
           print a sorted "sha1  size  relpath" listing of every regular
           file under DIR (stdout).
  verify   MANIFEST DIR
           compare DIR against a listing produced by `manifest`; prints
           the differences and exits 1 on any mismatch.
  stats    DIR
           print "<files> <bytes>" for the regular files under DIR.
"""

import argparse
import hashlib
import math
import os
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool

CHUNK = 4 << 20


# --------------------------------------------------------------------------
# random data
# --------------------------------------------------------------------------
def write_random(path, nbytes):
    with open(path, "wb") as f:
        left = nbytes
        while left > 0:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n


def cmd_random(a):
    os.makedirs(a.dir, exist_ok=True)
    write_random(os.path.join(a.dir, a.name), a.bytes)


def cmd_tree(a):
    os.makedirs(a.dir, exist_ok=True)
    dirs = [os.path.join(a.dir, "d%03d" % d) for d in range(a.dirs)]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    for i in range(a.files):
        p = os.path.join(dirs[i % a.dirs], "f%05d.bin" % i)
        with open(p, "wb") as f:
            f.write(os.urandom(a.size))


# --------------------------------------------------------------------------
# compressible "cache" data
# --------------------------------------------------------------------------
# Each file is one "frame" of a fake 3-D fluid simulation cache: a header,
# then one text row per grid cell:
#   i j k  density  temperature  pressure  vx  vy  vz
# The fields are smooth functions of position and frame number plus a little
# noise, printed with 4-6 significant digits -- the kind of output a solver
# dumps as an ASCII checkpoint.  Position indices are very compressible,
# leading digits of the smooth fields are somewhat compressible, trailing
# digits are noise; overall zstd -1 lands at about 3x.
ROW_FMT = "%d %d %d %.5f %.3f %.2f %.4f %.4f %.4f\n"


def _cache_file(args):
    path, nbytes, seed, frame = args
    rng = random.Random(seed * 1000003 + frame)
    nx = 128
    ny = 128
    t = frame * 0.137
    # per-frame wave tables (cheap lookups instead of sin() per cell)
    wx = [math.sin(2 * math.pi * x / nx + t) for x in range(nx)]
    wy = [math.cos(2 * math.pi * y / ny - 0.7 * t) for y in range(ny)]
    # Gaussian noise table; every grid line reads it at fresh random offsets
    # (rng.gauss per value would make generation ~4x slower).
    ntab = 1 << 16
    noise = [rng.gauss(0.0, 1.0) for _ in range(ntab + nx)]
    pick = rng.randrange
    size = 0
    header = ("# ferry-bench simulation cache frame %d\n"
              "# grid %dx%dxN  fields: i j k rho T p vx vy vz\n" % (frame, nx, ny))
    fmt = ROW_FMT
    with open(path, "w", buffering=CHUNK) as f:
        f.write(header)
        size += len(header)
        k = 0
        while size < nbytes:
            wz = math.sin(0.05 * k + 0.3 * t)
            for j in range(ny):
                yj = wy[j]
                base_rho = 1.0 + 0.25 * yj * wz
                base_T = 300.0 + 12.0 * yj - 3.0 * wz
                o = pick(ntab)
                n1 = noise[o:o + nx]
                o = pick(ntab)
                n2 = noise[o:o + nx]
                o = pick(ntab)
                n3 = noise[o:o + nx]
                o = pick(ntab)
                n4 = noise[o:o + nx]
                o = pick(ntab)
                n5 = noise[o:o + nx]
                rows = []
                app = rows.append
                for i in range(nx):
                    xi = wx[i]
                    rho = base_rho + 0.1 * xi + 2e-4 * n1[i]
                    temp = base_T + 5.0 * xi * wz + 0.02 * n2[i]
                    app(fmt % (
                        i, j, k,
                        rho,
                        temp,
                        101325.0 + 287.0 * rho * (temp - 300.0) + 0.5 * n3[i],
                        0.5 * xi * yj + 1e-3 * n4[i],
                        0.5 * yj * wz + 1e-3 * n5[i],
                        0.1 * xi + 1e-3 * n4[nx - 1 - i],
                    ))
                chunk = "".join(rows)
                remaining = nbytes - size
                if len(chunk) >= remaining:
                    # cut at a row boundary near the target size
                    cut = chunk.rfind("\n", 0, remaining)
                    chunk = chunk[:cut + 1] if cut >= 0 else ""
                    f.write(chunk)
                    size = nbytes
                    break
                f.write(chunk)
                size += len(chunk)
            k += 1
    return size


def cmd_cache(a):
    os.makedirs(a.dir, exist_ok=True)
    per = a.bytes // a.files
    jobs = []
    for n in range(a.files):
        want = per if n < a.files - 1 else a.bytes - per * (a.files - 1)
        jobs.append((os.path.join(a.dir, "frame_%04d.sim" % n), want, a.seed, n))
    workers = max(1, min(a.jobs, a.files))
    if workers == 1:
        for j in jobs:
            _cache_file(j)
    else:
        with Pool(workers) as pool:
            pool.map(_cache_file, jobs, chunksize=1)


# --------------------------------------------------------------------------
# manifests / verification
# --------------------------------------------------------------------------
def list_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, root))
    out.sort()
    return out


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest(), os.path.getsize(path)


def manifest(root):
    rels = list_files(root)
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as ex:
        res = list(ex.map(lambda r: sha1_file(os.path.join(root, r)), rels))
    return {r: (h, s) for r, (h, s) in zip(rels, res)}


def cmd_manifest(a):
    m = manifest(a.dir)
    w = sys.stdout.write
    for rel in sorted(m):
        h, s = m[rel]
        w("%s  %d  %s\n" % (h, s, rel))


def read_manifest(path):
    m = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            h, s, rel = line.split("  ", 2)
            m[rel] = (h, int(s))
    return m


def cmd_verify(a):
    want = read_manifest(a.manifest)
    if not os.path.isdir(a.dir):
        print("verify: destination %s does not exist" % a.dir, file=sys.stderr)
        sys.exit(1)
    got = manifest(a.dir)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(r for r in set(want) & set(got) if want[r] != got[r])
    if not (missing or extra or differ):
        return
    print("verify: %s does NOT match the source: %d missing, %d extra, %d differ"
          % (a.dir, len(missing), len(extra), len(differ)), file=sys.stderr)
    for label, items in (("missing", missing), ("extra", extra), ("differ", differ)):
        for r in items[:5]:
            print("  %s: %s" % (label, r), file=sys.stderr)
        if len(items) > 5:
            print("  ... %d more %s" % (len(items) - 5, label), file=sys.stderr)
    sys.exit(1)


def cmd_stats(a):
    n = 0
    total = 0
    for rel in list_files(a.dir):
        n += 1
        total += os.path.getsize(os.path.join(a.dir, rel))
    print(n, total)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("random")
    s.add_argument("dir")
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--name", default="random.bin")
    s.set_defaults(fn=cmd_random)

    s = sub.add_parser("tree")
    s.add_argument("dir")
    s.add_argument("--files", type=int, required=True)
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--dirs", type=int, required=True)
    s.set_defaults(fn=cmd_tree)

    s = sub.add_parser("cache")
    s.add_argument("dir")
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--files", type=int, default=8)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    s.set_defaults(fn=cmd_cache)

    s = sub.add_parser("manifest")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_manifest)

    s = sub.add_parser("verify")
    s.add_argument("manifest")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_verify)

    s = sub.add_parser("stats")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_stats)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
