#!/usr/bin/env bats
# blk-img-create.bats - `blk-img create`: qemu-img 7.2's Formatting line,
# -o names and help, size and backing rules, error texts and exit codes.
# Golden outputs are qemu-img's (BLK_GOLDEN_GEN=1 remakes them).

load ../helpers
load blk-img-images

setup() {
    cd "$BATS_TEST_TMPDIR"
}

@test "create: raw prints the Formatting line with the size in bytes" {
    golden create-raw create -f raw a.raw 1G
    [ "$(stat -c %s a.raw)" = 1073741824 ]
}

@test "create: the default format is raw" {
    golden create-default create a 1k
}

@test "create: file format" {
    golden create-file create -f file a 1M
}

@test "create: raw lists the file options in QEMU's order" {
    golden create-raw-opts create -f raw -o nocow=on,extent_size_hint=1M,preallocation=falloc a 1M
}

@test "create: raw preallocation=full allocates the file" {
    golden create-raw-full create -f raw -o preallocation=full a 1M
    [ "$(stat -c %b a)" -ge 2048 ]
}

@test "create: raw refuses preallocation=metadata after the Formatting line" {
    golden create-raw-metadata create -f raw -o preallocation=metadata a 1M
}

@test "create: qcow2 prints defaults in QEMU's option order" {
    golden create-qcow2 create -f qcow2 a.qcow2 1G
}

@test "create: qcow2 with every option set" {
    golden create-qcow2-all create -f qcow2 -o compat=1.1,lazy_refcounts=on,extended_l2=on,compression_type=zstd,preallocation=metadata,refcount_bits=64,cluster_size=128k full.qcow2 10M
}

@test "create: compat=0.10 is printed as given" {
    golden create-qcow2-v2 create -f qcow2 -o compat=0.10 v2.qcow2 1M
}

@test "create: sizes and numbers are normalized, booleans printed as given" {
    golden create-qcow2-norm create -f qcow2 -o lazy_refcounts=yes,cluster_size=0x1000,refcount_bits=0x10 a 1M
}

@test "create: several -o are joined, the last value wins" {
    golden create-qcow2-multi create -f qcow2 -o cluster_size=64k,cluster_size=4k -o lazy_refcounts=on a 1M
}

@test "create: -o size instead of the size argument" {
    golden create-qcow2-osize create -f qcow2 -o size=1.5k a
}

@test "create: qcow2 size is rounded up to a sector" {
    run "$BLK_IMG" create -q -f qcow2 a 1
    assert_success
    run "$BLK_IMG" info --output=json a
    assert_line --partial '"virtual-size": 512,'
}

@test "create: -q prints nothing" {
    golden create-quiet create -q -f qcow2 a 1M
}

@test "create: -o help for raw without a filename" {
    golden create-help-raw create -f raw -o help
}

@test "create: -o help with a filename adds the file options" {
    golden create-help-raw-file create -f raw -o help a.raw
}

@test "create: -o help for file" {
    golden create-help-file create -f file -o help a
}

@test "create: -o help for qcow2 lists every option but encryption" {
    golden_blk create-help-qcow2 create -f qcow2 -o help
}

@test "create: -o help for qcow2 with a filename" {
    golden_blk create-help-qcow2-file create -f qcow2 -o ? a.qcow2
}

@test "create: an unknown -o key is refused before Formatting" {
    golden create-err-bogus create -f qcow2 -o bogus=1 a 1M
}

@test "create: a -o key of another format is refused" {
    golden create-err-other create -f raw -o cluster_size=4k a 1M
}

@test "create: a bad size in -o names the -o key" {
    golden create-err-osize create -f qcow2 -o cluster_size=abc a 1M
}

@test "create: a bad size argument" {
    golden create-err-size create -f qcow2 a 1Q
}

@test "create: a fractional byte count is refused" {
    golden create-err-frac create -f qcow2 a 1.5
}

@test "create: the size given twice" {
    golden create-err-twice create -f qcow2 -o size=2M a 1M
}

@test "create: no size" {
    golden create-err-nosize create -f qcow2 a
}

@test "create: unknown format" {
    golden create-err-fmt create -f foo a 1M
}

@test "create: too many arguments" {
    golden create-err-args create -f qcow2 a 1G extra
}

@test "create: an unknown compat level is refused after Formatting" {
    golden create-err-compat create -f qcow2 -o compat=0.9 a 1M
}

@test "create: cluster size must be a power of two" {
    golden create-err-cluster create -f qcow2 -o cluster_size=1000 a 1M
}

@test "create: cluster size at most 2M" {
    golden create-err-cluster-big create -f qcow2 -o cluster_size=4M a 1M
}

@test "create: refcount_bits must be a power of two up to 64" {
    golden create-err-refbits create -f qcow2 -o refcount_bits=3 a 1M
}

