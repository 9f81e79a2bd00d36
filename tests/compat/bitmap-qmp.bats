#!/usr/bin/env bats
# bitmap-qmp.bats - blk-io --qmp and qemu-storage-daemon 7.2 answer the
# same block-dirty-bitmap-* commands with the same results: each reply
# ("return" or the error's "desc") and the dirty-bitmaps lists of
# query-named-block-nodes, compared after parsing the JSON.

load ../helpers

setup() {
    command -v qemu-storage-daemon >/dev/null || skip "qemu-storage-daemon is not installed"
    command -v qemu-img >/dev/null || skip "qemu-img is not installed"
    command -v python3 >/dev/null || skip "python3 is not installed"
}

# The replies of a QMP session (stdin: commands, one per line), reduced to
# one line each: the return value, "ERROR desc", or the bitmaps of a node
# that has some.
replies() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "QMP" in m or "event" in m:
        continue
    if "error" in m:
        print("ERROR", m["error"]["desc"])
    elif isinstance(m["return"], list):
        # nodes with bitmaps, by name (the node order is not compared)
        for n in sorted(m["return"], key=lambda n: n["node-name"]):
            if "dirty-bitmaps" in n:
                print("NODE", n["node-name"], json.dumps(n["dirty-bitmaps"], sort_keys=True))
    else:
        print("RETURN", json.dumps(m["return"], sort_keys=True))
'
}

# Run the QMP commands in file $1 (IMG = a fresh copy of image $2) in both.
compare() {
    local tool
    for tool in qemu blk; do
        cp "$2" "$BATS_TEST_TMPDIR/$tool.qcow2"
        sed "s#IMG#$BATS_TEST_TMPDIR/$tool.qcow2#" "$1" > "$BATS_TEST_TMPDIR/$tool.in"
    done
    qemu-storage-daemon --chardev stdio,id=m --monitor chardev=m \
        < "$BATS_TEST_TMPDIR/qemu.in" 2>/dev/null | replies > "$BATS_TEST_TMPDIR/qemu.out"
    "$BLK_IO" --qmp < "$BATS_TEST_TMPDIR/blk.in" 2>/dev/null | replies > "$BATS_TEST_TMPDIR/blk.out"
    diff -u "$BATS_TEST_TMPDIR/qemu.out" "$BATS_TEST_TMPDIR/blk.out"
}

@test "qmp: add, remove, clear, enable, disable, merge and their errors" {
    base=$BATS_TEST_TMPDIR/base.qcow2
    qemu-img create -q -f qcow2 "$base" 1M
    qemu-img bitmap --add "$base" stored
    qemu-io -c 'write -q 0 1' "$base"
    cat > "$BATS_TEST_TMPDIR/cmds" <<'EOF'
{"execute": "qmp_capabilities"}
{"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n0", "file": {"driver": "file", "filename": "IMG"}}}
{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "nul", "size": 2097152}}
{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "same", "size": 1048576}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "nope", "name": "b"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "b"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "b"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "stored"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "p", "persistent": true, "granularity": 4096}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "d", "disabled": true, "granularity": 1000}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "d", "granularity": -1}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "d", "granularity": 4294967296}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "d", "disabled": "yes"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "d", "bogus": 1}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": ""}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "d", "disabled": true, "granularity": 512}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "nul", "name": "np", "persistent": true}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "nul", "name": "nb"}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "same", "name": "sb", "granularity": 2147483648}}
{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "n0", "name": "zz"}}
{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "nope", "name": "zz"}}
{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "n0", "name": "zz"}}
{"execute": "block-dirty-bitmap-enable", "arguments": {"node": "n0", "name": "zz"}}
{"execute": "block-dirty-bitmap-disable", "arguments": {"node": "n0", "name": "zz"}}
{"execute": "block-dirty-bitmap-disable", "arguments": {"node": "n0", "name": "p"}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "b", "bitmaps": ["stored", {"node": "n0", "name": "d"}, {"node": "same", "name": "sb"}]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "b", "bitmaps": ["zz"]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "zz", "bitmaps": ["b"]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "b", "bitmaps": [{"node": "nope", "name": "d"}]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "b", "bitmaps": [{"node": "n0", "name": "zz"}]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "b", "bitmaps": [{"node": "n0"}]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "b", "bitmaps": "p"}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "p", "bitmaps": [{"node": "nul", "name": "nb"}]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "stored", "bitmaps": ["b"]}}
{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "n0", "name": "d"}}
{"execute": "block-dirty-bitmap-enable", "arguments": {"node": "n0", "name": "d"}}
{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "n0", "name": "stored"}}
{"execute": "query-named-block-nodes", "arguments": {"flat": true}}
{"execute": "quit"}
EOF
    compare "$BATS_TEST_TMPDIR/cmds" "$base"
}

@test "qmp: inconsistent bitmaps after a crash" {
    base=$BATS_TEST_TMPDIR/base.qcow2
    qemu-img create -q -f qcow2 "$base" 1M
    qemu-img bitmap --add "$base" bad
    qemu-io -c 'write -q 0 64k' -c 'sleep 100000' "$base" &
    pid=$!
    sleep 1
    kill -9 $pid
    wait $pid || true
    qemu-img bitmap --add "$base" good
    cat > "$BATS_TEST_TMPDIR/cmds" <<'EOF'
{"execute": "qmp_capabilities"}
{"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n0", "file": {"driver": "file", "filename": "IMG"}}}
{"execute": "query-named-block-nodes", "arguments": {"flat": true}}
{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "n0", "name": "bad"}}
{"execute": "block-dirty-bitmap-enable", "arguments": {"node": "n0", "name": "bad"}}
{"execute": "block-dirty-bitmap-disable", "arguments": {"node": "n0", "name": "bad"}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "good", "bitmaps": ["bad"]}}
{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "n0", "target": "bad", "bitmaps": ["good"]}}
{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "bad"}}
{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "n0", "name": "bad"}}
{"execute": "query-named-block-nodes", "arguments": {"flat": true}}
{"execute": "quit"}
EOF
    compare "$BATS_TEST_TMPDIR/cmds" "$base"
}
