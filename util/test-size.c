/*
 * test-size.c - size parsing (keyval.md 9.2, checked against qemu-img 7.2
 * create) and printing (checked against qemu-img info / qemu-io output).
 */
#include <errno.h>
#include <stdint.h>

#include "tests/unit/unit.h"
#include "util/size.h"

static void
ok(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    int r = blk_size_parse(s, &v);

    if (!CHECK_INT(r, 0)) {
        fprintf(stderr, "    input: '%s'\n", s);
        return;
    }
    if (!CHECK(v == want)) {
        fprintf(stderr, "    input: '%s' got %" PRIu64 " want %" PRIu64 "\n",
                s, v, want);
    }
}

static void
bad(const char *s, int want)
{
    uint64_t v = 777;
    int r = blk_size_parse(s, &v);

    if (!CHECK_INT(r, want)) {
        fprintf(stderr, "    input: '%s'\n", s);
    }
    CHECK(v == 777);
}

static void
test_parse(void)
{
    /* 9.2 step 1: white space, '+', decimal (not octal), no '-' */
    ok("0", 0);
    ok("010", 10);
    ok(" 5", 5);
    ok("\t7", 7);
    ok("+5", 5);
    ok(" +5k", 5120);
    bad("-1", -EINVAL);
    bad("-0", -EINVAL);
    bad(" -5", -EINVAL);
    bad("", -EINVAL);
    bad(" ", -EINVAL);
    bad("+", -EINVAL);
    bad("k", -EINVAL);
    bad("+-5", -EINVAL);

    /* step 2: hex */
    ok("0x1000", 4096);
    ok("0X1F", 31);
    ok("+0x10", 16);
    ok("0xffffffffffffffff", UINT64_MAX);
    bad("0x", -EINVAL);
    bad("0x1.8", -EINVAL);
    bad("0x1k", -EINVAL);
    bad("0xg", -EINVAL);
    bad("00x10", -EINVAL);
    bad("1x10", -EINVAL);
    bad("0x10000000000000000", -ERANGE);

    /* step 3: fractions and exponents */
    ok("1.", 1);
    ok("1.k", 1024);
    ok("1.5e", 1729382256910270464ULL);
    ok("0.5e", 576460752303423488ULL);
    bad("1.5e3", -EINVAL);
    bad("1.5E3", -EINVAL);
    bad("1.5e+3k", -EINVAL);
    bad("1.e5", -EINVAL);
    bad(".5k", -EINVAL);
    bad("1..5k", -EINVAL);

    /* step 4: suffixes */
    ok("1b", 1);
    ok("1B", 1);
    ok("4k", 4096);
    ok("4K", 4096);
    ok("1m", 1 << 20);
    ok("1M", 1 << 20);
    ok("2g", 2ULL << 30);
    ok("1t", 1ULL << 40);
    ok("1P", 1ULL << 50);
    ok("1e", 1ULL << 60);
    ok("1E", 1ULL << 60);
    bad("4kB", -EINVAL);
    bad("4KiB", -EINVAL);
    bad("16Gi", -EINVAL);
    bad("0Z", -EINVAL);
    bad("1 k", -EINVAL);
    bad("4096 ", -EINVAL);
    bad("5 ", -EINVAL);
    bad("1_024", -EINVAL);

    /* step 5: fractions of bytes */
    bad("1.5", -EINVAL);
    bad("0.5b", -EINVAL);
    ok("512.0", 512);
    ok("1.0b", 1);

    /* step 6: rounding (values from qemu-img 7.2 create) */
    ok("1.5k", 1536);
    ok("0.1G", 107374182);
    ok("1.25M", 1310720);
    ok("0.5k", 512);
    ok("0.0000001k", 0);
    ok("0.3k", 307);
    ok("2.7183G", 2918752400ULL);
    ok("1.0000000001T", 1099511627886ULL);
    ok("0.00048828125k", 1);
    ok("0.000488281249k", 0);
    ok("0.0004882812500001k", 1);
    ok("0.0009765625k", 1);
    ok("123.456789m", 129453826);
    ok("0.33333333333333333t", 366503875925ULL);
    ok("3.14159265358979323846p", 3537118876014220ULL);
    ok("7.999999999999999E", 9223372036854774656ULL);
    ok("7.99999E", 9223360507639729792ULL);
    /* a fraction that rounds to 1.0 counts as 0, as in QEMU 7.2 on x86-64 */
    ok("1.99999999999999999999k", 1024);
    ok("0.9999999999999999999999999k", 0);
    ok("15.99999999999999999E", 15ULL << 60);

    /* step 7: range */
    ok("16777215T", 18446742974197923840ULL);
    ok("15E", 15ULL << 60);
    ok("9007199254740993", 9007199254740993ULL);
    ok("18446744073709550591", 18446744073709550591ULL);
    ok("18446744073709551615", UINT64_MAX);
    bad("16777216T", -ERANGE);
    bad("16E", -ERANGE);
    bad("18446744073709551616", -ERANGE);
    bad("99999999999999999999999", -ERANGE);
    bad("18446744073709551616k", -EINVAL);
}

