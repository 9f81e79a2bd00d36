# blk-io-shell.bats - the interactive shell (pipe and pty), aio requests
# completing while the prompt waits, SIGINT, and the --qmp machine mode.
load ../helpers

setup() {
    IMG=$BATS_TEST_TMPDIR/t.img
    qemu-img create -q -f raw "$IMG" 1M
    NULLSLOW="driver=null-co,size=1M,latency-ns=200000000"
    PTY="$BATS_TEST_DIRNAME/pty-drive.py"
}

@test "shell: a prompt per line read, also for the read that sees EOF" {
    run bash -c "printf 'length\n' | '$BLK_IO' -f raw '$IMG'"
    assert_success
    assert_output "blk-io> 1 MiB
blk-io> "
}

@test "shell: a bad command then a good one; the session goes on, exit status 1" {
    run bash -c "printf 'foo\nread -q 0 1\nlength\n' | '$BLK_IO' -f raw '$IMG' 2>&1"
    assert_failure 1
    assert_output --partial 'command "foo" not found'
    assert_output --partial "1 MiB"
}

@test "shell: a last line without newline still runs" {
    run bash -c "printf 'length' | '$BLK_IO' -f raw '$IMG'"
    assert_success
    assert_output --partial "1 MiB"
}

@test "shell: quit ends the session before the remaining lines" {
    run bash -c "printf 'quit\nlength\n' | '$BLK_IO' -f raw '$IMG'"
    assert_success
    refute_output --partial "MiB"
}

@test "shell: stdin from a regular file works like a pipe" {
    printf 'write -P 7 0 512\nread -P 7 0 512\n' > "$BATS_TEST_TMPDIR/cmds"
    run bash -c "'$BLK_IO' -f raw '$IMG' < '$BATS_TEST_TMPDIR/cmds'"
    assert_success
    assert_output --partial "read 512/512 bytes at offset 0"
    refute_output --partial "verification failed"
}

@test "shell: an aio request completes while the prompt waits for input" {
    run bash -c "{ echo 'aio_read -q 0 512'; echo 'aio_read 0 512'; sleep 0.6; echo 'length'; } |
                 '$BLK_IO' --image-opts '$NULLSLOW'"
    assert_success
    # the completion is printed while the third prompt waits for the next line
    assert_line --index 0 --regexp '^blk-io> blk-io> blk-io> read 512/512 bytes at offset 0$'
    assert_line --index 2 "1 MiB"
}

@test "aio: five requests are in flight together (0.2 s each, well under 1 s in all)" {
    start=$(date +%s%N)
    run "$BLK_IO" --image-opts -c 'aio_read 0 512' -c 'aio_read 512 512' \
        -c 'aio_read 1k 512' -c 'aio_read 2k 512' -c 'aio_read 4k 512' -c aio_flush \
        "driver=null-co,size=1M,latency-ns=200000000"
    end=$(date +%s%N)
    assert_success
    [ "$(grep -c '^read 512/512' <<<"$output")" -eq 5 ]
    ms=$(( (end - start) / 1000000 ))
    echo "took $ms ms"
    # five requests + the flush at close: about 0.4 s; serially 1.2 s
    [ "$ms" -lt 800 ]
}

@test "aio: requests still in flight at the end of -c commands report before exit" {
    run "$BLK_IO" --image-opts -c 'aio_read 0 512' "$NULLSLOW"
    assert_success
    assert_output --partial "read 512/512 bytes at offset 0"
}

@test "tty: line editing, history with up arrow, Ctrl-U, Ctrl-D" {
    run python3 "$PTY" 'read -q 0 1\r' 'lengthX\x7f\r' '\x1b[A\x1b[A\r' 'junk\x15length\r' '\x04' -- "$BLK_IO" -f raw "$IMG"
    assert_success
    assert_output --partial "1 MiB"
    assert_line "[exit 0]"
    [ "$(grep -c '^1 MiB' <<<"$output")" -eq 2 ]
    refute_output --partial 'not found'
}

@test "tty: an aio report while a line is being typed redraws the prompt and the line" {
    # typed at 0.6 s (request), 1.2 s ("len"), 1.8 s ("gth"); it completes at 1.6 s
    PTY_DELAY=0.6 run python3 "$PTY" 'aio_read 0 512\r' 'len' 'gth\r' '\x04' -- "$BLK_IO" \
        --image-opts driver=null-co,size=1M,latency-ns=1000000000
    assert_success
    assert_line --regexp $'^blk-io> len\r\x1b\\[Kread 512/512 bytes at offset 0$'
    assert_line --regexp $'^\rblk-io> len\x1b\\[Kgth$'
    assert_line "1 MiB"
}

@test "tty: Ctrl-C at the prompt closes the image and exits" {
    run python3 "$PTY" 'write -q -P 9 0 4k\r' '\x03' -- "$BLK_IO" -f raw "$IMG"
    assert_success
    assert_line "[exit 0]"
    run "$BLK_IO" -f raw -c 'read -P 9 0 4k' "$IMG"
    assert_success
}

