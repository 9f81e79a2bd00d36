#!/usr/bin/env bats
# img-convert.bats - `blk-img convert` against qemu-img 7.2 convert: for
# source shapes (sparse raw, full raw, qcow2, compressed qcow2, backing
# chains 1-5 deep) and flag sets, the same stdout/stderr/exit status
# (progress lines included), outputs that qemu-img compare finds equal
# and qemu-img check finds clean, and the same allocation.

load ../helpers

setup() {
    cd "$BATS_TEST_TMPDIR"
}

# shape NAME: make the source image src.NAME (and its backing files)
shape() {
    case $1 in
    sparse)
        qemu-img create -q -f raw src.sparse 24M
        qemu-io -f raw -c 'write -P 1 0 3M' -c 'write -P 2 7M 64k' \
            -c 'write -z 9M 1M' -c 'write -P 3 20M 4M' src.sparse >/dev/null ;;
    full)
        head -c 12M /dev/urandom > src.full ;;
    qcow2)
        qemu-img create -q -f qcow2 src.qcow2 24M
        qemu-io -c 'write -P 1 0 3M' -c 'write -z 4M 1M' -c 'write -P 4 10M 5M' \
            -c 'write -P 0 16M 1M' src.qcow2 >/dev/null ;;
    comp)
        qemu-img create -q -f raw c.raw 8M
        qemu-io -f raw -c 'write -P 7 0 2M' -c 'write -P 8 5M 1M' c.raw >/dev/null
        qemu-img convert -c -f raw -O qcow2 c.raw src.comp ;;
    chain*)
        local depth=${1#chain} i
        qemu-img create -q -f qcow2 l0.qcow2 16M
        qemu-io -c 'write -P 10 0 4M' l0.qcow2 >/dev/null
        for ((i = 1; i <= depth; i++)); do
            qemu-img create -q -f qcow2 -b l$((i - 1)).qcow2 -F qcow2 l$i.qcow2
            qemu-io -c "write -P $((10 + i)) $((i * 1024))k 1M" \
                -c "write -z $((i * 2))M 512k" l$i.qcow2 >/dev/null
        done
        cp l$depth.qcow2 src.$1 ;;
    esac
}

# convert_both ARGS... : run both tools with ARGS (OUT stands for the
# output file) and check they agree.
convert_both() {
    local a qargs=() bargs=() qrc=0 brc=0
    for a in "$@"; do
        qargs+=("${a//OUT/q.out}")
        bargs+=("${a//OUT/b.out}")
    done
    rm -f q.out b.out
    qemu-img convert "${qargs[@]}" > q.stdout 2> q.stderr || qrc=$?
    "$BLK_IMG" convert "${bargs[@]}" > b.stdout 2> b.stderr || brc=$?
    sed -e 's/q\.out/OUT/g' -e 's/qemu-img/X/g' q.stdout q.stderr > q.txt
    sed -e 's/b\.out/OUT/g' -e "s#blk-img#X#g" b.stdout b.stderr > b.txt
    echo "rc $qrc" >> q.txt
    echo "rc $brc" >> b.txt
    diff -u q.txt b.txt
    [ "$qrc" -ne 0 ] && return 0
    qemu-img compare -q q.out b.out
    if [ "$(head -c 4 b.out | od -An -tx1 | tr -d ' ')" = 514649fb ]; then
        qemu-img check -q b.out
    fi
}

# same_allocation: q.out and b.out have the same data/zero extents
same_allocation() {
    diff <(qemu-img map --output=json q.out | sed 's/, "offset": [0-9]*//') \
         <(qemu-img map --output=json b.out | sed 's/, "offset": [0-9]*//')
}

@test "compat convert: every shape to raw" {
    for s in sparse full qcow2 comp chain1 chain3 chain5; do
        shape $s
        convert_both -O raw src.$s OUT
        same_allocation
    done
}

