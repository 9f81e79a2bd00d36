#!/usr/bin/env bats
# img-convert-locking.bats - convert's sources are opened without sharing
# write, as qemu-img 7.2 opens them: a target on the same file as a source
# (with -n, without it, with -C) is refused, -U allows it, and a source
# another process writes is refused.  blk writes the lock error on one line
# and names the holder (man/blk-driver-file.7.pod); the comparison puts it
# back into qemu-img's two-line form.

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    [ -x "$BLK_IMG" ] || skip "blk-img is not built"
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    if [ -n "${HOLDER:-}" ]; then
        kill "$HOLDER" 2>/dev/null || true
        wait "$HOLDER" 2>/dev/null || true
    fi
}

# Output and exit code, tool names blanked, blk's one-line lock message
# split as qemu-img prints it and its holder note dropped.
norm() {
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\nexit %d\n' "$out" "$rc" |
        sed -E "s/^(blk-img|qemu-img):/TOOL:/;
                s/ \(held by pid [0-9]+ '[^']*'\)$//;
                s/ lock: (Is another process)/ lock\n\1/"
}

# fresh: a.raw and a.qcow2 with known data; same ARGS...: blk and QEMU
# agree on output and exit code, each run on fresh images.
fresh() {
    rm -f a.raw a.qcow2 b.raw
    truncate -s 1M a.raw
    qemu-io -f raw -c 'write -q -P 0x5a 0 64k' a.raw >/dev/null
    qemu-img convert -f raw -O qcow2 a.raw a.qcow2
}

same() {
    local a b
    fresh; a=$(norm "$BLK_IMG" "$@")
    fresh; b=$(norm qemu-img "$@")
    if [ "$a" != "$b" ]; then
        printf 'blk:\n%s\nqemu:\n%s\n' "$a" "$b"
        return 1
    fi
}

@test "convert -n onto its own source fails on the write lock" {
    same convert -n -f raw -O raw a.raw a.raw
    same convert -n -f qcow2 -O qcow2 a.qcow2 a.qcow2
    fresh
    run "$BLK_IMG" convert -n -f raw -O raw a.raw a.raw
    assert_failure
    assert_output --partial "blk-img: Could not open 'a.raw': Failed to get \"write\" lock: Is another process using the image [a.raw]?"
}

@test "convert -C -n onto its own source fails on the write lock" {
    same convert -C -n -f raw -O raw a.raw a.raw
}

@test "convert creating its own source fails and leaves it intact" {
    same convert -f raw -O raw a.raw a.raw
    same convert -f qcow2 -O qcow2 a.qcow2 a.qcow2
    fresh
    run "$BLK_IMG" convert -f raw -O raw a.raw a.raw
    assert_failure
    run qemu-io -f raw -c 'read -P 0x5a 0 64k' a.raw
    assert_success
    [ "$(stat -c %s a.raw)" -eq 1048576 ]
}

@test "convert -U onto its own source is allowed, as in qemu-img" {
    same convert -U -n -f raw -O raw a.raw a.raw
    same convert -U -f raw -O raw a.raw a.raw
    same convert -U -n -f qcow2 -O qcow2 a.qcow2 a.qcow2
}

@test "convert refuses a source another process writes, unless -U" {
    fresh
    qemu-io -f raw -c 'sleep 100000' a.raw &
    HOLDER=$!
    sleep 0.5
    a=$(norm "$BLK_IMG" convert -f raw -O raw a.raw b.raw)
    b=$(norm qemu-img convert -f raw -O raw a.raw b.raw)
    [ "$a" = "$b" ]
    [[ "$a" == *'Failed to get shared "write" lock'* ]]
    run "$BLK_IMG" convert -U -f raw -O raw a.raw b.raw
    assert_success
}
