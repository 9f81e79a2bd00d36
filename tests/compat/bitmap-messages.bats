#!/usr/bin/env bats
# bitmap-messages.bats - `blk-img bitmap` and `qemu-img bitmap` 7.2 side by
# side: for each case both run on their own copy of the same image, and
# the exit status, the messages (tool name and generated node names
# masked) and the resulting info listing must be the same.

load ../helpers

setup() {
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v qemu-io >/dev/null || skip "qemu-io is not installed"
    dir=$BATS_TEST_TMPDIR
}

mask() {
    sed -e 's/^qemu-img: /TOOL: /' -e 's/^blk-img: /TOOL: /' \
        -e "s/'qemu-img --help'/'TOOL --help'/" -e "s/'blk-img --help'/'TOOL --help'/" \
        -e 's/#block[0-9]*/#blockN/g'
}

# same SETUP-FUNCTION ARGS...: ARGS with the image as "IMG" (and the merge
# source as "SRC"); each tool works on fresh images made by SETUP-FUNCTION.
same() {
    local setup=$1 tool out info args a
    shift
    for tool in qemu-img "$BLK_IMG"; do
        rm -rf "$dir/w"
        mkdir "$dir/w"
        "$setup" "$dir/w"
        args=()
        for a in "$@"; do
            a=${a//IMG/$dir/w/a.qcow2}
            args+=("${a//SRC/$dir/w/s.qcow2}")
        done
        out=$( { "$tool" bitmap "${args[@]}" 2>&1; echo "[exit $?]"; } | mask)
        info=$(qemu-img info "$dir/w/a.qcow2" 2>&1 | sed -n '/bitmaps:/,/refcount bits/p')
        printf '%s\n%s\n' "$out" "$info" > "$dir/$(basename "$tool").res"
    done
    if ! cmp -s "$dir/qemu-img.res" "$dir/blk-img.res"; then
        diff -u "$dir/qemu-img.res" "$dir/blk-img.res"
        return 1
    fi
}

# Image setups.  Each runs in an empty directory $1.
plain() {
    qemu-img create -q -f qcow2 "$1/a.qcow2" 1M
}
with_bitmaps() {
    plain "$1"
    qemu-img bitmap --add "$1/a.qcow2" b0
    qemu-img bitmap --add -g 4096 --disable "$1/a.qcow2" b1
    qemu-io -c 'write -q 100k 1' "$1/a.qcow2"
}
with_source() {
    with_bitmaps "$1"
    qemu-img create -q -f qcow2 "$1/s.qcow2" 1M
    qemu-img bitmap --add -g 512 "$1/s.qcow2" s0
    qemu-io -c 'write -q 700k 1' "$1/s.qcow2"
    qemu-img create -q -f qcow2 "$1/big.qcow2" 2M
    qemu-img bitmap --add "$1/big.qcow2" g
}
v2() {
    qemu-img create -q -f qcow2 -o compat=0.10 "$1/a.qcow2" 1M
}
raw() {
    qemu-img create -q -f raw "$1/a.qcow2" 1M
}
crashed() {
    with_bitmaps "$1"
    qemu-img bitmap --add "$1/a.qcow2" ok0
    qemu-io -c 'write -q 0 1' -c 'sleep 100000' "$1/a.qcow2" &
    local pid=$!
    sleep 0.5
    kill -9 $pid
    wait $pid 2>/dev/null || true
    qemu-img bitmap --add "$1/a.qcow2" ok
}

@test "messages: usage errors" {
    same plain IMG b
    same plain -g 512 --remove IMG b
    same plain --add -F raw IMG b
    same plain --add -b x IMG b
    same plain --add IMG
    same plain --add IMG b c
    same plain --add --image-opts -f qcow2 IMG b
    same plain --add -g abc IMG b
    same plain --add -g 8E IMG b
    same plain --bogus IMG b
    same plain --merge
}

@test "messages: add" {
    same plain --add IMG b
    same plain --add -g 512 IMG b
    same plain --add -g 2G --disable IMG b
    same plain --add -g 0 IMG b
    same plain --add -g 1000 IMG b
    same plain --add -g 256 IMG b
    same plain --add -g 4G IMG b
    same plain --add IMG ""
    same with_bitmaps --add IMG b0
    same with_bitmaps --add --add IMG x
    same v2 --add IMG b
    same raw --add -f raw IMG b
}

@test "messages: remove, clear, enable, disable, in order" {
    same with_bitmaps --remove IMG b0
    same with_bitmaps --remove IMG nope
    same with_bitmaps --clear IMG b0
    same with_bitmaps --clear IMG nope
    same with_bitmaps --enable IMG b1
    same with_bitmaps --disable IMG b0
    same with_bitmaps --disable IMG nope
    same with_bitmaps --add --remove --add -g 4096 --disable IMG x
    same with_bitmaps --remove --add --clear --remove --add IMG b1
    same raw --clear -f raw IMG b
}

@test "messages: merge" {
    same with_source --merge b0 IMG b1
    same with_source --merge nope IMG b1
    same with_source --merge b0 IMG nope
    same with_source --merge b1 IMG b1
    same with_source --merge s0 -b SRC -F qcow2 IMG b0
    same with_source --merge s0 -b SRC IMG b0
    same with_source --merge b0 -b SRC IMG b0
    same with_source --merge s0 -b SRC -F raw IMG b0
    same with_source --merge g -b "$dir/w/big.qcow2" IMG b0
    same with_source --merge s0 -b "$dir/w/none.qcow2" IMG b0
}

@test "messages: inconsistent bitmaps" {
    same crashed --clear IMG b0
    same crashed --enable IMG b0
    same crashed --disable IMG b1
    same crashed --merge b0 IMG ok
    same crashed --merge ok IMG b0
    same crashed --remove IMG b0
    same crashed --add IMG b0
    same crashed --add IMG new
}
