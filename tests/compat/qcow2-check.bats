# qcow2-check.bats - blk-img check against qemu-img check 7.2 on good and
# damaged qcow2 images: stdout, stderr (program name aside) and the exit
# status must be identical, for a plain check, -r leaks, -r all and
# --output=json; a repaired image passes qemu-img check.
load ../helpers

setup_file() {
    export CORPUS=$BATS_FILE_TMPDIR/corpus
    "$BATS_TEST_DIRNAME/../damaged/make-corpus.sh" "$CORPUS" >/dev/null
}

# same_check IMAGE [check options...]: both tools on their own copy.
same_check() {
    local img=$1 q=$BATS_TEST_TMPDIR/img.qcow2 d=$BATS_TEST_TMPDIR rc
    shift
    cp "$img" "$q"
    cd "$d"
    qemu-img check "$@" img.qcow2 >q.out 2>q.err && rc=0 || rc=$?
    echo "exit $rc" >>q.out
    cp "$img" "$q"
    "$BLK_IMG" check "$@" img.qcow2 >b.out 2>b.err && rc=0 || rc=$?
    echo "exit $rc" >>b.out
    sed -i 's/blk-img/qemu-img/g' "$d/b.err"
    run diff -u "$d/q.out" "$d/b.out"
    assert_success
    run diff -u "$d/q.err" "$d/b.err"
    assert_success
}

check_all_modes() {
    same_check "$1"
    same_check "$1" --output=json
    same_check "$1" -r leaks
    same_check "$1" -r all
    same_check "$1" -r all --output=json
}

@test "check: a clean image with data, in every mode" {
    qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/c.qcow2" 4M
    qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 2M 64k' "$BATS_TEST_TMPDIR/c.qcow2" >/dev/null
    check_all_modes "$BATS_TEST_TMPDIR/c.qcow2"
}

@test "check: compressed clusters count as allocated, fragmented and compressed" {
    qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/c.qcow2" 4M
    qemu-io -c 'write -c -P 1 0 64k' -c 'write -c -P 2 64k 64k' -c 'write -P 3 1M 64k' \
        "$BATS_TEST_TMPDIR/c.qcow2" >/dev/null
    check_all_modes "$BATS_TEST_TMPDIR/c.qcow2"
}

@test "check: internal snapshots and their shared clusters are counted" {
    local i=$BATS_TEST_TMPDIR/c.qcow2
    qemu-img create -q -f qcow2 "$i" 4M
    qemu-io -c 'write -P 1 0 256k' "$i" >/dev/null
    qemu-img snapshot -c one "$i"
    qemu-io -c 'write -P 2 0 64k' "$i" >/dev/null
    qemu-img snapshot -c two "$i"
    check_all_modes "$i"
}

@test "check: persistent bitmaps' directory and tables are counted" {
    local i=$BATS_TEST_TMPDIR/c.qcow2
    qemu-img create -q -f qcow2 "$i" 4M
    qemu-img bitmap --add "$i" b0
    qemu-io -c 'write -P 1 0 256k' "$i" >/dev/null
    same_check "$i"
    same_check "$i" --output=json
}

@test "check: extended L2 entries and 512-byte clusters" {
    local i=$BATS_TEST_TMPDIR/c.qcow2
    qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k "$i" 1M
    qemu-io -c 'write -P 1 0 10k' -c 'write -z 64k 4k' "$i" >/dev/null
    check_all_modes "$i"
    qemu-img create -q -f qcow2 -o cluster_size=512 "$i" 1M
    qemu-io -c 'write -P 1 0 10k' -c 'write -z 64k 4k' "$i" >/dev/null
    check_all_modes "$i"
}

@test "check: refcount_bits=1 and refcount_bits=64" {
    local i=$BATS_TEST_TMPDIR/c.qcow2
    qemu-img create -q -f qcow2 -o refcount_bits=1 "$i" 1M
    qemu-io -c 'write -P 1 0 128k' "$i" >/dev/null
    check_all_modes "$i"
    qemu-img create -q -f qcow2 -o refcount_bits=64 "$i" 1M
    qemu-io -c 'write -P 1 0 128k' "$i" >/dev/null
    check_all_modes "$i"
}

@test "check: a leaked cluster is reported, then repaired by -r leaks" {
    check_all_modes "$CORPUS/refcount-leak.qcow2"
}

@test "check: a refcount of 0 for a used cluster needs a rebuild (-r leaks fails, -r all rebuilds)" {
    check_all_modes "$CORPUS/refcount-data-zero.qcow2"
}

@test "check: a zeroed refcount block is rebuilt by -r all" {
    check_all_modes "$CORPUS/zeroed-refcounts.qcow2"
}

@test "check: a refcount too high is a leak plus an OFLAG_COPIED error" {
    check_all_modes "$CORPUS/refcount-too-high.qcow2"
}

@test "check: a misaligned data cluster is reported, not repaired" {
    check_all_modes "$CORPUS/l2-misaligned.qcow2"
}

