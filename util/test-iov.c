/*
 * test-iov.c - the scatter/gather helpers in util/iov.c, against a flat
 * reference buffer.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "util/iov.h"

/* Three pieces of 5, 0 and 11 bytes, then 16: 32 bytes in all. */
static unsigned char mem[64];
static struct iovec list[4];

static void
setup(void)
{
    list[0].iov_base = mem;
    list[0].iov_len = 5;
    list[1].iov_base = mem + 5;
    list[1].iov_len = 0;
    list[2].iov_base = mem + 10;        /* a gap: mem[5..9] is not listed */
    list[2].iov_len = 11;
    list[3].iov_base = mem + 30;
    list[3].iov_len = 16;
    memset(mem, 0xee, sizeof(mem));
}

static void
test_copy(void)
{
    unsigned char in[32], out[40];
    int i;

    setup();
    CHECK(iov_size(list, 4) == 32);
    CHECK(iov_size(list, 0) == 0);
    for (i = 0; i < 32; i++) {
        in[i] = (unsigned char)(i + 1);
    }
    CHECK(iov_from_buf(list, 4, 0, in, 32) == 32);
    CHECK(mem[0] == 1 && mem[4] == 5 && mem[5] == 0xee && mem[10] == 6);
    CHECK(mem[20] == 16 && mem[30] == 17 && mem[45] == 32 && mem[46] == 0xee);
    memset(out, 0, sizeof(out));
    CHECK(iov_to_buf(list, 4, 0, out, 40) == 32);
    CHECK(memcmp(in, out, 32) == 0);
    memset(out, 0, sizeof(out));
    CHECK(iov_to_buf(list, 4, 3, out, 10) == 10);
    CHECK(memcmp(in + 3, out, 10) == 0);
    CHECK(iov_to_buf(list, 4, 31, out, 10) == 1);
    CHECK(out[0] == 32);
    CHECK(iov_to_buf(list, 4, 32, out, 10) == 0);
    CHECK(iov_to_buf(list, 4, 100, out, 10) == 0);

    CHECK(iov_memset(list, 4, 4, 0, 3) == 3);
    CHECK(mem[3] == 4 && mem[4] == 0 && mem[10] == 0 && mem[11] == 0);
    CHECK(mem[12] == 8);
    CHECK(iov_memset(list, 4, 20, 0xaa, 100) == 12);
    CHECK(mem[45] == 0xaa && mem[46] == 0xee && mem[34] == 0xaa);
    CHECK(mem[33] == 20 && mem[25] == 0xee);
}

static void
test_iov_copy(void)
{
    unsigned char a[20], b[20];
    struct iovec da[2] = { { a, 7 }, { a + 7, 13 } };
    struct iovec sb[3] = { { b, 3 }, { b + 3, 3 }, { b + 6, 14 } };
    int i;

    for (i = 0; i < 20; i++) {
        b[i] = (unsigned char)(100 + i);
    }
    memset(a, 0, sizeof(a));
    CHECK(iov_copy(da, 2, 2, sb, 3, 1, 15) == 15);
    CHECK(a[1] == 0 && a[2] == 101 && a[16] == 115 && a[17] == 0);
    CHECK(iov_copy(da, 2, 15, sb, 3, 0, 20) == 5);
    CHECK(a[15] == 100 && a[19] == 104);
}

static void
test_zero(void)
{
    unsigned char *buf = calloc(1, 4096 + 64);
    size_t off, len;
    int bad = 0;

    CHECK(buffer_is_zero(buf, 0));
    CHECK(buffer_is_zero(buf, 4096 + 64));
    /* every position of a single non-zero byte, at several alignments */
    for (off = 0; off < 9; off++) {
        for (len = 0; len < 300; len++) {
            size_t k;

            for (k = 0; k < len; k++) {
                buf[off + k] = 1;
                if (buffer_is_zero(buf + off, len)) {
                    bad++;
                }
                buf[off + k] = 0;
            }
            if (!buffer_is_zero(buf + off, len)) {
                bad++;
            }
            /* bytes just outside the range don't count */
            buf[off + len] = 1;
            if (!buffer_is_zero(buf + off, len)) {
                bad++;
            }
            buf[off + len] = 0;
        }
    }
    CHECK_INT(bad, 0);
    buf[4095] = 0x80;
    CHECK(!buffer_is_zero(buf, 4096));
    CHECK(buffer_is_zero(buf, 4095));
    free(buf);

    setup();
    memset(mem, 0, sizeof(mem));
    mem[7] = 1;                         /* in the gap: never seen */
    CHECK(iov_is_zero(list, 4, 0, 32));
    mem[12] = 1;                        /* list byte 7 */
    CHECK(!iov_is_zero(list, 4, 0, 32));
    CHECK(!iov_is_zero(list, 4, 7, 1));
    CHECK(iov_is_zero(list, 4, 0, 7));
    CHECK(iov_is_zero(list, 4, 8, 100));
}

static void
test_slice(void)
{
    struct iovec out[4];
    struct iov_vec v = IOV_VEC_INIT;
    unsigned char flat[32];
    int n;

    setup();
    n = iov_slice(list, 4, 3, 10, out, 4);
    CHECK_INT(n, 2);
    CHECK(out[0].iov_base == mem + 3 && out[0].iov_len == 2);
    CHECK(out[1].iov_base == mem + 10 && out[1].iov_len == 8);
    n = iov_slice(list, 4, 0, 32, out, 2);
    CHECK_INT(n, -1);
    n = iov_slice(list, 4, 0, 1000, out, 4);
    CHECK_INT(n, 3);
    CHECK(iov_size(out, n) == 32);
    n = iov_slice(list, 4, 5, 11, out, 4);
    CHECK_INT(n, 1);
    CHECK(out[0].iov_base == mem + 10 && out[0].iov_len == 11);
    n = iov_slice(list, 4, 40, 5, out, 4);
    CHECK_INT(n, 0);

    iov_vec_add_slice(&v, list, 4, 0, 32);
    CHECK_INT(v.cnt, 3);
    CHECK(iov_vec_size(&v) == 32);
    iov_vec_reset(&v);
    CHECK_INT(v.cnt, 0);
    /* adjacent pieces merge */
    iov_vec_add(&v, flat, 4);
    iov_vec_add(&v, flat + 4, 4);
    iov_vec_add(&v, flat, 0);
    CHECK_INT(v.cnt, 1);
    CHECK(v.iov[0].iov_len == 8);
    for (n = 0; n < 20; n++) {
        iov_vec_add(&v, flat + (n % 2 ? 20 : 10), 1);
    }
    CHECK_INT(v.cnt, 21);
    CHECK(iov_vec_size(&v) == 28);
    iov_vec_release(&v);
    CHECK(v.iov == NULL && v.cnt == 0 && v.alloc == 0);
}

int
main(void)
{
    test_copy();
    test_iov_copy();
    test_zero();
    test_slice();
    return unit_done();
}