static void
test_parse_unit(void)
{
    uint64_t v = 0;

    CHECK_INT(blk_size_parse_unit("5", 1 << 20, &v), 0);
    CHECK(v == 5 << 20);
    CHECK_INT(blk_size_parse_unit("1.5", 1 << 20, &v), 0);
    CHECK(v == 3 << 19);
    CHECK_INT(blk_size_parse_unit("5b", 1 << 20, &v), 0);
    CHECK(v == 5);
    CHECK_INT(blk_size_parse_unit("5k", 1 << 20, &v), 0);
    CHECK(v == 5 << 10);
    CHECK_INT(blk_size_parse_unit("0x10", 1 << 20, &v), 0);
    CHECK(v == 16 << 20);
    CHECK_INT(blk_size_parse_unit("16777216", 1ULL << 40, &v), -ERANGE);
    CHECK_INT(blk_size_parse_unit("0x1000000", 1ULL << 40, &v), -ERANGE);
    CHECK_INT(blk_size_parse_unit("1.5b", 1 << 20, &v), -EINVAL);
}

static void
str(uint64_t v, const char *want)
{
    char buf[BLK_SIZE_STR_MAX];

    blk_size_to_str(v, buf, sizeof(buf));
    CHECK_STR(buf, want);
}

static void
io(double v, const char *want)
{
    char buf[BLK_SIZE_STR_MAX];

    blk_size_to_str_io(v, buf, sizeof(buf));
    CHECK_STR(buf, want);
}

static void
test_print(void)
{
    char buf[BLK_SIZE_STR_BYTES_MAX];

    /* qemu-img info "virtual size" of raw/qcow2 images of these sizes */
    str(0, "0 B");
    str(512, "512 B");
    str(999, "999 B");
    str(1000, "0.977 KiB");
    str(1024, "1 KiB");
    str(4608, "4.5 KiB");
    str(4097, "4 KiB");
    str(12800, "12.5 KiB");
    str(1000448, "977 KiB");
    str(1000000, "977 KiB");
    str(1023488, "1e+03 KiB");
    str(1047552, "0.999 MiB");
    str(1048576, "1 MiB");
    str(123457024, "118 MiB");
    str(1610612736, "1.5 GiB");
    str(3578781696ULL, "3.33 GiB");
    str(100000000000ULL, "93.1 GiB");
    str(1099511627776ULL, "1 TiB");
    str(1099511627777ULL, "1 TiB");
    str(1099511628288ULL, "1 TiB");
    str(1ULL << 50, "1 PiB");
    str(1ULL << 60, "1 EiB");
    str(UINT64_MAX, "16 EiB");

    blk_size_to_str_bytes(67108864, buf, sizeof(buf));
    CHECK_STR(buf, "64 MiB (67108864 bytes)");
    blk_size_to_str_bytes(UINT64_MAX, buf, sizeof(buf));
    CHECK_STR(buf, "16 EiB (18446744073709551615 bytes)");

    /* qemu-io "N ops" lines and rates */
    io(12345, "12.056 KiB");
    io(1048576, "1 MiB");
    io(1000, "1000 bytes");
    io(1536, "1.500 KiB");
    io(0, "0 bytes");
    io(512, "512 bytes");
    io(1024, "1 KiB");
    io(20075110.4, "19.145 MiB");
    io(1ULL << 40, "1 TiB");
    io(1.5 * (1ULL << 60), "1.500 EiB");
}

int
main(void)
{
    test_parse();
    test_parse_unit();
    test_print();
    return unit_done();
}
