#!/usr/bin/env bats
# blk-img-bitmap.bats - `blk-img bitmap` (qemu-img 7.2's operations,
# messages and exit codes) and `blk-img bitmap dump` (the dirty extents).

load ../helpers

setup() {
    img=$BATS_TEST_TMPDIR/a.qcow2
    "$BLK_IMG" create -q -f qcow2 "$img" 1M
}

# The bitmap names of an image, in order, from `info`.
bitmap_names() {
    "$BLK_IMG" info "$1" | sed -n 's/^ *name: //p' | tr '\n' ' '
}

@test "bitmap: no operation is an error" {
    run "$BLK_IMG" bitmap "$img" b
    assert_failure 1
    assert_output "blk-img: Need at least one of --add, --remove, --clear, --enable, --disable, or --merge"
}

@test "bitmap: --add creates an enabled persistent bitmap shown by info" {
    run "$BLK_IMG" bitmap --add "$img" b0
    assert_success
    assert_output ""
    run "$BLK_IMG" info "$img"
    assert_output --partial "    bitmaps:
        [0]:
            flags:
                [0]: auto
            name: b0
            granularity: 65536"
}

@test "bitmap: default granularity is the cluster size clamped to 4k..64k" {
    "$BLK_IMG" create -q -f qcow2 -o cluster_size=4k "$BATS_TEST_TMPDIR/c4.qcow2" 1M
    "$BLK_IMG" create -q -f qcow2 -o cluster_size=16k "$BATS_TEST_TMPDIR/c16.qcow2" 1M
    "$BLK_IMG" create -q -f qcow2 -o cluster_size=2M "$BATS_TEST_TMPDIR/c2m.qcow2" 4M
    for c in c4:4096 c16:16384 c2m:65536; do
        "$BLK_IMG" bitmap --add "$BATS_TEST_TMPDIR/${c%%:*}.qcow2" b
        run "$BLK_IMG" info "$BATS_TEST_TMPDIR/${c%%:*}.qcow2"
        assert_output --partial "granularity: ${c#*:}"
    done
}

@test "bitmap: --add of an existing name fails and names it" {
    "$BLK_IMG" bitmap --add "$img" b0
    run "$BLK_IMG" bitmap --add "$img" b0
    assert_failure 1
    assert_output "blk-img: Operation add on bitmap b0 failed: Bitmap already exists: b0"
}

@test "bitmap: operations on a missing bitmap fail with its name" {
    for op in remove clear enable disable; do
        run "$BLK_IMG" bitmap --$op "$img" nope
        assert_failure 1
        assert_output "blk-img: Operation $op on bitmap nope failed: Dirty bitmap 'nope' not found"
    done
}

@test "bitmap: bad granularities are qemu-img's errors" {
    for g in 100 256 3000 1.5k 4G; do
        run "$BLK_IMG" bitmap --add -g $g "$img" b
        assert_failure 1
        assert_output "blk-img: Operation add on bitmap b failed: Granularity must be power of 2 and at least 512"
    done
    run "$BLK_IMG" bitmap --add -g abc "$img" b
    assert_failure 1
    assert_output "blk-img: Invalid granularity specified. You may use k, M, G, T, P or E suffixes for
blk-img: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."
    run "$BLK_IMG" bitmap --add -g 8E "$img" b
    assert_failure 1
    assert_output "blk-img: Invalid granularity specified. Must be between 0 and 9223372036854775807."
}

@test "bitmap: granularities 512, 0x200, 1G and 2G are accepted" {
    "$BLK_IMG" bitmap --add -g 512 "$img" g1
    "$BLK_IMG" bitmap --add -g 0x200 "$img" g2
    "$BLK_IMG" bitmap --add -g 1G "$img" g3
    "$BLK_IMG" bitmap --add -g 2G "$img" g4
    run "$BLK_IMG" info --output=json "$img"
    assert_output --partial '"granularity": 2147483648'
    assert_output --partial '"granularity": 1073741824'
    [ "$(bitmap_names "$img")" = "g1 g2 g3 g4 " ]
}