@test "compat convert: every shape to qcow2, same allocation" {
    for s in sparse full qcow2 comp chain1 chain2 chain4; do
        shape $s
        convert_both -O qcow2 src.$s OUT
        same_allocation
    done
}

@test "compat convert: -c zlib and zstd are read back by qemu-img" {
    for s in sparse full qcow2 chain2; do
        shape $s
        convert_both -c -O qcow2 src.$s OUT
        convert_both -c -O qcow2 -o compression_type=zstd src.$s OUT
    done
}

@test "compat convert: -S 0, -S 64k, -W -m 16, -m 1" {
    shape sparse
    convert_both -S 0 -O qcow2 src.sparse OUT
    same_allocation
    convert_both -S 64k -O raw src.sparse OUT
    convert_both -W -m 16 -O qcow2 src.sparse OUT
    convert_both -m 1 -O qcow2 src.sparse OUT
    same_allocation
}

@test "compat convert: -o cluster_size, compat=0.10, lazy_refcounts" {
    shape qcow2
    convert_both -O qcow2 -o cluster_size=4k src.qcow2 OUT
    same_allocation
    convert_both -O qcow2 -o compat=0.10 src.qcow2 OUT
    convert_both -O qcow2 -o lazy_refcounts=on,refcount_bits=8 src.qcow2 OUT
}

@test "compat convert: -B keeps the target's backing file" {
    shape chain3
    cp l2.qcow2 b.base
    cp l2.qcow2 q.base
    qemu-img rebase -u -b l1.qcow2 -F qcow2 b.base
    convert_both -O qcow2 -B l2.qcow2 -F qcow2 src.chain3 OUT
    same_allocation
}

@test "compat convert: several sources concatenated" {
    shape sparse
    shape qcow2
    convert_both -O qcow2 src.sparse src.qcow2 src.sparse OUT
    convert_both -c -O qcow2 src.qcow2 src.sparse OUT
}

@test "compat convert: -n and --target-is-zero" {
    shape sparse
    qemu-img create -q -f qcow2 q.out 24M
    qemu-img create -q -f qcow2 b.out 24M
    qemu-img convert -n -O qcow2 src.sparse q.out
    "$BLK_IMG" convert -n -O qcow2 src.sparse b.out
    qemu-img compare -q q.out b.out
    qemu-img check -q b.out
    head -c 24M /dev/urandom > q.out
    cp q.out b.out
    qemu-img convert -n -O raw src.sparse q.out
    "$BLK_IMG" convert -n -O raw src.sparse b.out
    cmp q.out b.out
    qemu-img create -q -f qcow2 q.out 24M
    qemu-img create -q -f qcow2 b.out 24M
    qemu-img convert -n --target-is-zero -O qcow2 src.sparse q.out
    "$BLK_IMG" convert -n --target-is-zero -O qcow2 src.sparse b.out
    qemu-img compare -q q.out b.out
}

@test "compat convert: -p prints the same progress lines when not a terminal" {
    for s in sparse full qcow2 chain2; do
        shape $s
        convert_both -p -O qcow2 src.$s OUT
        convert_both -p -O raw src.$s OUT
    done
    shape sparse
    convert_both -p -c -O qcow2 src.sparse OUT
    convert_both -p -S 0 -O raw src.sparse OUT
}

@test "compat convert: the same errors and exit codes" {
    shape sparse
    convert_both -O raw nonexist.raw OUT
    convert_both -f foo src.sparse OUT
    convert_both -O foo src.sparse OUT
    convert_both -O raw src.sparse /nonexistdir/OUT
    convert_both -O qcow2 src.sparse /nonexistdir/OUT
    convert_both -m 17 src.sparse OUT
    convert_both -m 0 src.sparse OUT
    convert_both -S 100 src.sparse OUT
    convert_both -t bogus src.sparse OUT
    convert_both -T bogus src.sparse OUT
    convert_both -c src.sparse OUT
    convert_both src.sparse
    convert_both -O qcow2 -o foo=bar src.sparse OUT
    convert_both -O qcow2 -B src.sparse src.sparse OUT
    convert_both -B src.sparse src.sparse OUT
    convert_both -O qcow2 -c -o preallocation=metadata src.sparse OUT
    convert_both -n src.sparse nonexist2.raw
    convert_both -n -o cluster_size=4k src.sparse OUT
    convert_both --target-is-zero src.sparse OUT
    convert_both -C -c -O qcow2 src.sparse OUT
    convert_both -C -S 4k src.sparse OUT
    convert_both -C --salvage src.sparse OUT
    convert_both --target-image-opts src.sparse OUT
}

