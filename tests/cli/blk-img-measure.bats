#!/usr/bin/env bats
# blk-img-measure.bats - `blk-img measure`: qcow2 and raw sizes for --size
# and for existing images, human and JSON, as qemu-img 7.2 computes them.

load ../helpers
load blk-img-images

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    make_images
}

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_FILE_TMPDIR"
}

@test "measure: raw by default" {
    golden measure-raw measure --size 1G
}

@test "measure: raw sizes are whole sectors" {
    golden measure-raw-1 measure --size 1 -O raw
}

@test "measure: qcow2 for a size" {
    golden measure-qcow2 measure --size 1G -O qcow2
}

@test "measure: qcow2 JSON" {
    golden measure-qcow2-json measure --output=json --size 1G -O qcow2
}

@test "measure: small clusters and 1-bit refcounts" {
    golden measure-4k measure -O qcow2 -o cluster_size=4k,refcount_bits=1 --size 100G
}

@test "measure: extended L2" {
    golden measure-extl2 measure -O qcow2 -o extended_l2=on --size 100G
}

@test "measure: full preallocation requires everything" {
    golden measure-full measure -O qcow2 -o preallocation=full --size 1G
}

@test "measure: metadata preallocation" {
    golden measure-metadata measure -O qcow2 -o preallocation=metadata --size 1G
}

@test "measure: 64-bit refcounts and 2M clusters" {
    golden measure-64 measure -O qcow2 -o refcount_bits=64,cluster_size=2M --size 10T
}

@test "measure: too large for the L1 table" {
    golden measure-err-l1 measure -O qcow2 -o cluster_size=512 --size 1T
}

@test "measure: a qcow2 source counts its allocated clusters and bitmaps" {
    golden measure-src-qcow2 measure -O qcow2 a.qcow2
}

@test "measure: a qcow2 source in JSON" {
    golden measure-src-qcow2-json measure --output=json -O qcow2 a.qcow2
}

@test "measure: zero clusters are not counted" {
    golden measure-src-mixed measure -O qcow2 c.qcow2
}

@test "measure: the backing chain counts" {
    golden measure-src-chain measure -O qcow2 c2.qcow2
}

@test "measure: a raw source to qcow2" {
    golden measure-src-raw measure -O qcow2 r.raw
}

@test "measure: a source to raw" {
    golden measure-src-to-raw measure a.qcow2
}

@test "measure: a backing file for the target counts everything" {
    golden measure-target-backing measure -O qcow2 -o backing_file=x c.qcow2
}

@test "measure: --size with a filename" {
    golden measure-err-both measure --size 1G a.qcow2
}

@test "measure: neither --size nor a filename" {
    golden measure-err-none measure -O qcow2
}

@test "measure: bad --size" {
    golden measure-err-size measure -O qcow2 --size -1
}

@test "measure: unknown -o key" {
    golden measure-err-opt measure -O qcow2 -o bogus=1 --size 1G
}

@test "measure: unsupported output format" {
    golden measure-err-fmt measure -O vmdk --size 1G
}
