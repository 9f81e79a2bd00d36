#!/usr/bin/env bats
# blk-img-convert.bats - `blk-img convert` on its own: copies that read
# back the same, sparseness (holes, -S), qcow2 and compressed targets,
# concatenation, -n, progress output, and qemu-img's error texts and exit
# codes (a failed convert leaves no target behind).

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
    # 8 MiB: 1 MiB of 0x11, 2 MiB hole, 1 MiB written zeroes, 1 MiB text, hole
    truncate -s 8M src.raw
    head -c 1M /dev/zero | tr '\0' '\021' | dd of=src.raw conv=notrunc status=none
    dd if=/dev/zero of=src.raw bs=1M seek=3 count=1 conv=notrunc status=none
    yes "blk convert test line" | head -c 1M |
        dd of=src.raw bs=1M seek=4 conv=notrunc status=none
}

# allocated KiB of a file
alloc_kib() {
    du -k "$1" | cut -f1
}

@test "convert: raw to raw reads back the same" {
    run "$BLK_IMG" convert -f raw -O raw src.raw out.raw
    assert_success
    assert_output ""
    cmp src.raw out.raw
}

@test "convert: holes and written zeroes become holes in a raw target" {
    "$BLK_IMG" convert -f raw -O raw src.raw out.raw
    [ "$(stat -c %s out.raw)" = 8388608 ]
    # 2 MiB of data: the written zero MiB is detected (-S 4k)
    [ "$(alloc_kib out.raw)" -le 2200 ]
}

@test "convert: -S 0 writes every byte" {
    "$BLK_IMG" convert -S 0 -f raw -O raw src.raw out.raw
    cmp src.raw out.raw
    [ "$(alloc_kib out.raw)" -ge 8000 ]
}

@test "convert: raw to qcow2 to raw round trip" {
    "$BLK_IMG" convert -f raw -O qcow2 src.raw mid.qcow2
    [ "$(head -c 4 mid.qcow2 | od -An -tx1 | tr -d ' ')" = 514649fb ]
    "$BLK_IMG" convert -f qcow2 -O raw mid.qcow2 back.raw
    cmp src.raw back.raw
}

@test "convert: qcow2 target allocates no clusters for zeroes" {
    "$BLK_IMG" convert -f raw -O qcow2 src.raw mid.qcow2
    # 2 MiB of data + metadata, far below the 8 MiB virtual size
    [ "$(stat -c %s mid.qcow2)" -lt 3000000 ]
}

@test "convert: -c writes compressed zlib clusters that read back" {
    "$BLK_IMG" convert -c -f raw -O qcow2 src.raw c.qcow2
    "$BLK_IMG" convert -f qcow2 -O raw c.qcow2 back.raw
    cmp src.raw back.raw
    [ "$(stat -c %s c.qcow2)" -lt 1500000 ]
}

@test "convert: -c with compression_type=zstd reads back" {
    "$BLK_IMG" convert -c -o compression_type=zstd -f raw -O qcow2 src.raw z.qcow2
    "$BLK_IMG" convert -f qcow2 -O raw z.qcow2 back.raw
    cmp src.raw back.raw
}

@test "convert: several sources are concatenated" {
    head -c 1M /dev/urandom > a.raw
    "$BLK_IMG" convert -f raw -O raw a.raw src.raw cat.raw
    cat a.raw src.raw | cmp - cat.raw
}

@test "convert: -W and -m 1 give the same image" {
    "$BLK_IMG" convert -W -m 16 -f raw -O qcow2 src.raw w.qcow2
    "$BLK_IMG" convert -m 1 -f qcow2 -O raw w.qcow2 back.raw
    cmp src.raw back.raw
}

@test "convert: -n writes into an existing target and zeroes what the source lacks" {
    head -c 8M /dev/urandom > t.raw
    "$BLK_IMG" convert -n -f raw -O raw src.raw t.raw
    cmp src.raw t.raw
}

@test "convert: -n into a smaller target fails" {
    truncate -s 1M small.raw
    run "$BLK_IMG" convert -n -f raw -O raw src.raw small.raw
    assert_failure 1
    assert_output "blk-img: output file is smaller than input file"
}

