# qemu-img-bench.bats - blk-img bench prints what qemu-img bench 7.2 prints
# (the run time filtered out), fails where it fails, and really writes.
load ../helpers

setup() {
    IMG=$BATS_TEST_TMPDIR/t.img
    qemu-img create -q -f raw "$IMG" 16M
}

# same ARGS... : both tools, stdout+stderr and status, compared
same() {
    local q b
    q=$(qemu-img bench "$@" 2>&1; echo "[rc=$?]")
    b=$("$BLK_IMG" bench "$@" 2>&1; echo "[rc=$?]")
    q=$(sed -e 's/in [0-9.]* seconds/in T seconds/' -e 's/qemu-img/PROG/g' <<<"$q")
    b=$(sed -e 's/in [0-9.]* seconds/in T seconds/' -e 's/blk-img/PROG/g' <<<"$b")
    [ "$q" = "$b" ] || { diff <(echo "$q") <(echo "$b"); return 1; }
}

@test "bench: the report lines of reads and writes" {
    same -f raw -c 100 "$IMG"
    same -f raw -c 100 -d 1 -w "$IMG"
    same -f raw -c 10 -s 1.5k -o 4k -S 8k "$IMG"
    same -f raw -c 0 "$IMG"
    same -f raw -c 3 -s 0 "$IMG"
    same -f raw -c 5 -o 15M -s 1M -w "$IMG"
    same -f raw -q -c 5 "$IMG"
    qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/q.qcow2" 1M
    same -f qcow2 -c 10 -t none "$BATS_TEST_TMPDIR/q.qcow2"
}

@test "bench: flush interval, drain and cache modes" {
    same -f raw -c 128 -d 8 -w --flush-interval=16 "$IMG"
    same -f raw -c 128 -d 8 -w --flush-interval=16 --no-drain "$IMG"
    same -f raw -c 20 -t none "$IMG"
    same -f raw -c 20 -t writeback -U "$IMG"
    same --image-opts -c 10 "driver=raw,file.driver=file,file.filename=$IMG"
}

@test "bench: option errors" {
    same -c abc "$IMG"
    same -c -1 "$IMG"
    same -d abc "$IMG"
    same -o -1 "$IMG"
    same -S abc "$IMG"
    same -s 3G "$IMG"
    same --pattern=300 "$IMG"
    same --flush-interval=4 -c 1 "$IMG"
    same -w --flush-interval=4 -c 1 "$IMG"
    same -w --flush-interval=abc -c 1 -d 1 "$IMG"
    same -t bogus "$IMG"
    same -i bogus "$IMG"
    same
    same a b
}

@test "bench: a request past the end fails with qemu-img's message" {
    same -f raw -c 1 -o 16M "$IMG"
}

@test "bench: writes land with the pattern" {
    run "$BLK_IMG" bench -f raw -c 16 -d 4 -w --pattern=0x5a -s 64k "$IMG"
    assert_success
    run qemu-io -f raw -c 'read -q -P 0x5a 0 1M' -c 'read -q -P 0 1M 15M' "$IMG"
    assert_success
    assert_output ""
}
