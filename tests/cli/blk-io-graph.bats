# blk-io-graph.bats - blockdev-add/-del with keyval and JSON, select,
# graph and query-named-block-nodes.
load ../helpers

setup() {
    IMG=$BATS_TEST_TMPDIR/t.img
    qemu-img create -q -f raw "$IMG" 1M
}

@test "graph: blockdev-add (keyval and JSON), select, I/O on the selected node" {
    run "$BLK_IO" -c 'blockdev-add driver=null-co,node-name=n1,size=4096,read-zeroes=on' \
        -c 'blockdev-add {"driver": "raw", "node-name": "r1", "file": "n1"}' \
        -c 'select r1' -c 'select' -c 'read -P 0 0 4k' -c 'length'
    assert_success
    assert_line "r1"
    assert_line "read 4096/4096 bytes at offset 0"
    assert_line "4 KiB"
}

@test "graph: the drawing shows roots, child edges, read-only and the current node" {
    run "$BLK_IO" -f raw -r -c 'blockdev-add driver=null-co,node-name=n1,size=4096' \
        -c 'blockdev-add driver=raw,node-name=r1,file=n1' -c graph "$IMG"
    assert_success
    assert_line --regexp '^\(image\) --root--> #block[0-9]+ \[raw\] .*t\.img \(ro\) <- current$'
    assert_line --regexp '^`-- file: #block[0-9]+ \[file\] .*t\.img \(ro\)$'
    assert_line "r1 [raw]"
    assert_line "\`-- file: n1 [null-co]"
}

@test "graph: blockdev-add needs a node-name and valid options; errors name the member" {
    run "$BLK_IO" -c 'blockdev-add driver=null-co' -c 'blockdev-add driver=null-co,node-name=x,size=abc' \
        -c 'blockdev-add driver=nope,node-name=y' -c 'blockdev-add {"driver": 1}' -c 'length'
    assert_failure 1
    assert_line --index 0 "blk-io: 'node-name' must be specified for the root node"
    assert_line --index 1 --partial "'size'"
    assert_line --index 2 --partial "driver"
    assert_line --index 4 "no file open, try 'help open'"
}

@test "graph: blockdev-add help lists the members" {
    run "$BLK_IO" -c 'blockdev-add help'
    assert_success
    assert_output --partial "node-name=<str>"
}

@test "graph: blockdev-del refuses nodes in use, then deletes them in order" {
    run "$BLK_IO" -c 'blockdev-add driver=null-co,node-name=n1,size=4096' \
        -c 'blockdev-add driver=raw,node-name=r1,file=n1' -c 'blockdev-del n1' \
        -c 'blockdev-del r1' -c 'blockdev-del n1' -c 'blockdev-del n1' -c graph
    assert_failure 1
    assert_line --index 0 "blk-io: Node 'n1' is busy: another node or a backend uses it"
    assert_line --index 1 "blk-io: Failed to find node with node-name='n1'"
    assert_line --index 2 "(no nodes)"
}

@test "graph: select of an unknown node fails and keeps the current one" {
    run "$BLK_IO" -f raw -c 'select nope' -c 'length' "$IMG"
    assert_failure 1
    assert_line --index 0 "blk-io: Cannot find device='nope' nor node-name='nope'"
    assert_line --index 1 "1 MiB"
}

@test "graph: query-named-block-nodes prints every node as JSON" {
    run "$BLK_IO" -f raw -c 'query-named-block-nodes' "$IMG"
    assert_success
    assert_output --partial '"drv": "raw"'
    assert_output --partial '"drv": "file"'
    assert_output --partial '"backing_file_depth": 0'
    assert_output --partial '"virtual-size": 1048576'
}
