#!/usr/bin/env bats
# keyval-blockdev.bats - the same option strings through QEMU 7.2's real
# -blockdev parser (qemu-storage-daemon --blockdev) and through
# `blk-img keyval --schema blockdev`: both must accept or both reject with
# the same message.  Where blk differs on purpose (keyval.md section 14)
# the test says so and asserts both sides of the documented difference.

load ../helpers

setup() {
    command -v qemu-storage-daemon >/dev/null || skip "qemu-storage-daemon is not installed"
}

# What QEMU makes of --blockdev S: "accept" or the error message.  qsd
# refuses a root node without node-name only after the schema accepted the
# string, so that message means "accepted"; a string with node-name starts
# the daemon, which runs until timeout (exit 124).
qsd_verdict() {
    local out rc
    out=$(timeout 2 qemu-storage-daemon --blockdev "$1" 2>&1)
    rc=$?
    out=${out%%$'\n'*}
    out=${out#"qemu-storage-daemon: --blockdev $1: "}
    if [ "$rc" -eq 124 ] || [ "$out" = "'node-name' must be specified for the root node" ]; then
        echo accept
    else
        echo "$out"
    fi
}

# What blk makes of it: "accept" or the error message without "blk-img: ".
blk_verdict() {
    local out
    if out=$("$BLK_IMG" keyval --schema blockdev "$1" 2>&1 >/dev/null); then
        echo accept
    else
        echo "${out#blk-img: }"
    fi
}

# same STRING...: each string gets the same verdict from QEMU and blk.
same() {
    local s q b bad=0
    for s in "$@"; do
        q=$(qsd_verdict "$s")
        b=$(blk_verdict "$s")
        if [ "$q" != "$b" ]; then
            printf 'string: %s\n  qemu: %s\n  blk:  %s\n' "$s" "$q" "$b"
            bad=1
        fi
    done
    return $bad
}

@test "compat: valid null-co strings are accepted by both" {
    same 'driver=null-co' 'null-co' 'null-co,read-only=on' \
        'driver=null-co,detect-zeroes=unmap,discard=unmap' \
        'driver=null-co,read-only=yes,force-share=n' \
        "{'driver':'null-co'}" '{"driver":"null-co","size":1024,"cache":{"direct":false}}'
}

@test "compat: a valid string with node-name starts the daemon" {
    [ "$(qsd_verdict 'driver=null-co,node-name=n0,size=4096')" = accept ]
    [ "$(blk_verdict 'driver=null-co,node-name=n0,size=4096')" = accept ]
}

@test "compat: missing members are reported in schema order" {
    same '' 'foo=bar' 'driver=qcow2' 'driver=file' 'driver=qcow2,foo=1' \
        'driver=qcow2,file.driver=file,file.filenam=x' 'driver=throttle,file=f' \
        'driver=qcow2,file=f,encrypt.foo=1'
}

@test "compat: unexpected members name their full path" {
    same 'driver=null-co,foo=bar' 'driver=null-co,cache.foo=on' 'driver=null-co,filename=x' \
        'driver=null-co,x-check-cache-dropped=on' 'driver=qcow2,file=f,overlap-check.bogus=1' \
        'driver=qcow2,file=f,encrypt.format=luks,encrypt.foo=1'
}

@test "compat: objects and scalars in the wrong place" {
    same 'driver=null-co,cache=on' 'driver=null-co,read-only.x=1' \
        'driver=quorum,vote-threshold=1,children=f0'
}

@test "compat: booleans accept exactly on/off/yes/no/true/false/y/n" {
    same 'driver=null-co,read-only=ON' 'driver=null-co,read-only=1' \
        'driver=null-co,read-only=true' 'driver=null-co,read-only='
}

@test "compat: integers follow strtoll base 0 over the whole string" {
    same 'driver=null-co,size=1M' 'driver=null-co,size=0x100000' 'driver=null-co,size=010' \
        'driver=null-co,size=08' 'driver=null-co,size= +5' 'driver=null-co,size=5 ' \
        'driver=null-co,size=' 'driver=null-co,size=9223372036854775808' \
        'driver=null-co,size=-9223372036854775808' 'driver=raw,file=f,offset=1k'
}

@test "compat: unsigned integers wrap negatives and stop at 2^64-1" {
    same 'driver=null-co,latency-ns=-1' 'driver=null-co,latency-ns=18446744073709551615' \
        'driver=null-co,latency-ns=18446744073709551616'
}

@test "compat: narrow integers are range-checked with the C type name" {
    same 'driver=blkdebug,image=x,max-transfer=4294967296' \
        'driver=blkdebug,image=x,max-transfer=0x7fffffff0' \
        '{"driver":"blkdebug","image":"x","max-transfer":4294967296}'
}

@test "compat: enum values are exact and case-sensitive" {
    same 'driver=bogus' 'driver=null-co,discard=UNMAP' 'driver=null-co,discard=' \
        'driver=file,filename=/nonexistent/x,aio=bogus' \
        'driver=file,filename=/nonexistent/x,locking=maybe'
}

@test "compat: alternates take the string or enum branch from keyval" {
    same 'driver=qcow2,file=f,overlap-check=on' 'driver=qcow2,file=f,overlap-check=2' \
        '{"driver":"qcow2","file":5}'
}

@test "compat: list elements are checked with dotted paths" {
    same 'driver=quorum,vote-threshold=1,children.0.driver=file' \
        'driver=quorum,vote-threshold=1,children.0.driver=file,children.0.filename=x,children.0.foo=1' \
        'driver=quorum,children.1=a'
}

@test "compat: JSON values are not converted" {
    same '{"driver":"null-co","read-only":"on"}' '{"driver":"null-co","size":1024.0}' \
        '{"driver":"null-co","size":true}' '{"driver":"null-co","discard":1}' \
        '{"driver":"null-co","node-name":{"x":1}}' '{"driver":"null-co","read-only":{"x":1}}' \
        '{"driver":"null-co","cache":{"direct":"off"}}' '{"driver":"null-co","cache":5}' \
        '{"driver":"null-co","size":18446744073709551615}'
}

@test "compat: JSON unsigned members take -2^63..2^64-1 and nothing else" {
    same '{"driver":"null-co","latency-ns":-1}' '{"driver":"null-co","latency-ns":"1"}' \
        '{"driver":"null-co","latency-ns":1.5}'
}

@test "compat: JSON names list elements children[N]" {
    same '{"driver":"quorum","vote-threshold":1,"children":[{"driver":"file"}]}' \
        '{"driver":"quorum","vote-threshold":1,"children":[{"driver":"file","filename":"x","foo":1}]}' \
        '{"driver":"qcow2","file.filename":"a"}'
}

@test "compat: syntax and list assembly errors" {
    same 'a=1,b' 'read-only=on,null-co' 'file=f0,file.driver=file' 'driver=null-co,,x'
}

# ---- deliberate differences (keyval.md section 14) ----------------------

@test "compat: differs: backing=null is null in blk, a node named 'null' in QEMU" {
    local img=$BATS_TEST_TMPDIR/t.qcow2
    qemu-img create -q -f qcow2 "$img" 1M
    run timeout 2 qemu-storage-daemon --blockdev "driver=file,node-name=f,filename=$img" \
        --blockdev 'driver=qcow2,node-name=q,file=f,backing=null'
    assert_failure 1
    assert_output --partial "Cannot find device='null' nor node-name='null'"
    run "$BLK_IMG" keyval --schema blockdev 'driver=qcow2,node-name=q,file=f,backing=null'
    assert_success
    assert_output '{"driver":"qcow2","node-name":"q","file":"f","backing":null}'
}

@test "compat: differs: enum errors inside lists name the full path in blk" {
    local s='driver=quorum,vote-threshold=1,children.0.driver=file,children.0.filename=x,children.0.locking=maybe'
    [ "$(qsd_verdict "$s")" = "Parameter 'locking' does not accept value 'maybe'" ]
    [ "$(blk_verdict "$s")" = "Parameter 'children.0.locking' does not accept value 'maybe'" ]
    s='driver=blkdebug,image=i,take-child-perms.0=all'
    [ "$(qsd_verdict "$s")" = "Parameter 'null' does not accept value 'all'" ]
    [ "$(blk_verdict "$s")" = "Parameter 'take-child-perms.0' does not accept value 'all'" ]
}

@test "compat: differs: alternates inside JSON lists are named in blk, 'null' in QEMU" {
    local s='{"driver":"quorum","vote-threshold":1,"children":[5]}'
    [ "$(qsd_verdict "$s")" = "Invalid parameter type for 'null', expected: BlockdevRef" ]
    [ "$(blk_verdict "$s")" = "Invalid parameter type for 'children[0]', expected: BlockdevRef" ]
}

@test "compat: differs: blk offers help for blockdev strings" {
    [ "$(qsd_verdict 'driver=null-co,help')" = "Help is not available for this option" ]
    run "$BLK_IMG" keyval --schema blockdev 'driver=null-co,help'
    assert_success
    assert_line --index 0 'BlockdevOptions options (driver=null-co):'
}

@test "compat: differs: 0x1k is not a size in blk, 1024 with a warning in QEMU" {
    run qemu-img create -f raw "$BATS_TEST_TMPDIR/x.raw" 0x1k
    assert_success
    assert_output --partial 'Using a multiplier suffix on hex numbers is deprecated'
    [ "$(stat -c %s "$BATS_TEST_TMPDIR/x.raw")" -eq 1024 ]
    run "$BLK_IMG" keyval --schema BlockdevCreateOptions 'file,filename=x,size=0x1k'
    assert_failure 1
    assert_output "blk-img: Parameter 'size' expects size"
}

@test "compat: differs: index 0 and 00 are one list element in blk" {
    # QEMU keeps both keys and picks one in hash order; the schema accepts.
    [ "$(qsd_verdict 'driver=quorum,vote-threshold=1,children.0=a,children.00=b')" = accept ]
    run "$BLK_IMG" keyval --schema blockdev 'driver=quorum,vote-threshold=1,children.0=a,children.00=b'
    assert_success
    assert_output '{"driver":"quorum","vote-threshold":1,"children":["b"]}'
}

@test "compat: differs: drivers blk does not implement are rejected by the schema" {
    [ "$(qsd_verdict 'driver=nbd')" = "Parameter 'server' is missing" ]
    [ "$(blk_verdict 'driver=nbd')" = "Parameter 'driver' does not accept value 'nbd'" ]
}

@test "compat: differs: JSON integers beyond 64 bits are a parse error in blk" {
    local s='{"driver":"null-co","latency-ns":-9223372036854775809}'
    [ "$(qsd_verdict "$s")" = "Parameter 'latency-ns' expects uint64" ]
    [ "$(blk_verdict "$s")" = "JSON number '-9223372036854775809' cannot be represented exactly" ]
}

@test "compat: same: plain JSON option strings are strict in both, json: filenames lenient in QEMU" {
    # QEMU's json: filenames go through QemuOpts and take strings for typed
    # values; blk does the same in its lenient mode (keyval/test-validate.c).
    run qemu-img info 'json:{"driver":"null-co","read-only":"on","size":"1024"}'
    assert_success
    assert_output --partial 'virtual size: 1 KiB (1024 bytes)'
    same '{"driver":"null-co","read-only":"on"}'
}
