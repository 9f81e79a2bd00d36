# blk-img-images.bash - shared by the blk-img image-command tests
# (tests/cli/blk-img-{create,info,check,map,compare,resize,measure,amend,
# snapshot}.bats and tests/compat/img-*.bats): capturing a command's
# output for golden files, and test images made by qemu-img/qemu-io 7.2.

# capture CMD... : stdout, stderr and exit status in one comparable text,
# with the program name and disk usage (filesystem-dependent) masked.
capture() {
    local out err rc=0
    out=$("$@" 2>"$BATS_TEST_TMPDIR/.stderr") || rc=$?
    err=$(cat "$BATS_TEST_TMPDIR/.stderr")
    printf '== stdout\n%s\n== stderr\n%s\n== rc %s\n' "$out" "$err" "$rc" |
        sed -e "s#${BLK_IMG:-blk-img}#blk-img#g" -e 's#qemu-img#blk-img#g' \
            -e 's/^disk size: .*/disk size: X/' \
            -e 's/"actual-size": [0-9]*/"actual-size": X/'
}

# golden NAME ARGS... : `blk-img ARGS...` prints what tests/cli/expected/NAME.out
# holds.  With BLK_GOLDEN_GEN=1 the file is (re)made from `qemu-img ARGS...`
# instead: the golden outputs are qemu-img 7.2's, with the name replaced.
golden() {
    local name=$1; shift
    if [ "${BLK_GOLDEN_GEN:-}" = 1 ]; then
        capture qemu-img "$@" > "$REPO/tests/cli/expected/$name.out"
        return 0
    fi
    capture "$BLK_IMG" "$@" > "$BATS_TEST_TMPDIR/$name.out"
    diff -u "$REPO/tests/cli/expected/$name.out" "$BATS_TEST_TMPDIR/$name.out"
}

# golden_blk NAME ARGS... : like golden, for outputs where blk-img differs
# from qemu-img on purpose (never regenerated from qemu-img).
golden_blk() {
    local name=$1; shift
    capture "$BLK_IMG" "$@" > "$BATS_TEST_TMPDIR/$name.out"
    diff -u "$REPO/tests/cli/expected/$name.out" "$BATS_TEST_TMPDIR/$name.out"
}

have_qemu() {
    command -v qemu-img >/dev/null && command -v qemu-io >/dev/null
}

# Images with known contents, made by qemu-img and qemu-io in the current
# directory (their layout is deterministic).
make_images() {
    qemu-img create -q -f qcow2 a.qcow2 1G
    qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 128k' a.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 ov.qcow2
    qemu-img create -q -f qcow2 c.qcow2 4M
    qemu-io -c 'write -c -P 3 0 64k' -c 'write -z 128k 64k' \
        -c 'write -P 5 256k 64k' -c 'write -P 5 320k 64k' \
        -c 'write -z -u 1M 128k' c.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -b c.qcow2 -F qcow2 c2.qcow2
    qemu-io -c 'write -P 7 64k 64k' -c 'write -z 256k 64k' c2.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M
    qemu-img create -q -f qcow2 -o data_file=d.raw,data_file_raw=on df.qcow2 1M
    mkdir -p sub
    qemu-img create -q -f raw sub/base.raw 1M
    qemu-img create -q -f qcow2 -b base.raw -F raw sub/top.qcow2
    qemu-img create -q -f raw r.raw 1536M
    qemu-io -f raw -c 'write -P 1 0 1M' -c 'write -P 2 10M 64k' r.raw >/dev/null
    qemu-img create -q -f raw e.raw 4M
    qemu-img create -q -f qcow2 e1.qcow2 4M
    qemu-img create -q -f qcow2 e2.qcow2 8M
    qemu-io -c 'write -P 0 64k 64k' e1.qcow2 >/dev/null
}

# A qcow2 image with one leaked cluster (its L2 entry zeroed) and one with
# a refcount of 0 on an L2 table (both: 64k clusters, L2 table at 0x40000,
# refcount block at 0x20000).
make_broken_images() {
    local f
    for f in leak corrupt; do
        qemu-img create -q -f qcow2 $f.qcow2 1G
        qemu-io -c 'write -P 1 0 128k' -c 'write 10M 64k' $f.qcow2 >/dev/null
    done
    dd if=/dev/zero of=leak.qcow2 bs=1 seek=$((0x40000)) count=8 conv=notrunc 2>/dev/null
    dd if=/dev/zero of=corrupt.qcow2 bs=1 seek=$((0x20000 + 4 * 2)) count=2 conv=notrunc 2>/dev/null
}
