# qemu-io-vmstate.bats - read -b / write -b (the VM state area) against
# qemu-io 7.2: transcripts of both tools (timing filtered, through
# tests/compat/qemu-io/run) must be identical, including qemu-img check
# and map of the image afterwards; and data written by one tool reads
# back with the other.
load ../helpers

# The script is read from standard input.
check_inline() {
    local s=$BATS_TEST_TMPDIR/script.txt
    local run=$BATS_TEST_DIRNAME/qemu-io/run
    cat >"$s"
    "$run" qemu-io "$s" >"$BATS_TEST_TMPDIR/qemu.out" 2>&1
    "$run" "$BLK_IO" "$s" >"$BATS_TEST_TMPDIR/blk.out" 2>&1
    run diff -u "$BATS_TEST_TMPDIR/qemu.out" "$BATS_TEST_TMPDIR/blk.out"
    assert_success
}

@test "vmstate: write -b and read -b on qcow2; check and map see the clusters past the disk" {
    check_inline <<'SCRIPT'
img qcow2 1M
io -c 'read -b -P 0 0 64k' -c 'write -b -P 0x11 0 64k' -c 'write -b -P 0x22 100k 4k' -c 'read -b -P 0x11 0 64k' -c 'read -b -P 0 64k 36k' -c 'read -b -v 100k 512' -c 'map' -c 'info'
io -c 'read -b -P 0x22 100k 4k' -c 'read -P 0 0 1M'
qemu-img check "$IMG" | filter
qemu-img map --output=json "$IMG" | filter
SCRIPT
}

@test "vmstate: the area starts after the last L1 entry of the disk (cluster sizes, extended L2, odd sizes)" {
    check_inline <<'SCRIPT'
for o in cluster_size=4k cluster_size=512 cluster_size=2M extended_l2=on,cluster_size=64k compat=0.10; do
    img qcow2 3000M "$o"
    io -c 'write -b -P 0x33 0 4k' -c 'write -b -P 0x44 1M 512' -c 'info'
    qemu-io -c 'read -b -P 0x33 0 4k' -c 'read -b -P 0x44 1M 512' "$IMG" | filter
    qemu-img check "$IMG" | filter
done
SCRIPT
}

@test "vmstate: blk-io reads what qemu-io wrote with write -b, and qemu-io what blk-io wrote" {
    qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/a.qcow2" 64M
    qemu-io -c 'write -b -P 0x5a 0 128k' -c 'write -b -P 0x6b 1M 64k' "$BATS_TEST_TMPDIR/a.qcow2"
    run "$BLK_IO" -c 'read -b -P 0x5a 0 128k' -c 'read -b -P 0x6b 1M 64k' -c 'read -b -P 0 128k 64k' "$BATS_TEST_TMPDIR/a.qcow2"
    assert_success
    refute_output --partial 'verification failed'
    qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/b.qcow2" 64M
    run "$BLK_IO" -c 'write -b -P 0x7c 0 128k' -c 'write -b -P 0x8d 1M 64k' "$BATS_TEST_TMPDIR/b.qcow2"
    assert_success
    run qemu-io -c 'read -b -P 0x7c 0 128k' -c 'read -b -P 0x8d 1M 64k' -c 'read -b -P 0 128k 64k' -c 'read -P 0 0 64M' "$BATS_TEST_TMPDIR/b.qcow2"
    assert_success
    refute_output --partial 'verification failed'
    run qemu-img check "$BATS_TEST_TMPDIR/b.qcow2"
    assert_success
}

@test "vmstate: raw images have no VM state area (qemu-io's errors)" {
    check_inline <<'SCRIPT'
img raw 1M
io -f raw -c 'read -b 0 512' -c 'write -b 0 512' -c 'read -b -P 0 0 4k'
io -c 'write -b -P 1 0 512'
SCRIPT
}

@test "vmstate: argument errors of read -b and write -b" {
    check_inline <<'SCRIPT'
img qcow2 1M
io -c 'write -b -z 0 512' -c 'write -b -f 0 512' -c 'write -b -u 0 512' -c 'write -b -n 0 512' -c 'write -b 0 100' -c 'write -b 100 512' -c 'read -b 100 512' -c 'read -b 0 100' -c 'read -b 0 1T' -c 'write -b -c -P 3 0 512' -c 'read -b -P 3 0 512' -c 'write -b -s /dev/null 0 512'
io -r -c 'write -b 0 512' -c 'read -b 0 512'
SCRIPT
}

@test "vmstate: far positions: past the largest qcow2 offset writes fail with EFBIG" {
    check_inline <<'SCRIPT'
img qcow2 1M
io -c 'write -b -P 9 1P 512' -c 'read -b -P 9 1P 512' -c 'write -b 7E 512' -c 'read -b -P 0 7E 512'
qemu-img check "$IMG" | filter
SCRIPT
}

@test "vmstate: -C and -s pass read -b and write -b to the image below" {
    check_inline <<'SCRIPT'
img qcow2 1M
io -C -c 'write -b -P 0x21 0 64k' -c 'read -b -P 0x21 0 64k'
io -c 'read -b -P 0x21 0 64k'
io -s -c 'read -b -P 0 0 64k' -c 'write -b -P 0x31 0 64k' -c 'read -b -P 0x31 0 64k'
io -c 'read -b -P 0x21 0 64k'
SCRIPT
}
