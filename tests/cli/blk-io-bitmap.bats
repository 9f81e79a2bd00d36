#!/usr/bin/env bats
# blk-io-bitmap.bats - blk-io's block-dirty-bitmap-* commands (keyval and
# JSON in the shell, JSON in --qmp), `bitmap dump`, and the dirty-bitmaps
# member of query-named-block-nodes.

load ../helpers

setup() {
    img=$BATS_TEST_TMPDIR/a.qcow2
    "$BLK_IMG" create -q -f qcow2 "$img" 1M
    opts="driver=qcow2,node-name=n0,file.driver=file,file.filename=$img"
}

# blk-io on the image as node n0, with the given -c commands.
io() {
    local args=()
    for c in "$@"; do
        args+=(-c "$c")
    done
    "$BLK_IO" --image-opts "${args[@]}" "$opts"
}

@test "bitmap: writes, write-zeroes and discards mark a recording bitmap" {
    run io 'block-dirty-bitmap-add node=n0,name=b' 'write -q 70000 10' \
        'write -q -z 300k 4k' 'discard -q 512k 64k' 'bitmap dump n0 b'
    assert_success
    assert_output "Start           Length          Dirty
0               0x10000         no
0x10000         0x10000         yes
0x20000         0x20000         no
0x40000         0x10000         yes
0x50000         0x30000         no
0x80000         0x10000         yes
0x90000         0x70000         no"
}

@test "bitmap: JSON arguments work like keyval ones" {
    run io 'block-dirty-bitmap-add {"node": "n0", "name": "b", "granularity": 4096}' \
        'write -q 0 1' 'bitmap dump n0 b'
    assert_success
    assert_line --index 1 "0               0x1000          yes"
}

@test "bitmap: a disabled bitmap records nothing until enabled" {
    run io 'block-dirty-bitmap-add node=n0,name=b,disabled=on' 'write -q 0 1' \
        'block-dirty-bitmap-enable node=n0,name=b' 'write -q 128k 1' \
        'block-dirty-bitmap-disable node=n0,name=b' 'write -q 256k 1' \
        'bitmap dump n0 b'
    assert_success
    assert_output "Start           Length          Dirty
0               0x20000         no
0x20000         0x10000         yes
0x30000         0xd0000         no"
}

@test "bitmap: clear and remove" {
    run io 'block-dirty-bitmap-add node=n0,name=b' 'write -q 0 1' \
        'block-dirty-bitmap-clear node=n0,name=b' 'bitmap dump n0 b' \
        'block-dirty-bitmap-remove node=n0,name=b' 'bitmap dump n0 b'
    assert_failure 1
    assert_line "0               0x100000        no"
    assert_line "blk-io: Dirty bitmap 'b' not found"
    [ "${#lines[@]}" = 3 ]
}

@test "bitmap: QEMU's errors for nodes, names and granularities" {
    run io 'block-dirty-bitmap-add node=nope,name=b'
    assert_failure 1
    assert_output "blk-io: Cannot find device='nope' nor node-name='nope'"
    for c in remove clear enable disable; do
        run io "block-dirty-bitmap-$c node=nope,name=b"
        assert_output "blk-io: Node 'nope' not found"
        run io "block-dirty-bitmap-$c node=n0,name=zz"
        assert_output "blk-io: Dirty bitmap 'zz' not found"
    done
    run io 'block-dirty-bitmap-add node=n0,name=b' 'block-dirty-bitmap-add node=n0,name=b'
    assert_output "blk-io: Bitmap already exists: b"
    run io 'block-dirty-bitmap-add node=n0,name=b,granularity=1000'
    assert_output "blk-io: Granularity must be power of 2 and at least 512"
    run io 'block-dirty-bitmap-add node=n0,name=,granularity=512'
    assert_output "blk-io: Bitmap name cannot be empty"
}

@test "bitmap: arguments are checked against the schema" {
    run io 'block-dirty-bitmap-add node=n0,name=b,granularity=4294967296'
    assert_failure 1
    assert_output "blk-io: Parameter 'granularity' expects uint32_t"
    run io 'block-dirty-bitmap-add node=n0,name=b,bogus=1'
    assert_output "blk-io: Parameter 'bogus' is unexpected"
    run io 'block-dirty-bitmap-add node=n0'
    assert_output "blk-io: Parameter 'name' is missing"
    run io 'block-dirty-bitmap-add {"node": "n0", "name": "b", "disabled": "yes"}'
    assert_output "blk-io: Invalid parameter type for 'disabled', expected: boolean"
    run io 'block-dirty-bitmap-merge {"node": "n0", "target": "b", "bitmaps": [{"node": "n0"}]}'
    assert_output "blk-io: Parameter 'bitmaps[0].name' is missing"
}

@test "bitmap: help lists the members of the argument type" {
    run io 'block-dirty-bitmap-add help'
    assert_success
    assert_line --index 0 "BlockDirtyBitmapAdd options:"
    assert_line --partial "granularity=<uint32>"
}

