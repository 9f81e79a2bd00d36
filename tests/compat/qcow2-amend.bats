# qcow2-amend.bats - blk-img amend against qemu-img amend 7.2 on qcow2:
# the same files where QEMU's layout is deterministic, the same errors,
# images qemu-img check accepts, and data (snapshots included) intact.
load ../helpers

setup() {
    Q=$BATS_TEST_TMPDIR/q.qcow2
    B=$BATS_TEST_TMPDIR/b.qcow2
}

clean() {
    run qemu-img check "$1"
    assert_success
}

# both COMMANDS...: run each on $Q ("%s" = its path), then copy it to $B
both() {
    local c
    for c in "$@"; do
        eval "${c//%s/$Q}" >/dev/null
    done
    cp "$Q" "$B"
}

# same_amend OPTIONS: qemu-img on $Q, blk-img on $B, same status and message
same_amend() {
    local qs bs qo bo
    qo=$(qemu-img amend -o "$1" "$Q" 2>&1) && qs=0 || qs=$?
    bo=$("$BLK_IMG" amend -o "$1" "$B" 2>&1) && bs=0 || bs=$?
    assert_equal "$bs" "$qs"
    assert_equal "${bo//blk-img/qemu-img}" "$qo"
}

@test "amend: compat=0.10 gives the same file as qemu-img (zero clusters expanded)" {
    both "qemu-img create -q -f qcow2 %s 4M" \
         "qemu-io -c 'write -P 1 0 192k' -c 'write -z 256k 128k' %s"
    same_amend compat=0.10
    cmp "$Q" "$B"
    clean "$B"
    run qemu-io -r -c 'read -P 1 0 192k' -c 'read -P 0 192k 256k' "$B"
    refute_output --partial "Pattern verification failed"
}

@test "amend: compat=1.1 upgrades a v2 image with a snapshot to the same file" {
    both "qemu-img create -q -f qcow2 -o compat=0.10 %s 4M" \
         "qemu-io -c 'write -P 1 0 1M' %s" "qemu-img snapshot -c s %s"
    same_amend compat=1.1
    cmp "$Q" "$B"
}

@test "amend: lazy_refcounts on and off give the same files" {
    both "qemu-img create -q -f qcow2 %s 4M" "qemu-io -c 'write -P 1 0 1M' %s"
    same_amend lazy_refcounts=on
    cmp "$Q" "$B"
    same_amend lazy_refcounts=off
    cmp "$Q" "$B"
}

@test "amend: refcount_bits changes keep the image consistent and its data" {
    local bits
    both "qemu-img create -q -f qcow2 %s 4M" "qemu-io -c 'write -P 1 0 1M' %s" \
         "qemu-img snapshot -c s %s" "qemu-io -c 'write -P 2 0 64k' %s"
    for bits in 64 8 2 16; do
        same_amend refcount_bits=$bits
        clean "$B"
        run qemu-img info "$B"
        assert_output --partial "refcount bits: $bits"
    done
    run qemu-io -r -c 'read -P 2 0 64k' -c 'read -P 1 64k 960k' "$B"
    refute_output --partial "Pattern verification failed"
    run qemu-img snapshot -a s "$B"
    assert_success
    run qemu-io -r -c 'read -P 1 0 1M' "$B"
    refute_output --partial "Pattern verification failed"
}

@test "amend: refcount_bits=1 is refused while a cluster is shared, as in QEMU" {
    both "qemu-img create -q -f qcow2 %s 4M" "qemu-io -c 'write -P 1 0 64k' %s" \
         "qemu-img snapshot -c s %s"
    same_amend refcount_bits=1
    cmp "$Q" "$B"
}

@test "amend: size grows the image like qemu-img amend" {
    both "qemu-img create -q -f qcow2 %s 1M" "qemu-io -c 'write -P 1 0 64k' %s"
    same_amend size=8M
    cmp "$Q" "$B"
}

@test "amend: refusals match qemu-img (incompatible features, data file options)" {
    both "qemu-img create -q -f qcow2 -o extended_l2=on %s 1M"
    same_amend compat=0.10
    both "qemu-img create -q -f qcow2 -o compression_type=zstd %s 1M" \
         "qemu-io -c 'write -c -P 1 0 64k' %s"
    same_amend compat=0.10
    # without compressed clusters, zstd images downgrade (to zlib)
    both "qemu-img create -q -f qcow2 -o compression_type=zstd %s 1M"
    same_amend compat=0.10
    cmp "$Q" "$B"
    both "qemu-img create -q -f qcow2 -o refcount_bits=8 %s 1M"
    same_amend compat=0.10
    both "qemu-img create -q -f qcow2 %s 1M"
    same_amend data_file=x.raw
    same_amend data_file_raw=on
    same_amend compat=0.10,lazy_refcounts=on
}

@test "amend: downgrading keeps a snapshot's data where QEMU 7.2 zeroes it" {
    qemu-img create -q -f raw "$BATS_TEST_TMPDIR/base.raw" 1M
    qemu-io -f raw -c 'write -P 5 0 1M' "$BATS_TEST_TMPDIR/base.raw" >/dev/null
    both "qemu-img create -q -f qcow2 -b base.raw -F raw %s 1M" \
         "qemu-io -c 'write -P 7 0 64k' %s" "qemu-img snapshot -c s %s" \
         "qemu-io -c 'write -z 0 64k' %s"
    same_amend compat=0.10
    # QEMU's result: a check error, and the snapshot reads zeroes
    run qemu-img check "$Q"
    assert_failure 2
    # blk's: clean, and both the active layer and the snapshot are right
    clean "$B"
    run qemu-io -r -c 'read -P 0 0 64k' -c 'read -P 5 64k 960k' "$B"
    refute_output --partial "Pattern verification failed"
    run qemu-img snapshot -a s "$B"
    assert_success
    run qemu-io -r -c 'read -P 7 0 64k' "$B"
    refute_output --partial "Pattern verification failed"
}
