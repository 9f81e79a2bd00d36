#!/usr/bin/env bats
# img-dd.bats - `blk-img dd` against qemu-img 7.2 dd: for raw and qcow2
# inputs and many operand sets, the same messages, exit codes and output
# sizes, outputs equal under qemu-img compare and clean under check.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    qemu-img create -q -f raw in.raw 3M
    qemu-io -f raw -c 'write -P 1 0 1M' -c 'write -P 2 2M 100k' in.raw >/dev/null
    qemu-img convert -O qcow2 in.raw in.qcow2
    head -c 10000 /dev/urandom > odd.raw
}

dd_both() {
    local a qargs=() bargs=() qrc=0 brc=0
    for a in "$@"; do
        qargs+=("${a//OUT/q.out}")
        bargs+=("${a//OUT/b.out}")
    done
    rm -f q.out b.out
    qemu-img dd "${qargs[@]}" > q.txt 2>&1 || qrc=$?
    "$BLK_IMG" dd "${bargs[@]}" > b.txt 2>&1 || brc=$?
    sed -i 's/qemu-img/X/g; s/q\.out/OUT/g' q.txt
    sed -i 's/blk-img/X/g; s/b\.out/OUT/g' b.txt
    diff -u q.txt b.txt
    [ "$qrc" = "$brc" ]
    [ -e q.out ] || return 0
    [ "$(qemu-img info --output=json q.out | grep '"virtual-size"')" = \
      "$(qemu-img info --output=json b.out | grep '"virtual-size"')" ]
    qemu-img compare -q q.out b.out
    if [ "$(head -c 4 b.out | od -An -tx1 | tr -d ' ')" = 514649fb ]; then
        qemu-img check -q b.out
    fi
}

@test "compat dd: operand sets on raw and qcow2 inputs" {
    for in in in.raw in.qcow2; do
        dd_both if=$in of=OUT
        dd_both if=$in of=OUT bs=1M
        dd_both if=$in of=OUT bs=64k count=10
        dd_both if=$in of=OUT bs=1M skip=2
        dd_both if=$in of=OUT bs=1M count=3 skip=2
        dd_both if=$in of=OUT bs=1M count=1 skip=2
        dd_both if=$in of=OUT bs=4k skip=1k count=1k
        dd_both -O qcow2 if=$in of=OUT bs=512k skip=1
        dd_both if=$in of=OUT skip=1000M
        dd_both if=$in of=OUT count=0
    done
    dd_both if=odd.raw of=OUT bs=3
    dd_both if=odd.raw of=OUT bs=4k skip=2
    dd_both -f raw if=odd.raw of=OUT if=in.raw
}

@test "compat dd: the same errors" {
    dd_both if=in.raw
    dd_both of=OUT
    dd_both if=in.raw of=OUT bs=0
    dd_both if=in.raw of=OUT bs=1x
    dd_both if=in.raw of=OUT count=-1
    dd_both if=in.raw of=OUT skip=-1
    dd_both if=in.raw of=OUT foo=bar
    dd_both if=nonexist of=OUT
    dd_both -O foo if=in.raw of=OUT
    dd_both if=in.raw of=/nonexist/OUT
}