@test "bitmap: option misuse is reported in qemu-img's order" {
    run "$BLK_IMG" bitmap -g 512 --remove "$img" b
    assert_failure 1
    assert_output "blk-img: granularity only supported with --add"
    run "$BLK_IMG" bitmap --add -F raw "$img" b
    assert_output "blk-img: -F only supported with -b"
    run "$BLK_IMG" bitmap --add -b x "$img" b
    assert_output "blk-img: Merge bitmap source file only supported with --merge"
    run "$BLK_IMG" bitmap --add "$img"
    assert_output "blk-img: Expecting filename and bitmap name"
    run "$BLK_IMG" bitmap --add "$img" b c
    assert_output "blk-img: Expecting filename and bitmap name"
    run "$BLK_IMG" bitmap --add --image-opts -f qcow2 "$img" b
    assert_output "blk-img: --image-opts and --format are mutually exclusive"
}

@test "bitmap: --object is refused" {
    run "$BLK_IMG" bitmap --add --object secret,id=s,data=x "$img" b
    assert_failure 1
    assert_output "blk-img: --object is not supported"
    [ "$(bitmap_names "$img")" = "" ]
}

@test "bitmap: unknown options and a missing image fail" {
    run "$BLK_IMG" bitmap --bogus "$img" b
    assert_failure 1
    assert_line --index 0 "blk-img: unrecognized option '--bogus'"
    run "$BLK_IMG" bitmap --add "$BATS_TEST_TMPDIR/none.qcow2" b
    assert_failure 1
    assert_output --partial "blk-img: Could not open '$BATS_TEST_TMPDIR/none.qcow2': "
}

@test "bitmap: several operations run in order" {
    run "$BLK_IMG" bitmap --add --remove --add -g 4096 --disable "$img" x
    assert_success
    run "$BLK_IMG" info --output=json "$img"
    assert_output --partial '"flags": [
                    ],
                    "name": "x",
                    "granularity": 4096'
}

@test "bitmap: a failing operation stops the rest and keeps the earlier ones" {
    run "$BLK_IMG" bitmap --add --add --remove "$img" dup
    assert_failure 1
    assert_output "blk-img: Operation add on bitmap dup failed: Bitmap already exists: dup"
    [ "$(bitmap_names "$img")" = "dup " ]
}

@test "bitmap: --disable then --enable toggles the auto flag" {
    "$BLK_IMG" bitmap --add --disable "$img" b
    run "$BLK_IMG" info "$img"
    refute_output --partial "[0]: auto"
    "$BLK_IMG" bitmap --enable "$img" b
    run "$BLK_IMG" info "$img"
    assert_output --partial "[0]: auto"
}

@test "bitmap: a disabled bitmap does not record writes, an enabled one does" {
    "$BLK_IMG" bitmap --add "$img" on
    "$BLK_IMG" bitmap --add --disable "$img" off
    "$BLK_IO" -c 'write 64k 4k' "$img" >/dev/null
    run "$BLK_IMG" bitmap dump --output=json "$img" on
    assert_output '[{ "start": 0, "length": 65536, "dirty": false},
{ "start": 65536, "length": 65536, "dirty": true},
{ "start": 131072, "length": 917504, "dirty": false}]'
    run "$BLK_IMG" bitmap dump --output=json "$img" off
    assert_output '[{ "start": 0, "length": 1048576, "dirty": false}]'
}

@test "bitmap: --clear empties a bitmap" {
    "$BLK_IMG" bitmap --add "$img" b
    "$BLK_IO" -c 'write 0 1k' "$img" >/dev/null
    "$BLK_IMG" bitmap --clear "$img" b
    run "$BLK_IMG" bitmap dump --output=json "$img" b
    assert_output '[{ "start": 0, "length": 1048576, "dirty": false}]'
}

