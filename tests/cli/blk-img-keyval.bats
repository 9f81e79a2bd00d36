#!/usr/bin/env bats
# blk-img-keyval.bats - `blk-img keyval`: parsing keyval and JSON option
# strings, typing them against the schema, help, --to-keyval, --introspect
# (keyval.md sections 12-13 and man/blk-keyval.7).

load ../helpers

# Run blk-img keyval and require failure: exit 1, nothing on stdout, and
# exactly one line "blk-img: MSG" on stderr.
keyval_fails() {
    local msg=$1; shift
    run --separate-stderr "$BLK_IMG" keyval "$@"
    assert_failure 1
    assert_output ""
    [ "$stderr" = "blk-img: $msg" ] || {
        echo "stderr: $stderr"; echo "want:   blk-img: $msg"; return 1; }
}

@test "keyval: without a schema, leaves stay strings and the last duplicate wins" {
    run "$BLK_IMG" keyval 'a.b.c=1,a.b.c=2,d=3'
    assert_success
    assert_output '{"a":{"b":{"c":"2"}},"d":"3"}'
}

@test "keyval: blockdev schema converts booleans and unescapes ,," {
    run "$BLK_IMG" keyval --schema blockdev 'qcow2,file.driver=file,file.filename=a,,b.qcow2,read-only=on,cache.direct=off'
    assert_success
    assert_output '{"driver":"qcow2","file":{"driver":"file","filename":"a,b.qcow2"},"read-only":true,"cache":{"direct":false}}'
}

@test "keyval: backing=null is null and hex integers are converted" {
    run "$BLK_IMG" keyval --schema blockdev 'driver=qcow2,file=f0,backing=null,l2-cache-size=0x10000'
    assert_success
    assert_output '{"driver":"qcow2","file":"f0","backing":null,"l2-cache-size":65536}'
}

@test "keyval: list elements may be node names or inline options" {
    run "$BLK_IMG" keyval --schema blockdev 'driver=quorum,vote-threshold=2,children.0=f0,children.1.driver=file,children.1.filename=b.img'
    assert_success
    assert_output '{"driver":"quorum","vote-threshold":2,"children":["f0",{"driver":"file","filename":"b.img"}]}'
}

@test "keyval: size members take suffixes and fractions" {
    run "$BLK_IMG" keyval --schema BlockdevCreateOptions 'qcow2,file=f0,size=1.5G,cluster-size=64k'
    assert_success
    assert_output '{"driver":"qcow2","file":"f0","size":1610612736,"cluster-size":65536}'
}

@test "keyval: a bad boolean fails with QEMU's message" {
    keyval_fails "Parameter 'read-only' expects 'on' or 'off'" --schema blockdev 'driver=null-co,read-only=ON'
}

@test "keyval: JSON values must already have the member's type" {
    keyval_fails "Invalid parameter type for 'size', expected: integer" --schema blockdev '{"driver":"null-co","size":"1024"}'
}

@test "keyval: - reads the string from stdin" {
    run bash -c "echo 'driver=null-co,size=1024' | '$BLK_IMG' keyval --schema blockdev -"
    assert_success
    assert_output '{"driver":"null-co","size":1024}'
}

@test "keyval: JSON from stdin is typed too" {
    run bash -c "printf '%s' '{\"driver\":\"null-co\",\"read-only\":true}' | '$BLK_IMG' keyval --schema blockdev -"
    assert_success
    assert_output '{"driver":"null-co","read-only":true}'
}

@test "keyval: without a schema JSON is printed as it is" {
    run "$BLK_IMG" keyval '{"a":[1,true,null,"x"],"b":{"c":-5}}'
    assert_success
    assert_output '{"a":[1,true,null,"x"],"b":{"c":-5}}'
}

@test "keyval: without a schema there is no implied key" {
    keyval_fails "Expected '=' after parameter 'null-co'" 'null-co,size=1'
}

@test "keyval: the union's discriminator is the implied key" {
    run "$BLK_IMG" keyval --schema blockdev 'null-co,size=1'
    assert_success
    assert_output '{"driver":"null-co","size":1}'
}

