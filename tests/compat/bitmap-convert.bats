# bitmap-convert.bats - convert --bitmaps against qemu-img 7.2: the same
# bitmaps (names, granularities, flags, dirty extents) in the target, a
# clean `qemu-img check`, and the same errors and exit codes.
load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 src.qcow2 64M
    qemu-img bitmap --add src.qcow2 b0
    qemu-img bitmap --add -g 4096 src.qcow2 b1
    qemu-img bitmap --add -g 512 --disable src.qcow2 off
    qemu-io -c 'write 0 1M' -c 'write 10M 4k' -c 'write 33M 512' src.qcow2 >/dev/null
}

# Run both tools; compare stdout+stderr (program name normalised) and rc.
both() {
    run qemu-img "$@"
    q_out=${output//qemu-img/TOOL}
    q_rc=$status
    run "$BLK_IMG" "$@"
    b_out=${output//blk-img/TOOL}
    b_rc=$status
    assert_equal "$b_out" "$q_out"
    assert_equal "$b_rc" "$q_rc"
}

# Everything qemu-img info says about the bitmaps, as JSON.
bitmaps_of() {
    qemu-img info --output=json "$1" | sed -n '/"bitmaps"/,/\]/p'
}

@test "convert --bitmaps: the target has the source's bitmaps, as qemu-img makes them" {
    qemu-img convert --bitmaps -O qcow2 src.qcow2 q.qcow2
    run "$BLK_IMG" convert --bitmaps -O qcow2 src.qcow2 b.qcow2
    assert_success
    assert_equal "$(bitmaps_of b.qcow2)" "$(bitmaps_of q.qcow2)"
    [ -n "$(bitmaps_of b.qcow2)" ]
    run qemu-img check b.qcow2
    assert_success
    run qemu-img compare q.qcow2 b.qcow2
    assert_success
}

@test "convert --bitmaps: dirty extents survive the copy" {
    "$BLK_IMG" convert --bitmaps -O qcow2 src.qcow2 b.qcow2
    for bm in b0 b1 off; do
        assert_equal "$("$BLK_IMG" bitmap dump --output=json b.qcow2 $bm)" \
                     "$("$BLK_IMG" bitmap dump --output=json src.qcow2 $bm)"
    done
    # and what QEMU reads from our copy is what it reads from its own
    qemu-img convert --bitmaps -O qcow2 src.qcow2 q.qcow2
    qemu-img bitmap --add q.qcow2 m
    qemu-img bitmap --merge b1 q.qcow2 m
    qemu-img bitmap --add b.qcow2 m
    qemu-img bitmap --merge b1 b.qcow2 m
    assert_equal "$("$BLK_IMG" bitmap dump b.qcow2 m)" "$("$BLK_IMG" bitmap dump q.qcow2 m)"
}

@test "convert --bitmaps: inconsistent bitmaps are refused, or skipped with --skip-broken-bitmaps" {
    # A writer killed while the image is open leaves its bitmaps in use.
    qemu-io -c 'sleep 10000' src.qcow2 &
    sleep 0.5
    kill -9 $!
    wait $! || true
    both convert --bitmaps -O qcow2 src.qcow2 t1.qcow2
    assert_equal "$b_rc" 1
    both convert --bitmaps --skip-broken-bitmaps -O qcow2 src.qcow2 t2.qcow2
    assert_equal "$b_rc" 0
}

@test "convert --bitmaps: errors as qemu-img's" {
    qemu-img create -q -f raw r.raw 1M
    both convert --skip-broken-bitmaps -O qcow2 src.qcow2 x.qcow2
    both convert --bitmaps -O qcow2 src.qcow2 src.qcow2 y.qcow2
    both convert --bitmaps -O qcow2 r.raw z.qcow2
    [ ! -e z.qcow2 ]
    qemu-img create -q -f qcow2 n.qcow2 64M
    qemu-img bitmap --add n.qcow2 b1
    cp n.qcow2 n2.qcow2
    run qemu-img convert --bitmaps -n -O qcow2 src.qcow2 n.qcow2
    q_out=${output//qemu-img/TOOL}
    run "$BLK_IMG" convert --bitmaps -n -O qcow2 src.qcow2 n2.qcow2
    assert_failure
    assert_equal "${output//blk-img/TOOL}" "$q_out"
    # blk checks every bitmap before creating any: the target is untouched
    run qemu-img info n2.qcow2
    refute_output --partial "name: off"
}

@test "convert --bitmaps: a raw target is refused (blk removes the target it created)" {
    run qemu-img convert --bitmaps -O raw src.qcow2 q.raw
    assert_failure
    q_out=${output//qemu-img/TOOL}
    run "$BLK_IMG" convert --bitmaps -O raw src.qcow2 b.raw
    assert_failure
    assert_equal "${output//blk-img/TOOL}" "$q_out"
    # qemu-img leaves an empty q.raw behind; blk-img leaves nothing
    [ ! -e b.raw ]
}
