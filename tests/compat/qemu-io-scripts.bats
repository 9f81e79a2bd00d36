# qemu-io-scripts.bats - each script in tests/compat/qemu-io/ runs with
# qemu-io 7.2 and with blk-io; the transcripts (stdout, stderr, exit
# status; timing numbers filtered out) must be identical.
load ../helpers

check_script() {
    local s=$BATS_TEST_DIRNAME/qemu-io/$1.txt
    local run=$BATS_TEST_DIRNAME/qemu-io/run
    "$run" qemu-io "$s" >"$BATS_TEST_TMPDIR/qemu.out" 2>&1
    "$run" "$BLK_IO" "$s" >"$BATS_TEST_TMPDIR/blk.out" 2>&1
    run diff -u "$BATS_TEST_TMPDIR/qemu.out" "$BATS_TEST_TMPDIR/blk.out"
    assert_success
}

@test "qemu-io 001-rw-whole-image: iotest 001: read the whole image, rewrite it with a pattern, verify it (raw and qcow2)" { check_script 001-rw-whole-image; }
@test "qemu-io 002-aio-whole-image: iotest 002: asynchronous read and write of the whole image, then verify" { check_script 002-aio-whole-image; }
@test "qemu-io 003-readv-writev: iotest 003: vectored reads and writes with several buffers per request" { check_script 003-readv-writev; }
@test "qemu-io 004-out-of-bounds: iotest 004: reads and writes past the end of the image fail, inside succeed" { check_script 004-out-of-bounds; }
@test "qemu-io 005-large-image: iotest 005: a 5 TB image: I/O at its very end works, past it fails" { check_script 005-large-image; }
@test "qemu-io 008-aio-mixed: iotest 008: aio reads and writes of the whole image, one at a time" { check_script 008-aio-mixed; }
@test "qemu-io 010-qcow2-partial-cluster: iotest 010/011: writes smaller than a cluster, the rest of the cluster reads as zero" { check_script 010-qcow2-partial-cluster; }
@test "qemu-io 013-offsets-suffixes: qemu-io number syntax: suffixes, hex, fractions, errors" { check_script 013-offsets-suffixes; }
@test "qemu-io 014-hexdump: read -v: the hex dump layout (offsets, partial lines, printable characters)" { check_script 014-hexdump; }
@test "qemu-io 015-pattern-verify: read -P with -s/-l verification windows, and their errors" { check_script 015-pattern-verify; }
@test "qemu-io 016-io-after-eof: iotest 016: I/O just inside and after the end of an image that is not a multiple of 512" { check_script 016-io-after-eof; }
@test "qemu-io 020-write-options: write: option combinations and their errors" { check_script 020-write-options; }
@test "qemu-io 021-write-zeroes: write -z (with -u) on raw and qcow2 reads back as zeroes; the data around it stays" { check_script 021-write-zeroes; }
@test "qemu-io 022-write-from-file: write -s: the buffer comes from a file, repeated to fill the length" { check_script 022-write-from-file; }
@test "qemu-io 023-readv-args: readv/writev argument checks" { check_script 023-readv-args; }
@test "qemu-io 024-discard: discard: reports, arguments, and the data that reads back on raw" { check_script 024-discard; }
@test "qemu-io 025-truncate: iotest 025 (in part): growing and shrinking with truncate, then length" { check_script 025-truncate; }
@test "qemu-io 026-alloc: alloc: counts, clamping at the end, and errors" { check_script 026-alloc; }
@test "qemu-io 027-qcow2-sub-cluster: iotest 027: sub-cluster allocating writes zero the rest of the cluster" { check_script 027-qcow2-sub-cluster; }
@test "qemu-io 030-qcow2-map: map and alloc on qcow2: data, zero and unallocated clusters" { check_script 030-qcow2-map; }
@test "qemu-io 031-raw-map: map and alloc on raw: one allocated extent" { check_script 031-raw-map; }
@test "qemu-io 032-qcow2-aio-extend: iotest 032: aio writes that allocate clusters, then verify" { check_script 032-qcow2-aio-extend; }
@test "qemu-io 033-unaligned: iotest 033 (in our words): writes and zero writes at unaligned offsets, verified around" { check_script 033-unaligned; }
@test "qemu-io 034-qcow2-backing: iotest 034 (in part): an overlay reads its backing file where it has no data" { check_script 034-qcow2-backing; }
@test "qemu-io 040-info: info on raw and qcow2 (qcow2 v3 defaults, compat=0.10, 4k clusters, lazy refcounts)" { check_script 040-info; }
@test "qemu-io 041-length: length prints the size in qemu-io's units" { check_script 041-length; }
@test "qemu-io 042-help: help CMD: every qemu-io command blk-io shares prints the same text" { check_script 042-help; }
@test "qemu-io 043-unknown-and-counts: unknown commands, aliases and argument counts" { check_script 043-unknown-and-counts; }
@test "qemu-io 044-getopt-errors: invalid and incomplete options print getopt's message and the usage line" { check_script 044-getopt-errors; }
@test "qemu-io 045-no-file: commands that need an image say so when none is open" { check_script 045-no-file; }
@test "qemu-io 046-read-only: -r: writing commands fail with \"Block node is read-only\", reads work" { check_script 046-read-only; }
@test "qemu-io 047-open-close: open and close inside a session" { check_script 047-open-close; }
@test "qemu-io 048-open-errors: open failures on the command line and in sessions" { check_script 048-open-errors; }
@test "qemu-io 049-quit: quit stops the remaining -c commands; the exit status keeps earlier failures" { check_script 049-quit; }
@test "qemu-io 050-image-opts: --image-opts and json: filenames" { check_script 050-image-opts; }
@test "qemu-io 051-null-co: null-co: reads, writes and map on a null device" { check_script 051-null-co; }
@test "qemu-io 052-snapshot: iotest 052: writes in snapshot mode (-s) do not reach the image" { check_script 052-snapshot; }
@test "qemu-io 053-aio-args: aio_read/aio_write options: -i, -z, -u, -q, -C, -v, and their errors" { check_script 053-aio-args; }
@test "qemu-io 054-aio-at-exit: aio requests still in flight when the commands end complete before exit" { check_script 054-aio-at-exit; }
@test "qemu-io 055-shell-pipe: the shell through a pipe: prompts, a bad command then good ones, EOF" { check_script 055-shell-pipe; }
@test "qemu-io 056-reopen: reopen: read-only and back, cache modes, errors" { check_script 056-reopen; }
@test "qemu-io 057-qcow2-compressed: write -c on qcow2: whole clusters only" { check_script 057-qcow2-compressed; }
@test "qemu-io 058-cache-modes: -n and -t cache modes work for I/O" { check_script 058-cache-modes; }
@test "qemu-io 059-discard-modes: -d discard modes (raw: unmap punches holes that read back as zeroes)" { check_script 059-discard-modes; }
@test "qemu-io 060-usage: the command line: extra arguments and invalid options fail (exit status only:" { check_script 060-usage; }
@test "qemu-io 061-misalign: -m misaligns buffers; I/O still works, also with -n" { check_script 061-misalign; }
@test "qemu-io 062-probe-raw: a probed raw image prints qemu's warning" { check_script 062-probe-raw; }
@test "qemu-io 063-zero-length: zero-length requests" { check_script 063-zero-length; }
@test "qemu-io 064-qcow2-overwrite: overwriting allocated qcow2 clusters keeps their neighbours" { check_script 064-qcow2-overwrite; }
@test "qemu-io 065-csv: -C: the machine-readable statistics line" { check_script 065-csv; }
@test "qemu-io 066-qcow2-discard: iotest 066 (in part): discard on qcow2, then the data reads as zero" { check_script 066-qcow2-discard; }
@test "qemu-io 067-qcow2-length-info: qcow2 images of odd sizes: length and I/O at the end" { check_script 067-qcow2-length-info; }
@test "qemu-io 068-flush: flush and aio_flush with nothing in flight" { check_script 068-flush; }
@test "qemu-io 069-sigraise: sigraise: argument errors (a real signal would end the program)" { check_script 069-sigraise; }
@test "qemu-io 070-large-requests: requests up to the 2 GiB - 512 limit" { check_script 070-large-requests; }
@test "qemu-io 072-qcow2-zero-clusters: zero writes over allocated qcow2 clusters, whole and partial, with and without -u" { check_script 072-qcow2-zero-clusters; }
@test "qemu-io 073-aio-sequence: aio writes then reads of the same range, each flushed before the next" { check_script 073-aio-sequence; }