@test "bitmap: merge takes local names and {node, name} sources" {
    run io 'block-dirty-bitmap-add node=n0,name=t' \
        'block-dirty-bitmap-add node=n0,name=l,granularity=512' 'write -q 1000 1' \
        'blockdev-add driver=null-co,node-name=nul,size=1048576' \
        'block-dirty-bitmap-add node=nul,name=x' 'select nul' 'write -q 512k 1' \
        'block-dirty-bitmap-merge node=n0,target=t,bitmaps.0=l,bitmaps.1.node=nul,bitmaps.1.name=x' \
        'bitmap dump n0 t'
    assert_success
    assert_output "Start           Length          Dirty
0               0x10000         yes
0x10000         0x70000         no
0x80000         0x10000         yes
0x90000         0x70000         no"
}

@test "bitmap: merge checks every source before changing the target" {
    run io 'block-dirty-bitmap-add node=n0,name=t' 'block-dirty-bitmap-add node=n0,name=s' \
        'write -q 0 1' 'block-dirty-bitmap-clear node=n0,name=t' \
        'block-dirty-bitmap-merge node=n0,target=t,bitmaps.0=s,bitmaps.1=zz' \
        'bitmap dump n0 t'
    assert_failure 1
    assert_line "blk-io: Dirty bitmap 'zz' not found"
    assert_line "0               0x100000        no"
    [ "${#lines[@]}" = 3 ]
}

@test "bitmap: merge of different sizes and into a missing target fail" {
    run io 'block-dirty-bitmap-add node=n0,name=t' \
        'blockdev-add driver=null-co,node-name=nul,size=2097152' \
        'block-dirty-bitmap-add node=nul,name=x' \
        'block-dirty-bitmap-merge {"node": "n0", "target": "t", "bitmaps": [{"node": "nul", "name": "x"}]}' \
        'block-dirty-bitmap-merge node=n0,target=zz,bitmaps.0=t' \
        'block-dirty-bitmap-merge {"node": "n0", "target": "t", "bitmaps": [{"node": "nope", "name": "x"}]}'
    assert_failure 1
    assert_output "blk-io: Bitmaps are of different sizes (destination size is 1048576, source size is 2097152) and can't be merged
blk-io: Dirty bitmap 'zz' not found
blk-io: Node 'nope' not found"
}

@test "bitmap: merge of an empty list changes nothing" {
    run io 'block-dirty-bitmap-add node=n0,name=t' \
        'block-dirty-bitmap-merge {"node": "n0", "target": "t", "bitmaps": []}' 'bitmap dump n0 t'
    assert_success
    assert_line --index 1 "0               0x100000        no"
}

@test "bitmap: persistent bitmaps are stored in the qcow2 image at close" {
    run io 'block-dirty-bitmap-add node=n0,name=p,persistent=on,granularity=4096' \
        'block-dirty-bitmap-add node=n0,name=t' 'write -q 8k 4k'
    assert_success
    run "$BLK_IMG" bitmap dump --output=json "$img" p
    assert_output '[{ "start": 0, "length": 8192, "dirty": false},
{ "start": 8192, "length": 4096, "dirty": true},
{ "start": 12288, "length": 1036288, "dirty": false}]'
    run "$BLK_IMG" bitmap dump "$img" t
    assert_failure 1
    assert_output "blk-img: Dirty bitmap 't' not found"
}

@test "bitmap: persistent bitmaps load at open and keep recording" {
    "$BLK_IMG" bitmap --add "$img" p
    run io 'write -q 0 1' 'bitmap dump n0 p' 'block-dirty-bitmap-remove node=n0,name=p'
    assert_success
    assert_line --index 1 "0               0x10000         yes"
    run "$BLK_IMG" info "$img"
    refute_output --partial "bitmaps:"
}

@test "bitmap: a null node cannot hold a persistent bitmap" {
    run io 'blockdev-add driver=null-co,node-name=nul,size=1048576' \
        'block-dirty-bitmap-add node=nul,name=x,persistent=on'
    assert_failure 1
    assert_output "blk-io: Can't store persistent bitmaps to nul: Operation not supported"
}

@test "bitmap dump: bad subcommand, missing node and bitmap" {
    run io 'bitmap list n0 b'
    assert_failure 1
    assert_output "bitmap dump node name -- prints the dirty and clean extents of a dirty bitmap"
    run io 'bitmap dump nope b'
    assert_output "blk-io: Node 'nope' not found"
    run io 'bitmap dump n0 b'
    assert_output "blk-io: Dirty bitmap 'b' not found"
}

@test "query-named-block-nodes: dirty-bitmaps as QEMU lists them, newest first" {
    run io 'block-dirty-bitmap-add node=n0,name=a,granularity=4096' \
        'block-dirty-bitmap-add node=n0,name=b,disabled=on,persistent=on' \
        'write -q 0 5000' 'query-named-block-nodes'
    assert_success
    assert_output --partial '"dirty-bitmaps": [
            {
                "name": "b",
                "recording": false,
                "persistent": true,
                "busy": false,
                "granularity": 65536,
                "count": 0
            },
            {
                "name": "a",
                "recording": true,
                "persistent": false,
                "busy": false,
                "granularity": 4096,
                "count": 8192
            }
        ],'
    # the file node has no bitmap and no member
    [ "$(echo "$output" | grep -c dirty-bitmaps)" = 1 ]
}

