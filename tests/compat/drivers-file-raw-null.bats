#!/usr/bin/env bats
# drivers-file-raw-null.bats - the file, raw and null drivers seen through
# the tools: the same image, the same command to blk-img/blk-io and to
# qemu-img/qemu-io 7.2, the same output (tool names and timings aside).

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    [ -x "$BLK_IMG" ] || skip "blk-img is not built"
    cd "$BATS_TEST_TMPDIR"
}

# Output and exit code of a tool run, with the tool's name and the
# timing figures of qemu-io's "N ops" lines blanked out.
norm() {
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\nexit %d\n' "$out" "$rc" |
        sed -E 's/^(blk-img|qemu-img|blk-io|qemu-io):/TOOL:/;
                s/[0-9]+\.[0-9]+ sec \(.*\)$/T/'
}

# Run "img ARGS" or "io ARGS" through blk and QEMU; compare.
same() {
    local kind=$1 a b
    shift
    if [ "$kind" = img ]; then
        a=$(norm "$BLK_IMG" "$@"); b=$(norm qemu-img "$@")
    else
        [ -x "$BLK_IO" ] || skip "blk-io is not built"
        a=$(norm "$BLK_IO" "$@"); b=$(norm qemu-io "$@")
    fi
    if [ "$a" != "$b" ]; then
        printf 'blk:\n%s\nqemu:\n%s\n' "$a" "$b"
        return 1
    fi
}

@test "file: lengths are whole sectors, as qemu-img shows them" {
    for s in 0 511 4097 1000000 1099511627777; do
        truncate -s "$s" "f$s"
        same img info -f raw "f$s"
    done
}

@test "file: open errors read like qemu-img's" {
    same img info -f raw missing.img
    same img info --image-opts driver=file,filename=/dev/null
    truncate -s 1M r.img
    same img info --image-opts driver=host_device,filename=r.img
}

@test "file: create with each preallocation mode" {
    for p in off falloc full; do
        rm -f b.img q.img
        "$BLK_IMG" create -q -f raw -o preallocation=$p b.img 1M
        qemu-img create -q -f raw -o preallocation=$p q.img 1M
        [ "$(stat -c %s b.img)" = "$(stat -c %s q.img)" ]
        [ "$(stat -c %b b.img)" = "$(stat -c %b q.img)" ]
    done
    rm -f m.img
    same img create -f raw -o preallocation=metadata m.img 1M
    same img create -f raw nodir/x.img 1M
}

@test "file: a new image maps as one written first block, as in QEMU" {
    "$BLK_IMG" create -q -f raw b.img 1M
    qemu-img create -q -f raw q.img 1M
    a=$("$BLK_IMG" map --output=json -f raw b.img)
    b=$(qemu-img map --output=json -f raw q.img)
    [ "$a" = "$b" ]
    truncate -s 0 b.img q.img
    "$BLK_IMG" resize -q -f raw b.img 64k
    qemu-img resize -q -f raw q.img 64k
    [ "$(stat -c %b b.img)" = "$(stat -c %b q.img)" ]
}

@test "file: map of a sparse file matches qemu-img" {
    truncate -s 4M s.img
    printf 'data' | dd of=s.img bs=1 seek=1048576 conv=notrunc 2>/dev/null
    printf 'more' | dd of=s.img bs=1 seek=3145728 conv=notrunc 2>/dev/null
    same img map --output=json -f raw s.img
    same img map -f raw s.img
}

@test "file: resize grows and shrinks like qemu-img" {
    truncate -s 1M b.img; truncate -s 1M q.img
    run "$BLK_IMG" resize -f raw b.img 3M; assert_success
    qemu-img resize -f raw q.img 3M
    [ "$(stat -c %s b.img)" = "$(stat -c %s q.img)" ]
    cp b.img r.img
    same img resize -f raw --shrink --preallocation=full r.img 1M
}

@test "raw: window errors match qemu-img" {
    truncate -s 1M r.img
    f=file.driver=file,file.filename=r.img
    same img info --image-opts driver=raw,$f,offset=2097152
    same img info --image-opts driver=raw,$f,offset=524288,size=1048576
    same img info --image-opts driver=raw,$f,offset=1,size=1000
    same img resize --image-opts driver=raw,$f,size=1048576 2M
}

@test "raw: map through a window shows file offsets" {
    truncate -s 1M r.img
    printf 'x' | dd of=r.img bs=1 seek=65536 conv=notrunc 2>/dev/null
    f=file.driver=file,file.filename=r.img
    same img map --output=json --image-opts driver=raw,$f,offset=4096
    same img map --output=json --image-opts driver=raw,$f,offset=1,size=1024
}

@test "raw: I/O on a file gives qemu-io's output" {
    truncate -s 1M r.img
    same io -f raw -c 'write -P 0xab 0 12345' -c 'read -P 0xab 0 12345' \
        -c 'write -z 4096 4096' -c 'read -P 0 4096 4096' \
        -c 'discard 0 64k' -c 'read -P 0 0 64k' -c flush r.img
    same io -f raw -c 'write 1048000 1000' r.img
}

@test "null-co: size, read-zeroes and map match qemu-img" {
    # the "image:" line (a json: name built by the core) is not compared
    a=$("$BLK_IMG" info --image-opts driver=null-co,size=1000,read-zeroes=on | sed 1d)
    b=$(qemu-img info --image-opts driver=null-co,size=1000,read-zeroes=on | sed 1d)
    [ "$a" = "$b" ]
    same img map --output=json --image-opts driver=null-co,size=1048576,read-zeroes=on
    same io --image-opts -c 'read -v 0 16' driver=null-co,size=1048576,read-zeroes=on
}
