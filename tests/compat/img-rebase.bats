#!/usr/bin/env bats
# img-rebase.bats - `blk-img rebase` against qemu-img 7.2 rebase: safe
# mode onto another chain, flattening with -b "", unsafe -u; the same
# messages and exit codes, overlays that read the same (qemu-img
# compare), clean (qemu-img check), with the same header and allocation.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
}

# images P: Pold0 <- Pold1 (old chain), Pnew0 <- Pnew1 (new chain), Pov on Pold1
images() {
    local p=$1
    qemu-img create -q -f qcow2 ${p}old0.qcow2 16M
    qemu-io -c 'write -P 1 0 6M' ${p}old0.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b ${p}old0.qcow2 -F qcow2 ${p}old1.qcow2
    qemu-io -c 'write -P 2 5M 2M' -c 'write -z 1M 512k' ${p}old1.qcow2 >/dev/null
    qemu-img create -q -f qcow2 ${p}new0.qcow2 16M
    qemu-io -c 'write -P 1 0 2M' -c 'write -P 7 10M 1M' ${p}new0.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b ${p}new0.qcow2 -F qcow2 ${p}new1.qcow2
    qemu-io -c 'write -P 2 5M 1M' ${p}new1.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b ${p}old1.qcow2 -F qcow2 ${p}ov.qcow2
    qemu-io -c 'write -P 3 3M 64k' -c 'write -P 4 14M 1M' ${p}ov.qcow2 >/dev/null
}

extents() {
    qemu-img map --output=json "$1" | python3 -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    k = (e["depth"], e["present"], e["zero"], e["data"])
    if out and out[-1][0] == k and out[-1][1] + out[-1][2] == e["start"]:
        out[-1][2] += e["length"]
    else:
        out.append([k, e["start"], e["length"]])
for k, s, n in out:
    print(s, n, *k)
'
}

# rebase_both ARGS... : @ stands for the image prefix (q or b)
rebase_both() {
    local a qargs=() bargs=() qrc=0 brc=0
    rm -f q*.qcow2 b*.qcow2
    images q
    images b
    qemu-img convert -O raw qov.qcow2 want.raw
    for a in "$@"; do
        qargs+=("${a//@/q}")
        bargs+=("${a//@/b}")
    done
    qemu-img rebase "${qargs[@]}" > q.txt 2>&1 || qrc=$?
    "$BLK_IMG" rebase "${bargs[@]}" > b.txt 2>&1 || brc=$?
    sed -i 's/qemu-img/X/g; s/\bq\(old\|new\|ov\)/P\1/g' q.txt
    sed -i 's/blk-img/X/g; s/\bb\(old\|new\|ov\)/P\1/g' b.txt
    diff -u q.txt b.txt
    [ "$qrc" = "$brc" ]
    [ "$qrc" -ne 0 ] && return 0
    qemu-img check -q bov.qcow2
    diff <(qemu-img info qov.qcow2 | grep backing | sed 's/qnew/P/; s/qold/P/') \
         <(qemu-img info bov.qcow2 | grep backing | sed 's/bnew/P/; s/bold/P/')
    diff <(extents qov.qcow2) <(extents bov.qcow2)
    qemu-img compare -q qov.qcow2 bov.qcow2
}

@test "compat rebase: safe mode onto another chain keeps the contents" {
    rebase_both -b @new1.qcow2 -F qcow2 @ov.qcow2
    qemu-img compare -q want.raw bov.qcow2
    rebase_both -b @new0.qcow2 -F qcow2 @ov.qcow2
    rebase_both -b @old0.qcow2 -F qcow2 @ov.qcow2
    qemu-img compare -q want.raw bov.qcow2
}

@test "compat rebase: -b \"\" flattens" {
    rebase_both -b "" @ov.qcow2
    qemu-img compare -q want.raw bov.qcow2
}

@test "compat rebase: -u only rewrites the header, byte for byte as qemu-img" {
    rebase_both -u -b @new1.qcow2 -F qcow2 @ov.qcow2
    rm -f q*.qcow2 b*.qcow2
    images q
    images b
    qemu-img rebase -u -b some/where.qcow2 -F qcow2 qov.qcow2
    "$BLK_IMG" rebase -u -b some/where.qcow2 -F qcow2 bov.qcow2
    cmp <(head -c 65536 qov.qcow2) <(head -c 65536 bov.qcow2)
    qemu-img rebase -u -b "" qov.qcow2
    "$BLK_IMG" rebase -u -b "" bov.qcow2
    cmp <(head -c 65536 qov.qcow2) <(head -c 65536 bov.qcow2)
}

@test "compat rebase: -p and -q" {
    rebase_both -q -b @new1.qcow2 -F qcow2 @ov.qcow2
    rebase_both -q -p -b @new1.qcow2 -F qcow2 @ov.qcow2
}

@test "compat rebase: the same errors" {
    rebase_both @ov.qcow2
    rebase_both -b nonexist.qcow2 -F qcow2 @ov.qcow2
    rebase_both -t bogus -b @new1.qcow2 -F qcow2 @ov.qcow2
    rebase_both -b @new1.qcow2 -F qcow2 nonexist.qcow2
}
