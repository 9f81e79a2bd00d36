#!/bin/bash
# make-corpus.sh - build the corpus of damaged qcow2 images used by
# tests/compat/qcow2-damaged.bats: good images made by qemu-img/qemu-io,
# then one field or table entry broken with printf | dd.  Nothing binary
# is committed; run as: make-corpus.sh DIR (prints the image names).
set -euo pipefail

dir=${1:?usage: make-corpus.sh DIR}
mkdir -p "$dir"
cd "$dir"

# poke FILE OFFSET HEXBYTES: overwrite bytes ("00 01 ff") at OFFSET.
poke() {
    local f=$1 off=$2 hex=$3 esc=""
    for b in $hex; do
        esc+="\\x$b"
    done
    printf "$esc" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# poke_be32/poke_be64 FILE OFFSET VALUE (decimal or 0x...)
poke_be32() {
    poke "$1" "$2" "$(printf '%08x' "$3" | sed 's/../& /g')"
}
poke_be64() {
    poke "$1" "$2" "$(printf '%016x' "$3" | sed 's/../& /g')"
}
peek_be64() {
    od -A n -t x1 -j "$2" -N 8 "$1" | tr -d ' \n' | sed 's/^/0x/'
}

# The good image every damage starts from: v3, 64 KiB clusters, 1 MiB,
# 128 KiB of data.  Layout (QEMU 7.2): header 0, reftable 0x10000,
# refblock 0x20000, L1 0x30000, L2 0x40000, data 0x50000 and 0x60000.
qemu-img create -q -f qcow2 good.qcow2 1M
qemu-io -c 'write -P 0x11 0 128k' good.qcow2 >/dev/null

mk() {
    cp good.qcow2 "$1.qcow2"
    echo "$1"
}

# ---- the header -------------------------------------------------------------
head -c 50 good.qcow2 > truncated-header.qcow2; echo truncated-header
mk bad-magic;            poke bad-magic.qcow2 0 "58"
mk version-1;            poke_be32 version-1.qcow2 4 1
mk version-4;            poke_be32 version-4.qcow2 4 4
mk cluster-bits-8;       poke_be32 cluster-bits-8.qcow2 20 8
mk cluster-bits-22;      poke_be32 cluster-bits-22.qcow2 20 22
mk huge-l1-size;         poke_be32 huge-l1-size.qcow2 36 0x10000000
mk l1-misaligned;        poke_be64 l1-misaligned.qcow2 40 0x30200
mk l1-beyond-eof;        poke_be64 l1-beyond-eof.qcow2 40 0x1000000
mk reftable-huge;        poke_be32 reftable-huge.qcow2 56 0x100000
mk reftable-misaligned;  poke_be64 reftable-misaligned.qcow2 48 0x10200
mk reftable-beyond-eof;  poke_be64 reftable-beyond-eof.qcow2 48 0x10000000
mk unknown-incompat;     poke_be64 unknown-incompat.qcow2 72 0x20
mk corrupt-bit;          poke_be64 corrupt-bit.qcow2 72 0x2
mk dirty-bit;            poke_be64 dirty-bit.qcow2 72 0x1
# the first header extension (the feature table at 112): length too big
mk bad-ext-length;       poke_be32 bad-ext-length.qcow2 116 0xffff0000
mk backing-offset-beyond
poke_be64 backing-offset-beyond.qcow2 8 0x20000
poke_be32 backing-offset-beyond.qcow2 16 8
mk backing-name-too-long
poke_be64 backing-name-too-long.qcow2 8 0x800
poke_be32 backing-name-too-long.qcow2 16 2000

# ---- L1/L2 tables -----------------------------------------------------------
mk l2-misaligned;        poke_be64 l2-misaligned.qcow2 $((0x40008)) 0x8000000000050200
mk l2-into-l1;           poke_be64 l2-into-l1.qcow2 $((0x40008)) 0x8000000000030000
mk l2-into-reftable;     poke_be64 l2-into-reftable.qcow2 $((0x40008)) 0x8000000000010000
mk l2-beyond-eof;        poke_be64 l2-beyond-eof.qcow2 $((0x40008)) 0x8000001000000000
mk l2-reserved-bits;     poke_be64 l2-reserved-bits.qcow2 $((0x40008)) 0x8000000000060002
mk l1-into-header;       poke_be64 l1-into-header.qcow2 $((0x30000)) 0x8000000000010000
mk l1-entry-misaligned;  poke_be64 l1-entry-misaligned.qcow2 $((0x30000)) 0x8000000000040200

# a compressed cluster whose descriptor points past the end of the file
qemu-img create -q -f qcow2 compressed-beyond-eof.qcow2 1M
qemu-io -c 'write -c -P 0x22 0 64k' compressed-beyond-eof.qcow2 >/dev/null
l1=$(peek_be64 compressed-beyond-eof.qcow2 40)
l2=$(( $(peek_be64 compressed-beyond-eof.qcow2 $((l1))) & 0x00fffffffffffe00 ))
desc=$(peek_be64 compressed-beyond-eof.qcow2 $l2)
poke_be64 compressed-beyond-eof.qcow2 $l2 $(( desc | (1 << 40) ))
echo compressed-beyond-eof

# ---- refcounts --------------------------------------------------------------
mk zeroed-refcounts
dd if=/dev/zero of=zeroed-refcounts.qcow2 bs=64k seek=2 count=1 conv=notrunc status=none
mk refcount-data-zero;   poke refcount-data-zero.qcow2 $((0x20000 + 2 * 5)) "00 00"
mk refcount-leak;        truncate -s 512k refcount-leak.qcow2
poke refcount-leak.qcow2 $((0x20000 + 2 * 7)) "00 01"
mk refcount-too-high;    poke refcount-too-high.qcow2 $((0x20000 + 2 * 5)) "00 02"
mk reftable-entry-misaligned
poke_be64 reftable-entry-misaligned.qcow2 $((0x10000)) 0x20200

# ---- snapshot table ---------------------------------------------------------
qemu-img snapshot -c snap good.qcow2
mk snapshot-ok
mk snapshot-offset-misaligned
poke_be64 snapshot-offset-misaligned.qcow2 64 $(( $(peek_be64 good.qcow2 64) + 8 ))
mk snapshot-nb-huge;     poke_be32 snapshot-nb-huge.qcow2 60 0x100000
mk snapshot-table-beyond-eof
poke_be64 snapshot-table-beyond-eof.qcow2 64 0x10000000
# the snapshot's extra data size over QEMU's 1024-byte limit
mk snapshot-extra-too-big
poke_be32 snapshot-extra-too-big.qcow2 $(( $(peek_be64 good.qcow2 64) + 36 )) 0x800
# an unknown autoclear bit next to a snapshot (QEMU's repair loses it)
mk autoclear-unknown-snapshot
poke_be64 autoclear-unknown-snapshot.qcow2 88 0x80
rm good.qcow2