@test "convert: -p prints qemu-img's progress lines when not a terminal" {
    run bash -c "'$BLK_IMG' convert -p -f raw -O raw src.raw out.raw | tr '\r' '\n'"
    assert_success
    assert_line --index 0 "    (0.00/100%)"
    assert_line "    (100.00/100%)"
    refute_output --partial "ETA"
}

@test "convert: --progress=json prints one object per report" {
    run "$BLK_IMG" convert --progress=json -f raw -O raw src.raw out.raw
    assert_success
    assert_line --index 0 --regexp '^\{"done":0,"total":[0-9]+,"rate":[0-9]+\}$'
    assert_line --regexp '^\{"done":([0-9]+),"total":\1,"rate":[0-9]+\}$'
}

@test "convert: -q prints nothing" {
    run "$BLK_IMG" convert -q -p -f raw -O raw src.raw out.raw
    assert_success
    assert_output ""
}

@test "convert: missing source is one line and exit 1" {
    run "$BLK_IMG" convert -O raw nonexist.raw out.raw
    assert_failure 1
    assert_output "blk-img: Could not open 'nonexist.raw': Could not open 'nonexist.raw': No such file or directory"
    [ ! -e out.raw ]
}

@test "convert: unknown output format" {
    run "$BLK_IMG" convert -O foo src.raw out.raw
    assert_failure 1
    assert_output "blk-img: Unknown file format 'foo'"
}

@test "convert: unknown source format" {
    run "$BLK_IMG" convert -f foo src.raw out.raw
    assert_failure 1
    assert_output "blk-img: Could not open 'src.raw': Unknown driver 'foo'"
}

@test "convert: unwritable target directory" {
    run "$BLK_IMG" convert -O raw src.raw /nonexistdir/out.raw
    assert_failure 1
    assert_output "blk-img: /nonexistdir/out.raw: error while converting raw: Could not create '/nonexistdir/out.raw': No such file or directory"
}

@test "convert: option checks use qemu-img's words" {
    run "$BLK_IMG" convert -m 17 src.raw o.raw
    assert_failure 1
    assert_output "blk-img: Invalid number of coroutines. Allowed number of coroutines is between 1 and 16"
    run "$BLK_IMG" convert -S 100 src.raw o.raw
    assert_failure 1
    assert_output --partial "Invalid buffer size for sparse output specified"
    run "$BLK_IMG" convert -t bogus src.raw o.raw
    assert_output "blk-img: Invalid cache option: bogus"
    run "$BLK_IMG" convert -T bogus src.raw o.raw
    assert_output "blk-img: Invalid source cache option: bogus"
    run "$BLK_IMG" convert -c src.raw o.raw
    assert_output "blk-img: Compression not supported for this file format"
    run "$BLK_IMG" convert src.raw
    assert_output "blk-img: Must specify image file name"
    run "$BLK_IMG" convert -n -o cluster_size=4k src.raw o.raw
    assert_output "blk-img: -o has no effect when skipping image creation"
    run "$BLK_IMG" convert --target-is-zero src.raw o.raw
    assert_output "blk-img: --target-is-zero requires use of -n flag"
    run "$BLK_IMG" convert -c -C -O qcow2 src.raw o.raw
    assert_output "blk-img: Cannot enable copy offloading when -c is used"
}

@test "convert: --bitmaps needs a source that has bitmaps (raw has none)" {
    run "$BLK_IMG" convert --bitmaps -O qcow2 src.raw o.qcow2
    assert_failure 1
    assert_output "blk-img: Source lacks bitmap support"
    [ ! -e o.qcow2 ]
}

@test "convert: --bitmaps copies persistent bitmaps with their state" {
    "$BLK_IMG" convert -O qcow2 src.raw s.qcow2
    "$BLK_IMG" bitmap --add -g 4096 s.qcow2 rec
    "$BLK_IMG" bitmap --add --disable s.qcow2 off
    "$BLK_IO" -c 'write 8k 4k' s.qcow2
    run "$BLK_IMG" convert --bitmaps -O qcow2 s.qcow2 o.qcow2
    assert_success
    run "$BLK_IMG" info o.qcow2
    assert_output --partial "name: rec"
    assert_output --partial "name: off"
    run "$BLK_IMG" bitmap dump o.qcow2 rec
    assert_line --index 2 --regexp '^0x2000 +0x1000 +yes'
}

