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

# shape P KIND: P-base.qcow2 (4M of 1s) <- P-top.qcow2 with data, a zero
# range and a compressed cluster over the base's data, of kind KIND
shape() {
    local p=$1 kind=$2 opts=
    qemu-img create -q -f qcow2 $p-base.qcow2 4M
    qemu-io -c 'write -P 1 0 4M' $p-base.qcow2 >/dev/null
    case $kind in
    v2) opts="-o compat=0.10" ;;
    lazy) opts="-o lazy_refcounts=on" ;;
    extl2) opts="-o extended_l2=on" ;;
    datafile) opts="-o data_file=$p-top.data" ;;
    esac
    qemu-img create -q -f qcow2 $opts -b $p-base.qcow2 -F qcow2 $p-top.qcow2
    qemu-io -c 'write -P 2 0 1M' -c 'write -z 1M 256k' $p-top.qcow2 >/dev/null
    if [ "$kind" != datafile ]; then
        qemu-io -c 'write -c -P 3 2M 128k' $p-top.qcow2 >/dev/null
    fi
    case $kind in
    snapshot)
        qemu-img snapshot -c s1 $p-top.qcow2
        qemu-io -c 'write -P 4 3M 512k' -c 'write -P 5 0 64k' $p-top.qcow2 >/dev/null
        ;;
    bitmap)
        qemu-img bitmap --add $p-top.qcow2 b0
        qemu-img bitmap --add $p-base.qcow2 b1
        qemu-io -c 'write -P 6 3M 64k' $p-top.qcow2 >/dev/null
        ;;
    esac
}

