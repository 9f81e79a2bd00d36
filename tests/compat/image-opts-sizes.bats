#!/usr/bin/env bats
# image-opts-sizes.bats - sizes in --image-opts and json: strings: QEMU 7.2
# reads raw's offset/size, qcow2's cache sizes and null's size as QemuOpts
# sizes there ("size=4M"), while -blockdev keeps them plain integers.
# blk-img/blk-io must give qemu-img/qemu-io's results for both.

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    [ -x "$BLK_IMG" ] || skip "blk-img is not built"
    [ -x "$BLK_IO" ] || skip "blk-io is not built"
    cd "$BATS_TEST_TMPDIR"
    truncate -s 8M a.raw
}

# Output and exit code of a tool run, the tool name blanked.  The "image:"
# line of info is left out: QEMU prints a json: name for option strings.
norm() {
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\nexit %d\n' "$out" "$rc" |
        sed -E '/^image: /d; s/^(blk-img|qemu-img|blk-io|qemu-io):/TOOL:/'
}

# same img|io ARGS...: blk and QEMU give the same output and exit code.
same() {
    local kind=$1 a b
    shift
    if [ "$kind" = img ]; then
        a=$(norm "$BLK_IMG" "$@"); b=$(norm qemu-img "$@")
    else
        a=$(norm "$BLK_IO" "$@"); b=$(norm qemu-io "$@")
    fi
    if [ "$a" != "$b" ]; then
        printf 'blk:\n%s\nqemu:\n%s\n' "$a" "$b"
        return 1
    fi
}

F=driver=raw,file.driver=file,file.filename=a.raw

@test "image-opts: raw size and offset take suffixes in qemu-img info" {
    same img info --image-opts $F,size=4M
    same img info --image-opts $F,offset=1M
    same img info --image-opts $F,size=1.5M
    same img info --image-opts $F,offset=1M,size=0x200000
    run "$BLK_IMG" info --image-opts $F,size=4M
    assert_success
    assert_line 'virtual size: 4 MiB (4194304 bytes)'
}

@test "image-opts: a bad size suffix fails with qemu-img's message" {
    same img info --image-opts $F,size=4Q
    same img info --image-opts $F,offset=-1
    same img info --image-opts $F,size=16E
    run "$BLK_IMG" info --image-opts $F,size=4Q
    assert_failure
    assert_line --index 0 "blk-img: Could not open '$F,size=4Q': Parameter 'size' expects a non-negative number below 2^64"
}

@test "image-opts: a suffixed window is checked against the file" {
    same img info --image-opts $F,offset=1M,size=20M
    same img info --image-opts $F,size=1000
}

@test "image-opts: json: filenames take suffixed sizes too" {
    same img info 'json:{"driver":"raw","size":"4M","file":{"driver":"file","filename":"a.raw"}}'
}

@test "image-opts: qcow2 cache sizes take suffixes" {
    qemu-img create -q -f qcow2 x.qcow2 64M
    q=driver=qcow2,file.driver=file,file.filename=x.qcow2
    same img info --image-opts $q,l2-cache-size=1M,l2-cache-entry-size=4k
    same img info --image-opts $q,cache-size=2M,refcount-cache-size=256k
    same img info --image-opts $q,cache-size=1M,l2-cache-size=1M,refcount-cache-size=64k
    same img info --image-opts $q,l2-cache-size=1Q
}

@test "image-opts: qemu-io --image-opts sizes match blk-io" {
    same io --image-opts -c length $F,size=4M
    same io --image-opts -c length $F,offset=1M
    same io --image-opts -c length $F,size=1.5M
    same io --image-opts -c length $F,size=4Q
    same io --image-opts -c length driver=null-co,size=1.5k
    same io -c 'open -o driver=raw,size=1M a.raw' -c length
}

@test "image-opts: -blockdev still refuses suffixed sizes, as qemu-storage-daemon does" {
    command -v qemu-storage-daemon >/dev/null || skip "qemu-storage-daemon is not installed"
    for s in $F,size=4M driver=null-co,size=1M; do
        q=$(timeout 2 qemu-storage-daemon --blockdev "$s" 2>&1 | head -1)
        q=${q#"qemu-storage-daemon: --blockdev $s: "}
        run "$BLK_IMG" keyval --schema blockdev "$s"
        assert_failure
        assert_output "blk-img: $q"
        assert_output --partial "expects integer"
    done
}
