#!/usr/bin/env bats
# blk-img-snapshot.bats - `blk-img snapshot`: -l table, -c, -a, -d and
# qemu-img 7.2's messages.

load ../helpers
load blk-img-images

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 s.qcow2 1M
    qemu-img create -q -f raw r.raw 1M
}

@test "snapshot: -l without snapshots prints nothing" {
    golden snapshot-list-empty snapshot -l s.qcow2
}

@test "snapshot: -c creates, -l lists" {
    run "$BLK_IMG" snapshot -c s1 s.qcow2
    assert_success
    assert_output ""
    run "$BLK_IMG" snapshot -l s.qcow2
    assert_success
    assert_line -n 0 "Snapshot list:"
    assert_line -n 1 "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT"
    assert_line -n 2 --regexp '^1         s1                    0 B [0-9-]{10} [0-9:]{8} 00:00:00.000          0$'
    run qemu-img snapshot -l s.qcow2
    assert_line -n 2 --partial "1         s1 "
}

@test "snapshot: the table matches qemu-img's" {
    qemu-img snapshot -c one s.qcow2
    qemu-img snapshot -c two s.qcow2
    run "$BLK_IMG" snapshot -l s.qcow2
    assert_success
    assert_output "$(qemu-img snapshot -l s.qcow2)"
}

@test "snapshot: -a reverts the data" {
    qemu-io -c 'write -P 1 0 64k' s.qcow2 >/dev/null
    run "$BLK_IMG" snapshot -c s1 s.qcow2
    assert_success
    qemu-io -c 'write -P 2 0 64k' s.qcow2 >/dev/null
    run "$BLK_IMG" snapshot -a s1 s.qcow2
    assert_success
    run qemu-io -c 'read -P 1 0 64k' s.qcow2
    assert_success
}

@test "snapshot: -d deletes" {
    qemu-img snapshot -c s1 s.qcow2
    run "$BLK_IMG" snapshot -d s1 s.qcow2
    assert_success
    assert_output ""
    assert_equal "$(qemu-img snapshot -l s.qcow2)" ""
}

@test "snapshot: applying a missing snapshot" {
    golden snapshot-err-apply snapshot -a nope s.qcow2
}

@test "snapshot: deleting a missing snapshot" {
    golden snapshot-err-delete snapshot -d nope s.qcow2
}

@test "snapshot: actions do not mix" {
    golden snapshot-err-mix snapshot -l -c x s.qcow2
}

@test "snapshot: no action does nothing" {
    golden snapshot-none snapshot s.qcow2
}

@test "snapshot: raw lists nothing" {
    golden snapshot-raw-list snapshot -l r.raw
}

@test "snapshot: no file name" {
    golden snapshot-err-noargs snapshot -l
}
