#!/usr/bin/env bats
# blk-img-amend.bats - `blk-img amend`: qcow2 compat up/downgrade, lazy
# refcounts, refcount width, size; refusals with qemu-img 7.2's messages.

load ../helpers
load blk-img-images

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 am.qcow2 1M
    qemu-img create -q -f raw r.raw 1M
}

spec() {
    qemu-img info --output=json "$1" | tr -d ' \n'
}

@test "amend: downgrade to compat=0.10" {
    qemu-io -c 'write -P 1 0 64k' am.qcow2 >/dev/null
    golden amend-ok amend -o compat=0.10 am.qcow2
    run qemu-img info am.qcow2
    assert_line "    compat: 0.10"
    run qemu-img check am.qcow2
    assert_success
    run qemu-io -c 'read -P 1 0 64k' am.qcow2
    assert_success
}

@test "amend: upgrade back to 1.1" {
    qemu-img amend -o compat=0.10 am.qcow2
    golden amend-ok amend -o compat=v3 am.qcow2
    run qemu-img info am.qcow2
    assert_line "    compat: 1.1"
}

@test "amend: lazy_refcounts" {
    golden amend-ok amend -o lazy_refcounts=on am.qcow2
    run qemu-img info am.qcow2
    assert_line "    lazy refcounts: true"
}

@test "amend: refcount_bits" {
    golden amend-ok amend -o refcount_bits=8 am.qcow2
    run qemu-img info am.qcow2
    assert_line "    refcount bits: 8"
    run qemu-img check am.qcow2
    assert_success
}

@test "amend: size" {
    golden amend-ok amend -o size=2M am.qcow2
    run qemu-img info --output=json am.qcow2
    assert_line '    "virtual-size": 2097152,'
}

@test "amend: refcount_bits with compat 0.10" {
    qemu-img amend -o compat=0.10 am.qcow2
    golden amend-err-refbits amend -o refcount_bits=8 am.qcow2
}

@test "amend: creation-only options" {
    golden amend-err-cluster amend -o cluster_size=4k am.qcow2
}

@test "amend: extended_l2 is creation-only" {
    golden amend-err-extl2 amend -o extended_l2=on am.qcow2
}

@test "amend: unknown option" {
    golden amend-err-bogus amend -o bogus=1 am.qcow2
}

@test "amend: the backing file cannot change" {
    golden amend-err-backing amend -o backing_file=a.qcow2,backing_fmt=qcow2 am.qcow2
}

@test "amend: data_file only for images with one" {
    golden amend-err-datafile amend -o data_file=x am.qcow2
}

@test "amend: -o is required" {
    golden amend-err-noopt amend am.qcow2
}

@test "amend: raw cannot be amended" {
    golden amend-err-raw amend -f raw -o size=1M r.raw
}

@test "amend: -o help with -f" {
    golden_blk amend-help amend -f qcow2 -o help
}

@test "amend: -o help with an image" {
    golden_blk amend-help amend -o help am.qcow2
}

@test "amend: -o help needs a format" {
    golden amend-err-help amend -o help
}
