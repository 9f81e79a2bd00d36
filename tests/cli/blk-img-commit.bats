#!/usr/bin/env bats
# blk-img-commit.bats - `blk-img commit`: data of the top (and the layers
# down to the base) lands in the base, the top is emptied unless -d/-b,
# "Image committed.", and qemu-img's error texts.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    "$BLK_IMG" create -q -f qcow2 base.qcow2 4M
    "$BLK_IO" -c 'write -P 1 0 2M' base.qcow2 >/dev/null
    "$BLK_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
    "$BLK_IO" -c 'write -P 2 1M 1M' -c 'write -z 3M 64k' mid.qcow2 >/dev/null
    "$BLK_IMG" create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
    "$BLK_IO" -c 'write -P 3 0 64k' top.qcow2 >/dev/null
    "$BLK_IMG" convert -O raw top.qcow2 want.raw
}

@test "commit: the top's data goes into its backing file and the top is emptied" {
    run "$BLK_IMG" commit top.qcow2
    assert_success
    assert_output "Image committed."
    "$BLK_IMG" convert -O raw mid.qcow2 got.raw
    cmp want.raw got.raw
    "$BLK_IMG" convert -O raw top.qcow2 got2.raw
    cmp want.raw got2.raw
    # emptied: nothing allocated in the top layer any more
    run "$BLK_IMG" map --output=json top.qcow2
    refute_output --partial '"depth": 0'
}

@test "commit: -d keeps the top's data" {
    "$BLK_IMG" commit -d top.qcow2
    run "$BLK_IMG" map --output=json top.qcow2
    assert_output --partial '"depth": 0'
}

@test "commit: -b commits through every layer into a deeper base" {
    run "$BLK_IMG" commit -b base.qcow2 top.qcow2
    assert_success
    "$BLK_IMG" convert -f qcow2 -O raw base.qcow2 got.raw
    cmp want.raw got.raw
}

@test "commit: -q prints nothing and -p prints progress" {
    run "$BLK_IMG" commit -q top.qcow2
    assert_success
    assert_output ""
    run bash -c "'$BLK_IMG' commit -p mid.qcow2 | tr '\r' '\n'"
    assert_success
    assert_line --index 0 "    (0.00/100%)"
    assert_line "Image committed."
}

@test "commit: an image without a backing file" {
    run "$BLK_IMG" commit base.qcow2
    assert_failure 1
    assert_output "blk-img: Image does not have a backing file"
}

@test "commit: a base that is not in the chain" {
    run "$BLK_IMG" commit -b nonexist top.qcow2
    assert_failure 1
    assert_output "blk-img: Did not find 'nonexist' in the backing chain of 'top.qcow2'"
}

@test "commit: a missing image" {
    run "$BLK_IMG" commit nonexist.qcow2
    assert_failure 1
    assert_output --partial "Could not open 'nonexist.qcow2'"
}

@test "commit: the emptied top shrinks to its metadata" {
    "$BLK_IMG" commit -q top.qcow2
    # header, refcount table, refcount block, L1 table
    [ "$(stat -c %s top.qcow2)" = 262144 ]
    "$BLK_IMG" check -q top.qcow2
}

@test "commit: a top with a snapshot keeps what the snapshot holds" {
    "$BLK_IMG" snapshot -c s1 top.qcow2
    "$BLK_IO" -c 'write -P 4 128k 64k' top.qcow2 >/dev/null
    "$BLK_IMG" commit -q top.qcow2
    run "$BLK_IMG" map --output=json top.qcow2
    refute_output --partial '"depth": 0'
    "$BLK_IMG" snapshot -a s1 top.qcow2
    run "$BLK_IO" -c 'read -P 3 0 64k' top.qcow2
    assert_output --partial "read 65536/65536"
    refute_output --partial "Pattern"
    "$BLK_IMG" check -q top.qcow2
}

@test "commit: a base another process holds is refused and nothing is written" {
    cp top.qcow2 top.before
    cp mid.qcow2 mid.before
    "$BLK_IO" -r -c 'sleep 3000' mid.qcow2 >/dev/null &
    sleep 0.5
    run "$BLK_IMG" commit top.qcow2
    wait
    assert_failure 1
    assert_output --partial 'Failed to get "write" lock'
    cmp top.before top.qcow2
    cmp mid.before mid.qcow2
}

@test "commit: -d reads the top without writing it" {
    cp top.qcow2 top.before
    "$BLK_IMG" commit -q -d top.qcow2
    cmp top.before top.qcow2
    "$BLK_IMG" convert -O raw mid.qcow2 got.raw
    cmp want.raw got.raw
}

@test "commit: zeroes in the top become zeroes in the base over its data" {
    "$BLK_IO" -c 'write -z 1M 64k' top.qcow2 >/dev/null
    "$BLK_IMG" convert -O raw top.qcow2 want2.raw
    "$BLK_IMG" commit -q -b base.qcow2 top.qcow2
    "$BLK_IMG" convert -O raw base.qcow2 got.raw
    cmp want2.raw got.raw
}
