# qemu-io-cor.bats - copy-on-read (-C, and the copy-on-read filter over
# --image-opts) against qemu-io 7.2: each script runs with both tools
# through tests/compat/qemu-io/run (timing numbers filtered) and the
# transcripts, which include qemu-img map/check of the images afterwards,
# must be identical.
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

@test "cor: -C copies the whole cluster of a small read into the overlay" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -c 'write -P 0xaa 0 256k' "$T/base.qcow2" >/dev/null
img qcow2 1M "backing_file=$T/base.qcow2,backing_fmt=qcow2"
io -C -c 'read -P 0xaa 1k 2k' -c 'map' -c 'alloc 0 1M' -c 'alloc 64k 64k'
qemu-img map --output=json "$IMG" | filter
io -c 'map' -c 'read -P 0xaa 0 64k'
qemu-img check "$IMG"
SCRIPT
}

@test "cor: a second read finds the copied range allocated and reads it from the overlay" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -c 'write -P 5 0 1M' "$T/base.qcow2" >/dev/null
img qcow2 1M "backing_file=$T/base.qcow2,backing_fmt=qcow2"
io -C -c 'read -P 5 100k 8k' -c 'map' -c 'read -P 5 100k 8k' -c 'map'
qemu-io -f qcow2 -c 'write -P 9 0 1M' "$T/base.qcow2" >/dev/null
io -c 'read -P 5 64k 64k' -c 'read -P 9 0 64k' -c 'map'
SCRIPT
}

@test "cor: ranges that read as zeroes become zero clusters, data ranges data clusters" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -c 'write -P 0xaa 0 256k' -c 'write -z 512k 64k' "$T/base.qcow2" >/dev/null
img qcow2 1M "backing_file=$T/base.qcow2,backing_fmt=qcow2"
io -C -c 'read 500k 100k' -c 'read -P 0xaa 192k 128k' -c 'map'
qemu-img map --output=json "$IMG" | filter
qemu-img check "$IMG"
SCRIPT
}

@test "cor: reads that straddle allocated and unallocated clusters keep the overlay's data" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -c 'write -P 1 0 1M' "$T/base.qcow2" >/dev/null
img qcow2 1M "backing_file=$T/base.qcow2,backing_fmt=qcow2"
io -c 'write -P 2 64k 64k' -c 'write -P 3 200k 4k'
io -C -c 'read -P 1 32k 32k' -c 'read -P 2 64k 64k' -c 'read -P 1 128k 64k' -c 'read -v 196k 512' -c 'read -P 1 8k 400k' -c 'map'
io -c 'read -P 1 0 64k' -c 'read -P 2 64k 64k' -c 'read -P 3 200k 4k' -c 'read -P 1 204k 60k' -c 'map'
qemu-img check "$IMG"
SCRIPT
}

@test "cor: writes through -C land as usual; aio reads of the same range copy it once" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 4M
qemu-io -c 'write -P 7 0 4M' "$T/base.qcow2" >/dev/null
img qcow2 4M "backing_file=$T/base.qcow2,backing_fmt=qcow2"
io -C -c 'write -P 8 1M 4k' -c 'read -P 7 1028k 60k' -c 'read -P 8 1M 4k' -c 'aio_read -q -P 7 2M 64k' -c 'aio_read -q -P 7 2M 64k' -c 'aio_read -q -P 7 2052k 8k' -c 'aio_flush' -c 'map'
qemu-img check "$IMG"
SCRIPT
}

@test "cor: -C refuses a read-only image with qemu's message" {
    check_inline <<'SCRIPT'
img qcow2 1M
io -C -r -c 'read 0 64k'
io -C -c 'read 0 64k' -c 'info'
SCRIPT
}

@test "cor: -C over raw images (probed and explicit) and with -s" {
    check_inline <<'SCRIPT'
img raw 1M
io -C -c 'read 0 64k' -c 'map'
io -C -f raw -c 'write -P 3 0 64k' -c 'read -P 3 0 64k' -c 'map'
io -C -s -f raw -c 'write -P 4 0 64k' -c 'read -P 4 0 64k'
io -f raw -c 'read -P 3 0 64k'
img qcow2 1M
io -C -s -c 'read 0 64k' -c 'map'
SCRIPT
}

