# demo piece: create a qcow2 image, write to it, inspect and check it
echo "== a qcow2 image: create, write, inspect, check"
run "$B/blk-img" create -f qcow2 "$d/a.qcow2" 64M
run "$B/blk-io" -c 'write -P 0xab 0 1M' -c 'write -z 2M 1M' \
    -c 'aio_write -P 0x11 8M 64k' -c 'aio_write -P 0x22 9M 64k' -c aio_flush \
    -c 'read -P 0xab 0 1M' "$d/a.qcow2"
run "$B/blk-img" info "$d/a.qcow2"
run "$B/blk-img" map --output=json "$d/a.qcow2"
run "$B/blk-img" check "$d/a.qcow2"