@test "qmp: the bitmap commands and their errors" {
    run "$BLK_IO" --qmp <<EOF
{"execute": "qmp_capabilities"}
{"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n0", "file": {"driver": "file", "filename": "$img"}}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "b", "granularity": 512}, "id": 1}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "b"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "c", "granularity": -1}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "c", "persistent": true}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "c", "bitmaps": ["b", {"node": "n0", "name": "b"}]}}
{"execute": "block-dirty-bitmap-disable", "arguments": {"node": "n0", "name": "c"}}
{"execute": "block-dirty-bitmap-enable", "arguments": {"node": "n0"}}
{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "n0", "name": "c"}}
{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "n0", "name": "b"}}
{"execute": "block-dirty-bitmap-remove"}
{"execute": "query-named-block-nodes"}
{"execute": "quit"}
EOF
    assert_success
    assert_line --index 3 '{"return":{},"id":1}'
    assert_line --index 4 --partial '"desc":"Bitmap already exists: b"'
    assert_line --index 5 --partial '"desc":"Parameter '"'granularity'"' expects uint32_t"'
    assert_line --index 6 '{"return":{}}'
    assert_line --index 7 '{"return":{}}'
    assert_line --index 8 '{"return":{}}'
    assert_line --index 9 --partial '"desc":"Parameter '"'name'"' is missing"'
    assert_line --index 10 '{"return":{}}'
    assert_line --index 11 '{"return":{}}'
    assert_line --index 12 --partial '"desc":"Parameter '"'node'"' is missing"'
    assert_line --index 13 --partial '"dirty-bitmaps":[{"name":"c","recording":false,"persistent":true,"busy":false,"granularity":65536,"count":0}]'
    run "$BLK_IMG" info "$img"
    assert_output --partial "name: c"
}

@test "qmp: query-commands lists the bitmap commands" {
    run "$BLK_IO" --qmp <<EOF
{"execute": "qmp_capabilities"}
{"execute": "query-commands"}
EOF
    for c in add clear disable enable merge remove; do
        assert_output --partial "\"block-dirty-bitmap-$c\""
    done
}

@test "query-named-block-nodes: count is in whole granules, as QEMU counts" {
    "$BLK_IMG" create -q -f qcow2 "$img" 1000448
    run io 'block-dirty-bitmap-add node=n0,name=b' 'write -q 999000 1' 'query-named-block-nodes'
    assert_success
    assert_output --partial '"count": 65536'
}

@test "qmp: bitmaps loaded from a read-only image are read-only, new ones are not" {
    "$BLK_IMG" bitmap --add "$img" existing
    run "$BLK_IO" --qmp <<EOF
{"execute": "qmp_capabilities"}
{"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n0", "read-only": true, "file": {"driver": "file", "filename": "$img"}}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "t"}}
{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "n0", "name": "existing"}}
{"execute": "block-dirty-bitmap-disable", "arguments": {"node": "n0", "name": "existing"}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "existing", "bitmaps": ["t"]}}
{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "n0", "name": "existing"}}
{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "n0", "name": "t"}}
{"execute": "quit"}
EOF
    assert_success
    assert_line --index 3 '{"return":{}}'
    assert_line --index 4 --partial "\"desc\":\"Bitmap 'existing' is readonly and cannot be modified\""
    assert_line --index 5 '{"return":{}}'
    assert_line --index 6 --partial "is readonly and cannot be modified"
    assert_line --index 7 --partial "is readonly and cannot be modified"
    assert_line --index 8 '{"return":{}}'
    run "$BLK_IMG" info "$img"
    assert_output --partial "name: existing"
}

@test "bitmap: a backend name resolves to its root node, where the bitmap stays" {
    # The image's backend is called "image"; its root is n0.
    run io 'block-dirty-bitmap-add node=image,name=viabe' 'write -q 0 4k' \
        'bitmap dump n0 viabe' 'blockdev-add driver=null-co,node-name=other' \
        'select other' 'write -q 0 4k' 'bitmap dump n0 viabe'
    assert_success
    # recorded on n0, and writes through another node do not reach it
    assert_equal "$(printf '%s\n' "${lines[@]}" | grep -c '^0 .*0x10000 .*yes')" 2
    run io 'block-dirty-bitmap-add node=image,name=viabe' \
        'block-dirty-bitmap-add node=n0,name=viabe'
    assert_output --partial "Bitmap already exists: viabe"
}

@test "reopen: -r and -w reopen in place, so a non-persistent bitmap survives" {
    run io 'block-dirty-bitmap-add node=n0,name=t' 'reopen -r' 'write 0 4k' \
        'reopen -w' 'write -q 64k 4k' 'bitmap dump n0 t'
    assert_output --partial "Block node is read-only"
    assert_line --regexp '^0x10000 +0x10000 +yes'
}
