#!/usr/bin/env bats
# img-read.bats - on images made by qemu-img and written by qemu-io,
# blk-img info, map, check, compare and measure print exactly what
# qemu-img 7.2 prints (program name replaced), with the same exit codes.

load ../helpers
load ../cli/blk-img-images

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    make_images
    make_broken_images
    qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=8 s4k.qcow2 10M
    qemu-io -c 'write -P 1 0 12k' -c 'write -c -P 2 1M 64k' -c 'write -z 2M 8k' s4k.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -o extended_l2=on x.qcow2 10M
    qemu-io -c 'write -P 1 4k 4k' -c 'write -P 2 1M 64k' -c 'write -z 3M 2k' x.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -o compression_type=zstd z.qcow2 10M
    qemu-io -c 'write -c -P 1 0 128k' z.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b x.qcow2 -F qcow2 x2.qcow2 20M
    qemu-io -c 'write -P 3 0 64k' x2.qcow2 >/dev/null
    qemu-img snapshot -c s1 z.qcow2
    qemu-img create -q -f qcow2 bm.qcow2 100M
    qemu-img bitmap --add bm.qcow2 b0
    qemu-img bitmap --add -g 4k bm.qcow2 longername
}

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_FILE_TMPDIR"
}

# same ARGS... : blk-img and qemu-img agree on stdout, stderr and status.
same() {
    local q b
    q=$(capture qemu-img "$@")
    b=$(capture "$BLK_IMG" "$@")
    if [ "$q" != "$b" ]; then
        diff -u <(printf '%s\n' "$q") <(printf '%s\n' "$b")
        return 1
    fi
}

IMAGES="a.qcow2 ov.qcow2 c.qcow2 c2.qcow2 v2.qcow2 df.qcow2 sub/top.qcow2 r.raw e.raw e1.qcow2 e2.qcow2 s4k.qcow2 x.qcow2 z.qcow2 x2.qcow2 leak.qcow2 corrupt.qcow2"

@test "img-read: info, human and JSON" {
    local f
    for f in $IMAGES; do
        same info "$f"
        same info --output=json "$f"
    done
}

@test "img-read: info --backing-chain" {
    local f
    for f in ov.qcow2 c2.qcow2 sub/top.qcow2 x2.qcow2; do
        same info --backing-chain "$f"
        same info --backing-chain --output=json "$f"
    done
}

@test "img-read: map, human and JSON" {
    local f
    for f in $IMAGES; do
        case $f in x*) continue ;; esac
        same map "$f"
        same map --output=json "$f"
    done
}

@test "img-read: map of extended L2 subclusters" {
    same map x.qcow2
    same map --output=json x.qcow2
    same map --output=json x2.qcow2
}

@test "img-read: map ranges" {
    same map --output=json --start-offset=1M s4k.qcow2
    same map --start-offset=1M --max-length=3M a.qcow2
    same map --output=json --start-offset=64k --max-length=1100k a.qcow2
}

@test "img-read: check, human and JSON" {
    local f
    for f in $IMAGES; do
        same check "$f"
        same check --output=json "$f"
    done
}

@test "img-read: compare" {
    same compare a.qcow2 ov.qcow2
    same compare c.qcow2 c2.qcow2
    same compare x.qcow2 x2.qcow2
    same compare -s x.qcow2 x2.qcow2
    same compare e1.qcow2 e2.qcow2
    same compare e1.qcow2 e.raw
    same compare -s e1.qcow2 e.raw
    same compare a.qcow2 r.raw
    same compare s4k.qcow2 s4k.qcow2
}

@test "img-read: measure" {
    local f
    for f in $IMAGES; do
        same measure -O qcow2 "$f"
        same measure --output=json -O qcow2 "$f"
        same measure -O raw "$f"
    done
    same measure -O qcow2 -o cluster_size=4k,extended_l2=on c2.qcow2
}

@test "img-read: persistent bitmaps in info and measure" {
    same info bm.qcow2
    same info --output=json bm.qcow2
    same measure -O qcow2 bm.qcow2
    same measure --output=json -O qcow2 -o cluster_size=4k bm.qcow2
    same measure -O qcow2 -o compat=0.10 bm.qcow2
}

@test "img-read: snapshot -l and info with a snapshot" {
    same snapshot -l z.qcow2
    same info z.qcow2
    same info --output=json z.qcow2
}

@test "img-read: -U and --image-opts" {
    same map --image-opts driver=qcow2,file.driver=file,file.filename=a.qcow2
    same compare -U a.qcow2 ov.qcow2
    same check -U a.qcow2
    same info -U --output=json a.qcow2
}