@test "convert: a backing file needs its format" {
    "$BLK_IMG" convert -O qcow2 src.raw base.qcow2
    run "$BLK_IMG" convert -O qcow2 -B base.qcow2 src.raw o.qcow2
    assert_failure 1
    assert_output "blk-img: Use of backing file requires explicit backing format"
    [ ! -e o.qcow2 ]
}

@test "convert: a full disk fails with one line and removes the target" {
    # raw: creating the 8 MiB file already fails; -n: the writes fail
    run bash -c "trap '' XFSZ; ulimit -f 2048; '$BLK_IMG' convert -S 0 -f raw -O raw src.raw out.raw"
    assert_failure 1
    [ "${#lines[@]}" -eq 1 ]
    assert_output --regexp "^blk-img: .*File too large$"
    [ ! -e out.raw ]
    truncate -s 1M part.raw
    truncate -s 8M part.raw
    run bash -c "trap '' XFSZ; ulimit -f 2048; '$BLK_IMG' convert -n -S 0 -f raw -O raw src.raw part.raw"
    assert_failure 1
    [ "${#lines[@]}" -eq 1 ]
    assert_output --regexp "^blk-img: error while writing at byte [0-9]+: File too large$"
    [ ! -e out.raw ]
}

@test "convert: a full disk fails for a qcow2 target too and removes it" {
    run bash -c "trap '' XFSZ; ulimit -f 1024; '$BLK_IMG' convert -f raw -O qcow2 src.raw out.qcow2"
    assert_failure 1
    assert_output --regexp "^blk-img: error while writing at byte [0-9]+: "
    [ ! -e out.qcow2 ]
}

@test "convert: -p on a terminal draws one redrawn bar with rate and percentage" {
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "'$BLK_IMG' convert -p -f raw -O raw src.raw out.raw" /dev/null
    assert_success
    assert_output --regexp '\[=+\] 100\.00%  [0-9.]+ [KMG]?i?B/s'
    refute_output --partial "(100.00/100%)"
    cmp src.raw out.raw
}

@test "convert: -C copies raw files with copy_file_range and keeps holes" {
    run "$BLK_IMG" convert -C -f raw -O raw src.raw out.raw
    assert_success
    cmp src.raw out.raw
    [ "$(alloc_kib out.raw)" -le 3300 ]
    # a qcow2 end cannot be offloaded: the copy falls back silently
    "$BLK_IMG" convert -C -f raw -O qcow2 src.raw out.qcow2
    "$BLK_IMG" convert -C -f qcow2 -O raw out.qcow2 back.raw
    cmp src.raw back.raw
}

@test "convert: without -p, SIGUSR1 prints the progress to stderr" {
    truncate -s 64M big.raw
    head -c 8M /dev/urandom | dd of=big.raw conv=notrunc status=none
    "$BLK_IMG" convert -r 4M -f raw -O raw big.raw out.raw 2> err.txt &
    local pid=$! i
    # the handler is set before the target is created: wait for the target
    for ((i = 0; i < 100; i++)); do
        [ -e out.raw ] && break
        sleep 0.1
    done
    kill -USR1 "$pid" || { echo "i=$i" >&3; cat err.txt >&3; false; }
    wait "$pid"
    run cat err.txt
    assert_output --regexp '^    \([0-9]+\.[0-9]{2}/100%\)$'
}