@test "keyval: --to-keyval prints a typed JSON tree as one keyval string" {
    run "$BLK_IMG" keyval --schema blockdev --to-keyval '{"driver":"qcow2","file":{"driver":"file","filename":"a,b"},"read-only":true,"backing":null}'
    assert_success
    assert_output 'driver=qcow2,file.driver=file,file.filename=a,,b,read-only=on,backing=null'
}

@test "keyval: --to-keyval output parses back to the same typed tree" {
    local json='{"driver":"quorum","vote-threshold":2,"children":["f0",{"driver":"file","filename":"b,,c","locking":"off"}],"cache":{"direct":true}}'
    run "$BLK_IMG" keyval --schema blockdev --to-keyval "$json"
    assert_success
    run "$BLK_IMG" keyval --schema blockdev "$output"
    assert_success
    assert_output "$json"
}

@test "keyval: --to-keyval fails for what keyval cannot say" {
    keyval_fails "keyval cannot express the empty list 'a'" --to-keyval '{"a":[]}'
}

@test "keyval: help lists the base and branch members with their types" {
    run "$BLK_IMG" keyval --schema blockdev 'driver=qcow2,help'
    assert_success
    assert_line --index 0 'BlockdevOptions options (driver=qcow2):'
    assert_line --regexp '^  file=<BlockdevRef>$'
    assert_line --regexp '^  backing=<BlockdevRefOrNull> +\(optional\)$'
    assert_line --regexp '^  cache\.direct=<bool> +\(optional, default: off\)$'
}

@test "keyval: help without a driver lists the accepted drivers" {
    run "$BLK_IMG" keyval --schema blockdev help
    assert_success
    assert_line 'BlockdevOptions options:'
    assert_output --partial "Accepted values for 'driver': blkdebug"
    refute_output --partial 'filename='
}

@test "keyval: unknown members and bad values do not prevent help" {
    run "$BLK_IMG" keyval --schema blockdev 'null-co,bogus=1,size=x,?'
    assert_success
    assert_line --regexp '^  latency-ns=<uint64> +\(optional, default: 0\)$'
}

@test "keyval: help without a schema is an error" {
    keyval_fails "Help is not available for this option" 'a=1,help'
}

@test "keyval: a missing member fails with nothing on stdout" {
    keyval_fails "Parameter 'file' is missing" --schema blockdev 'driver=qcow2'
}

@test "keyval: errors name the full path, also for enum values" {
    keyval_fails "Parameter 'children.0.locking' does not accept value 'maybe'" --schema blockdev \
        'driver=quorum,vote-threshold=1,children.0.driver=file,children.0.filename=x,children.0.locking=maybe'
}

@test "keyval: JSON errors name list elements as children[N]" {
    keyval_fails "Parameter 'children[0].filename' is missing" --schema blockdev \
        '{"driver":"quorum","vote-threshold":1,"children":[{"driver":"file"}]}'
}

@test "keyval: JSON syntax errors are reported" {
    keyval_fails "JSON parse error, expecting value" '{"a":1,}'
}

@test "keyval: an unknown schema type is an error" {
    keyval_fails "unknown schema type 'Bogus'" --schema Bogus 'a=1'
}

@test "keyval: a missing option string is an error" {
    keyval_fails "Expecting one option string (or '-' for stdin)" --schema blockdev
}

@test "keyval: --introspect prints valid JSON in query-qmp-schema shape" {
    run "$BLK_IMG" keyval --introspect
    assert_success
    [ "${#lines[@]}" -eq 1 ]
    run jq -r '.[] | select(.name == "BlockdevOptions") | .tag' <<<"$output"
    assert_success
    assert_output 'driver'
}

@test "keyval: --introspect advertises dynamic read-only on the file driver" {
    run bash -c "'$BLK_IMG' keyval --introspect | jq -c '.[] | select(.name == \"BlockdevOptionsFile\") | .features'"
    assert_success
    assert_output '["dynamic-auto-read-only"]'
}

@test "keyval: --introspect lists all 42 QEMU driver names" {
    run bash -c "'$BLK_IMG' keyval --introspect | jq '.[] | select(.name == \"BlockdevDriver\") | .values | length'"
    assert_success
    assert_output '42'
}

@test "keyval: an unknown option is an error" {
    keyval_fails "keyval: unrecognized option '--bogus'" --bogus 'a=1'
}

@test "keyval: --introspect takes no option string" {
    keyval_fails "--introspect takes no other arguments" --introspect 'a=1'
}
