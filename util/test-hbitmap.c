/*
 * test-hbitmap.c - the hierarchical bitmap against a plain byte-per-bit
 * model: random set/reset ranges, next set/clear from every kind of
 * position, word import/export, resize, and the invariant checker.
 */
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "util/hbitmap.h"

static int64_t
model_next(const unsigned char *m, uint64_t n, uint64_t from, int want)
{
    uint64_t i;

    for (i = from; i < n; i++) {
        if (m[i] == want) {
            return (int64_t)i;
        }
    }
    return -1;
}

static void
test_random(uint64_t nbits, unsigned rounds)
{
    struct hbitmap hb;
    unsigned char *m = calloc(nbits, 1);
    unsigned seed = (unsigned)nbits, r;
    uint64_t i, count;
    bool ok = true;

    CHECK(hbitmap_init(&hb, nbits) == 0);
    for (r = 0; r < rounds; r++) {
        uint64_t first = (uint64_t)rand_r(&seed) % nbits;
        uint64_t n = (uint64_t)rand_r(&seed) % (nbits / 8 + 2);
        bool set = rand_r(&seed) % 3 != 0;

        if (set) {
            hbitmap_set(&hb, first, n);
        } else {
            hbitmap_reset(&hb, first, n);
        }
        for (i = first; i < first + n && i < nbits; i++) {
            m[i] = set;
        }
        if (r % 16 == 0) {
            uint64_t from = (uint64_t)rand_r(&seed) % nbits;

            ok &= hbitmap_next_set(&hb, from) == model_next(m, nbits, from, 1);
            ok &= hbitmap_next_clear(&hb, from) ==
                  model_next(m, nbits, from, 0);
            ok &= hbitmap_check(&hb);
        }
    }
    CHECK(ok);
    for (i = 0, count = 0; i < nbits; i++) {
        count += m[i];
        if (hbitmap_get(&hb, i) != m[i]) {
            ok = false;
        }
    }
    CHECK(ok);
    CHECK_INT(hb.count, count);
    CHECK(hbitmap_check(&hb));
    hbitmap_release(&hb);
    free(m);
}

static void
test_sparse_huge(void)
{
    /* 1 TiB at 64 KiB granularity: 16M bits, 10,000 scattered extents. */
    uint64_t nbits = 1ull << 24;
    struct hbitmap hb;
    uint64_t i, found = 0;
    int64_t b;

    CHECK(hbitmap_init(&hb, nbits) == 0);
    for (i = 0; i < 10000; i++) {
        hbitmap_set(&hb, i * 1677 + 3, 1 + i % 5);
    }
    for (b = hbitmap_next_set(&hb, 0); b >= 0;) {
        int64_t c = hbitmap_next_clear(&hb, (uint64_t)b);

        found++;
        if (c < 0) {
            break;
        }
        b = hbitmap_next_set(&hb, (uint64_t)c);
    }
    CHECK_INT(found, 10000);
    CHECK(hbitmap_next_set(&hb, 10000ull * 1677) < 0);
    CHECK(hbitmap_check(&hb));
    hbitmap_reset_all(&hb);
    CHECK_INT(hb.count, 0);
    CHECK(hbitmap_next_set(&hb, 0) == -1);
    hbitmap_release(&hb);
}

static void
test_words_and_resize(void)
{
    struct hbitmap hb;
    uint64_t w[3] = { 0x8000000000000001ull, 0, 0xffull }, out[3];

    CHECK(hbitmap_init(&hb, 150) == 0);
    hbitmap_set_words(&hb, 0, 3, w);
    hbitmap_get_words(&hb, 0, 3, out);
    CHECK(out[0] == w[0] && out[1] == 0 && out[2] == 0xffull);
    CHECK_INT(hb.count, 10);
    CHECK_INT(hbitmap_next_set(&hb, 1), 63);
    CHECK_INT(hbitmap_next_set(&hb, 64), 128);
    CHECK(hbitmap_resize(&hb, 130) == 0);
    CHECK_INT(hb.count, 4);                 /* bits 0, 63, 128, 129 */
    CHECK(hbitmap_check(&hb));
    CHECK(hbitmap_resize(&hb, 1000) == 0);
    CHECK_INT(hb.count, 4);
    CHECK_INT(hbitmap_next_set(&hb, 130), -1);
    CHECK_INT(hbitmap_next_clear(&hb, 128), 130);
    CHECK(hbitmap_check(&hb));
    hbitmap_release(&hb);
}

/* Shrinking to nothing drops every bit; growing again brings none back. */
static void
test_resize_to_zero(void)
{
    struct hbitmap hb;
    uint64_t ones = ~0ull;

    CHECK(hbitmap_init(&hb, 100) == 0);
    hbitmap_set(&hb, 0, 100);
    CHECK(hbitmap_resize(&hb, 0) == 0);
    CHECK_INT(hb.count, 0);
    CHECK_INT(hbitmap_next_set(&hb, 0), -1);
    CHECK(hbitmap_check(&hb));
    hbitmap_set_words(&hb, 0, 1, &ones);
    CHECK_INT(hb.count, 0);
    CHECK(hbitmap_resize(&hb, 100) == 0);
    CHECK_INT(hb.count, 0);
    CHECK_INT(hbitmap_next_set(&hb, 0), -1);
    hbitmap_release(&hb);
}

int
main(void)
{
    test_random(1, 50);
    test_random(63, 200);
    test_random(64, 200);
    test_random(65, 200);
    test_random(4097, 2000);
    test_random(300000, 3000);
    test_sparse_huge();
    test_words_and_resize();
    test_resize_to_zero();
    return unit_done();
}
