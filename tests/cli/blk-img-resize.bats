#!/usr/bin/env bats
# blk-img-resize.bats - `blk-img resize`: absolute and relative sizes,
# --shrink, --preallocation, qemu-img 7.2's messages.

load ../helpers
load blk-img-images

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 q.qcow2 1M
    qemu-img create -q -f raw r.raw 1M
}

vsize() {
    qemu-img info --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

@test "resize: grow a qcow2 image" {
    golden resize-grow resize q.qcow2 2M
    assert_equal "$(vsize q.qcow2)" 2097152
}

@test "resize: relative growth" {
    golden resize-grow resize q.qcow2 +1M
    assert_equal "$(vsize q.qcow2)" 2097152
}

@test "resize: shrinking needs --shrink" {
    golden resize-noshrink resize q.qcow2 -512k
    assert_equal "$(vsize q.qcow2)" 1048576
}

@test "resize: the same size is no shrink" {
    golden resize-grow resize -f raw r.raw +0
}

@test "resize: --shrink" {
    golden resize-grow resize --shrink q.qcow2 -512k
    assert_equal "$(vsize q.qcow2)" 524288
}

@test "resize: --shrink on raw" {
    golden resize-grow resize -f raw --shrink r.raw 100
    assert_equal "$(stat -c %s r.raw)" 100
}

@test "resize: the size may come after --shrink or before it" {
    golden resize-grow resize -f raw r.raw --shrink 512k
}

@test "resize: -- before a negative size" {
    golden resize-grow resize -f raw --shrink -- r.raw -512k
}

@test "resize: --preallocation=full allocates the new part" {
    golden resize-grow resize -f raw --preallocation=full r.raw 4M
    [ "$(stat -c %b r.raw)" -ge 6144 ]
}

@test "resize: --preallocation=metadata on qcow2" {
    golden resize-grow resize --preallocation=metadata q.qcow2 8M
    run qemu-img check q.qcow2
    assert_success
}

@test "resize: preallocation is for growing only" {
    golden resize-err-prealloc-shrink resize -f raw --preallocation=full --shrink r.raw 512k
}

@test "resize: bad preallocation mode" {
    golden resize-err-prealloc resize --preallocation=foo q.qcow2 9M
}

@test "resize: -q prints nothing" {
    golden resize-quiet resize -q q.qcow2 10M
}

@test "resize: bad size" {
    golden resize-err-size resize q.qcow2 abc
}

@test "resize: a negative result" {
    golden resize-err-negative resize q.qcow2 -20M
}

@test "resize: size 0" {
    golden resize-err-negative resize -f raw r.raw 0
}

@test "resize: not enough arguments" {
    golden resize-err-few resize q.qcow2
}

@test "resize: too many arguments" {
    golden resize-err-many resize q.qcow2 1G 2G
}

@test "resize: missing file" {
    golden resize-err-nofile resize -f raw nofile 1M
}