@test "pipe: SIGINT at the prompt closes the image and exits cleanly" {
    { echo 'write -q -P 5 0 4k'; sleep 3; } | "$BLK_IO" -f raw "$IMG" > "$BATS_TEST_TMPDIR/out" 2>&1 &
    sleep 0.5
    pid=$(pgrep -n -f "$BLK_IO -f raw $IMG")
    kill -INT "$pid"
    rc=0
    wait %1 || rc=$?
    [ "$rc" -eq 0 ]
    # it ended at the signal, not at EOF 3 s later
    ! kill -0 "$pid" 2>/dev/null
    run "$BLK_IO" -f raw -c 'read -P 5 0 4k' "$IMG"
    assert_success
}

qmp() {
    printf '%s\n' "$@" | "$BLK_IO" --qmp
}

@test "qmp: greeting, capabilities, a command with an id" {
    run qmp '{"execute":"qmp_capabilities"}' '{"execute":"query-version","id":7}'
    assert_success
    assert_line --index 0 --regexp '^\{"QMP":\{"version":\{"qemu":\{"micro":[0-9]+,"minor":[0-9]+,"major":[0-9]+\},"package":"blk-io [^"]*"\},"capabilities":\[\]\}\}$'
    assert_line --index 1 '{"return":{}}'
    assert_line --index 2 --regexp '^\{"return":\{"qemu":.*\},"id":7\}$'
}

@test "qmp: commands before qmp_capabilities are refused" {
    run qmp '{"execute":"query-commands"}'
    assert_line --index 1 '{"error":{"class":"CommandNotFound","desc":"Expecting capabilities negotiation with '"'"'qmp_capabilities'"'"'"}}'
}

@test "qmp: errors (unknown command, bad JSON, no execute, bad arguments) and the session goes on" {
    run qmp '{"execute":"qmp_capabilities"}' '{"execute":"bogus","id":"a"}' 'not json' '{"id":1}' \
        '{"execute":"blockdev-add","arguments":{"driver":"null-co"}}' \
        '{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n","size":"big"}}' \
        '{"execute":"blockdev-del","arguments":{"node-name":"nope"}}' \
        '{"execute":"query-named-block-nodes"}'
    assert_success
    assert_line --index 2 '{"error":{"class":"CommandNotFound","desc":"The command bogus has not been found"},"id":"a"}'
    assert_line --index 3 --partial '{"error":{"class":"GenericError","desc":'
    assert_line --index 4 '{"error":{"class":"GenericError","desc":"QMP input lacks member '"'"'execute'"'"'"},"id":1}'
    assert_line --index 5 '{"error":{"class":"GenericError","desc":"'"'"'node-name'"'"' must be specified for the root node"}}'
    assert_line --index 6 --partial "'size'"
    assert_line --index 7 --partial "Failed to find node with node-name='nope'"
    assert_line --index 8 '{"return":[]}'
}

@test "qmp: blockdev-add, human-monitor-command I/O on it, query, blockdev-del, quit" {
    run qmp '{"execute":"qmp_capabilities"}' \
        '{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0","size":1048576,"read-zeroes":true}}' \
        '{"execute":"human-monitor-command","arguments":{"command-line":"select n0"}}' \
        '{"execute":"human-monitor-command","arguments":{"command-line":"read -P 0 0 4k"},"id":2}' \
        '{"execute":"query-named-block-nodes"}' \
        '{"execute":"human-monitor-command","arguments":{"command-line":"close"}}' \
        '{"execute":"blockdev-del","arguments":{"node-name":"n0"}}' \
        '{"execute":"quit"}'
    assert_success
    assert_line --index 2 '{"return":{}}'
    assert_line --index 4 --regexp '^\{"return":"read 4096/4096 bytes at offset 0\\n4 KiB, 1 ops; .*\\n","id":2\}$'
    assert_line --index 5 --partial '"node-name":"n0","ro":false,"drv":"null-co","backing_file_depth":0'
    assert_line --index 7 '{"return":{}}'
    assert_line --index 8 '{"return":{}}'
    assert_line --index 9 --regexp '^\{"event":"SHUTDOWN","timestamp":\{"seconds":[0-9]+,"microseconds":[0-9]+\}\}$'
}

@test "qmp: output of an aio request completing later arrives as an event" {
    run bash -c "{ printf '%s\n' '{\"execute\":\"qmp_capabilities\"}' \
        '{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"aio_read 0 512\"}}'; sleep 0.5; } |
        '$BLK_IO' --qmp --image-opts '$NULLSLOW'"
    assert_success
    assert_line --index 2 '{"return":""}'
    assert_line --index 3 --regexp '^\{"event":"BLK_IO_OUTPUT","data":\{"text":"read 512/512 bytes at offset 0\\n.*"\},"timestamp":'
}
