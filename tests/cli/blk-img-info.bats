#!/usr/bin/env bats
# blk-img-info.bats - `blk-img info` on images made by qemu-img/qemu-io:
# human and JSON output byte for byte as qemu-img 7.2 prints them (disk
# usage masked), backing chains, errors.

load ../helpers
load blk-img-images

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    make_images
    qemu-img create -q -f qcow2 -u -b nonexist -F qcow2 bad.qcow2 1M
    qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 1M
    printf '\001' | dd of=dirty.qcow2 bs=1 seek=79 conv=notrunc 2>/dev/null
    qemu-img create -q -f qcow2 corruptbit.qcow2 1M
    printf '\002' | dd of=corruptbit.qcow2 bs=1 seek=79 conv=notrunc 2>/dev/null
    qemu-img create -q -f qcow2 bm.qcow2 1M
    qemu-img bitmap --add bm.qcow2 b0
    qemu-img bitmap --add -g 128k bm.qcow2 b1
    qemu-img bitmap --disable bm.qcow2 b1
}

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_FILE_TMPDIR"
}

@test "info: qcow2 human output" {
    golden info-qcow2 info a.qcow2
}

@test "info: qcow2 JSON in QEMU's member order" {
    golden info-qcow2-json info --output=json a.qcow2
}

@test "info: --output human is the default" {
    golden info-qcow2 info --output=human a.qcow2
}

@test "info: backing file and its format" {
    golden info-backing info ov.qcow2
}

@test "info: backing file in JSON" {
    golden info-backing-json info --output json ov.qcow2
}

@test "info: --backing-chain prints each image, blank line between" {
    golden info-chain info --backing-chain ov.qcow2
}

@test "info: --backing-chain JSON is an array" {
    golden info-chain-json info --backing-chain --output=json ov.qcow2
}

@test "info: a relative backing file shows its actual path" {
    golden info-sub info --backing-chain sub/top.qcow2
}

@test "info: full-backing-filename in JSON" {
    golden info-sub-json info --output=json sub/top.qcow2
}

@test "info: compat 0.10 has fewer format-specific members" {
    golden info-v2 info v2.qcow2
}

@test "info: compat 0.10 JSON" {
    golden info-v2-json info --output=json v2.qcow2
}

@test "info: external data file" {
    golden info-datafile info df.qcow2
}

@test "info: external data file JSON" {
    golden info-datafile-json info --output=json df.qcow2
}

@test "info: raw image" {
    golden info-raw info r.raw
}

@test "info: raw JSON" {
    golden info-raw-json info --output=json r.raw
}

@test "info: a qcow2 file read as raw" {
    golden info-as-raw info -f raw a.qcow2
}

@test "info: a missing backing file is shown, not opened" {
    golden info-bad-backing info bad.qcow2
}

@test "info: --backing-chain fails on a missing backing file" {
    golden info-bad-chain info --backing-chain bad.qcow2
}

@test "info: a dirty image was not cleanly shut down" {
    golden info-dirty info -U dirty.qcow2
}

@test "info: the dirty flag in JSON" {
    golden info-dirty-json info --output=json dirty.qcow2
}

@test "info: the corrupt bit" {
    golden info-corrupt info corruptbit.qcow2
}

@test "info: persistent bitmaps in the format-specific part" {
    golden info-bitmaps info bm.qcow2
}

@test "info: persistent bitmaps in JSON" {
    golden info-bitmaps-json info --output=json bm.qcow2
}

@test "info: --image-opts" {
    golden info-qcow2 info --image-opts driver=qcow2,file.driver=file,file.filename=a.qcow2
}

@test "info: a json: filename" {
    golden info-backing info 'json:{"driver":"qcow2","file":{"driver":"file","filename":"ov.qcow2"}}'
}

@test "info: --image-opts and -f are exclusive" {
    golden info-err-imageopts info -f qcow2 --image-opts driver=qcow2,file.filename=a.qcow2
}

@test "info: wrong format" {
    golden info-err-fmt info -f qcow2 r.raw
}

@test "info: missing file" {
    golden info-err-nofile info nofile
}

@test "info: bad --output" {
    golden info-err-output info --output=xml a.qcow2
}

@test "info: no file name" {
    golden info-err-noargs info
}

@test "info: two file names" {
    golden info-err-twoargs info a b
}

@test "info: unknown option" {
    golden info-err-opt info -Z a.qcow2
}

@test "info: missing option argument" {
    golden info-err-optarg info -f
}

@test "info: the snapshot table" {
    cp a.qcow2 "$BATS_TEST_TMPDIR/s.qcow2"
    qemu-img snapshot -c snap1 "$BATS_TEST_TMPDIR/s.qcow2"
    run "$BLK_IMG" info "$BATS_TEST_TMPDIR/s.qcow2"
    assert_success
    assert_line "Snapshot list:"
    assert_line "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT"
    assert_line --regexp '^1         snap1                 0 B [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} 00:00:00.000          0$'
}

@test "info: no dirty flag or cluster size for null-co" {
    run "$BLK_IMG" info --output=json --image-opts driver=null-co,size=1048576
    assert_success
    assert_line '    "virtual-size": 1048576,'
    assert_line '    "format": "null-co",'
    refute_line --partial dirty-flag
    refute_line --partial cluster-size
}
