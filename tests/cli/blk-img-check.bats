#!/usr/bin/env bats
# blk-img-check.bats - `blk-img check`: qemu-img 7.2's report and JSON,
# exit codes 0/1/2/3/63, repairs.

load ../helpers
load blk-img-images

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    make_images
    make_broken_images
}

setup() {
    have_qemu || skip "no qemu-img"
    cd "$BATS_FILE_TMPDIR"
}

@test "check: a clean image" {
    golden check-clean check a.qcow2
}

@test "check: a clean image in JSON" {
    golden check-clean-json check --output=json a.qcow2
}

@test "check: no allocated clusters, no statistics line" {
    golden check-empty check ov.qcow2
}

@test "check: compat 0.10" {
    golden check-v2 check v2.qcow2
}

@test "check: raw has no check (exit 63)" {
    golden check-raw check -f raw r.raw
}

@test "check: leaked clusters exit 3" {
    golden check-leak check leak.qcow2
}

@test "check: leaked clusters in JSON" {
    golden check-leak-json check --output=json leak.qcow2
}

@test "check: corruptions exit 2" {
    golden check-corrupt check corrupt.qcow2
}

@test "check: corruptions in JSON" {
    golden check-corrupt-json check --output=json corrupt.qcow2
}

@test "check: -q prints nothing but keeps the exit code" {
    run "$BLK_IMG" check -q leak.qcow2
    assert_failure 3
    refute_output --partial "leaked clusters were found"
}

@test "check: -r leaks repairs leaks" {
    cp leak.qcow2 "$BATS_TEST_TMPDIR/"
    cd "$BATS_TEST_TMPDIR"
    golden check-repair-leaks check -r leaks leak.qcow2
    run qemu-img check leak.qcow2
    assert_success
}

@test "check: -r all repairs corruptions" {
    cp corrupt.qcow2 "$BATS_TEST_TMPDIR/"
    cd "$BATS_TEST_TMPDIR"
    golden check-repair-all check -r all corrupt.qcow2
    run qemu-img check corrupt.qcow2
    assert_success
}

@test "check: repairs in JSON" {
    cp leak.qcow2 "$BATS_TEST_TMPDIR/"
    cd "$BATS_TEST_TMPDIR"
    golden check-repair-json check -r leaks --output=json leak.qcow2
}

@test "check: bad -r value" {
    golden check-err-r check -r foo a.qcow2
}

@test "check: bad --output" {
    golden check-err-output check --output=xml a.qcow2
}

@test "check: missing file" {
    golden check-err-nofile check nofile
}

@test "check: no file name" {
    golden check-err-noargs check
}