@test "bitmap: --merge ORs bitmaps of any granularity on the same image" {
    "$BLK_IMG" bitmap --add -g 512 "$img" fine
    "$BLK_IO" -c 'write 1000 10' "$img" >/dev/null
    "$BLK_IMG" bitmap --add "$img" coarse
    "$BLK_IO" -c 'write 512k 1' "$img" >/dev/null
    "$BLK_IMG" bitmap --merge fine "$img" coarse
    run "$BLK_IMG" bitmap dump --output=json "$img" coarse
    assert_output '[{ "start": 0, "length": 65536, "dirty": true},
{ "start": 65536, "length": 458752, "dirty": false},
{ "start": 524288, "length": 65536, "dirty": true},
{ "start": 589824, "length": 458752, "dirty": false}]'
    run "$BLK_IMG" bitmap dump --output=json "$img" fine
    assert_output '[{ "start": 0, "length": 512, "dirty": false},
{ "start": 512, "length": 512, "dirty": true},
{ "start": 1024, "length": 523264, "dirty": false},
{ "start": 524288, "length": 512, "dirty": true},
{ "start": 524800, "length": 523776, "dirty": false}]'
}

@test "bitmap: --merge with -b takes the source bitmap from another image" {
    src=$BATS_TEST_TMPDIR/s.qcow2
    "$BLK_IMG" create -q -f qcow2 "$src" 1M
    "$BLK_IMG" bitmap --add "$src" sb
    "$BLK_IO" -c 'write 128k 1' "$src" >/dev/null
    "$BLK_IMG" bitmap --add "$img" tb
    run "$BLK_IMG" bitmap --merge sb -b "$src" -F qcow2 "$img" tb
    assert_success
    run "$BLK_IMG" bitmap dump "$img" tb
    assert_output "Start           Length          Dirty
0               0x20000         no
0x20000         0x10000         yes
0x30000         0xd0000         no"
    run "$BLK_IMG" bitmap --merge tb -b "$src" "$img" tb
    assert_failure 1
    assert_output "blk-img: Operation merge on bitmap tb failed: Dirty bitmap 'tb' not found"
}

@test "bitmap: --merge of bitmaps of different sizes fails" {
    big=$BATS_TEST_TMPDIR/big.qcow2
    "$BLK_IMG" create -q -f qcow2 "$big" 2M
    "$BLK_IMG" bitmap --add "$big" bb
    "$BLK_IMG" bitmap --add "$img" b
    run "$BLK_IMG" bitmap --merge bb -b "$big" "$img" b
    assert_failure 1
    assert_output "blk-img: Operation merge on bitmap b failed: Bitmaps are of different sizes (destination size is 1048576, source size is 2097152) and can't be merged"
}

@test "bitmap: --merge into a missing target names the target" {
    "$BLK_IMG" bitmap --add "$img" b
    run "$BLK_IMG" bitmap --merge b "$img" nope
    assert_failure 1
    assert_output "blk-img: Operation merge on bitmap nope failed: Dirty bitmap 'nope' not found"
}

@test "bitmap: empty and over-long names are refused" {
    run "$BLK_IMG" bitmap --add "$img" ""
    assert_failure 1
    assert_output "blk-img: Operation add on bitmap  failed: Bitmap name cannot be empty"
    long=$(printf 'x%.0s' $(seq 1024))
    run "$BLK_IMG" bitmap --add "$img" "$long"
    assert_failure 1
    assert_output --regexp "^blk-img: Operation add on bitmap x{1024} failed: Can't make bitmap 'x+"
    run "$BLK_IMG" bitmap --add "$img" "${long:1}"
    assert_success
}

@test "bitmap: raw images cannot store bitmaps" {
    raw=$BATS_TEST_TMPDIR/r.raw
    "$BLK_IMG" create -q -f raw "$raw" 1M
    run "$BLK_IMG" bitmap --add -f raw "$raw" b
    assert_failure 1
    assert_output --regexp "^blk-img: Operation add on bitmap b failed: Can't store persistent bitmaps to [^ ]+: Operation not supported$"
}

@test "bitmap: qcow2 v2 images cannot store bitmaps" {
    v2=$BATS_TEST_TMPDIR/v2.qcow2
    "$BLK_IMG" create -q -f qcow2 -o compat=0.10 "$v2" 1M
    run "$BLK_IMG" bitmap --add "$v2" b
    assert_failure 1
    assert_output --regexp "^blk-img: Operation add on bitmap b failed: Can't make bitmap 'b' persistent in '[^']+': Cannot store dirty bitmaps in qcow2 v2 files$"
}

