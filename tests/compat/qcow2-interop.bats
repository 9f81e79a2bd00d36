#!/usr/bin/env bats
# qcow2-interop.bats - qcow2 images go back and forth between blk and QEMU
# 7.2 unnoticed: blk-img create equals qemu-img create byte for byte, the
# same qemu-io script run by blk-io and qemu-io leaves identical images,
# and each tool reads what the other wrote.

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img not installed"
    command -v qemu-io >/dev/null || skip "qemu-io not installed"
    cd "$BATS_TEST_TMPDIR"
}

# Run the same qemu-io commands with both tools on copies of one image.
same_script() {
    local img=$1
    shift
    cp "$img" q.qcow2
    cp "$img" b.qcow2
    local args=()
    for c in "$@"; do
        args+=(-c "$c")
    done
    qemu-io "${args[@]}" q.qcow2 >/dev/null
    run "$BLK_IO" "${args[@]}" b.qcow2
    assert_success
    run qemu-img check -q b.qcow2
    assert_success
    run qemu-img compare -q q.qcow2 b.qcow2
    assert_success
    # Compressed clusters come from blk's own encoders (zlib type: ISA-L
    # with a 4 KiB window; zstd type: level 1 where QEMU uses 3): valid
    # streams that QEMU reads (check, compare above), but other bytes, so
    # the host layout after compressed writes may differ.
    if [[ "$*" == *"write -c"* ]]; then
        return 0
    fi
    diff <(qemu-img map --output=json q.qcow2) <(qemu-img map --output=json b.qcow2)
    cmp q.qcow2 b.qcow2
}

@test "qcow2 interop: blk-img create equals qemu-img create byte for byte" {
    for o in compat=1.1 compat=0.10 cluster_size=512 cluster_size=2M \
             refcount_bits=1 refcount_bits=64 extended_l2=on \
             compression_type=zstd lazy_refcounts=on preallocation=metadata \
             preallocation=falloc; do
        qemu-img create -q -f qcow2 -o "$o" q.qcow2 100M
        "$BLK_IMG" create -q -f qcow2 -o "$o" b.qcow2 100M
        cmp q.qcow2 b.qcow2 || { echo "differs: -o $o"; false; }
    done
}

@test "qcow2 interop: the same writes allocate the same host clusters" {
    qemu-img create -q -f qcow2 base.qcow2 1G
    same_script base.qcow2 'write -P 0xab 0 64k' 'write -P 0xcd 1M 64k' \
        'write -P 1 4000 100000' 'write -P 2 1023M 1M'
}

@test "qcow2 interop: zero, discard and compressed writes match qemu-io" {
    qemu-img create -q -f qcow2 base.qcow2 64M
    same_script base.qcow2 'write -P 0x11 0 256k' 'write -z 64k 64k' \
        'write -z -u 128k 64k' 'discard 192k 64k' 'write -c -P 0x22 1M 64k' \
        'write -c -P 0x33 1088k 64k' 'write -P 0x44 1M 512'
}

@test "qcow2 interop: small clusters grow the refcount table like QEMU" {
    qemu-img create -q -f qcow2 -o cluster_size=512 base.qcow2 64M
    same_script base.qcow2 'write -P 0x61 0 4M' 'write -P 0x62 30M 3M'
}

@test "qcow2 interop: writes to clusters shared with a snapshot copy them" {
    qemu-img create -q -f qcow2 base.qcow2 16M
    qemu-io -c 'write -P 0x70 0 4M' base.qcow2 >/dev/null
    qemu-img snapshot -c s1 base.qcow2
    same_script base.qcow2 'write -P 0x71 0 4k' 'write -P 0x72 1M 64k' \
        'write -z 2M 64k'
    run qemu-img snapshot -l b.qcow2
    assert_output --partial s1
}

@test "qcow2 interop: blk-io reads what qemu-io wrote, through a backing chain" {
    qemu-img create -q -f qcow2 base.qcow2 8M
    qemu-io -c 'write -P 0x5a 0 8M' base.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
    qemu-io -c 'write -P 0xa5 1M 4k' -c 'write -c -P 0x3c 2M 64k' top.qcow2 >/dev/null
    run "$BLK_IO" -r -c 'read -P 0x5a 0 1M' -c 'read -P 0xa5 1M 4k' \
        -c 'read -P 0x5a 1052672 4096' -c 'read -P 0x3c 2M 64k' top.qcow2
    assert_success
    refute_output --partial "fail"
}

