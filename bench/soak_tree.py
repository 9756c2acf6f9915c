#!/usr/bin/env python3
"""Seeded source trees and destination checks for bench/soak.sh (stdlib only).

  soak_tree.py gen DIR SEED LARGE_MIN_MIB LARGE_MAX_MIB   -> prints "large_count large_bytes small_count total_bytes"
  soak_tree.py hashes SRC OUT                             -> OUT: one "sha1 size relpath" line per file of SRC
  soak_tree.py watch HASHES DST STOP VIOLATIONS [INTERVAL]
  soak_tree.py compare HASHES DST                         -> exit 0 iff DST holds exactly those files

The watcher is the soak's "never a wrong file under a final name" check: every INTERVAL
seconds it lists DST and hashes every regular file visible under a final name (anything but
ferry's `.<name>.ferry-<tag>.part` temporaries and the `.ferry` state folder at the top)
that it has not yet verified in its current form. A file is identified by
(inode, size, mtime, ctime); ferry only ever renames a complete file into place and never
writes it afterwards, so one verification per identity is enough, and any later change to
the file changes its identity and gets it hashed again. It hashes through the descriptor it
opened, so a rename over the name mid-read cannot mix two files. Scans (stat only: names and
sizes) run every INTERVAL; hashing runs beside them in a thread, so a big file being hashed
does not hold up the scans. A name that is not in the source, a wrong size or wrong bytes is
a violation: appended to VIOLATIONS (one line each) and printed on stderr. Once the file
STOP exists it makes one more scan, finishes hashing, and exits.
"""
import hashlib
import os
import queue
import random
import re
import sys
import threading
import time

TEMP_RE = re.compile(r"(^|/)\.[^/]*\.ferry-[0-9a-f]+\.part$")
MIB = 1 << 20


def gen(root, seed, large_min, large_max):
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    large = rng.randint(2, 3)
    large_bytes = 0
    os.makedirs(os.path.join(root, "cache"), exist_ok=True)
    for i in range(large):
        # Not a multiple of the chunk size: the last chunk is short.
        size = rng.randint(large_min * MIB, large_max * MIB) - rng.randint(0, 4095)
        with open(os.path.join(root, "cache", "sim.%d.bgeo" % i), "wb") as f:
            left = size
            while left:
                n = min(left, 8 * MIB)
                f.write(rng.randbytes(n))
                left -= n
        large_bytes += size
    small = rng.randint(200, 500)
    dirs = ["plates/seq%02d" % d for d in range(rng.randint(3, 8))]
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    small_bytes = 0
    for i in range(small):
        # Mostly a few KiB, some empty, some a few hundred KiB (more than one 64 KiB chunk is
        # not guaranteed: the soak uses ferry's default chunk size unless told otherwise).
        r = rng.random()
        size = 0 if r < 0.03 else rng.randint(1, 16 << 10) if r < 0.7 else rng.randint(16 << 10, 600 << 10)
        with open(os.path.join(root, dirs[i % len(dirs)], "frame.%04d.exr" % i), "wb") as f:
            f.write(rng.randbytes(size))
        small_bytes += size
    print(large, large_bytes, small, large_bytes + small_bytes)


def walk_files(root, skip_state):
    for d, subdirs, files in os.walk(root):
        rel_dir = os.path.relpath(d, root)
        if skip_state and rel_dir == ".":
            subdirs[:] = [s for s in subdirs if s != ".ferry"]
        for name in files:
            rel = name if rel_dir == "." else rel_dir + "/" + name
            yield rel, os.path.join(d, name)


def sha1_fd(fd):
    h = hashlib.sha1()
    while True:
        b = os.read(fd, 4 * MIB)
        if not b:
            return h.hexdigest()
        h.update(b)


def hashes(src, out):
    with open(out, "w") as f:
        for rel, full in sorted(walk_files(src, False)):
            fd = os.open(full, os.O_RDONLY)
            try:
                f.write("%s %d %s\n" % (sha1_fd(fd), os.fstat(fd).st_size, rel))
            finally:
                os.close(fd)


def load_hashes(path):
    want = {}
    with open(path) as f:
        for line in f:
            digest, size, rel = line.rstrip("\n").split(" ", 2)
            want[rel] = (digest, int(size))
    return want


