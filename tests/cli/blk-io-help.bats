# blk-io-help.bats - the command table, `help` and the man page agree:
# every command `blk-io -c help` lists has an =item in man/blk-io.1.pod,
# and every command =item there is a real command.
load ../helpers

help_commands() {
    "$BLK_IO" -c help | sed -n 's/^\([a-z][a-z_-]*\) .*-- .*/\1/p'
}

@test "help: lists the qemu-io commands and blk's graph commands" {
    run help_commands
    assert_success
    for c in read write aio_read aio_flush map alloc open reopen blockdev-add graph select; do
        assert_line "$c"
    done
}

@test "help: ends with qemu-io's hint line" {
    run "$BLK_IO" -c help
    assert_success
    assert_line --index -1 "Use 'help commandname' for extended help."
}

@test "help: every command in the table has an =item in blk-io(1)" {
    local name missing=
    for name in $(help_commands); do
        grep -q "^=item B<$name>" "$REPO/man/blk-io.1.pod" || missing="$missing $name"
    done
    [ -z "$missing" ] || { echo "not in man/blk-io.1.pod:$missing"; return 1; }
}

@test "help: every command =item in blk-io(1) is a real command" {
    local name extra= cmds
    cmds=" $(help_commands | tr '\n' ' ') "
    for name in $(sed -n '/^=head1 COMMANDS/,/^=head1/s/^=item B<\([a-z][a-z_-]*\)>.*/\1/p' "$REPO/man/blk-io.1.pod"); do
        case "$cmds" in *" $name "*) ;; *) extra="$extra $name" ;; esac
    done
    [ -z "$extra" ] || { echo "documented but not a command:$extra"; return 1; }
}

@test "help: help CMD prints the command's line and long help" {
    run "$BLK_IO" -c 'help blockdev-add'
    assert_success
    assert_line --index 0 "blockdev-add OPTIONS -- opens a block node (keyval or JSON BlockdevOptions)"
    assert_output --partial "node-name"
}

@test "help: -h prints the options, -V the version" {
    run "$BLK_IO" -h
    assert_success
    assert_line --index 0 "Usage: blk-io [OPTIONS]... [-c STRING]... [file]"
    run "$BLK_IO" -V
    assert_success
    assert_output --regexp '^blk-io version [0-9]'
}

@test "help: the man page passes podchecker" {
    run podchecker -warnings "$REPO/man/blk-io.1.pod"
    assert_success
}