@test "check: a data cluster that is also the L1 table is a double reference" {
    check_all_modes "$CORPUS/l2-into-l1.qcow2"
}

@test "check: clusters past the end of the file are reported" {
    check_all_modes "$CORPUS/l2-beyond-eof.qcow2"
    check_all_modes "$CORPUS/compressed-beyond-eof.qcow2"
}

@test "check: reserved bits and misaligned tables are reported" {
    check_all_modes "$CORPUS/l2-reserved-bits.qcow2"
    check_all_modes "$CORPUS/l1-entry-misaligned.qcow2"
}

@test "check: a refcount table past the end of the file is rebuilt" {
    check_all_modes "$CORPUS/reftable-beyond-eof.qcow2"
}

@test "check: the corrupt bit does not stop check, and -r all clears it" {
    same_check "$CORPUS/corrupt-bit.qcow2"
    cp "$CORPUS/corrupt-bit.qcow2" "$BATS_TEST_TMPDIR/x.qcow2"
    run "$BLK_IMG" check -r all "$BATS_TEST_TMPDIR/x.qcow2"
    assert_success
    run qemu-img info --output=json "$BATS_TEST_TMPDIR/x.qcow2"
    assert_output --partial '"corrupt": false'
}

@test "check: a snapshot table past the end of the file has an incomplete entry" {
    check_all_modes "$CORPUS/snapshot-table-beyond-eof.qcow2"
}

@test "check: too much snapshot extra data fails a check; -r all discards it" {
    check_all_modes "$CORPUS/snapshot-extra-too-big.qcow2"
}

@test "check: the snapshot table errors of a check fail it like QEMU's" {
    same_check "$CORPUS/snapshot-offset-misaligned.qcow2"
    # blk-img cannot discard overhanging snapshots, so it does not offer to
    cp "$CORPUS/snapshot-nb-huge.qcow2" "$BATS_TEST_TMPDIR/x.qcow2"
    run "$BLK_IMG" check "$BATS_TEST_TMPDIR/x.qcow2"
    assert_failure 1
    assert_line --index 0 "blk-img: ERROR snapshot table too large"
    assert_line --index 1 "blk-img: Check failed: File too large"
}

@test "check: a plain check never writes to the image" {
    local n sum
    for n in refcount-leak zeroed-refcounts l2-misaligned corrupt-bit dirty-bit; do
        cp "$CORPUS/$n.qcow2" "$BATS_TEST_TMPDIR/x.qcow2"
        sum=$(sha256sum <"$BATS_TEST_TMPDIR/x.qcow2")
        "$BLK_IMG" check "$BATS_TEST_TMPDIR/x.qcow2" >/dev/null 2>&1 || true
        assert_equal "$(sha256sum <"$BATS_TEST_TMPDIR/x.qcow2")" "$sum"
    done
}

@test "check: cost follows the allocated metadata, not the virtual size (1 TiB, 10000 clusters)" {
    local i=$BATS_TEST_TMPDIR/big.qcow2 cmds=() k
    qemu-img create -q -f qcow2 "$i" 1T
    for k in $(seq 0 999); do
        cmds+=(-c "write -P 1 $((k * 1073741824)) 640k")
    done
    qemu-io "${cmds[@]}" "$i" >/dev/null
    SECONDS=0
    same_check "$i"
    [ "$SECONDS" -lt 10 ]
}

@test "check: a refcount overflowing 1-bit refcounts gets QEMU's two-line advice" {
    local i=$BATS_TEST_TMPDIR/c.qcow2
    qemu-img create -q -f qcow2 -o refcount_bits=1 "$i" 1M
    qemu-io -c 'write -P 1 0 128k' "$i" >/dev/null
    # the second data cluster's L2 entry points at the L1 table (0x30000)
    printf '\x80\x00\x00\x00\x00\x03\x00\x00' |
        dd of="$i" bs=1 seek=$((0x40008)) conv=notrunc status=none
    check_all_modes "$i"
}

@test "check: extended L2 bitmaps: allocated and zero at once, bits on an unallocated cluster" {
    local i=$BATS_TEST_TMPDIR/c.qcow2 j=$BATS_TEST_TMPDIR/d.qcow2
    qemu-img create -q -f qcow2 -o extended_l2=on "$i" 1M
    qemu-io -c 'write -P 1 0 4k' -c 'write -P 2 64k 64k' "$i" >/dev/null
    cp "$i" "$j"
    # L2 table at 0x40000, 16-byte entries: entry 0's bitmap, entry 2's bitmap
    printf '\x00\x00\x00\x01\x00\x00\x00\x01' |
        dd of="$i" bs=1 seek=$((0x40008)) conv=notrunc status=none
    check_all_modes "$i"
    printf '\x00\x00\x00\x00\x00\x00\x00\x01' |
        dd of="$j" bs=1 seek=$((0x40028)) conv=notrunc status=none
    check_all_modes "$j"
}
