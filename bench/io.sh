#!/bin/bash
# io.sh - blk-img bench against qemu-img bench 7.2: 4 KiB reads and writes
# on the same raw and qcow2 images, queue depth 1 and 64, page cache
# (writeback) and O_DIRECT (none).  Best of N runs each, the two tools
# alternating; prints requests/s and the blk/qemu ratio against the goals
# (page cache >= 3x, O_DIRECT >= 1.25x).
# Usage: bench/io.sh [N [COUNT]]   (N runs, default 3; COUNT requests, default 50000)
# BLK_IMG overrides the binary; BENCH_DIR the directory (needs O_DIRECT:
# not tmpfs).
set -eu
cd "$(dirname "$0")/.."
N=${1:-3}
COUNT=${2:-50000}
BLK_IMG=${BLK_IMG:-$PWD/build/blk-img}
[ -x "$BLK_IMG" ] || make -s build/blk-img
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || {
    echo "io.sh: needs qemu-img and qemu-io" >&2; exit 1; }

dir=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
trap 'rm -rf "$dir"' EXIT

echo "preparing 256 MiB images in $dir ..." >&2
for fmt in raw qcow2; do
    qemu-img create -q -f $fmt "$dir/img.$fmt" 256M
    # allocate everything so reads hit data, not holes
    qemu-io -f $fmt -c 'write -q -P 0x5a 0 256M' "$dir/img.$fmt" >/dev/null
    cat "$dir/img.$fmt" >/dev/null      # warm the page cache
done

# The device's own pace: one synchronous 4 KiB O_DIRECT transfer at a time
# (dd), what anything that sleeps while the disk works can reach at depth 1.
ceiling() {
    dd "$@" bs=4k count=20000 2>&1 | awk '/copied/ {
        for (i = 1; i <= NF; i++) if ($i == "s,") printf "%d", 20000 / $(i - 1) }'
}
printf "device ceiling (dd, synchronous 4 KiB O_DIRECT): read %s req/s, write %s req/s\n" \
    "$(ceiling if="$dir/img.raw" of=/dev/null iflag=direct)" \
    "$(ceiling if=/dev/zero of="$dir/img.raw" oflag=direct conv=notrunc)"
# The page cache's own pace for buffered 4 KiB writes: one synchronous
# write(2) at a time into the allocated image, nothing else per request.
# ext4 refuses non-blocking buffered writes (RWF_NOWAIT), so no tool can
# complete a depth-1 buffered write faster than this.
printf "page-cache ceiling (dd, synchronous 4 KiB buffered writes): %s req/s\n" \
    "$(ceiling if=/dev/zero of="$dir/img.raw" conv=notrunc)"
qemu-io -f raw -c 'write -q -P 0x5a 0 80M' "$dir/img.raw" >/dev/null

# secs TOOL ARGS... : the "Run completed in X seconds" of one run
secs() {
    "$@" 2>&1 | sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p'
}

printf "%-6s %-5s %-5s %-10s %12s %12s %7s  %s\n" fmt op depth cache \
    "blk req/s" "qemu req/s" ratio goal
for fmt in raw qcow2; do
    for op in read write; do
        for depth in 1 64; do
            for cache in writeback none; do
                args=(bench -f $fmt -c "$COUNT" -d $depth -t $cache -s 4k)
                [ $op = write ] && args+=(-w)
                bq= bb=
                for i in $(seq 1 "$N"); do
                    q=$(secs qemu-img "${args[@]}" "$dir/img.$fmt")
                    b=$(secs "$BLK_IMG" "${args[@]}" "$dir/img.$fmt")
                    [ -n "$q" ] && { [ -z "$bq" ] || awk "BEGIN{exit !($q < $bq)}"; } && bq=$q
                    [ -n "$b" ] && { [ -z "$bb" ] || awk "BEGIN{exit !($b < $bb)}"; } && bb=$b
                done
                goal=3; [ $cache = none ] && goal=1.25
                awk -v f=$fmt -v o=$op -v d=$depth -v c=$cache -v n="$COUNT" \
                    -v q="${bq:-0}" -v b="${bb:-0}" -v g=$goal 'BEGIN {
                    if (q <= 0 || b <= 0) {
                        printf "%-6s %-5s %-5s %-10s %12s %12s %7s  (a run failed)\n",
                               f, o, d, c, (b > 0 ? int(n / b) : "-"), (q > 0 ? int(n / q) : "-"), "-"
                        exit
                    }
                    rb = n / b; rq = n / q; r = rb / rq
                    printf "%-6s %-5s %-5s %-10s %12d %12d %7.2f  >= %s %s\n",
                           f, o, d, c, rb, rq, r, g, (r >= g ? "ok" : "MISSED") }'
            done
        done
    done
done
