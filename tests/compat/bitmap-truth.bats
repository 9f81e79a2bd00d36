#!/usr/bin/env bats
# bitmap-truth.bats - "the dump equals the truth": random writes through
# blk-io with a recording bitmap, then `blk-img bitmap dump` must list
# exactly the granularity-rounded extents of the ranges written (computed
# here independently); the same writes through qemu-io 7.2 must give the
# same dump.  Seeded, so a failure can be replayed.

load ../helpers

SIZE=$((64 << 20))

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    command -v python3 >/dev/null || skip "python3 is not installed"
}

# N random "write[-z] OFF LEN" commands inside SIZE, from SEED.
gen_cmds() {
    python3 - "$1" "$2" "$SIZE" <<'EOF'
import random, sys
seed, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
for _ in range(n):
    length = r.choice([1, 512, 4096, 65536, r.randint(1, 300000)])
    off = r.randint(0, size - length)
    z = "-z " if r.random() < 0.2 else ""
    print(f"write -q {z}{off} {length}")
EOF
}

# The dump JSON the commands in file $1 must produce at granularity $2.
expected_dump() {
    python3 - "$1" "$2" "$SIZE" <<'EOF'
import sys
cmds, g, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
units = (size + g - 1) // g
dirty = bytearray(units)
for line in open(cmds):
    w = line.split()
    off, length = int(w[-2]), int(w[-1])
    for u in range(off // g, (off + length - 1) // g + 1):
        dirty[u] = 1
ext, u = [], 0
while u < units:
    v = u
    while v < units and dirty[v] == dirty[u]:
        v += 1
    ext.append((u * g, min(v * g, size) - u * g, dirty[u]))
    u = v
print("[" + ",\n".join('{ "start": %d, "length": %d, "dirty": %s}'
                       % (s, l, "true" if d else "false") for s, l, d in ext) + "]")
EOF
}

# Write the commands of file $2 into image $1 with tool $3 (blk-io or qemu-io).
apply_cmds() {
    local args=() line
    while read -r line; do
        args+=(-c "$line")
    done < "$2"
    "$3" "${args[@]}" "$1"
}

check_seed() {
    local seed=$1 n=$2 g=$3
    cmds=$BATS_TEST_TMPDIR/cmds-$seed
    gen_cmds "$seed" "$n" > "$cmds"
    expected_dump "$cmds" "$g" > "$BATS_TEST_TMPDIR/want"
    for tool in "$BLK_IO" qemu-io; do
        img=$BATS_TEST_TMPDIR/$(basename "$tool").qcow2
        rm -f "$img"
        "$BLK_IMG" create -q -f qcow2 "$img" $SIZE
        "$BLK_IMG" bitmap --add -g "$g" "$img" b
        apply_cmds "$img" "$cmds" "$tool"
        "$BLK_IMG" bitmap dump --output=json "$img" b > "$BATS_TEST_TMPDIR/got"
        if ! cmp -s "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"; then
            echo "seed $seed, granularity $g, writes by $tool: dump differs"
            diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got" | head -20
            return 1
        fi
    done
}

@test "truth: 200 random writes at 64k granularity (seed 1)" {
    check_seed 1 200 65536
}

@test "truth: 200 random writes at 512-byte granularity (seed 2)" {
    check_seed 2 200 512
}

@test "truth: 300 random writes at 4k granularity (seed 3)" {
    check_seed 3 300 4096
}

@test "truth: 50 random writes at 1M granularity (seed 4)" {
    check_seed 4 50 1048576
}

@test "truth: blk-io and qemu-io writes give the same human dump" {
    gen_cmds 5 40 > "$BATS_TEST_TMPDIR/cmds"
    for tool in "$BLK_IO" qemu-io; do
        img=$BATS_TEST_TMPDIR/$(basename "$tool").qcow2
        qemu-img create -q -f qcow2 "$img" $SIZE
        qemu-img bitmap --add -g 8192 "$img" b
        apply_cmds "$img" "$BATS_TEST_TMPDIR/cmds" "$tool"
        "$BLK_IMG" bitmap dump "$img" b > "$BATS_TEST_TMPDIR/$(basename "$tool").dump"
    done
    cmp "$BATS_TEST_TMPDIR/blk-io.dump" "$BATS_TEST_TMPDIR/qemu-io.dump"
}