@test "compat convert: --salvage turns a damaged cluster into zeroes with the same warnings" {
    shape comp
    # Damage the first compressed cluster's data (the first data cluster
    # after the metadata): it no longer inflates.
    off=$(qemu-img map --output=json src.comp | head -1 | sed -n 's/.*"offset": \([0-9]*\).*/\1/p')
    [ -z "$off" ] && off=327680
    printf '\377\377\377\377\377\377\377\377\377\377\377\377\377\377\377\377' |
        dd of=src.comp bs=1 seek=$((0x50000)) conv=notrunc status=none
    convert_both --salvage -O raw src.comp OUT
    convert_both -O raw src.comp OUT
}

# full_file FILE: 1 if every byte of FILE has a block on disk, else 0
full_file() {
    echo $(($(stat -c %b "$1") * 512 >= $(stat -c %s "$1")))
}

# same_data_file: q.out and b.out name their data files alike (OUT.data
# for OUT), map their clusters to the same data file offsets, and the
# data files have the same size and contents and are both fully
# allocated or both not.
same_data_file() {
    diff <(qemu-img info q.out | sed -n 's/q\.out/OUT/g; /data file/p') \
         <(qemu-img info b.out | sed -n 's/b\.out/OUT/g; /data file/p')
    diff <(qemu-img map --output=json q.out) <(qemu-img map --output=json b.out)
    [ "$(stat -c %s q.out.data)" = "$(stat -c %s b.out.data)" ]
    cmp q.out.data b.out.data
    [ "$(full_file q.out.data)" = "$(full_file b.out.data)" ]
}

@test "compat convert: -o data_file makes the external data file" {
    for s in sparse qcow2 chain2; do
        shape $s
        rm -f q.out.data b.out.data
        convert_both -O qcow2 -o data_file=OUT.data src.$s OUT
        qemu-img info b.out | grep -q 'data file: b.out.data'
        same_data_file
    done
}

@test "compat convert: data_file_raw=on leaves the data file a raw copy" {
    for s in sparse qcow2; do
        shape $s
        rm -f q.out.data b.out.data
        convert_both -O qcow2 -o data_file=OUT.data,data_file_raw=on src.$s OUT
        same_data_file
        qemu-img compare -q -f raw b.out.data src.$s
    done
}

