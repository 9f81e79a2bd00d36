#!/bin/bash
# keyval.sh - time the option parser on generated strings of 1k, 10k and
# 100k keys (flat, nested, lists, list of objects; keyval and JSON) and
# print microseconds per key: flat numbers across sizes mean linear growth.
# The list shapes are quorum options, so they are also validated against
# BlockdevOptions.  Usage: bench/keyval.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
make --no-print-directory BUILD="$build" "$build/bench-keyval" >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

for n in 1000 10000 100000; do
    awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "%sa%d=%d", i ? "," : "", i, i }' \
        > "$dir/flat-$n"
    awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "%sa%d.b=%d", i ? "," : "", i, i }' \
        > "$dir/nested-$n"
    awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "%sx.y.k%d=v,,%d", i ? "," : "", i, i }' \
        > "$dir/deep-member-$n"
    awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "%sl.%d=%d", i ? "," : "", n - 1 - i, i }' \
        > "$dir/list-reversed-$n"
    awk -v n=$n 'BEGIN { printf "{"; for (i = 0; i < n; i++) printf "%s\"a%d\":{\"b\":%d}", i ? "," : "", i, i; printf "}" }' \
        > "$dir/json-nested-$n"
    awk -v n=$n 'BEGIN { printf "quorum,vote-threshold=1"; for (i = 0; i < n; i++) printf ",children.%d=node%d", i, i }' \
        > "$dir/quorum-$n"
    awk -v n=$n 'BEGIN { printf "quorum,vote-threshold=1"; for (i = 0; i < n / 2; i++) printf ",children.%d.driver=file,children.%d.filename=f%d", i, i, i }' \
        > "$dir/quorum-objects-$n"
    awk -v n=$n 'BEGIN { printf "{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":["; for (i = 0; i < n; i++) printf "%s\"node%d\"", i ? "," : "", i; printf "]}" }' \
        > "$dir/json-quorum-$n"
done

echo "== parse only (no schema)"
"$build/bench-keyval" "$dir"/flat-* "$dir"/nested-* "$dir"/deep-member-* \
    "$dir"/list-reversed-* "$dir"/json-nested-*
echo
echo "== parse + validate against BlockdevOptions"
"$build/bench-keyval" --type BlockdevOptions "$dir"/quorum-1* "$dir"/quorum-objects-* \
    "$dir"/json-quorum-*