@test "qcow2 interop: qemu-io reads what blk-io wrote into an overlay" {
    qemu-img create -q -f qcow2 base.qcow2 8M
    qemu-io -c 'write -P 0x5a 0 8M' base.qcow2 >/dev/null
    "$BLK_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
    run "$BLK_IO" -c 'write -P 0xa5 1000 3000' -c 'write -z 3M 64k' top.qcow2
    assert_success
    run qemu-io -r -c 'read -P 0x5a 0 1000' -c 'read -P 0xa5 1000 3000' \
        -c 'read -P 0x5a 4000 61536' -c 'read -P 0 3M 64k' top.qcow2
    assert_success
    refute_output --partial "Pattern verification failed"
    run qemu-img check -q top.qcow2
    assert_success
}

@test "qcow2 interop: lazy refcounts leave a clean image after close" {
    "$BLK_IMG" create -q -f qcow2 -o lazy_refcounts=on l.qcow2 16M
    run "$BLK_IO" -c 'write -P 1 0 1M' l.qcow2
    assert_success
    run qemu-img check l.qcow2
    assert_success
    assert_output --partial "No errors were found"
    run qemu-img info l.qcow2
    assert_output --partial "lazy refcounts: true"
}

@test "qcow2 interop: extended L2 subcluster writes, zeroes and discards match" {
    qemu-img create -q -f qcow2 -o extended_l2=on base.qcow2 10M
    same_script base.qcow2 'write -P 1 0 1M' 'write -z 1000 3000' \
        'write -z 4096 2048' 'write -z 65536 100000' 'write -z -u 300k 64k' \
        'discard 512k 100k' 'write -P 2 2M 1k' 'write -c -P 3 3M 64k' \
        'write -z 3M 2048' 'write -z 7M 5000'
}

@test "qcow2 interop: 2 MiB clusters with subclusters, 64-bit refcounts, v2" {
    qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=2M base.qcow2 100M
    same_script base.qcow2 'write -P 1 0 64k' 'write -P 2 128k 4k' \
        'write -P 3 65k 1k' 'write -z 1M 128k'
    qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=64 base.qcow2 50M
    same_script base.qcow2 'write -P 1 0 20M' 'discard 1M 3M' 'write -P 2 1M 1M' \
        'write -z -u 5M 1M'
    qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=8k base.qcow2 50M
    same_script base.qcow2 'write -P 1 0 2M' 'write -z 1M 100k' 'discard 0 64k' \
        'write -c -P 3 4M 8k'
}

@test "qcow2 interop: a compressed write of the partial last cluster" {
    qemu-img create -q -f qcow2 base.qcow2 100k
    same_script base.qcow2 'write -c -P 1 0 64k' 'write -c -P 2 64k 36k'
}

@test "qcow2 interop: resize with internal snapshots behaves like qemu-img" {
    qemu-img create -q -f qcow2 base.qcow2 10M
    qemu-io -c 'write -P 1 0 10M' base.qcow2 >/dev/null
    qemu-img snapshot -c s1 base.qcow2
    qemu-io -c 'write -P 2 6M 1M' base.qcow2 >/dev/null
    cp base.qcow2 q.qcow2
    cp base.qcow2 b.qcow2
    qemu-img resize -q q.qcow2 20M
    "$BLK_IMG" resize -q b.qcow2 20M
    cmp q.qcow2 b.qcow2
    qemu-img resize -q --shrink q.qcow2 5M
    "$BLK_IMG" resize -q --shrink b.qcow2 5M
    cmp q.qcow2 b.qcow2
    qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 10M
    qemu-img snapshot -c s1 v2.qcow2
    run "$BLK_IMG" resize v2.qcow2 20M
    assert_failure
    assert_output "blk-img: Can't resize a v2 image which has snapshots"
}

