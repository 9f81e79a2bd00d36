#!/usr/bin/env bats
# img-convert-snapshot.bats - `blk-img convert -l` against qemu-img 7.2:
# converting an internal snapshot (by name, id, or snapshot.id/name
# options) gives an image equal to qemu-img's and to the snapshot's
# content, writes nothing to the source (which may be held elsewhere with
# -U), and fails with qemu-img's messages and exit codes.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 a.qcow2 4M
    qemu-io -c 'write -P 1 0 1M' -c 'write -c -P 5 3M 64k' a.qcow2 >/dev/null
    qemu-img snapshot -c s1 a.qcow2
    qemu-io -c 'write -P 2 0 512k' -c 'write -z 3M 64k' a.qcow2 >/dev/null
    qemu-img snapshot -c s2 a.qcow2
    qemu-io -c 'write -P 3 0 2M' a.qcow2 >/dev/null
    qemu-img create -q -f raw r.raw 1M
}

# content_of IMG SNAP OUT: the snapshot's data, by applying it to a copy
content_of() {
    cp "$1" applied.qcow2
    qemu-img snapshot -a "$2" applied.qcow2
    qemu-img convert -O raw applied.qcow2 "$3"
    rm -f applied.qcow2
}

# both ARGS...: convert with both tools to q.out / b.out: both succeed
# with the same messages, and the images are equal
both() {
    local qrc=0 brc=0
    rm -f q.out b.out
    qemu-img convert "$@" q.out > q.txt 2>&1 || qrc=$?
    "$BLK_IMG" convert "$@" b.out > b.txt 2>&1 || brc=$?
    sed -i 's/qemu-img/X/g' q.txt
    sed -i 's/blk-img/X/g' b.txt
    diff -u q.txt b.txt
    [ "$qrc" = 0 ] && [ "$brc" = 0 ]
    qemu-img compare -q q.out b.out
}

# fails_both ARGS...: both tools fail with the same exit code and messages
fails_both() {
    local qrc=0 brc=0
    rm -f q.out b.out
    qemu-img convert "$@" q.out > q.txt 2>&1 || qrc=$?
    "$BLK_IMG" convert "$@" b.out > b.txt 2>&1 || brc=$?
    sed -i 's/qemu-img/X/g' q.txt
    sed -i 's/blk-img/X/g' b.txt
    diff -u q.txt b.txt
    [ "$qrc" = "$brc" ]
    [ "$qrc" != 0 ]
}

@test "compat convert -l: a snapshot by name, id or options equals qemu-img's and the snapshot" {
    content_of a.qcow2 s1 s1.raw
    content_of a.qcow2 s2 s2.raw
    for l in s1 1 snapshot.name=s1 snapshot.id=1 snapshot.id=1,snapshot.name=s1; do
        both -l "$l" -O qcow2 a.qcow2
        qemu-img check -q b.out
        qemu-img compare -q s1.raw b.out
    done
    for l in s2 2 snapshot.name=s2 snapshot.id=1,snapshot.id=2; do
        both -l "$l" -O raw a.qcow2
        qemu-img compare -q s2.raw b.out
    done
    both -l s2 -c -O qcow2 a.qcow2
    qemu-img compare -q s2.raw b.out
}

@test "compat convert -l: nothing is written to the source" {
    cp a.qcow2 before.qcow2
    both -l s1 -O qcow2 a.qcow2
    cmp before.qcow2 a.qcow2
}

@test "compat convert -l: -U reads a snapshot of an image another process holds" {
    content_of a.qcow2 s1 s1.raw
    "$BLK_IO" -c 'sleep 3000' a.qcow2 >/dev/null &
    sleep 0.5
    run "$BLK_IMG" convert -l s1 -O qcow2 a.qcow2 b.out
    assert_failure 1
    "$BLK_IMG" convert -U -l s1 -O qcow2 a.qcow2 b.out
    wait
    qemu-img compare -q s1.raw b.out
}

@test "compat convert -l: a snapshot of an image resized since keeps today's size, the backing file shows through" {
    qemu-img create -q -f qcow2 base.qcow2 8M
    qemu-io -c 'write -P 9 0 8M' base.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 2M
    qemu-io -c 'write -P 1 0 64k' ov.qcow2 >/dev/null
    qemu-img snapshot -c small ov.qcow2
    qemu-img resize -q ov.qcow2 6M
    qemu-io -c 'write -P 2 0 6M' ov.qcow2 >/dev/null
    both -l small -O qcow2 ov.qcow2
    [ "$(qemu-img info --output=json b.out | jq '."virtual-size"')" = 6291456 ]
    both -l small -O raw ov.qcow2
}

@test "compat convert -l: an unknown snapshot" {
    fails_both -l nope -O qcow2 a.qcow2
    grep -qx "X: Failed to load snapshot: Can't find snapshot" b.txt
    fails_both -l snapshot.id=1,snapshot.name=s2 -O qcow2 a.qcow2
    fails_both -l snapshot.id= -O qcow2 a.qcow2
    fails_both -l snapshot -O qcow2 a.qcow2
    [ ! -e b.out ]
}

@test "compat convert -l: bad snapshot options" {
    fails_both -l snapshot.foo=1 -O qcow2 a.qcow2
    fails_both -l snapshot.name=s1,foo=2 -O qcow2 a.qcow2
    grep -q "Failed in parsing snapshot param 'snapshot.name=s1,foo=2'" b.txt
}

@test "compat convert -l: a raw source has no internal snapshots" {
    fails_both -l s1 -O raw r.raw
    grep -q "Block format 'raw' used by device '' does not support" b.txt
    fails_both -f raw -l snapshot.name=s1 -O raw r.raw
}

@test "compat convert -l: several sources" {
    fails_both -l s1 -O raw a.qcow2 a.qcow2
    grep -qx "X: No support for concatenating multiple snapshot" b.txt
    # the option form loads the snapshot on the first source only
    both -l snapshot.name=s1 -O raw a.qcow2 a.qcow2
    fails_both -l snapshot.name=s1 -O raw r.raw a.qcow2
}

@test "compat convert -l: -s is not an option in 7.2" {
    fails_both -s s1 -O raw a.qcow2
}
