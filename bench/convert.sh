#!/bin/bash
# convert.sh - benchmark (not a test) of blk-img convert, commit and
# rebase against qemu-img 7.2: builds a 1 GiB data set (about half holes
# or written zeroes, half data of mixed compressibility) and its qcow2
# forms, runs each case with both tools alternately, checks that the
# outputs are equal, and prints the best time of each and the blk/qemu
# ratio.  For the plain copies it also times bench/copyfloor.c, which
# only writes the same data (read into memory beforehand) into a new file:
# the page cache's own cost, which no tool can go below; floor/qemu is the
# best ratio any tool could reach on this machine.  Every timed run starts
# after a sync (not timed), so no run pays for the last one's writeback,
# and with its inputs read once (not timed), so none pays for reading
# them from the disk.
# BENCH_DIR (default: the build directory, i.e. the disk the images would
# live on; /dev/shm puts everything on a tmpfs), RUNS (default 3),
# SIZE_MIB (default 1024), CASES (default all: raw-qcow2 qcow2-raw zlib
# zstd chain3 commit rebase).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BLK_IMG=${BLK_IMG:-$REPO/build/blk-img}
RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
DIR=${BENCH_DIR:-$REPO/build}/blk-bench.$$
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"

echo "building the data set in $DIR ($SIZE_MIB MiB, $(stat -f -c %T "$DIR")) ..." >&2
cc -O2 -o "$DIR/copyfloor" "$REPO/bench/copyfloor.c"
python3 "$REPO/bench/mkdata.py" src.raw "$SIZE_MIB"
qemu-img convert -O qcow2 src.raw src.qcow2
# a chain of 3: base + two overlays with 10% each of new data
qemu-img convert -O qcow2 src.raw ch0.qcow2
for i in 1 2; do
    qemu-img create -q -f qcow2 -b ch$((i - 1)).qcow2 -F qcow2 ch$i.qcow2
    cmds=()
    for ((k = 0; k < SIZE_MIB / 20; k++)); do
        cmds+=(-c "write -P $((i * 16 + k % 7)) $(((k * 37 + i * 11) % SIZE_MIB))M 1M")
    done
    qemu-io "${cmds[@]}" ch$i.qcow2 >/dev/null
done
qemu-img convert -O raw ch2.qcow2 ch2.raw
# commit: an overlay of the qcow2 data set with 30% of its clusters dirty
qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 ov.qcow2
cmds=()
for ((k = 0; k < SIZE_MIB * 3 / 10; k++)); do
    cmds+=(-c "write -P $((k % 251)) $(((k * 7919) % SIZE_MIB))M 1M")
done
qemu-io "${cmds[@]}" ov.qcow2 >/dev/null
cp --sparse=always src.qcow2 cbase.qcow2
# rebase: overlay on src.qcow2 moved onto new.qcow2 (src with 20% changed)
cp --sparse=always src.qcow2 new.qcow2
cmds=()
for ((k = 0; k < SIZE_MIB / 5; k++)); do
    cmds+=(-c "write -P $((k % 13 + 1)) $(((k * 104729) % SIZE_MIB))M 1M")
done
qemu-io "${cmds[@]}" new.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 rov.qcow2
qemu-io -c 'write -P 99 0 16M' rov.qcow2 >/dev/null

# timed CMD...: runs the command, prints "wall_seconds cpu_seconds"
# (cpu = user + system: steadier than wall time on a busy machine)
timed() {
    /usr/bin/time -f "%e %U %S" -o "$DIR/.time" "$@" >/dev/null
    awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$DIR/.time"
}

# prepare CASE WHO: restore the inputs a case modifies, and read every
# input once so that both tools start with it in the page cache (the
# kernel may have dropped pages since the last run)
prepare() {
    case $1 in
    raw-qcow2|zlib|zstd) cat src.raw >/dev/null ;;
    qcow2-raw) cat src.qcow2 >/dev/null ;;
    chain3) cat ch0.qcow2 ch1.qcow2 ch2.qcow2 >/dev/null ;;
    commit) cat src.qcow2 ov.qcow2 >/dev/null ;;
    rebase) cat src.qcow2 new.qcow2 rov.qcow2 >/dev/null ;;
    esac
    case $1 in
    commit)
        cp --sparse=always src.qcow2 cb-$2.qcow2
        cp ov.qcow2 co-$2.qcow2
        qemu-img rebase -u -b cb-$2.qcow2 -F qcow2 co-$2.qcow2 ;;
    rebase)
        cp rov.qcow2 ro-$2.qcow2 ;;
    *)
        rm -f out-$2.* ;;
    esac
}

