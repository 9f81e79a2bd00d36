# qcow2-snapshot.bats - internal snapshots made by blk-img work in
# qemu-img 7.2 and vice versa: create (-c), list (-l), apply (-a) and
# delete (-d) on each side, data checked with qemu-io read -P, and
# qemu-img check clean after every step.
load ../helpers

setup() {
    I=$BATS_TEST_TMPDIR/s.qcow2
}

clean() {
    run qemu-img check "$I"
    assert_success
    assert_line --index 0 "No errors were found on the image."
}

# reads PATTERN OFFSET LEN...: the image reads back as the pattern(s)
reads() {
    local args=()
    while [ $# -gt 0 ]; do
        args+=(-c "read -P $1 $2 $3")
        shift 3
    done
    run qemu-io -r "${args[@]}" "$I"
    assert_success
    refute_output --partial "Pattern verification failed"
}

@test "snapshot: blk-img -c makes a snapshot qemu-img lists and applies" {
    qemu-img create -q -f qcow2 "$I" 4M
    qemu-io -c 'write -P 1 0 256k' "$I" >/dev/null
    run "$BLK_IMG" snapshot -c first "$I"
    assert_success
    clean
    run qemu-img snapshot -l "$I"
    assert_line --index 2 --regexp '^1 +first +0 B '
    qemu-io -c 'write -P 2 0 128k' "$I" >/dev/null
    run qemu-img snapshot -a first "$I"
    assert_success
    clean
    reads 1 0 256k
}

@test "snapshot: qemu-img -c makes a snapshot blk-img lists identically and applies" {
    qemu-img create -q -f qcow2 "$I" 4M
    qemu-io -c 'write -P 1 0 256k' "$I" >/dev/null
    qemu-img snapshot -c one "$I"
    qemu-io -c 'write -P 2 64k 64k' "$I" >/dev/null
    qemu-img snapshot -c two "$I"
    run qemu-img snapshot -l "$I"
    local want=$output
    run "$BLK_IMG" snapshot -l "$I"
    assert_success
    assert_output "$want"
    qemu-io -c 'write -P 3 0 1M' "$I" >/dev/null
    run "$BLK_IMG" snapshot -a one "$I"
    assert_success
    clean
    reads 1 0 256k 0 256k 768k
    run "$BLK_IMG" snapshot -a 2 "$I"
    assert_success
    clean
    reads 1 0 64k 2 64k 64k 1 128k 128k
}

@test "snapshot: blk-img -d deletes by name; qemu-img check stays clean and the others still apply" {
    qemu-img create -q -f qcow2 "$I" 4M
    qemu-io -c 'write -P 1 0 256k' "$I" >/dev/null
    "$BLK_IMG" snapshot -c a "$I"
    qemu-io -c 'write -P 2 0 64k' "$I" >/dev/null
    qemu-img snapshot -c b "$I"
    qemu-io -c 'write -P 3 0 64k' "$I" >/dev/null
    run "$BLK_IMG" snapshot -d a "$I"
    assert_success
    clean
    run qemu-img snapshot -l "$I"
    refute_output --regexp ' a +0 B'
    run qemu-img snapshot -a b "$I"
    assert_success
    reads 2 0 64k 1 64k 192k
    run qemu-img snapshot -d b "$I"
    assert_success
    clean
    reads 2 0 64k 1 64k 192k
}

@test "snapshot: qemu-img -d deletes a blk-made snapshot and frees its clusters" {
    qemu-img create -q -f qcow2 "$I" 4M
    qemu-io -c 'write -P 1 0 512k' "$I" >/dev/null
    "$BLK_IMG" snapshot -c a "$I"
    qemu-io -c 'write -P 2 0 512k' "$I" >/dev/null
    run qemu-img snapshot -d a "$I"
    assert_success
    clean
    refute_output --partial "leaked"
    reads 2 0 512k
}

@test "snapshot: ids count up from the highest one, names may repeat (as in QEMU)" {
    qemu-img create -q -f qcow2 "$I" 1M
    "$BLK_IMG" snapshot -c x "$I"
    qemu-img snapshot -c x "$I"
    "$BLK_IMG" snapshot -c y "$I"
    run qemu-img snapshot -l "$I"
    assert_line --index 2 --regexp '^1 +x '
    assert_line --index 3 --regexp '^2 +x '
    assert_line --index 4 --regexp '^3 +y '
    clean
}

@test "snapshot: errors for missing snapshots match qemu-img (program name aside)" {
    qemu-img create -q -f qcow2 "$I" 1M
    "$BLK_IMG" snapshot -c x "$I"
    run qemu-img snapshot -a nope "$I"
    local qa=${output#qemu-img: } qs=$status
    run "$BLK_IMG" snapshot -a nope "$I"
    assert_equal "$status" "$qs"
    assert_equal "${output#blk-img: }" "$qa"
    # -d matches names only, as qemu-img does: an id is not enough
    run qemu-img snapshot -d 1 "$I"
    qa=${output#qemu-img: } qs=$status
    run "$BLK_IMG" snapshot -d 1 "$I"
    assert_equal "$status" "$qs"
    assert_equal "${output#blk-img: }" "$qa"
}

@test "snapshot: compressed and zero clusters survive create/apply on both sides" {
    qemu-img create -q -f qcow2 "$I" 4M
    qemu-io -c 'write -c -P 5 0 64k' -c 'write -P 6 64k 64k' -c 'write -z 128k 64k' "$I" >/dev/null
    "$BLK_IMG" snapshot -c s "$I"
    clean
    qemu-io -c 'write -P 7 0 192k' "$I" >/dev/null
    clean
    run qemu-img snapshot -a s "$I"
    assert_success
    reads 5 0 64k 6 64k 64k 0 128k 64k
    clean
    qemu-io -c 'write -P 8 0 192k' "$I" >/dev/null
    run "$BLK_IMG" snapshot -a s "$I"
    assert_success
    reads 5 0 64k 6 64k 64k 0 128k 64k
    clean
}

@test "snapshot: a v2 (compat=0.10) image takes blk-made snapshots qemu-img applies" {
    qemu-img create -q -f qcow2 -o compat=0.10 "$I" 1M
    qemu-io -c 'write -P 1 0 64k' "$I" >/dev/null
    "$BLK_IMG" snapshot -c s "$I"
    qemu-io -c 'write -P 2 0 64k' "$I" >/dev/null
    run qemu-img snapshot -a s "$I"
    assert_success
    reads 1 0 64k
    clean
}

@test "snapshot: applying a snapshot of another size resizes the image to it (QEMU 7.2)" {
    qemu-img create -q -f qcow2 "$I" 2M
    qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1536k 64k' "$I" >/dev/null
    "$BLK_IMG" snapshot -c big "$I"
    qemu-img resize -q --shrink "$I" 1M
    run "$BLK_IMG" snapshot -a big "$I"
    assert_success
    run qemu-img info --output=json "$I"
    assert_output --partial '"virtual-size": 2097152,'
    reads 1 0 64k 2 1536k 64k
    clean
}

@test "snapshot: many snapshots, applied in turn, each reads back its data" {
    local k
    qemu-img create -q -f qcow2 "$I" 2M
    for k in 1 2 3 4 5 6; do
        qemu-io -c "write -P $k $(((k - 1) * 64))k 64k" "$I" >/dev/null
        if [ $((k % 2)) -eq 0 ]; then
            "$BLK_IMG" snapshot -c "s$k" "$I"
        else
            qemu-img snapshot -c "s$k" "$I"
        fi
    done
    clean
    for k in 3 6 1 4; do
        "$BLK_IMG" snapshot -a "s$k" "$I"
        reads "$k" $(((k - 1) * 64))k 64k
        clean
    done
    for k in 1 2 3 4 5 6; do
        "$BLK_IMG" snapshot -d "s$k" "$I"
        clean
    done
    reads 4 192k 64k
}