@test "cor: the copy-on-read filter with bottom copies only the layers down to bottom" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -c 'write -P 1 0 1M' "$T/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/mid.qcow2"
qemu-io -c 'write -P 2 256k 256k' "$T/mid.qcow2" >/dev/null
img qcow2 1M "backing_file=$T/mid.qcow2,backing_fmt=qcow2"
O="driver=copy-on-read,bottom=mid,file.driver=qcow2,file.file.filename=$IMG,file.backing.node-name=mid,file.backing.driver=qcow2,file.backing.file.filename=$T/mid.qcow2"
io_noimg --image-opts -c 'read -P 1 0 64k' -c 'read -P 2 256k 64k' -c 'read -P 1 200k 100k' -c 'map' -c 'info' "$O"
qemu-img map "$IMG" | filter
O="driver=copy-on-read,file.driver=qcow2,file.file.filename=$IMG"
io_noimg --image-opts -c 'read -P 1 0 64k' -c 'map' "$O"
qemu-img map "$IMG" | filter
qemu-img check "$IMG"
SCRIPT
}

# base.qcow2 (0xaa in 0..256k) and two empty overlays a.qcow2, b.qcow2 over it.
make_pair() {
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 base.qcow2 1M
    qemu-io -c 'write -P 0xaa 0 256k' base.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 a.qcow2
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 b.qcow2
}

@test "cor: blockdev-add driver=copy-on-read in the shell copies as qemu-io -C does" {
    make_pair
    qemu-io -C -c 'read -P 0xaa 1k 2k' -c 'read 200k 100k' a.qcow2 >/dev/null
    run "$BLK_IO" -c 'blockdev-add driver=qcow2,node-name=top,file.driver=file,file.filename=b.qcow2' \
        -c 'blockdev-add driver=copy-on-read,node-name=cor,file=top' -c 'select cor' \
        -c 'read -P 0xaa 1k 2k' -c 'read 200k 100k' -c 'info'
    assert_success
    assert_line 'format name: copy-on-read'
    refute_output --partial 'verification failed'
    assert_equal "$(qemu-img map --output=json b.qcow2)" "$(qemu-img map --output=json a.qcow2)"
    run qemu-img compare a.qcow2 b.qcow2
    assert_success
    run qemu-img check b.qcow2
    assert_success
}

@test "cor: blockdev-add copy-on-read over QMP; a bad file reference is an error" {
    make_pair
    qemu-io -C -c 'read 128k 4k' a.qcow2 >/dev/null
    run "$BLK_IO" --qmp <<'IN'
{"execute": "qmp_capabilities"}
{"execute": "blockdev-add", "arguments": {"driver": "copy-on-read", "node-name": "c2", "file": {"driver": "qcow2", "file": {"driver": "file", "filename": "b.qcow2"}}}}
{"execute": "human-monitor-command", "arguments": {"command-line": "select c2"}}
{"execute": "human-monitor-command", "arguments": {"command-line": "read -P 0xaa 128k 4k"}}
{"execute": "blockdev-add", "arguments": {"driver": "copy-on-read", "node-name": "c3", "file": "nosuch"}}
{"execute": "blockdev-add", "arguments": {"driver": "copy-on-read", "node-name": "c4", "file": "c2", "bottom": "nosuch"}}
IN
    assert_success
    assert_output --partial 'read 4096/4096 bytes at offset 131072'
    assert_output --partial "Cannot find device='nosuch' nor node-name='nosuch'"
    assert_output --partial "Bottom node 'nosuch'"
    assert_equal "$(qemu-img map --output=json b.qcow2)" "$(qemu-img map --output=json a.qcow2)"
}

@test "cor: reopen -r is refused while -C copies, reopen -w and reads go on" {
    check_inline <<'SCRIPT'
qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
qemu-io -c 'write -P 0xaa 0 256k' "$T/base.qcow2" >/dev/null
img qcow2 1M "backing_file=$T/base.qcow2,backing_fmt=qcow2"
io -C -c 'reopen -r' -c 'read -P 0xaa 0 4k' -c 'map' -c 'reopen -w' -c 'read -P 0xaa 64k 4k' -c 'map' | sed -E 's/#block[0-9]+/#blockN/'
SCRIPT
}