def watch(hash_file, dst, stop, violations, interval=0.05):
    want = load_hashes(hash_file)
    mu = threading.Lock()
    verified = {}  # rel -> identity last found correct (or reported)
    queued = {}    # rel -> identity handed to the hasher and not yet done
    work = queue.Queue()
    counts = {"scans": 0, "hashed": 0, "bad": 0}

    def violation(msg):
        with mu:
            counts["bad"] += 1
            print("soak_watch: VIOLATION " + msg, file=sys.stderr, flush=True)
            with open(violations, "a") as v:
                v.write(msg + "\n")

    def hasher():
        # hashlib and os.read release the GIL, so the scans go on while a big file hashes.
        while True:
            item = work.get()
            if item is None:
                return
            rel, full = item
            ident = None
            try:
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                fd = -1  # renamed away, deleted or replaced meanwhile: the scans see the new state
            if fd >= 0:
                try:
                    fst = os.fstat(fd)
                    digest = sha1_fd(fd)
                finally:
                    os.close(fd)
                ident = (fst.st_ino, fst.st_size, fst.st_mtime_ns, fst.st_ctime_ns)
                exp_digest, exp_size = want[rel]
                if fst.st_size != exp_size or digest != exp_digest:
                    violation("%s: visible under its final name with wrong content (size %d, sha1 %s; source size %d, "
                              "sha1 %s)" % (rel, fst.st_size, digest, exp_size, exp_digest))
            with mu:
                counts["hashed"] += fd >= 0
                queued.pop(rel, None)
                if ident is not None:
                    verified[rel] = ident

    worker = threading.Thread(target=hasher, daemon=True)
    worker.start()
    # Each scan stats every file under a final name: a wrong size or a name not in the source
    # is caught at once; a new identity goes to the hasher thread. The last scan (after STOP
    # appears) is followed by waiting for the hasher to finish everything queued.
    while True:
        last = os.path.exists(stop)
        counts["scans"] += 1
        for rel, full in walk_files(dst, True):
            if TEMP_RE.search(rel):
                continue
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue  # renamed away or deleted between listing and stat
            if not os.path.isfile(full) or os.path.islink(full):
                continue
            ident = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            with mu:
                if verified.get(rel) == ident or queued.get(rel) == ident:
                    continue
            if rel not in want:
                violation("%s: visible under a final name but not in the source" % rel)
            elif st.st_size != want[rel][1]:
                violation("%s: visible under its final name with %d bytes, the source has %d" % (rel, st.st_size, want[rel][1]))
            else:
                with mu:
                    queued[rel] = ident
                work.put((rel, full))
                continue
            with mu:
                verified[rel] = ident  # reported once per identity
        if last:
            break
        time.sleep(interval)
    work.put(None)
    worker.join()
    print("soak_watch: %d scans, %d files hashed, %d violations" % (counts["scans"], counts["hashed"], counts["bad"]),
          file=sys.stderr)


def compare(hash_file, dst):
    want = load_hashes(hash_file)
    got = {}
    problems = []
    for rel, full in walk_files(dst, True):
        if TEMP_RE.search(rel):
            problems.append("%s: temporary file left behind" % rel)
            continue
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            got[rel] = (sha1_fd(fd), os.fstat(fd).st_size)
        finally:
            os.close(fd)
    for rel in sorted(set(want) | set(got)):
        if rel not in got:
            problems.append("%s: missing" % rel)
        elif rel not in want:
            problems.append("%s: not in the source" % rel)
        elif got[rel] != want[rel]:
            problems.append("%s: differs (size %d vs %d)" % (rel, got[rel][1], want[rel][1]))
    for p in problems[:20]:
        print("soak_compare: " + p, file=sys.stderr)
    if len(problems) > 20:
        print("soak_compare: ... %d more" % (len(problems) - 20), file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if len(argv) >= 6 and argv[1] == "gen":
        gen(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
        return 0
    if len(argv) == 4 and argv[1] == "hashes":
        hashes(argv[2], argv[3])
        return 0
    if len(argv) in (6, 7) and argv[1] == "watch":
        watch(argv[2], argv[3], argv[4], argv[5], float(argv[6]) if len(argv) == 7 else 0.05)
        return 0
    if len(argv) == 4 and argv[1] == "compare":
        return compare(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
