#!/usr/bin/env python3
# mkdata.py - the data set of bench/convert.sh: a sparse raw image of SIZE
# MiB, about half of it holes or written zeroes, half data of mixed
# compressibility (random, text-like, low-entropy), in runs of 1-4 MiB.
import os, random, sys

path, size_mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = [b"block", b"cluster", b"qcow2", b"refcount", b"the", b"of", b"image",
         b"backing", b"snapshot", b"table", b"offset", b"write", b"read",
         b"zero", b"and", b"guest", b"kernel", b"driver", b"\n", b"0x7f"]
text = b" ".join(rng.choice(words) for _ in range(300000))[: 1 << 20]
low = bytes(rng.choice(b"ABCDEFGH") for _ in range(1 << 20))
MiB = 1 << 20
with open(path, "wb") as f:
    f.truncate(size_mib * MiB)
    off = 0
    while off < size_mib:
        run = min(rng.randint(1, 4), size_mib - off)
        kind = rng.randrange(6)
        if kind < 2:
            off += run              # hole
            continue
        f.seek(off * MiB)
        if kind == 2:
            f.write(bytes(run * MiB))   # zeroes written as data
            off += run
            continue
        for _ in range(run):
            if kind == 3:
                f.write(os.urandom(MiB))
            elif kind == 4:
                k = rng.randrange(MiB)
                f.write(text[k:] + text[:k])
            else:
                k = rng.randrange(MiB)
                f.write(low[k:] + low[:k])
        off += run