@test "create: compat=v2 only with 16-bit refcounts" {
    golden create-err-v2-refbits create -f qcow2 -o compat=v2,cluster_size=4k,refcount_bits=1 a 1M
}

@test "create: compat=v2 without lazy refcounts" {
    golden create-err-v2-lazy create -f qcow2 -o compat=v2,lazy_refcounts=on a 1M
}

@test "create: compat=v2 only with zlib" {
    golden create-err-v2-zstd create -f qcow2 -o compat=v2,compression_type=zstd a 1M
}

@test "create: compat=v2 without extended L2" {
    golden create-err-v2-extl2 create -f qcow2 -o compat=v2,extended_l2=on a 1M
}

@test "create: extended L2 needs 16k clusters" {
    golden create-err-extl2-small create -f qcow2 -o extended_l2=on,cluster_size=4k a 1M
}

@test "create: data_file_raw needs data_file" {
    golden create-err-dfraw create -f qcow2 -o data_file_raw=on a 1M
}

@test "create: backing_fmt needs backing_file" {
    golden create-err-bfmt create -f qcow2 -o backing_fmt=qcow2 a 1M
}

@test "create: raw has no backing file" {
    golden create-err-raw-backing create -f raw -b x -F raw a 1M
}

@test "create: encryption is refused" {
    run "$BLK_IMG" create -f qcow2 -o encrypt.format=luks a 1M
    assert_failure 1
    assert_output "blk-img: a: Encrypted images are not supported"
}

@test "create: backing file without -F is refused with the detected format" {
    have_qemu || skip "no qemu-img"
    qemu-img create -q -f qcow2 base.qcow2 1M
    golden create-err-nofmt create -f qcow2 -b base.qcow2 ov.qcow2
}

@test "create: -u without -F is refused without probing" {
    golden create-err-nofmt-u create -f qcow2 -u -b base.qcow2 ov.qcow2 1M
}

@test "create: a missing backing file" {
    golden create-err-nobacking create -f qcow2 -b nonexist -F qcow2 ov.qcow2 1M
}

@test "create: -u skips opening the backing file but then needs a size" {
    golden create-err-u-nosize create -f qcow2 -u -b nonexist -F qcow2 ov.qcow2
}

@test "create: -u with a size does not open the backing file" {
    golden create-u create -f qcow2 -u -b nonexist -F qcow2 ov.qcow2 1M
}

@test "create: the backing file's size is the default" {
    have_qemu || skip "no qemu-img"
    qemu-img create -q -f qcow2 base.qcow2 3M
    golden create-backing create -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2
}

@test "create: a relative backing file is found next to the new image" {
    have_qemu || skip "no qemu-img"
    mkdir sub
    qemu-img create -q -f raw sub/base.raw 2M
    golden create-backing-sub create -f qcow2 -b base.raw -F raw sub/ov.qcow2
}

@test "create: backing and preallocation need extended L2" {
    have_qemu || skip "no qemu-img"
    qemu-img create -q -f qcow2 base.qcow2 1M
    golden create-err-backing-prealloc create -f qcow2 -b base.qcow2 -F qcow2 -o preallocation=metadata ov.qcow2
}

@test "create: the backing file cannot be the image itself" {
    golden create-err-self create -f qcow2 -b s.qcow2 -F qcow2 s.qcow2
}

@test "create: an empty backing file name" {
    golden create-err-empty-backing create -f qcow2 -b "" -F qcow2 s.qcow2
}

@test "create: the qcow2 image passes qemu-img check" {
    have_qemu || skip "no qemu-img"
    run "$BLK_IMG" create -q -f qcow2 a.qcow2 1G
    assert_success
    run qemu-img check a.qcow2
    assert_success
    assert_output --partial "No errors were found on the image."
}

@test "create: data_file makes the external data file" {
    have_qemu || skip "no qemu-img"
    golden create-datafile create -f qcow2 -o data_file=d.raw,data_file_raw=on a.qcow2 1M
    [ -f d.raw ]
    run qemu-img info --output=json a.qcow2
    assert_line --partial '"data-file": "d.raw"'
}

@test "create: a bad enum value names the create member, as qemu-img" {
    golden create-err-enum create -f qcow2 -o compression_type=lz4 a 1M
}

@test "create: a bad preallocation mode for raw" {
    golden create-err-raw-prealloc create -f raw -o preallocation=bar a 1M
}

@test "create: a bad boolean" {
    golden create-err-bool create -f qcow2 -o lazy_refcounts=maybe a 1M
}

@test "create: a bad number" {
    golden create-err-num create -f qcow2 -o refcount_bits=abc a 1M
}

@test "create: -F without -b" {
    golden create-err-F create -f qcow2 -F qcow2 a 1M
}
