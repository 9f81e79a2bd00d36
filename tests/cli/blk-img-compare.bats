#!/usr/bin/env bats
# blk-img-compare.bats - `blk-img compare`: contents, sizes, strict mode,
# exit codes 0/1/2 as in qemu-img 7.2.

load ../helpers
load blk-img-images

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    make_images
    cp e2.qcow2 e2d.qcow2
    qemu-io -c 'write -P 9 6M 4k' e2d.qcow2 >/dev/null
}

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_FILE_TMPDIR"
}

@test "compare: an image with itself" {
    golden compare-self compare a.qcow2 a.qcow2
}

@test "compare: an overlay with nothing written equals its backing file" {
    golden compare-overlay compare a.qcow2 ov.qcow2
}

@test "compare: different sizes with a zero tail are identical" {
    golden compare-sizes compare e1.qcow2 e2.qcow2
}

@test "compare: strict mode fails on different sizes" {
    golden compare-strict-sizes compare -s e1.qcow2 e2.qcow2
}

@test "compare: data in the tail of the larger image" {
    golden compare-tail compare e1.qcow2 e2d.qcow2
}

@test "compare: data in the tail, larger image first" {
    golden compare-tail2 compare e2d.qcow2 e1.qcow2
}

@test "compare: written zeroes equal a raw hole" {
    golden compare-zero-raw compare e1.qcow2 e.raw
}

@test "compare: strict mode sees the allocation difference" {
    golden compare-strict-alloc compare -s e1.qcow2 e.raw
}

@test "compare: -f and -F" {
    golden compare-fmts compare -f qcow2 -F raw e1.qcow2 e.raw
}

@test "compare: content mismatch reports the first differing offset" {
    golden compare-mismatch compare c.qcow2 c2.qcow2
}

@test "compare: qcow2 against raw with other data" {
    golden compare-mismatch-raw compare a.qcow2 r.raw
}

@test "compare: -q prints nothing" {
    golden compare-quiet compare -q c.qcow2 c2.qcow2
}

@test "compare: missing file exits 2" {
    golden compare-err-nofile compare e1.qcow2 nofile
}

@test "compare: one file name" {
    golden compare-err-args compare e1.qcow2
}

@test "compare: -p prints qemu-img's progress lines when not on a terminal" {
    golden compare-progress compare -p e1.qcow2 e2.qcow2
}

@test "compare: -q silences -p" {
    golden compare-progress-quiet compare -q -p e1.qcow2 e2.qcow2
}
