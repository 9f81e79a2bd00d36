#!/usr/bin/env bats
# img-commit.bats - `blk-img commit` against qemu-img 7.2 commit on
# backing chains 1-5 deep: the same messages and exit codes, bases that
# qemu-img compare finds equal and qemu-img check finds clean, and the
# top emptied the same way (qemu-img map).

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
}

# chain P DEPTH: P0.qcow2 <- P1.qcow2 <- ... <- P$DEPTH.qcow2
chain() {
    local p=$1 depth=$2 i
    qemu-img create -q -f qcow2 ${p}0.qcow2 16M
    qemu-io -c 'write -P 10 0 4M' -c 'write -P 9 12M 1M' ${p}0.qcow2 >/dev/null
    for ((i = 1; i <= depth; i++)); do
        qemu-img create -q -f qcow2 -b ${p}$((i - 1)).qcow2 -F qcow2 ${p}$i.qcow2
        qemu-io -c "write -P $((10 + i)) $((i * 1024))k 1M" \
            -c "write -z $((i * 2))M 512k" -c "write -P 0 $((8 + i))M 64k" \
            ${p}$i.qcow2 >/dev/null
    done
}

# extents IMG: the allocation map, host offsets ignored, equal neighbours merged
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

# commit_both DEPTH ARGS... : the same commit on two equal chains.
commit_both() {
    local depth=$1 a qargs=() bargs=() qrc=0 brc=0 i
    shift
    rm -f q*.qcow2 b*.qcow2
    chain q "$depth"
    chain b "$depth"
    for a in "$@"; do
        qargs+=("${a//@/q}")
        bargs+=("${a//@/b}")
    done
    qemu-img convert -O raw q$depth.qcow2 want.raw
    qemu-img commit "${qargs[@]}" > q.txt 2>&1 || qrc=$?
    "$BLK_IMG" commit "${bargs[@]}" > b.txt 2>&1 || brc=$?
    sed -i 's/qemu-img/X/; s/\bq\([0-9]\)/P\1/g' q.txt
    sed -i 's/blk-img/X/; s/\bb\([0-9]\)/P\1/g' b.txt
    diff -u q.txt b.txt
    [ "$qrc" = "$brc" ]
    [ "$qrc" -ne 0 ] && return 0
    for ((i = 0; i <= depth; i++)); do
        qemu-img compare -q q$i.qcow2 b$i.qcow2
        qemu-img check -q b$i.qcow2
        diff <(extents q$i.qcow2) <(extents b$i.qcow2)
    done
    qemu-img compare -q want.raw b$depth.qcow2
}

@test "compat commit: into the backing file, chains 1 to 5 deep" {
    for d in 1 2 3 5; do
        commit_both $d @$d.qcow2
    done
}

@test "compat commit: -d keeps the top" {
    commit_both 2 -d @2.qcow2
    commit_both 1 -q -d @1.qcow2
}

@test "compat commit: -b into a deeper base" {
    commit_both 3 -b @0.qcow2 @3.qcow2
    commit_both 5 -b @2.qcow2 @5.qcow2
    commit_both 4 -b @3.qcow2 @4.qcow2
}

@test "compat commit: -t and -r are accepted" {
    commit_both 2 -t none @2.qcow2
    commit_both 2 -r 1G @2.qcow2
}

@test "compat commit: the same errors" {
    commit_both 1 @0.qcow2
    commit_both 2 -b nonexist @2.qcow2
    commit_both 1 -t bogus @1.qcow2
    commit_both 1 nonexist.qcow2
    commit_both 1
}
