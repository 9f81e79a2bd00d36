#!/usr/bin/env bats
# blk-img-help.bats - `blk-img --help` and the man page agree: every
# command in the command table has its =item in man/blk-img.1.pod.

load ../helpers

# The command names of the "Commands:" list in blk-img --help.
help_commands() {
    "$BLK_IMG" --help | sed -n '/^Commands:$/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'
}

@test "help: --help lists at least one command" {
    run help_commands
    assert_success
    assert_line keyval
}

@test "help: every command in --help has an =item in blk-img(1)" {
    local name missing=
    for name in $(help_commands); do
        grep -q "^=item B<$name>" "$REPO/man/blk-img.1.pod" || missing="$missing $name"
    done
    [ -z "$missing" ] || { echo "not in man/blk-img.1.pod:$missing"; return 1; }
}

@test "help: every command =item in blk-img(1) is a real command" {
    local name extra= cmds
    cmds=" $(help_commands | tr '\n' ' ') "
    for name in $(sed -n '/^=head1 COMMANDS/,/^=head1/s/^=item B<\([a-z][a-z-]*\)>.*/\1/p' "$REPO/man/blk-img.1.pod"); do
        case "$cmds" in *" $name "*) ;; *) extra="$extra $name" ;; esac
    done
    [ -z "$extra" ] || { echo "documented but not in --help:$extra"; return 1; }
}