# same_as_qemu: every q-* file equals its b-* twin: content, allocation
# map with host offsets, check output, info (snapshot dates aside), size
same_as_qemu() {
    local f g
    for f in q-*; do
        g=b-${f#q-}
        if [[ $f == *.data ]]; then
            qemu-img compare -q -f raw -F raw "$f" "$g"
            continue
        fi
        qemu-img compare -q "$f" "$g"
        diff <(qemu-img map --output=json "$f") <(qemu-img map --output=json "$g")
        diff <(qemu-img check "$f" 2>&1 | sed 's/q-/P-/g') \
             <(qemu-img check "$g" 2>&1 | sed 's/b-/P-/g')
        diff <(qemu-img info --output=json "$f" | grep -v 'actual-size\|date-' |
               sed 's/q-/P-/g') \
             <(qemu-img info --output=json "$g" | grep -v 'actual-size\|date-' |
               sed 's/b-/P-/g')
        [ "$(stat -c %s "$f")" = "$(stat -c %s "$g")" ]
    done
}

# shape_both KIND ARGS...: commit the same shape with both tools
shape_both() {
    local kind=$1 a qargs=() bargs=()
    shift
    rm -f q-* b-*
    shape q "$kind"
    shape b "$kind"
    for a in "$@"; do
        qargs+=("${a//@/q}")
        bargs+=("${a//@/b}")
    done
    qemu-img convert -O raw q-top.qcow2 want.raw
    qemu-img commit "${qargs[@]}" > q.txt
    "$BLK_IMG" commit "${bargs[@]}" > b.txt
    diff q.txt b.txt
    same_as_qemu
    qemu-img compare -q want.raw b-base.qcow2
    qemu-img compare -q want.raw b-top.qcow2
}

@test "compat commit: a v3 top without snapshots is rewritten empty as by qemu-img" {
    shape_both plain @-top.qcow2
    # header, refcount table and block, L1: nothing else
    [ "$(stat -c %s b-top.qcow2)" = 262144 ]
    shape_both lazy @-top.qcow2
    shape_both extl2 @-top.qcow2
}

@test "compat commit: a v2 top is emptied cluster by cluster as by qemu-img" {
    shape_both v2 @-top.qcow2
}

@test "compat commit: clusters shared with internal snapshots stay" {
    shape_both snapshot @-top.qcow2
    qemu-img snapshot -a s1 b-top.qcow2
    qemu-io -r -c 'read -P 2 64k 960k' -c 'read -P 3 2M 128k' b-top.qcow2 |
        { ! grep -q Pattern; }
    qemu-img check -q b-top.qcow2
}

@test "compat commit: persistent bitmaps stay in the top and the base's record the commit" {
    shape_both bitmap @-top.qcow2
    diff <("$BLK_IMG" bitmap dump q-top.qcow2 b0) <("$BLK_IMG" bitmap dump b-top.qcow2 b0)
    diff <("$BLK_IMG" bitmap dump q-base.qcow2 b1) <("$BLK_IMG" bitmap dump b-base.qcow2 b1)
    "$BLK_IMG" bitmap dump b-base.qcow2 b1 | grep -q yes
}

@test "compat commit: a top with an external data file is discarded there" {
    shape_both datafile @-top.qcow2
}

# keep_both KIND ARGS...: commit with -d or -b; the base as qemu-img's,
# the top not written at all (qemu-img opens it read-write and so
# rewrites its bitmaps on close; blk opens it read-only)
keep_both() {
    local kind=$1 a qargs=() bargs=()
    shift
    rm -f q-* b-*
    shape q "$kind"
    shape b "$kind"
    for a in "$@"; do
        qargs+=("${a//@/q}")
        bargs+=("${a//@/b}")
    done
    cp b-top.qcow2 top.before
    qemu-img commit "${qargs[@]}" > q.txt
    "$BLK_IMG" commit "${bargs[@]}" > b.txt
    diff q.txt b.txt
    cmp top.before b-top.qcow2
    qemu-img compare -q q-base.qcow2 b-base.qcow2
    diff <(qemu-img map --output=json q-base.qcow2) \
         <(qemu-img map --output=json b-base.qcow2)
    qemu-img check -q b-base.qcow2
}

@test "compat commit: -d and -b commit every shape but leave the top unwritten" {
    for kind in plain snapshot bitmap datafile; do
        keep_both $kind -d @-top.qcow2
        keep_both $kind -b @-base.qcow2 @-top.qcow2
    done
}

# sized P BASE TOP: a base of BASE bytes of 1s under a top of TOP bytes
sized() {
    qemu-img create -q -f qcow2 $1-base.qcow2 $2
    qemu-io -c "write -P 1 0 $2" $1-base.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b $1-base.qcow2 -F qcow2 $1-top.qcow2 $3
    qemu-io -c 'write -c -P 3 0 128k' -c 'write -z 512k 128k' \
        -c "write -P 7 $(($3 - 65536)) 64k" $1-top.qcow2 >/dev/null
}

@test "compat commit: a top larger than its base grows the base" {
    rm -f q-* b-*
    sized q $((2 << 20)) $((6 << 20))
    sized b $((2 << 20)) $((6 << 20))
    qemu-img commit -q q-top.qcow2
    "$BLK_IMG" commit -q b-top.qcow2
    same_as_qemu
    [ "$(qemu-img info --output=json b-base.qcow2 | jq '."virtual-size"')" = 6291456 ]
}

@test "compat commit: a top smaller than its base leaves the base's tail" {
    rm -f q-* b-*
    sized q $((8 << 20)) $((4 << 20))
    sized b $((8 << 20)) $((4 << 20))
    qemu-img commit -q q-top.qcow2
    "$BLK_IMG" commit -q b-top.qcow2
    same_as_qemu
    qemu-io -r -c 'read -P 1 4M 4M' b-base.qcow2 | { ! grep -q Pattern; }
}

@test "compat commit: a raw image has no backing file to commit into" {
    qemu-img create -q -f raw q.raw 1M
    run qemu-img commit -f raw q.raw
    qout=${output/qemu-img/X}
    run "$BLK_IMG" commit -f raw q.raw
    assert_failure 1
    assert_equal "${output/blk-img/X}" "$qout"
}

@test "compat commit: -b picks a middle base of a chain of 5" {
    commit_both 5 -b @3.qcow2 @5.qcow2
    commit_both 5 -b @1.qcow2 @5.qcow2
}

# chunky P KIND: tops whose zero runs and allocations do not line up with
# the base's clusters, where qemu-img's mirror copies whole chunks
chunky() {
    local p=$1
    case $2 in
    small-top)
        qemu-img create -q -f qcow2 $p-base.qcow2 1G
        qemu-io -c 'write -P 1 0 1M' $p-base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o cluster_size=512 -b $p-base.qcow2 \
            -F qcow2 $p-top.qcow2
        qemu-io -c 'write -P 3 0 128k' -c 'write -z 1M 128k' \
            -c 'write -P 4 900M 64k' $p-top.qcow2 >/dev/null
        ;;
    subclusters)
        qemu-img create -q -f qcow2 $p-base.qcow2 4M
        qemu-io -c 'write -P 1 0 1M' $p-base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o extended_l2=on -b $p-base.qcow2 \
            -F qcow2 $p-top.qcow2
        qemu-io -c 'write -P 3 4k 8k' -c 'write -z 200k 8k' -c 'write -z 2M 8k' \
            -c 'write -P 4 3M 2k' $p-top.qcow2 >/dev/null
        ;;
    big-base)
        qemu-img create -q -f qcow2 -o cluster_size=2M $p-base.qcow2 8M
        qemu-io -c 'write -P 1 0 5M' $p-base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b $p-base.qcow2 -F qcow2 $p-top.qcow2
        qemu-io -c 'write -P 3 0 64k' -c 'write -z 2M 2M' -c 'write -z 4M 128k' \
            -c 'write -P 5 7M 64k' $p-top.qcow2 >/dev/null
        ;;
    aligned-big-base)
        qemu-img create -q -f qcow2 -o cluster_size=2M $p-base.qcow2 8M
        qemu-io -c 'write -P 1 0 5M' $p-base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b $p-base.qcow2 -F qcow2 $p-top.qcow2
        qemu-io -c 'write -z 2M 2M' -c 'write -P 5 7M 64k' $p-top.qcow2 >/dev/null
        ;;
    esac
}

