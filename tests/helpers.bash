# helpers.bash - shared setup for the bats tests (tests/cli, tests/compat):
# bats-support/bats-assert, the repository root, and the tools under test
# (BLK_BUILD overrides the build directory, e.g. build/asan).
bats_require_minimum_version 1.5.0
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BLK_IMG=${BLK_BUILD:-$REPO/build}/blk-img
BLK_IO=${BLK_BUILD:-$REPO/build}/blk-io
