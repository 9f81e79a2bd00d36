#!/bin/bash
# img.sh - blk-img against qemu-img 7.2 on the metadata-heavy commands:
# `map` and `check` of a 1 TiB-virtual qcow2 with 10,000 allocated
# clusters, and `info --backing-chain` of a 50-deep chain.  Best of N runs
# each, the two tools alternating; prints times and blk/qemu ratios.
# Usage: bench/img.sh [N]   (N defaults to 5; BLK_IMG overrides the binary)
set -eu
cd "$(dirname "$0")/.."
N=${1:-5}
BLK_IMG=${BLK_IMG:-$PWD/build/blk-img}
[ -x "$BLK_IMG" ] || make -s build/blk-img
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || {
    echo "img.sh: needs qemu-img and qemu-io" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

echo "preparing images in $dir ..." >&2
qemu-img create -q -f qcow2 big.qcow2 1T
# 10,000 clusters spread over the whole disk (about 5 per L2 table)
cmds=()
step=$((1099511627776 / 10000 / 65536 * 65536))
for i in $(seq 0 9999); do
    cmds+=(-c "write -q -P 1 $((i * step)) 64k")
done
qemu-io "${cmds[@]}" big.qcow2 >/dev/null
qemu-img create -q -f qcow2 c0.qcow2 1G
qemu-io -c 'write -q 0 64k' c0.qcow2 >/dev/null
for i in $(seq 1 49); do
    qemu-img create -q -f qcow2 -b c$((i - 1)).qcow2 -F qcow2 c$i.qcow2
    qemu-io -c "write -q $((i * 65536)) 64k" c$i.qcow2 >/dev/null
done

now() { date +%s%N; }

# best TOOL ARGS... : the fastest of one run (ns); output discarded
once() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>&1 || true
    t1=$(now)
    echo $((t1 - t0))
}

bench() {   # bench NAME GOAL ARGS...
    local name=$1 goal=$2 i q b bq= bb=
    shift 2
    # the outputs must agree before timing means anything
    if [ "$(qemu-img "$@" 2>&1)" != "$("$BLK_IMG" "$@" 2>&1 | sed 's/blk-img/qemu-img/g')" ]; then
        echo "$name: WARNING: outputs differ" >&2
    fi
    for i in $(seq 1 "$N"); do
        q=$(once qemu-img "$@")
        b=$(once "$BLK_IMG" "$@")
        if [ -z "$bq" ] || [ "$q" -lt "$bq" ]; then bq=$q; fi
        if [ -z "$bb" ] || [ "$b" -lt "$bb" ]; then bb=$b; fi
    done
    awk -v n="$name" -v q="$bq" -v b="$bb" -v g="$goal" 'BEGIN {
        r = b / q
        printf "%-28s blk %8.2f ms  qemu %8.2f ms  ratio %5.2f  (goal <= %s) %s\n",
               n, b / 1e6, q / 1e6, r, g, r <= g ? "ok" : "MISSED" }'
}

bench "map (1T, 10k clusters)" 0.3 map --output=json big.qcow2
bench "map human" 0.3 map big.qcow2
bench "check (1T, 10k clusters)" 0.5 check big.qcow2
bench "info --backing-chain (50)" 0.3 info --backing-chain c49.qcow2