@test "qcow2 interop: a compressed write over several small clusters" {
    # QEMU compresses the clusters of one request in parallel workers, so
    # their packing order is its scheduler's; the mapping and data agree.
    qemu-img create -q -f qcow2 -o cluster_size=512 base.qcow2 16M
    cp base.qcow2 q.qcow2
    cp base.qcow2 b.qcow2
    qemu-io -c 'write -c -P 4 1M 64k' -c 'write -c -P 5 3M 1536' q.qcow2 >/dev/null
    run "$BLK_IO" -c 'write -c -P 4 1M 64k' -c 'write -c -P 5 3M 1536' b.qcow2
    assert_success
    run qemu-img check -q b.qcow2
    assert_success
    run qemu-img compare -q q.qcow2 b.qcow2
    assert_success
    diff <(qemu-img map --output=json q.qcow2) <(qemu-img map --output=json b.qcow2)
}

@test "qcow2 interop: 300 random writes, zeroes and discards leave identical images" {
    mapfile -t cmds < <(python3 - <<'PY'
import random
random.seed(7)
for i in range(300):
    o = random.randrange(0, (64 << 20) - 70000)
    l = random.randrange(1, 70000)
    k = random.choice(['write -P %d' % (i % 250 + 1), 'write -z', 'discard', 'write -P 9'])
    print('discard %d %d' % (o & ~4095, l) if k == 'discard' else '%s %d %d' % (k, o, l))
PY
)
    for o in cluster_size=4k extended_l2=on,cluster_size=32k compat=0.10,cluster_size=16k; do
        qemu-img create -q -f qcow2 -o "$o" base.qcow2 64M
        same_script base.qcow2 "${cmds[@]}"
    done
}

@test "qcow2 interop: random I/O over a backing file, a snapshot and compressed clusters" {
    mapfile -t cmds < <(python3 - <<'PY'
import random
random.seed(11)
for i in range(300):
    o = random.randrange(0, (32 << 20) - 70000)
    l = random.randrange(1, 70000)
    k = random.choice(['write -P %d' % (i % 250 + 1), 'write -z', 'write -z -u', 'discard', 'wc'])
    if k == 'discard':
        print('discard %d %d' % (o & ~4095, l))
    elif k == 'wc':
        print('write -c -P 7 %d 65536' % (o & ~65535))
    else:
        print('%s %d %d' % (k, o, l))
PY
)
    local args=()
    for c in "${cmds[@]}"; do
        args+=(-c "$c")
    done
    qemu-img create -q -f qcow2 bb.qcow2 32M
    qemu-io -c 'write -P 0x80 0 32M' bb.qcow2 >/dev/null
    # Compressed clusters come from blk's own encoders, so the images are
    # compared by content; the host layout is compared where the script
    # writes no compressed clusters.
    for o in compat=1.1,compression_type=zstd \
             extended_l2=on,compression_type=zstd compat=0.10; do
        rm -f s.qcow2
        qemu-img create -q -f qcow2 -o "$o" -b bb.qcow2 -F qcow2 s.qcow2
        qemu-io -c 'write -P 3 0 8M' -c 'write -c -P 4 8M 4M' s.qcow2 >/dev/null
        qemu-img snapshot -c s1 s.qcow2
        cp s.qcow2 q.qcow2
        cp s.qcow2 b.qcow2
        # Compressed writes to allocated clusters fail in both tools.
        qemu-io "${args[@]}" q.qcow2 >q.out 2>&1 || true
        "$BLK_IO" "${args[@]}" b.qcow2 >b.out 2>&1 || true
        [ "$(grep -c 'write failed' q.out)" = "$(grep -c 'write failed' b.out)" ]
        qemu-img check -q b.qcow2
        qemu-img compare -q q.qcow2 b.qcow2
        if ! grep -q 'write -c' <<<"${cmds[*]}"; then
            cmp q.qcow2 b.qcow2
        fi
    done
}

@test "qcow2 interop: resizing an image resizes its external data file" {
    "$BLK_IMG" create -q -f qcow2 -o data_file=b.data,data_file_raw=on b.qcow2 4M
    "$BLK_IMG" resize -q b.qcow2 8M
    [ "$(stat -c %s b.data)" = 8388608 ]
    "$BLK_IMG" resize -q --shrink b.qcow2 2M
    [ "$(stat -c %s b.data)" = 2097152 ]
    run qemu-img check -q b.qcow2
    assert_success
}
