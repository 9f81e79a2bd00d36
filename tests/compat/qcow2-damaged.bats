# qcow2-damaged.bats - the corpus of damaged qcow2 images
# (tests/damaged/make-corpus.sh, generated into a temporary directory):
# for each image qemu-img 7.2 and blk-img must agree on whether `info`
# opens it (and on the one-line error, program name aside), on the exit
# status of `check` and of `check -r all` (and of a check after it),
# qemu-io and blk-io must agree on whether reading the first 128 KiB
# works, and blk's read-only commands must leave the file untouched and
# never crash.
load ../helpers

setup_file() {
    export CORPUS=$BATS_FILE_TMPDIR/corpus
    "$BATS_TEST_DIRNAME/../damaged/make-corpus.sh" "$CORPUS" >/dev/null
}

# The first stderr line of a command, with the program and path unified.
first_error() {
    "$@" 2>&1 >/dev/null | head -n 1 |
        sed -e 's/^qemu-img: /PROG: /' -e 's/^blk-img: /PROG: /' \
            -e "s#$BATS_TEST_TMPDIR/[qb]\.qcow2#IMG#g"
}

compare_image() {
    local name=$1 img=$CORPUS/$1.qcow2
    local q=$BATS_TEST_TMPDIR/q.qcow2 b=$BATS_TEST_TMPDIR/b.qcow2
    local sum qrc brc qmsg bmsg

    cp "$img" "$q"
    cp "$img" "$b"
    sum=$(sha256sum <"$b")

    # info: same verdict, same message
    qemu-img info -f qcow2 "$q" >/dev/null 2>&1 && qrc=0 || qrc=$?
    "$BLK_IMG" info -f qcow2 "$b" >/dev/null 2>&1 && brc=0 || brc=$?
    [ "$brc" -lt 128 ]
    assert_equal "info exit $brc" "info exit $qrc"
    qmsg=$(first_error qemu-img info -f qcow2 "$q")
    bmsg=$(first_error "$BLK_IMG" info -f qcow2 "$b")
    assert_equal "$bmsg" "$qmsg"

    # check: same exit status
    qemu-img check -f qcow2 "$q" >/dev/null 2>&1 && qrc=0 || qrc=$?
    "$BLK_IMG" check -f qcow2 "$b" >/dev/null 2>&1 && brc=0 || brc=$?
    [ "$brc" -lt 128 ]
    assert_equal "check exit $brc" "check exit $qrc"

    # reading: both succeed or both fail (read-only, so nothing changes)
    qemu-io -r -f qcow2 -c 'read 0 64k' -c 'read 64k 64k' "$q" >/dev/null 2>&1 &&
        qrc=0 || qrc=$?
    "$BLK_IO" -r -f qcow2 -c 'read 0 64k' -c 'read 64k 64k' "$b" >/dev/null 2>&1 &&
        brc=0 || brc=$?
    [ "$brc" -lt 128 ]
    assert_equal "read exit $brc" "read exit $qrc"

    # nothing above wrote to blk's copy
    assert_equal "$(sha256sum <"$b")" "$sum"

    # repair: same exit status, and the same verdict of QEMU's check after it
    if [ "${2:-}" != "no-repair" ]; then
        qemu-img check -f qcow2 -r all "$q" >/dev/null 2>&1 && qrc=0 || qrc=$?
        "$BLK_IMG" check -f qcow2 -r all "$b" >/dev/null 2>&1 && brc=0 || brc=$?
        [ "$brc" -lt 128 ]
        assert_equal "repair exit $brc" "repair exit $qrc"
        qemu-img check -f qcow2 "$q" >/dev/null 2>&1 && qrc=0 || qrc=$?
        qemu-img check -f qcow2 "$b" >/dev/null 2>&1 && brc=0 || brc=$?
        assert_equal "check after repair $brc" "check after repair $qrc"
    fi
}

