#!/usr/bin/env bats
# locking.bats - image locking between blk and QEMU 7.2: both take OFD
# locks on the same bytes (100 + permission, 200 + unshared permission),
# so each refuses to open an image the other is using unsafely.  blk's
# side is the file driver's unit test binary in its --hold mode (opens the
# image as raw, read-write, sharing only reads, until it is killed).

load ../helpers

HOLD=${BLK_BUILD:-$REPO/build}/t/block/test-file

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    [ -x "$HOLD" ] || skip "$HOLD is not built"
    IMG=$BATS_TEST_TMPDIR/a.img
    truncate -s 1M "$IMG"
    HOLDER=
}

teardown() {
    if [ -n "$HOLDER" ]; then
        kill "$HOLDER" 2>/dev/null || true
        wait "$HOLDER" 2>/dev/null || true
    fi
}

# Start blk holding $IMG and wait until its locks are taken.
blk_hold() {
    "$HOLD" --hold "$IMG" 30 >"$BATS_TEST_TMPDIR/hold.out" 2>&1 3>&- &
    HOLDER=$!
    for _ in $(seq 100); do
        grep -q locked "$BATS_TEST_TMPDIR/hold.out" 2>/dev/null && return 0
        sleep 0.05
    done
    cat "$BATS_TEST_TMPDIR/hold.out"
    return 1
}

# Start qemu-io holding $IMG (format $1) read-write; wait for its locks.
qemu_hold() {
    qemu-io -f "$1" -c 'sleep 30000' "$IMG" >/dev/null 2>&1 3>&- &
    HOLDER=$!
    for _ in $(seq 100); do
        grep -q ":$(stat -c %i "$IMG") 100 " /proc/locks && return 0
        sleep 0.05
    done
    return 1
}

@test "blk takes the lock bytes QEMU takes for a read-write image" {
    blk_hold
    ino=$(stat -c %i "$IMG")
    run bash -c "grep ':$ino ' /proc/locks | awk '{print \$2, \$7, \$8}' | sort"
    # consistent read + write held (100-101), write not shared (201)
    assert_line "OFDLCK 100 101"
    assert_line "OFDLCK 201 201"
    refute_output --partial WRITE
}

@test "qemu-io cannot write an image blk holds read-write" {
    blk_hold
    run qemu-io -f raw -c 'write 0 512' "$IMG"
    assert_failure
    assert_output --partial 'Failed to get "write" lock'
    assert_output --partial "Is another process using the image [$IMG]?"
}

@test "qemu-img info of a qcow2 reader is refused while blk writes" {
    blk_hold
    run qemu-img info -f qcow2 "$IMG"
    assert_failure
    assert_output --partial 'Failed to get shared "write" lock'
}

@test "qemu-img info -U reads an image blk holds" {
    blk_hold
    run qemu-img info -U -f raw "$IMG"
    assert_success
    assert_output --partial "virtual size: 1 MiB (1048576 bytes)"
}

@test "QEMU gets the image once blk lets go" {
    blk_hold
    kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true; HOLDER=
    run qemu-io -f raw -c 'write 0 512' "$IMG"
    assert_success
}

@test "blk refuses an image qemu-io holds and names the holder" {
    qemu_hold raw
    run "$HOLD" --hold "$IMG" 0
    assert_failure
    assert_output --partial "Failed to get shared \"write\" lock: Is another process using the image [$IMG]? (held by pid $HOLDER 'qemu-io')"
}
