# demo piece: convert with zstd compression, then commit an overlay
echo "== convert to compressed qcow2 (zstd), then commit an overlay"
run "$B/blk-img" convert -c -O qcow2 -o compression_type=zstd \
    "$d/a.qcow2" "$d/z.qcow2"
run "$B/blk-img" compare "$d/a.qcow2" "$d/z.qcow2"
run "$B/blk-img" create -f qcow2 -b "$d/z.qcow2" -F qcow2 "$d/top.qcow2"
run "$B/blk-io" -c 'write -P 0x5a 4M 128k' "$d/top.qcow2"
run "$B/blk-img" commit "$d/top.qcow2"
run "$B/blk-io" -c 'read -P 0x5a 4M 128k' "$d/z.qcow2"
