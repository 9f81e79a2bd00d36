#!/usr/bin/env bats
# blk-img-rebase.bats - `blk-img rebase`: safe mode keeps the overlay's
# contents, -u only rewrites the header, -b "" flattens; error texts.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    "$BLK_IMG" create -q -f qcow2 old.qcow2 4M
    "$BLK_IO" -c 'write -P 1 0 2M' old.qcow2 >/dev/null
    "$BLK_IMG" create -q -f qcow2 new.qcow2 4M
    "$BLK_IO" -c 'write -P 1 0 1M' -c 'write -P 5 3M 512k' new.qcow2 >/dev/null
    "$BLK_IMG" create -q -f qcow2 -b old.qcow2 -F qcow2 ov.qcow2
    "$BLK_IO" -c 'write -P 2 512k 64k' ov.qcow2 >/dev/null
    "$BLK_IMG" convert -O raw ov.qcow2 want.raw
}

backing_of() {
    "$BLK_IMG" info "$1" | sed -n 's/^backing file: //p'
}

@test "rebase: safe mode keeps what the overlay reads" {
    run "$BLK_IMG" rebase -b new.qcow2 -F qcow2 ov.qcow2
    assert_success
    assert_output ""
    [ "$(backing_of ov.qcow2)" = new.qcow2 ]
    "$BLK_IMG" convert -O raw ov.qcow2 got.raw
    cmp want.raw got.raw
}

@test "rebase: -b \"\" flattens the overlay" {
    "$BLK_IMG" rebase -b "" ov.qcow2
    [ -z "$(backing_of ov.qcow2)" ]
    "$BLK_IMG" convert -O raw ov.qcow2 got.raw
    cmp want.raw got.raw
}

@test "rebase: -u only changes the header" {
    "$BLK_IMG" rebase -u -b new.qcow2 -F qcow2 ov.qcow2
    [ "$(backing_of ov.qcow2)" = new.qcow2 ]
    "$BLK_IMG" convert -O raw ov.qcow2 got.raw
    ! cmp -s want.raw got.raw
}

@test "rebase: -u works when the old backing file is gone" {
    rm old.qcow2
    run "$BLK_IMG" rebase -u -b new.qcow2 -F qcow2 ov.qcow2
    assert_success
    [ "$(backing_of ov.qcow2)" = new.qcow2 ]
}

@test "rebase: -p prints progress" {
    run bash -c "'$BLK_IMG' rebase -p -b new.qcow2 -F qcow2 ov.qcow2 | tr '\r' '\n'"
    assert_success
    assert_line --index 0 "    (0.00/100%)"
    assert_line "    (100.00/100%)"
}

@test "rebase: errors use qemu-img's words" {
    run "$BLK_IMG" rebase ov.qcow2
    assert_failure 1
    assert_line --index 0 "blk-img: Must specify backing file (-b) or use unsafe mode (-u)"
    run "$BLK_IMG" rebase -b new.qcow2 ov.qcow2
    assert_failure 1
    assert_output "blk-img: Could not change the backing file to 'new.qcow2': backing format must be specified"
    run "$BLK_IMG" rebase -b nonexist.qcow2 -F qcow2 ov.qcow2
    assert_failure 1
    assert_output "blk-img: Could not open new backing file 'nonexist.qcow2': Could not open 'nonexist.qcow2': No such file or directory"
    [ "$(backing_of ov.qcow2)" = old.qcow2 ]
}