@test "compat commit: zeroes and partial chunks land in the base as with qemu-img's mirror" {
    for kind in small-top subclusters big-base aligned-big-base; do
        rm -f q-* b-*
        chunky q $kind
        chunky b $kind
        qemu-img commit -q q-top.qcow2
        "$BLK_IMG" commit -q b-top.qcow2
        same_as_qemu
    done
}

@test "compat commit: a raw base gets the same data and holes as with qemu-img" {
    for p in q b; do
        qemu-img create -q -f raw $p-base.raw 4M
        qemu-io -f raw -c 'write -P 1 0 1M' $p-base.raw >/dev/null
        qemu-img create -q -f qcow2 -o extended_l2=on -b $p-base.raw -F raw $p-top.qcow2
        qemu-io -c 'write -P 3 0 64k' -c 'write -z 512k 128k' -c 'write -P 4 2M 4k' \
            -c 'write -z 3200k 64k' -c 'write -z 3400k 8k' -c 'write -P 6 1500k 2k' \
            $p-top.qcow2 >/dev/null
    done
    qemu-img commit -q q-top.qcow2
    "$BLK_IMG" commit -q b-top.qcow2
    qemu-img compare -q -f raw -F raw q-base.raw b-base.raw
    diff <(qemu-img map -f raw --output=json q-base.raw) \
         <(qemu-img map -f raw --output=json b-base.raw)
    diff <(qemu-img map --output=json q-top.qcow2) <(qemu-img map --output=json b-top.qcow2)
}

@test "compat commit: a dirty top (lazy refcounts, crashed writer) is repaired and emptied" {
    rm -f q-* b-*
    for p in q b; do
        shape $p lazy
        qemu-io -c 'write -P 8 3M 64k' -c abort $p-top.qcow2 >/dev/null 2>&1 || true
    done
    qemu-img commit q-top.qcow2 > q.txt 2>/dev/null
    "$BLK_IMG" commit b-top.qcow2 > b.txt
    diff q.txt b.txt
    same_as_qemu
}
