#!/usr/bin/env bats
# img-modify.bats - resize, amend and snapshot done by blk-img leave the
# image as qemu-img 7.2 leaves it: same messages, and the results check
# clean and have the same `qemu-img info`/`map` JSON and contents.

load ../helpers
load ../cli/blk-img-images

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_TEST_TMPDIR"
    mkdir q b
    qemu-img create -q -f qcow2 q/img 10M
    qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 5M 128k' q/img >/dev/null
    cp q/img b/img
}

# both ARGS... : run `TOOL ARGS` (file name img) in q/ with qemu-img and in
# b/ with blk-img; the outputs must be the same.
both() {
    local qout bout
    qout=$(cd q && capture qemu-img "$@")
    bout=$(cd b && capture "$BLK_IMG" "$@")
    assert_equal "$bout" "$qout"
}

same_result() {
    run qemu-img check b/img
    assert_success
    assert_equal "$(qemu-img info --output=json b/img | grep -v -e actual-size -e '"filename"')" \
                 "$(qemu-img info --output=json q/img | grep -v -e actual-size -e '"filename"')"
    assert_equal "$(qemu-img map --output=json b/img | sed 's/, "offset": [0-9]*//')" \
                 "$(qemu-img map --output=json q/img | sed 's/, "offset": [0-9]*//')"
    run qemu-img compare q/img b/img
    assert_success
}

@test "img-modify: grow" {
    both resize img 1G
    same_result
}

@test "img-modify: relative grow with metadata preallocation" {
    both resize --preallocation=metadata img +20M
    same_result
}

@test "img-modify: shrink" {
    both resize --shrink img 6M
    same_result
}

@test "img-modify: shrink without --shrink" {
    both resize img 6M
    same_result
}

@test "img-modify: amend to compat 0.10 and back" {
    both amend -o compat=0.10 img
    same_result
    both amend -o compat=1.1 img
    same_result
}

@test "img-modify: amend lazy refcounts and refcount width" {
    both amend -o lazy_refcounts=on,refcount_bits=4 img
    same_result
}

@test "img-modify: amend the size" {
    both amend -o size=20M img
    same_result
}

@test "img-modify: snapshot create, apply, delete" {
    both snapshot -c s1 img
    (cd q && qemu-io -c 'write -P 9 0 64k' img >/dev/null)
    (cd b && qemu-io -c 'write -P 9 0 64k' img >/dev/null)
    both snapshot -a s1 img
    run qemu-io -c 'read -P 1 0 64k' b/img
    assert_success
    both snapshot -d s1 img
    same_result
}

@test "img-modify: check -r all on a leaking image" {
    make_broken_images
    cp leak.qcow2 q/img
    cp leak.qcow2 b/img
    both check -r all img
    same_result
}
