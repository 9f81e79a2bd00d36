# bitmap-damaged.bats - a qcow2 whose bitmap table points past the end of
# the file: QEMU 7.2 opens it and its check reports the damage; blk opens
# it too, with that bitmap inconsistent (refused for use, removable),
# checks it the same way, and never writes to it unless asked.
load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f qcow2 a.qcow2 64M
    qemu-img bitmap --add a.qcow2 b0
    qemu-io -c 'write 0 1M' a.qcow2 >/dev/null
    # Point the first bitmap table entry far past the end of the file.
    python3 - <<'PY'
import struct
f = open('a.qcow2', 'r+b')
h = f.read(65536)
p = struct.unpack('>I', h[100:104])[0]
while True:
    magic, length = struct.unpack('>II', h[p:p + 8])
    assert magic != 0
    if magic == 0x23852875:
        dsize, doff = struct.unpack('>QQ', h[p + 16:p + 32])
        break
    p += 8 + ((length + 7) & ~7)
f.seek(doff)
table = struct.unpack('>Q', f.read(8))[0]
f.seek(table)
f.write(struct.pack('>Q', 0x7fffff0000))
PY
    cp a.qcow2 q.qcow2
}

@test "damaged bitmap table: info opens the image as qemu-img does" {
    run qemu-img info q.qcow2
    assert_success
    q_out=$output
    run "$BLK_IMG" info a.qcow2
    assert_success
    assert_output --partial "name: b0"
}

@test "damaged bitmap table: check reports it like qemu-img, exit 2, file untouched" {
    sum=$(sha256sum < a.qcow2)
    run qemu-img check q.qcow2
    q_out=$output q_rc=$status
    run "$BLK_IMG" check a.qcow2
    assert_equal "$status" "$q_rc"
    assert_equal "$status" 2
    assert_equal "$output" "$q_out"
    assert_equal "$(sha256sum < a.qcow2)" "$sum"
}

@test "damaged bitmap table: the bitmap is unusable, the data is readable, remove works" {
    run "$BLK_IMG" bitmap dump a.qcow2 b0
    assert_failure 1
    assert_output --partial "Bitmap 'b0' is inconsistent and cannot be used"
    run "$BLK_IO" -r -c 'read 0 1M' a.qcow2
    assert_success
    run "$BLK_IMG" bitmap --remove a.qcow2 b0
    assert_success
    run qemu-img info a.qcow2
    refute_output --partial "bitmaps:"
}
