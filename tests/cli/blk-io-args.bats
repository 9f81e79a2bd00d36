# blk-io-args.bats - bad arguments: missing, extra, negative, misaligned
# or out of range; each gives qemu-io 7.2's message, the session goes on,
# and the image is not changed.  Writes touch exactly their range.
load ../helpers

setup() {
    IMG=$BATS_TEST_TMPDIR/t.img
    qemu-img create -q -f raw "$IMG" 1M
    qemu-io -f raw -c 'write -q -P 0x5a 0 1M' "$IMG"
    SUM=$(md5sum < "$IMG")
}

# bad CMD MESSAGE: CMD fails with MESSAGE (stdout or stderr), `length` still
# runs afterwards, and the image is unchanged.
bad() {
    run "$BLK_IO" -f raw -c "$1" -c length "$IMG"
    [ "$status" -eq 1 ] || { echo "exit status $status for '$1'"; return 1; }
    assert_output --partial "$2"
    assert_line "1 MiB"
    [ "$(md5sum < "$IMG")" = "$SUM" ] || { echo "image changed by '$1'"; return 1; }
}

@test "args: missing arguments" {
    bad 'read' 'bad argument count 0 to read, expected at least 2 arguments'
    bad 'write 0' 'bad argument count 1 to write, expected at least 2 arguments'
    bad 'readv 0' 'bad argument count 1 to readv, expected at least 2 arguments'
    bad 'writev 0' 'bad argument count 1 to writev, expected at least 2 arguments'
    bad 'aio_write 0' 'bad argument count 1 to aio_write, expected at least 2 arguments'
    bad 'discard 0' 'bad argument count 1 to discard, expected at least 2 arguments'
    bad 'truncate' 'bad argument count 0 to truncate, expected between 1 and 3 arguments'
    bad 'alloc' 'bad argument count 0 to alloc, expected between 1 and 2 arguments'
    bad 'sleep' 'bad argument count 0 to sleep, expected 1 arguments'
    bad 'write 0 1 -P' "write: option requires an argument -- 'P'"
}

@test "args: extra arguments" {
    bad 'read 0 1 2' 'read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset'
    bad 'write 0 1 2' 'write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes'
    bad 'discard 0 1 2' 'discard [-Cq] off len -- discards'
    bad 'length 1' 'bad argument count 1 to length, expected 0 arguments'
    bad 'map 1' 'bad argument count 1 to map, expected 0 arguments'
    bad 'alloc 0 1 2' 'bad argument count 3 to alloc, expected between 1 and 2 arguments'
    bad 'aio_write -z 0 512 512' '-z supports only a single length parameter'
    bad 'help a b' 'bad argument count 2 to help, expected between 0 and 1 arguments'
}

@test "args: negative numbers" {
    bad 'read -1 1' "read: invalid option -- '1'"
    bad 'write 0 -1' "write: invalid option -- '1'"
    bad 'alloc -1' 'Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- -1'
    bad 'sleep -1' '-1 is not a valid number'
    bad 'write -P -1 0 1' '-1 is not a valid pattern byte'
    bad 'readv 0 512 -0' "readv: invalid option -- '0'"
}

@test "args: malformed and too large numbers" {
    bad 'write abc 1' 'Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- abc'
    bad 'write 0 1.5' 'Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- 1.5'
    bad 'write 16E 1' 'Parsing error: argument too large -- 16E'
    bad 'write 0 3G' 'length cannot exceed 2147483136 without -n, given 3G'
    bad 'read 0 3G' 'length cannot exceed 2147483136, given 3G'
    bad 'discard 0 3G' 'length cannot exceed 2147483136, given 3G'
    bad 'writev 0 2G 2G' "Argument '2G' exceeds maximum size 2147483136"
    bad 'writev 0 1G 1G 1G' 'The total number of bytes exceed the maximum size 2147483136'
    bad 'write -P 256 0 1' '256 is not a valid pattern byte'
}

@test "args: misaligned where alignment is required" {
    bad 'write -c 1 512' "1 is not a sector-aligned value for 'offset'"
    bad 'write -c 0 511' "511 is not a sector-aligned value for 'count'"
    bad 'write -b 512 1' "1 is not a sector-aligned value for 'count'"
    bad 'read -b 3 512' "3 is not a sector-aligned value for 'offset'"
}

@test "args: out of range requests fail and write nothing" {
    bad 'write 1M 1' 'write failed: Input/output error'
    bad 'write 1023k 2k' 'write failed: Input/output error'
    bad 'writev 1023k 1k 1k' 'writev failed: Input/output error'
    bad 'write -z 1M 512' 'write failed: Input/output error'
    bad 'discard 2M 512' 'discard failed: Input/output error'
    bad 'read -P 0x5a 1M 1' 'read failed: Input/output error'
}

@test "args: conflicting options" {
    bad 'write -P 1 -z 0 1' 'Only one of -z, -P, and -s can be specified at the same time'
    bad 'write -u 0 1' '-u requires -z to be specified'
    bad 'write -n 0 1' '-n requires -z to be specified'
    bad 'write -b -z 0 512' '-b and -z cannot be specified at the same time'
    bad 'read -s 1 0 8' 'read [-abCqv]'
    bad 'read -P 1 -s 9 0 8' 'pattern verification range exceeds end of read data'
    bad 'reopen -r -w' 'Only one -r/-w option may be given'
    bad 'truncate -m bogus 1M' "Invalid preallocation mode 'bogus'"
}

# write at off len on FMT, then every byte outside reads as before
check_range() {
    local fmt=$1 off=$2 len=$3 img=$BATS_TEST_TMPDIR/r.$1
    qemu-img create -q -f "$fmt" "$img" 256k
    qemu-io -f "$fmt" -c 'write -q -P 0x11 0 256k' "$img"
    run "$BLK_IO" -f "$fmt" -c "write -q -P 0x22 $off $len" "$img"
    assert_success
    run qemu-io -f "$fmt" -c "read -q -P 0x11 0 $off" -c "read -q -P 0x22 $off $len" \
        -c "read -q -P 0x11 $((off + len)) $((262144 - off - len))" "$img"
    assert_success
    assert_output ""
}

@test "args: unaligned writes touch exactly their bytes (raw and qcow2)" {
    for fmt in raw qcow2; do
        check_range $fmt 1 1
        check_range $fmt 511 2
        check_range $fmt 4095 4098
        check_range $fmt 65535 65538
        check_range $fmt 100000 3
    done
}
