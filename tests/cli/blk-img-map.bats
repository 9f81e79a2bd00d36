#!/usr/bin/env bats
# blk-img-map.bats - `blk-img map`: qemu-img 7.2's human and JSON maps of
# images and backing chains made by qemu-img/qemu-io, merging, ranges.

load ../helpers
load blk-img-images

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    make_images
    qemu-img create -q -f qcow2 z.qcow2 0
}

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_FILE_TMPDIR"
}

@test "map: qcow2 human lists the data extents" {
    golden map-qcow2 map a.qcow2
}

@test "map: qcow2 JSON lists every extent" {
    golden map-qcow2-json map --output=json a.qcow2
}

@test "map: data in the backing file has depth 1" {
    golden map-backing-json map --output=json ov.qcow2
}

@test "map: human names the file that holds the data" {
    golden map-backing map ov.qcow2
}

@test "map: zero, compressed and unallocated clusters" {
    golden map-mixed-json map --output=json c.qcow2
}

@test "map: compressed clusters cannot be shown in human form" {
    golden map-mixed map c.qcow2
}

@test "map: a chain mixing both layers" {
    golden map-chain-json map --output=json c2.qcow2
}

@test "map: raw holes are present zero extents with offsets" {
    golden map-raw-json map --output=json r.raw
}

@test "map: raw human" {
    golden map-raw map r.raw
}

@test "map: --start-offset and --max-length" {
    golden map-range map --output=json --start-offset=64k --max-length=1100k a.qcow2
}

@test "map: a start beyond the end prints one empty extent" {
    golden map-beyond map --output=json --start-offset=2G a.qcow2
}

@test "map: human output beyond the end is just the header" {
    golden map-beyond-human map --start-offset=2G a.qcow2
}

@test "map: zero-length image" {
    golden map-empty map --output=json z.qcow2
}

@test "map: --max-length=0" {
    golden map-maxlen0 map --output=json --max-length=0 a.qcow2
}

@test "map: a qcow2 file read as raw" {
    golden map-as-raw map -f raw --output=json a.qcow2
}

@test "map: bad --max-length" {
    golden map-err-maxlen map --max-length=abc a.qcow2
}

@test "map: bad --start-offset" {
    golden map-err-start map --start-offset=-5 a.qcow2
}

@test "map: no file name" {
    golden map-err-noargs map
}

@test "map: missing file" {
    golden map-err-nofile map nofile
}

@test "map: the cost follows the allocation, not the virtual size" {
    qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/big.qcow2" 64T
    qemu-io -c 'write 1T 64k' -c 'write 40T 64k' "$BATS_TEST_TMPDIR/big.qcow2" >/dev/null
    run timeout 10 "$BLK_IMG" map --output=json "$BATS_TEST_TMPDIR/big.qcow2"
    assert_success
    assert_equal "${#lines[@]}" 5
}

@test "map: null-co without read-zeroes maps nothing" {
    golden map-null map --output=json --image-opts driver=null-co,size=1048576
}

@test "map: null-co with read-zeroes" {
    golden map-null-zeroes map --output=json --image-opts driver=null-co,size=1048576,read-zeroes=on
}