@test "compat convert: a relative data_file is from the working directory" {
    shape sparse
    mkdir sub
    qemu-img convert -O qcow2 -o data_file=q.data src.sparse sub/q.out
    "$BLK_IMG" convert -O qcow2 -o data_file=b.data src.sparse sub/b.out
    [ -f q.data ] && [ -f b.data ] && [ ! -e sub/q.data ] && [ ! -e sub/b.data ]
    qemu-img compare -q src.sparse sub/b.out
    "$BLK_IMG" compare -q src.sparse sub/q.out
    cmp q.data b.data
    # from the image's directory the data file is not found, by either tool
    cd sub
    run qemu-img compare -q ../src.sparse q.out
    qrc=$status qline=${output//q./X.}
    run "$BLK_IMG" compare -q ../src.sparse b.out
    assert_equal "$status" "$qrc"
    assert_equal "${output//b./X.}" "${qline//qemu-img/blk-img}"
}

@test "compat convert: data_file with an existing data file truncates it" {
    shape sparse
    for opts in data_file=OUT.data data_file=OUT.data,data_file_raw=on; do
        for len in 40M 2M; do
            head -c $len /dev/urandom > q.out.data
            cp q.out.data b.out.data
            convert_both -O qcow2 -o $opts src.sparse OUT
            same_data_file
        done
    done
}

@test "compat convert: data_file with preallocation" {
    shape sparse
    for p in metadata falloc full; do
        rm -f q.out.data b.out.data
        convert_both -O qcow2 -o data_file=OUT.data,preallocation=$p src.sparse OUT
        same_data_file
        rm -f q.out.data b.out.data
        convert_both -O qcow2 -o data_file=OUT.data,data_file_raw=on,preallocation=$p \
            src.sparse OUT
        same_data_file
    done
}

@test "compat convert: data_file with -B, and data_file_raw=on refused with -B" {
    shape chain3
    cp l2.qcow2 b.base
    cp l2.qcow2 q.base
    convert_both -O qcow2 -B l2.qcow2 -F qcow2 -o data_file=OUT.data src.chain3 OUT
    same_data_file
    qemu-img info b.out | grep -q 'backing file: l2.qcow2'
    rm -f q.out.data b.out.data
    convert_both -O qcow2 -B l2.qcow2 -F qcow2 -o data_file=OUT.data,data_file_raw=on \
        src.chain3 OUT
    [ ! -e q.out ] && [ ! -e q.out.data ] && [ ! -e b.out ] && [ ! -e b.out.data ]
}

@test "compat convert: -n with data_file, and -n into an image with a data file" {
    shape sparse
    convert_both -n -O qcow2 -o data_file=OUT.data src.sparse OUT
    [ ! -e q.out.data ] && [ ! -e b.out.data ]
    qemu-img create -q -f qcow2 -o data_file=q.out.data q.out 24M
    qemu-img create -q -f qcow2 -o data_file=b.out.data b.out 24M
    qemu-img convert -n -O qcow2 src.sparse q.out
    "$BLK_IMG" convert -n -O qcow2 src.sparse b.out
    qemu-img compare -q src.sparse b.out
    qemu-img check -q b.out
    same_data_file
}

# qemu-img leaves the image and data file it made when the copy fails;
# blk-img removes both (a data file that existed before stays).
@test "compat convert: -c into an image with a data file fails alike" {
    shape sparse
    convert_both -c -O qcow2 -o data_file=OUT.data src.sparse OUT
    [ -e q.out ] && [ -e q.out.data ]
    [ ! -e b.out ] && [ ! -e b.out.data ]
    head -c 1M /dev/urandom > b.out.data
    convert_both -c -O qcow2 -o data_file=OUT.data src.sparse OUT
    [ ! -e b.out ] && [ -e b.out.data ]
}

@test "compat convert: data_file errors" {
    shape sparse
    convert_both -O raw -o data_file=OUT.data src.sparse OUT
    convert_both -O qcow2 -o data_file=OUT.data,compat=0.10 src.sparse OUT
    convert_both -O qcow2 -o data_file_raw=on src.sparse OUT
    convert_both -O qcow2 -o data_file=nodir/OUT.data src.sparse OUT
    [ ! -e q.out.data ] && [ ! -e b.out.data ] && [ ! -e b.out ]
}

@test "compat convert: create and convert make the same data file image" {
    for p in off falloc full; do
        rm -f q.img q.img.data b.img b.img.data
        qemu-img create -q -f qcow2 -o data_file=q.img.data,data_file_raw=on,preallocation=$p q.img 8M
        "$BLK_IMG" create -q -f qcow2 -o data_file=b.img.data,data_file_raw=on,preallocation=$p b.img 8M
        diff <(qemu-img map --output=json q.img) <(qemu-img map --output=json b.img)
        [ "$(full_file q.img.data)" = "$(full_file b.img.data)" ]
        qemu-img check -q b.img
    done
}
