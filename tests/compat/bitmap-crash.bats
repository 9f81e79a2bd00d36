#!/usr/bin/env bats
# bitmap-crash.bats - blk-io killed with SIGKILL while it has an image
# with a persistent bitmap open for writing: the next open reports the
# bitmap inconsistent (qemu-img info shows the in-use flag), and nothing
# else is lost (data written before the kill reads back; qemu-img check
# finds at most leaks); the bitmap can then be removed.

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    img=$BATS_TEST_TMPDIR/a.qcow2
    pid=
}

teardown() {
    if [ -n "$pid" ]; then
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

# Start blk-io with the given -c commands on $img, then wait for marker.
start_blk_io() {
    local args=()
    for c in "$@"; do
        args+=(-c "$c")
    done
    # line-buffered, so the marker shows while blk-io sleeps
    stdbuf -oL "$BLK_IO" "${args[@]}" ${IMAGE_OPTS:+--image-opts} \
        "${IMAGE_OPTS:-$img}" > "$BATS_TEST_TMPDIR/out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q "^wrote .* at offset 1048576" "$BATS_TEST_TMPDIR/out" && return 0
        sleep 0.1
    done
    echo "blk-io did not get going:"; cat "$BATS_TEST_TMPDIR/out"
    return 1
}

kill_blk_io() {
    kill -9 "$pid"
    wait "$pid" || true
    pid=
}

@test "crash: a SIGKILLed writer leaves its persistent bitmaps inconsistent" {
    "$BLK_IMG" create -q -f qcow2 "$img" 4M
    "$BLK_IMG" bitmap --add "$img" p
    "$BLK_IMG" bitmap --add --disable "$img" off
    start_blk_io 'write -q -P 0xab 0 64k' 'write -P 0xcd 1M 128k' 'sleep 100000'
    kill_blk_io
    run "$BLK_IMG" bitmap dump "$img" p
    assert_failure 1
    assert_output "blk-img: Bitmap 'p' is inconsistent and cannot be used"
    run qemu-img info "$img"
    assert_output --partial "            flags:
                [0]: in-use
                [1]: auto
            name: p"
    # a disabled bitmap is marked in use too: QEMU cannot tell either
    run "$BLK_IMG" info --output=json "$img"
    assert_output --partial '"in-use"'
    run "$BLK_IO" -r -c 'query-named-block-nodes' "$img"
    assert_output --partial '                "name": "p",
                "recording": false,
                "persistent": true,
                "busy": false,
                "granularity": 65536,
                "count": 0,
                "inconsistent": true'
}

@test "crash: data written before the kill survives and check finds no corruption" {
    "$BLK_IMG" create -q -f qcow2 "$img" 4M
    "$BLK_IMG" bitmap --add "$img" p
    start_blk_io 'write -q -P 0xab 0 64k' 'flush' 'write -P 0xcd 1M 128k' 'flush' 'sleep 100000'
    kill_blk_io
    run qemu-img check "$img"
    # 0: clean; 3: only leaked clusters
    [ "$status" = 0 ] || [ "$status" = 3 ]
    refute_output --partial "ERROR"
    run qemu-io -r -c 'read -q -P 0xab 0 64k' -c 'read -q -P 0xcd 1M 128k' "$img"
    assert_success
    refute_output --partial "Pattern verification failed"
    run "$BLK_IO" -r -c 'read -q -P 0xab 0 64k' -c 'read -q -P 0xcd 1M 128k' "$img"
    assert_success
    assert_output ""
}

@test "crash: the inconsistent bitmap can be removed and a new one added" {
    "$BLK_IMG" create -q -f qcow2 "$img" 4M
    "$BLK_IMG" bitmap --add "$img" p
    start_blk_io 'write -q 0 64k' 'write 1M 4k' 'sleep 100000'
    kill_blk_io
    run "$BLK_IMG" bitmap --enable "$img" p
    assert_failure 1
    assert_line --index 1 "Try block-dirty-bitmap-remove to delete this bitmap from disk"
    run "$BLK_IMG" bitmap --remove --add "$img" p
    assert_success
    run "$BLK_IMG" bitmap dump --output=json "$img" p
    assert_output '[{ "start": 0, "length": 4194304, "dirty": false}]'
    run qemu-img info "$img"
    refute_output --partial "in-use"
    qemu-img check -r leaks "$img" >/dev/null
    run qemu-img check "$img"
    assert_success
}

@test "crash: a bitmap added by the killed blk-io itself is not stored" {
    "$BLK_IMG" create -q -f qcow2 "$img" 4M
    # a new persistent bitmap is written only at close: after a kill it
    # does not exist, which is as safe as an inconsistent one
    IMAGE_OPTS="driver=qcow2,node-name=n0,file.driver=file,file.filename=$img" \
        start_blk_io 'block-dirty-bitmap-add node=n0,name=n,persistent=on' \
        'write 1M 4k' 'sleep 100000'
    kill_blk_io
    run "$BLK_IMG" bitmap dump "$img" n
    assert_failure 1
    assert_output "blk-img: Dirty bitmap 'n' not found"
}