@test "convert/commit/rebase: page-cache spans (default) and reads (BLK_MAP=0) write the same bytes" {
    qemu-img convert -f raw -O qcow2 src.raw base.qcow2
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
    qemu-io -c 'write -P 0x55 1M 192k' -c 'write -z 4M 64k' \
        -c 'write -c -P 0x66 6M 64k' top.qcow2 >/dev/null
    for m in 1 0; do
        BLK_MAP=$m "$BLK_IMG" convert -O qcow2 src.raw r2q-$m.qcow2
        BLK_MAP=$m "$BLK_IMG" convert -O raw top.qcow2 q2r-$m.raw
        BLK_MAP=$m "$BLK_IMG" convert -O qcow2 -c top.qcow2 c-$m.qcow2
        cp base.qcow2 cb-$m.qcow2
        cp top.qcow2 ct-$m.qcow2
        qemu-img rebase -u -b cb-$m.qcow2 -F qcow2 ct-$m.qcow2
        BLK_MAP=$m "$BLK_IMG" commit -q ct-$m.qcow2
        qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 rb-$m.qcow2
        BLK_MAP=$m "$BLK_IMG" rebase -b top.qcow2 -F qcow2 rb-$m.qcow2
    done
    cmp r2q-1.qcow2 r2q-0.qcow2
    cmp q2r-1.raw q2r-0.raw
    cmp cb-1.qcow2 cb-0.qcow2
    cmp rb-1.qcow2 rb-0.qcow2
    qemu-img compare -q c-1.qcow2 c-0.qcow2
    qemu-img compare -q q2r-1.raw top.qcow2
    qemu-img compare -q cb-1.qcow2 top.qcow2
    qemu-img compare -q rb-1.qcow2 base.qcow2
    qemu-img info rb-1.qcow2 | grep -q "backing file: top.qcow2"
    qemu-img check -q r2q-1.qcow2
    qemu-img check -q cb-1.qcow2
    qemu-img check -q rb-1.qcow2
}

# Start "$@" (a copy with -p and -r) in the background with stdout in
# prog.txt and stderr in err.txt, wait until its second chunk is under way
# (the first has mapped the source file: with -r the second waits for it),
# shrink $1 to 1 MiB, and leave the status in $status, stderr in $output.
shrink_during() {
    local victim=$1 i
    shift
    "$@" >prog.txt 2>err.txt &
    local pid=$!
    for ((i = 0; i < 500; i++)); do
        [ "$(grep -o '%)' prog.txt | wc -l)" -ge 3 ] && break
        sleep 0.02
    done
    truncate -s 1M "$victim"
    status=0
    wait "$pid" || status=$?
    output=$(cat err.txt)
}

@test "convert: a source that shrinks during the copy fails with one line" {
    head -c 16M /dev/zero | tr '\0' '\021' >big.raw
    shrink_during big.raw "$BLK_IMG" convert -p -r 8M -f raw -O raw big.raw out.raw
    [ "$status" -eq 1 ]
    assert_output --regexp '^blk-img: error while reading at byte [0-9]+: the source file shrank or could not be read$'
}

@test "commit: a top that shrinks under the copy (data written as is) fails with one line" {
    truncate -s 16M base.raw
    qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 16M
    qemu-io -c 'write -P 0x11 0 16M' top.qcow2 >/dev/null
    shrink_during top.qcow2 "$BLK_IMG" commit -p -r 8M top.qcow2
    [ "$status" -eq 1 ]
    assert_output --regexp '^blk-img: Block job failed: error while reading at byte [0-9]+: the source file shrank or could not be read$'
}

@test "convert: -C into another file system (EXDEV) falls back to reads and writes every chunk" {
    [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d .)" ] ||
        skip "needs /dev/shm on a file system apart from $PWD"
    head -c 24M /dev/zero | tr '\0' '\042' >big.raw
    out=$(mktemp -p /dev/shm blk-cv-XXXXXX)
    run "$BLK_IMG" convert -C -f raw -O raw big.raw "$out"
    cmp big.raw "$out" && ok=1 || ok=0
    rm -f "$out"
    assert_success
    assert_output ""
    [ "$ok" = 1 ]
}

@test "convert: -C falling back (EXDEV) still closes the target descriptor it opened" {
    command -v strace >/dev/null || skip "strace is not installed"
    [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d .)" ] ||
        skip "needs /dev/shm on a file system apart from $PWD"
    head -c 8M /dev/zero | tr '\0' '\043' >big.raw
    out=$(mktemp -p /dev/shm blk-cv-XXXXXX)
    run strace -f -qq -e trace=openat,close -o trace.txt \
        "$BLK_IMG" convert -C -f raw -O raw big.raw "$out"
    cmp big.raw "$out" && ok=1 || ok=0
    rm -f "$out"
    assert_success
    [ "$ok" = 1 ]
    # the O_WRONLY descriptor -C opens on the target is closed after it
    awk -v name="\"$out\"," '
        index($0, "openat(AT_FDCWD, " name " O_WRONLY|O_CLOEXEC) = ") {
            fd = $NF; next
        }
        fd != "" && $0 ~ ("close\\(" fd "\\) += 0") { closed = 1 }
        END { exit !(fd != "" && closed) }
    ' trace.txt
}
