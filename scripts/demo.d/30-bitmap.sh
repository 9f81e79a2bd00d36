# 30-bitmap.sh - demo piece (sourced by scripts/demo; uses run, $B, $d):
# a persistent dirty bitmap records writes, and bitmap dump lists the
# dirty extents, which QEMU's tools see too.
echo "== dirty bitmaps: track what changed, persistently in qcow2"
run "$B/blk-img" create -q -f qcow2 "$d/bm.qcow2" 1G
run "$B/blk-img" bitmap --add -g 64k "$d/bm.qcow2" since-backup
run "$B/blk-io" -c 'write -q 1M 100k' -c 'write -q -z 512M 4k' "$d/bm.qcow2"
run "$B/blk-img" bitmap dump "$d/bm.qcow2" since-backup
run "$B/blk-img" bitmap dump --output=json --start-offset 1M --max-length 256k \
    "$d/bm.qcow2" since-backup
if command -v qemu-img >/dev/null; then
    echo "\$ qemu-img info bm.qcow2 | sed -n '/bitmaps:/,/granularity/p'"
    qemu-img info "$d/bm.qcow2" | sed -n '/bitmaps:/,/granularity/p'
    echo
fi
