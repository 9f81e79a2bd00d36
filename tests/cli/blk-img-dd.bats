#!/usr/bin/env bats
# blk-img-dd.bats - `blk-img dd`: the operands, qemu-img 7.2's size rule
# (skipped blocks count towards count=), formats, and its error texts.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    head -c 10240 /dev/urandom > in.raw
}

@test "dd: copies the whole input by default" {
    run "$BLK_IMG" dd if=in.raw of=out.raw
    assert_success
    assert_output ""
    cmp in.raw out.raw
}

@test "dd: bs, skip and count select a part" {
    "$BLK_IMG" dd -f raw if=in.raw of=out.raw bs=1k skip=2 count=5
    [ "$(stat -c %s out.raw)" = 3072 ]
    cmp -n 3072 <(tail -c +2049 in.raw) out.raw
}

@test "dd: an odd block size copies everything" {
    "$BLK_IMG" dd if=in.raw of=out.raw bs=3
    cmp in.raw out.raw
}

@test "dd: a qcow2 output reads back the same" {
    "$BLK_IMG" dd -O qcow2 if=in.raw of=out.qcow2 bs=4k skip=1
    "$BLK_IMG" convert -f qcow2 -O raw out.qcow2 back.raw
    cmp <(tail -c +4097 in.raw) back.raw
}

@test "dd: skipping past the end reports it and makes an empty output" {
    run "$BLK_IMG" dd if=in.raw of=out.raw bs=1k skip=20
    assert_success
    assert_output "blk-img: in.raw: cannot skip to specified offset"
    [ "$(stat -c %s out.raw)" = 0 ]
}

@test "dd: operand errors use qemu-img's words" {
    run "$BLK_IMG" dd if=in.raw
    assert_failure 1
    assert_output "blk-img: Must specify both input and output files"
    run "$BLK_IMG" dd if=in.raw of=o.raw bs=0
    assert_failure 1
    assert_output "blk-img: Invalid bs specified. Must be between 1 and 2147483647."
    run "$BLK_IMG" dd if=in.raw of=o.raw count=-1
    assert_failure 1
    assert_line --index 0 "blk-img: Invalid count specified. You may use k, M, G, T, P or E suffixes for"
    run "$BLK_IMG" dd if=in.raw of=o.raw foo=bar
    assert_failure 1
    assert_output "blk-img: unrecognized operand foo"
    run "$BLK_IMG" dd -O foo if=in.raw of=o.raw
    assert_failure 1
    assert_output "blk-img: Unknown file format"
}

@test "dd: a missing input is one line and no output" {
    run "$BLK_IMG" dd if=nonexist of=o.raw
    assert_failure 1
    assert_output "blk-img: Could not open 'nonexist': Could not open 'nonexist': No such file or directory"
    [ ! -e o.raw ]
}