# run CASE WHO: the command for tool WHO (blk or qemu)
run_case() {
    local tool=$BLK_IMG
    [ "$2" = qemu ] && tool=qemu-img
    case $1 in
    raw-qcow2) timed $tool convert -O qcow2 src.raw out-$2.qcow2 ;;
    qcow2-raw) timed $tool convert -O raw src.qcow2 out-$2.raw ;;
    zlib) timed $tool convert -c -O qcow2 src.raw out-$2.qcow2 ;;
    zstd) timed $tool convert -c -O qcow2 -o compression_type=zstd src.raw out-$2.qcow2 ;;
    chain3) timed $tool convert -O qcow2 ch2.qcow2 out-$2.qcow2 ;;
    commit) timed $tool commit co-$2.qcow2 ;;
    rebase) timed $tool rebase -b new.qcow2 -F qcow2 ro-$2.qcow2 ;;
    esac
}

# check CASE: the two outputs are the same image
check() {
    case $1 in
    raw-qcow2|zlib|zstd|chain3) qemu-img compare -q out-blk.qcow2 out-qemu.qcow2 ;;
    qcow2-raw) cmp -s out-blk.raw out-qemu.raw ;;
    commit) qemu-img compare -q cb-blk.qcow2 cb-qemu.qcow2 &&
            qemu-img compare -q co-blk.qcow2 co-qemu.qcow2 ;;
    rebase) qemu-img compare -q ro-blk.qcow2 ro-qemu.qcow2 &&
            qemu-img compare -q ro-blk.qcow2 rov.qcow2 ;;
    esac
}

min() { printf '%s\n' "$@" | sort -g | head -1; }

# floor CASE: best wall time of copyfloor on the case's data, or "-"
floor() {
    local src f=()
    case $1 in
    raw-qcow2|qcow2-raw) src=src.raw ;;
    chain3) src=ch2.raw ;;
    *) echo -; return ;;
    esac
    for ((r = 0; r < RUNS; r++)); do
        sync
        f+=("$("$DIR/copyfloor" "$src" floor.out | cut -d' ' -f1)")
        rm -f floor.out
    done
    min "${f[@]}"
}

printf '%-34s %8s %8s %6s   %8s %8s %6s  %7s %6s  %s\n' case blk_s qemu_s ratio \
    blk_cpu qemu_cpu ratio floor_s fl/qemu check
for c in ${CASES:-raw-qcow2 qcow2-raw zlib zstd chain3 commit rebase}; do
    bw=() qw=() bc=() qc=()
    for ((r = 0; r < RUNS; r++)); do
        prepare $c blk; sync; read -r w u <<< "$(run_case $c blk)"; bw+=("$w"); bc+=("$u")
        prepare $c qemu; sync; read -r w u <<< "$(run_case $c qemu)"; qw+=("$w"); qc+=("$u")
    done
    b=$(min "${bw[@]}") q=$(min "${qw[@]}")
    bu=$(min "${bc[@]}") qu=$(min "${qc[@]}")
    ok=equal; check $c || ok=DIFFER
    fl=$(floor $c) flr=-
    [ "$fl" != - ] && flr=$(printf '%.3f' "$(echo "$fl / $q" | bc -l)")
    case $c in
    raw-qcow2) name="convert raw -> qcow2" ;;
    qcow2-raw) name="convert qcow2 -> raw" ;;
    zlib) name="convert raw -> qcow2 -c (zlib)" ;;
    zstd) name="convert raw -> qcow2 -c (zstd)" ;;
    chain3) name="convert qcow2 chain of 3 -> qcow2" ;;
    commit) name="commit (30% dirty overlay)" ;;
    rebase) name="rebase safe mode" ;;
    esac
    printf '%-34s %8.3f %8.3f %6.3f   %8.3f %8.3f %6.3f  %7s %6s  %s\n' "$name" "$b" "$q" \
        "$(echo "$b / $q" | bc -l)" "$bu" "$qu" "$(echo "$bu / $qu" | bc -l)" \
        "$fl" "$flr" "$ok"
done
