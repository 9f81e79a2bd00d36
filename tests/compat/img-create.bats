#!/usr/bin/env bats
# img-create.bats - images made by `blk-img create` are what qemu-img 7.2
# makes: qemu-img check passes, `qemu-img info --output=json` is the same
# as for qemu-img's own image (disk usage aside), and so is the
# Formatting line.

load ../helpers
load ../cli/blk-img-images

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_TEST_TMPDIR"
    mkdir -p q b
}

# same_create [create args without the file name] SIZE ("-": no size)
same_create() {
    local size=${*: -1} args=("${@:1:$#-1}") qout bout
    [ "$size" = - ] && size=() || size=("$size")
    qout=$(cd q && qemu-img create "${args[@]}" img "${size[@]}" 2>&1) || { echo "qemu-img failed: $qout"; return 1; }
    bout=$(cd b && "$BLK_IMG" create "${args[@]}" img "${size[@]}" 2>&1) || { echo "blk-img failed: $bout"; return 1; }
    assert_equal "$bout" "$qout"
    run bash -c "cd b && qemu-img check img"
    assert_success
    assert_equal "$(cd b && qemu-img info --output=json img | grep -v actual-size)" \
                 "$(cd q && qemu-img info --output=json img | grep -v actual-size)"
}

@test "img-create: qcow2 defaults" {
    same_create -f qcow2 1G
}

@test "img-create: compat 0.10" {
    same_create -f qcow2 -o compat=0.10 64M
}

@test "img-create: compat v3 spelled v3" {
    same_create -f qcow2 -o compat=v3 64M
}

@test "img-create: cluster sizes" {
    local cs
    for cs in 512 4k 2M; do
        rm -f q/img b/img
        same_create -f qcow2 -o cluster_size=$cs 100M
    done
}

@test "img-create: refcount widths" {
    local rb
    for rb in 1 2 4 8 32 64; do
        rm -f q/img b/img
        same_create -f qcow2 -o refcount_bits=$rb 100M
    done
}

@test "img-create: extended L2" {
    same_create -f qcow2 -o extended_l2=on 1G
}

@test "img-create: extended L2 with 32k clusters" {
    same_create -f qcow2 -o extended_l2=on,cluster_size=32k 1G
}

@test "img-create: zstd" {
    same_create -f qcow2 -o compression_type=zstd 1G
}

@test "img-create: lazy refcounts" {
    same_create -f qcow2 -o lazy_refcounts=on 1G
}

@test "img-create: preallocation modes" {
    local p
    for p in metadata falloc full; do
        rm -f q/img b/img
        same_create -f qcow2 -o preallocation=$p 3M
        assert_equal "$(qemu-img map --output=json b/img)" "$(qemu-img map --output=json q/img)"
    done
}

@test "img-create: backing file with its size" {
    qemu-img create -q -f qcow2 q/base 5M
    cp q/base b/base
    same_create -f qcow2 -b base -F qcow2 -
}

@test "img-create: backing file with extended L2 and preallocation" {
    qemu-img create -q -f qcow2 q/base 5M
    cp q/base b/base
    same_create -f qcow2 -b base -F qcow2 -o extended_l2=on,preallocation=metadata 5M
}

@test "img-create: external data file" {
    same_create -f qcow2 -o data_file=img.data 1G
}

@test "img-create: raw external data file" {
    same_create -f qcow2 -o data_file=img.data,data_file_raw=on 1G
}

@test "img-create: a v2 image with 4k clusters and lazy refcounts off" {
    same_create -f qcow2 -o compat=0.10,cluster_size=4k,lazy_refcounts=off 10M
}

@test "img-create: raw" {
    local qout bout
    qout=$(cd q && qemu-img create -f raw img 10M)
    bout=$(cd b && "$BLK_IMG" create -f raw img 10M)
    assert_equal "$bout" "$qout"
    assert_equal "$(stat -c %s b/img)" "$(stat -c %s q/img)"
}

@test "img-create: -o help for qcow2 is qemu-img's without encryption" {
    run "$BLK_IMG" create -f qcow2 -o help
    assert_success
    assert_output "$(qemu-img create -f qcow2 -o help | grep -v '^  encrypt')"
}

@test "img-create: -o help for raw with a filename" {
    run "$BLK_IMG" create -f raw -o help x
    assert_success
    assert_output "$(qemu-img create -f raw -o help x)"
}