# ---- bitmap dump -------------------------------------------------------------

@test "bitmap dump: a clean bitmap is one clean extent" {
    "$BLK_IMG" bitmap --add "$img" b
    run "$BLK_IMG" bitmap dump "$img" b
    assert_success
    assert_output "Start           Length          Dirty
0               0x100000        no"
}

@test "bitmap dump: extents are granularity-rounded and alternate" {
    "$BLK_IMG" bitmap --add -g 4k "$img" b
    "$BLK_IO" -c 'write 5000 100' -c 'write 8192 4096' -c 'write 1048000 576' "$img" >/dev/null
    run "$BLK_IMG" bitmap dump --output json "$img" b
    assert_output '[{ "start": 0, "length": 4096, "dirty": false},
{ "start": 4096, "length": 8192, "dirty": true},
{ "start": 12288, "length": 1032192, "dirty": false},
{ "start": 1044480, "length": 4096, "dirty": true}]'
    run "$BLK_IMG" bitmap dump "$img" b
    assert_output "Start           Length          Dirty
0               0x1000          no
0x1000          0x2000          yes
0x3000          0xfc000         no
0xff000         0x1000          yes"
}

@test "bitmap dump: --start-offset and --max-length cut the range" {
    "$BLK_IMG" bitmap --add "$img" b
    "$BLK_IO" -c 'write 64k 64k' "$img" >/dev/null
    run "$BLK_IMG" bitmap dump --output=json --start-offset 100 --max-length 70000 "$img" b
    assert_output '[{ "start": 100, "length": 65436, "dirty": false},
{ "start": 65536, "length": 4564, "dirty": true}]'
    run "$BLK_IMG" bitmap dump --output=json --start-offset 2M "$img" b
    assert_output '[]'
    run "$BLK_IMG" bitmap dump --output=json --max-length 0 "$img" b
    assert_output '[]'
    run "$BLK_IMG" bitmap dump --start-offset 2M "$img" b
    assert_output "Start           Length          Dirty"
}

@test "bitmap dump: a missing bitmap and bad options fail" {
    run "$BLK_IMG" bitmap dump "$img" nope
    assert_failure 1
    assert_output "blk-img: Dirty bitmap 'nope' not found"
    "$BLK_IMG" bitmap --add "$img" b
    run "$BLK_IMG" bitmap dump --output=xml "$img" b
    assert_failure 1
    assert_output "blk-img: --output must be used with human or json as argument."
    run "$BLK_IMG" bitmap dump --start-offset abc "$img" b
    assert_failure 1
    assert_line --index 0 "blk-img: Invalid start offset specified. You may use k, M, G, T, P or E suffixes for"
    run "$BLK_IMG" bitmap dump --max-length 8E "$img" b
    assert_failure 1
    assert_output "blk-img: Invalid max length specified. Must be between 0 and 9223372036854775807."
    run "$BLK_IMG" bitmap dump "$img"
    assert_failure 1
    assert_line --index 0 "blk-img: Expecting filename and bitmap name"
}

@test "bitmap dump: with -U, a bitmap of an image open for writing is inconsistent" {
    "$BLK_IMG" bitmap --add "$img" b
    "$BLK_IO" -c 'write 0 4k' -c 'sleep 2000' "$img" >/dev/null &
    pid=$!
    sleep 1
    run "$BLK_IMG" bitmap dump -U --output=json "$img" b
    wait $pid
    assert_failure 1
    assert_output "blk-img: Bitmap 'b' is inconsistent and cannot be used"
    # once the writer closed the image, the bitmap is stored and consistent
    run "$BLK_IMG" bitmap dump --output=json "$img" b
    assert_success
    assert_line --index 0 '[{ "start": 0, "length": 65536, "dirty": true},'
}

@test "bitmap dump: --image-opts names the image by options" {
    "$BLK_IMG" bitmap --add "$img" b
    run "$BLK_IMG" bitmap dump --image-opts "driver=qcow2,file.driver=file,file.filename=$img" b
    assert_success
    assert_line --index 1 "0               0x100000        no"
}