@test "damaged truncated-header: a header shorter than 72 bytes is refused" { compare_image truncated-header; }
@test "damaged bad-magic: a wrong magic is refused with -f qcow2" { compare_image bad-magic; }
@test "damaged version-1: version 1 is refused" { compare_image version-1; }
@test "damaged version-4: version 4 is refused" { compare_image version-4; }
@test "damaged cluster-bits-8: cluster_bits 8 (too small) is refused" { compare_image cluster-bits-8; }
@test "damaged cluster-bits-22: cluster_bits 22 (too big) is refused" { compare_image cluster-bits-22; }
@test "damaged huge-l1-size: an L1 size over 32 MiB is refused" { compare_image huge-l1-size; }
@test "damaged l1-misaligned: a misaligned L1 table offset is refused" { compare_image l1-misaligned; }
@test "damaged l1-beyond-eof: an L1 table past the end of the file opens; check reports it" { compare_image l1-beyond-eof; }
@test "damaged reftable-huge: a refcount table over 8 MiB is refused" { compare_image reftable-huge; }
@test "damaged reftable-misaligned: a misaligned refcount table offset is refused" { compare_image reftable-misaligned; }
@test "damaged reftable-beyond-eof: a refcount table past the end of the file: check finds the damage" { compare_image reftable-beyond-eof; }
@test "damaged unknown-incompat: an unknown incompatible feature bit is refused with its name" { compare_image unknown-incompat; }
@test "damaged corrupt-bit: the corrupt bit: opens read-only, check works and says it is clean" { compare_image corrupt-bit; }
@test "damaged dirty-bit: the dirty bit without damage: opens, check is clean" { compare_image dirty-bit; }
@test "damaged bad-ext-length: a header extension longer than the cluster is refused" { compare_image bad-ext-length; }
@test "damaged backing-offset-beyond: a backing file name offset beyond the first cluster is refused" { compare_image backing-offset-beyond; }
@test "damaged backing-name-too-long: a backing file name longer than 1023 bytes is refused" { compare_image backing-name-too-long; }
@test "damaged l2-misaligned: a misaligned data cluster offset: reads fail, check reports it" { compare_image l2-misaligned; }
@test "damaged l2-into-l1: an L2 entry pointing at the L1 table: check reports the double use" { compare_image l2-into-l1; }
@test "damaged l2-into-reftable: an L2 entry pointing at the refcount table: check reports the double use" { compare_image l2-into-reftable; }
@test "damaged l2-beyond-eof: an L2 entry past the end of the file: check reports it" { compare_image l2-beyond-eof; }
@test "damaged l2-reserved-bits: an L2 entry with reserved bits set: check reports it" { compare_image l2-reserved-bits; }
@test "damaged l1-into-header: an L1 entry pointing at the refcount table: check reports the double use" { compare_image l1-into-header; }
@test "damaged l1-entry-misaligned: a misaligned L2 table offset: reads fail, check reports it" { compare_image l1-entry-misaligned; }
@test "damaged compressed-beyond-eof: a compressed cluster past the end of the file: reads fail, check reports it" { compare_image compressed-beyond-eof; }
@test "damaged zeroed-refcounts: a zeroed refcount block: check needs a rebuild" { compare_image zeroed-refcounts; }
@test "damaged refcount-data-zero: a data cluster with refcount 0: check reports the corruption" { compare_image refcount-data-zero; }
@test "damaged refcount-leak: a leaked cluster: check exits 3" { compare_image refcount-leak; }
@test "damaged refcount-too-high: a refcount of 2 for a single reference: leak and OFLAG_COPIED error" { compare_image refcount-too-high; }
@test "damaged reftable-entry-misaligned: a misaligned refcount block offset: check fails like QEMU's" { compare_image reftable-entry-misaligned; }
@test "damaged snapshot-ok: an image with a snapshot is clean" { compare_image snapshot-ok; }
@test "damaged snapshot-offset-misaligned: a misaligned snapshot table offset is refused" { compare_image snapshot-offset-misaligned; }
@test "damaged snapshot-nb-huge: too many snapshots are refused" { compare_image snapshot-nb-huge no-repair; }
@test "damaged snapshot-table-beyond-eof: a snapshot table past the end of the file: incomplete entry reported" { compare_image snapshot-table-beyond-eof; }

@test "damaged snapshot-nb-huge: check -r all leaves the image untouched (QEMU half-repairs it)" {
    local b=$BATS_TEST_TMPDIR/b.qcow2 q=$BATS_TEST_TMPDIR/q.qcow2
    cp "$CORPUS/snapshot-nb-huge.qcow2" "$b"
    cp "$CORPUS/snapshot-nb-huge.qcow2" "$q"
    local sum
    sum=$(sha256sum <"$b")
    run "$BLK_IMG" check -r all "$b"
    assert_failure 1
    assert_equal "$(sha256sum <"$b")" "$sum"
    # QEMU 7.2 discards the overhanging snapshots, then fails and leaves errors
    run qemu-img check -r all "$q"
    assert_failure 1
    run qemu-img check "$q"
    assert_failure 2
}

@test "damaged snapshot-extra-too-big: too much snapshot extra data is refused, check -r all cuts it" { compare_image snapshot-extra-too-big; }
@test "damaged autoclear-unknown-snapshot: an unknown autoclear bit is harmless" { compare_image autoclear-unknown-snapshot no-repair; }

@test "damaged autoclear-unknown-snapshot: check -r all keeps the snapshot (QEMU 7.2 drops it)" {
    local b=$BATS_TEST_TMPDIR/b.qcow2 q=$BATS_TEST_TMPDIR/q.qcow2
    cp "$CORPUS/autoclear-unknown-snapshot.qcow2" "$b"
    cp "$CORPUS/autoclear-unknown-snapshot.qcow2" "$q"
    # QEMU's open for check rewrites the header without the snapshot table
    # it did not read, then frees the snapshot's clusters as leaks
    qemu-img check -r all "$q" >/dev/null 2>&1
    run qemu-img snapshot -l "$q"
    refute_output --partial "snap"
    run "$BLK_IMG" check -r all "$b"
    assert_success
    run qemu-img snapshot -l "$b"
    assert_output --partial "snap"
    run qemu-img check "$b"
    assert_success
}

@test "damaged: every repaired image that QEMU can repair passes qemu-img check after blk-img check -r all" {
    local n b=$BATS_TEST_TMPDIR/b.qcow2
    for n in refcount-data-zero refcount-leak refcount-too-high zeroed-refcounts \
             reftable-beyond-eof l2-into-l1 l2-into-reftable l1-into-header \
             snapshot-table-beyond-eof dirty-bit corrupt-bit; do
        cp "$CORPUS/$n.qcow2" "$b"
        "$BLK_IMG" check -r all "$b" >/dev/null 2>&1 || true
        run qemu-img check "$b"
        assert_success
    done
}
