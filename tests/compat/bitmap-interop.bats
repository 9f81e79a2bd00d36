#!/usr/bin/env bats
# bitmap-interop.bats - persistent dirty bitmaps cross between blk and
# QEMU 7.2 both ways: bitmaps made, dirtied, merged, disabled and cleared
# by qemu-img/qemu-io read and dump correctly in blk; bitmaps made and
# dirtied by blk show in qemu-img info, pass qemu-img check, and merge and
# remove in qemu-img (a qemu-img merge proves QEMU read blk's bits).

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    img=$BATS_TEST_TMPDIR/a.qcow2
}

# The "bitmaps:" part of an info listing.
bitmaps_section() {
    sed -n '/^    bitmaps:/,/^    [a-z]/p' | sed '$d'
}

@test "qemu-img's bitmaps show in blk-img info exactly as in qemu-img info" {
    qemu-img create -q -f qcow2 "$img" 4M
    qemu-img bitmap --add "$img" b0
    qemu-img bitmap --add -g 4096 --disable "$img" b1
    qemu-img bitmap --add -g 2M "$img" b2
    expected=$(qemu-img info "$img" | bitmaps_section)
    [ -n "$expected" ]
    run bash -c "'$BLK_IMG' info '$img' | sed -n '/^    bitmaps:/,/^    [a-z]/p' | sed '\$d'"
    assert_output "$expected"
    expected=$(qemu-img info --output=json "$img" | sed -n '/"bitmaps"/,/\]/p')
    run bash -c "'$BLK_IMG' info --output=json '$img' | sed -n '/\"bitmaps\"/,/\]/p'"
    assert_output "$expected"
}

@test "qemu-io writes through an auto bitmap dirty it; blk dumps the extents" {
    qemu-img create -q -f qcow2 "$img" 1M
    qemu-img bitmap --add -g 4k "$img" b
    qemu-img bitmap --add --disable "$img" off
    qemu-io -c 'write -q 5000 100' -c 'write -q -z 64k 8k' -c 'discard -q 1020k 4k' "$img"
    run "$BLK_IMG" bitmap dump --output=json "$img" b
    assert_success
    assert_output '[{ "start": 0, "length": 4096, "dirty": false},
{ "start": 4096, "length": 4096, "dirty": true},
{ "start": 8192, "length": 57344, "dirty": false},
{ "start": 65536, "length": 8192, "dirty": true},
{ "start": 73728, "length": 970752, "dirty": false},
{ "start": 1044480, "length": 4096, "dirty": true}]'
    run "$BLK_IMG" bitmap dump --output=json "$img" off
    assert_output '[{ "start": 0, "length": 1048576, "dirty": false}]'
}

@test "qemu-img merge, -b merge and clear read back correctly in blk" {
    qemu-img create -q -f qcow2 "$img" 1M
    src=$BATS_TEST_TMPDIR/s.qcow2
    qemu-img create -q -f qcow2 "$src" 1M
    qemu-img bitmap --add -g 512 "$src" s
    qemu-io -c 'write -q 1536 512' "$src"
    qemu-img bitmap --add "$img" a
    qemu-io -c 'write -q 256k 1' "$img"
    qemu-img bitmap --add --disable "$img" t
    qemu-img bitmap --merge a "$img" t
    qemu-img bitmap --merge s -b "$src" -F qcow2 "$img" t
    run "$BLK_IMG" bitmap dump "$img" t
    assert_output "Start           Length          Dirty
0               0x10000         yes
0x10000         0x30000         no
0x40000         0x10000         yes
0x50000         0xb0000         no"
    qemu-img bitmap --clear "$img" a
    run "$BLK_IMG" bitmap dump "$img" a
    assert_output "Start           Length          Dirty
0               0x100000        no"
}

@test "blk's bitmaps show in qemu-img info and pass qemu-img check" {
    "$BLK_IMG" create -q -f qcow2 "$img" 4M
    "$BLK_IMG" bitmap --add "$img" b0
    "$BLK_IMG" bitmap --add -g 4096 --disable "$img" b1
    "$BLK_IO" -c 'write -q 0 1M' -c 'write -q 3M 5000' "$img"
    run qemu-img info "$img"
    assert_output --partial "    bitmaps:
        [0]:
            flags:
                [0]: auto
            name: b0
            granularity: 65536
        [1]:
            flags:
            name: b1
            granularity: 4096"
    run qemu-img check "$img"
    assert_success
    assert_line "No errors were found on the image."
    expected=$(qemu-img info "$img" | bitmaps_section)
    run bash -c "'$BLK_IMG' info '$img' | sed -n '/^    bitmaps:/,/^    [a-z]/p' | sed '\$d'"
    assert_output "$expected"
}

@test "qemu-img merges blk's bitmap bit for bit and removes it" {
    "$BLK_IMG" create -q -f qcow2 "$img" 8M
    "$BLK_IMG" bitmap --add -g 512 "$img" blk
    "$BLK_IO" -c 'write -q 1000 10' -c 'write -q 1M 70000' -c 'write -q -z 7M 512' "$img"
    qemu-img bitmap --add -g 512 --disable "$img" copy
    qemu-img bitmap --merge blk "$img" copy
    want=$("$BLK_IMG" bitmap dump --output=json "$img" blk)
    run "$BLK_IMG" bitmap dump --output=json "$img" copy
    assert_output "$want"
    assert_output --partial '{ "start": 1048576, "length": 70144, "dirty": true}'
    qemu-img bitmap --remove "$img" blk
    run qemu-img check "$img"
    assert_success
    run "$BLK_IMG" bitmap dump "$img" blk
    assert_failure 1
}

@test "QEMU counts the same dirty bytes in blk's bitmap" {
    "$BLK_IMG" create -q -f qcow2 "$img" 8M
    "$BLK_IMG" bitmap --add -g 4096 "$img" b
    "$BLK_IO" -c 'write -q 1000 10' -c 'write -q 1M 70000' "$img"
    run qemu-storage-daemon --chardev stdio,id=m --monitor chardev=m <<EOF
{"execute": "qmp_capabilities"}
{"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n0", "file": {"driver": "file", "filename": "$img"}}}
{"execute": "query-named-block-nodes", "arguments": {"flat": true}}
{"execute": "quit"}
EOF
    # 4096 + 73728 (1M .. 1M+70000 rounded out to 4k)
    assert_output --partial '"dirty-bitmaps": [{"name": "b", "recording": true, "persistent": true, "busy": false, "granularity": 4096, "count": 77824}]'
}

@test "a bitmap QEMU left in use is inconsistent in blk and can be removed" {
    qemu-img create -q -f qcow2 "$img" 1M
    qemu-img bitmap --add "$img" b
    qemu-io -c 'write -q 0 64k' -c 'sleep 100000' "$img" &
    pid=$!
    sleep 1
    kill -9 $pid
    wait $pid || true
    run "$BLK_IMG" bitmap dump "$img" b
    assert_failure 1
    assert_output "blk-img: Bitmap 'b' is inconsistent and cannot be used"
    run "$BLK_IMG" info "$img"
    assert_output --partial "[0]: in-use"
    run "$BLK_IMG" bitmap --clear "$img" b
    assert_failure 1
    assert_output "blk-img: Operation clear on bitmap b failed: Bitmap 'b' is inconsistent and cannot be used
Try block-dirty-bitmap-remove to delete this bitmap from disk"
    "$BLK_IMG" bitmap --remove "$img" b
    run qemu-img info "$img"
    refute_output --partial "bitmaps:"
    run qemu-img check "$img"
    assert_success
}
