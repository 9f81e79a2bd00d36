/*
 * test-deflate.c - every stream blk_deflate_raw (and the zlib fallback)
 * produces must inflate with zlib's inflateInit2(-12), the way QEMU reads
 * zlib-type qcow2 clusters, back to the input: random, zero, text-like
 * and mixed data of 512 B .. 2 MiB; -ENOSPC when the output doesn't fit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

#include "tests/unit/unit.h"
#include "util/deflate.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

enum shape { RANDOM, ZEROS, TEXT, MIXED, REPEAT_FAR, NSHAPES };

static const char *const words[] = {
    "block", "cluster", "qcow2", "refcount", "the", "of", "image", "backing",
    "snapshot", "L2", "table", "offset", "write", "read", "zero", "and",
};

static void
fill(uint8_t *buf, size_t len, enum shape sh)
{
    size_t i = 0;

    switch (sh) {
    case RANDOM:
        for (i = 0; i < len; i++) {
            buf[i] = (uint8_t)next_rand();
        }
        break;
    case ZEROS:
        memset(buf, 0, len);
        break;
    case TEXT:
        while (i < len) {
            const char *w = words[next_rand() % 16];
            size_t n = strlen(w);

            for (size_t k = 0; k < n && i < len; k++) {
                buf[i++] = (uint8_t)w[k];
            }
            if (i < len) {
                buf[i++] = (next_rand() % 12) ? ' ' : '\n';
            }
        }
        break;
    case MIXED:
        /* 4 KiB pieces of each kind, in random order */
        for (i = 0; i < len; i += 4096) {
            size_t n = len - i < 4096 ? len - i : 4096;

            fill(buf + i, n, (enum shape)(next_rand() % 3));
        }
        break;
    case REPEAT_FAR:
        /* a random 8 KiB pattern repeated: matches lie 8 KiB back, outside
         * the window, so an encoder using a bigger one would be caught */
        for (i = 0; i < len; i++) {
            buf[i] = i < 8192 ? (uint8_t)next_rand() : buf[i - 8192];
        }
        break;
    case NSHAPES:
        break;
    }
}

/* Inflate with QEMU's parameters; 0 if it gives back exactly want. */
static int
inflate_check(const uint8_t *z, size_t zlen, const uint8_t *want, size_t len)
{
    z_stream s;
    uint8_t *out = malloc(len + 1);
    int r, ret = -1;

    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, -12) != Z_OK) {
        free(out);
        return -1;
    }
    s.next_in = (Bytef *)z;
    s.avail_in = (uInt)zlen;
    s.next_out = out;
    s.avail_out = (uInt)len + 1;
    r = inflate(&s, Z_FINISH);
    if (r == Z_STREAM_END && s.total_out == len && s.avail_in == 0 &&
        memcmp(out, want, len) == 0) {
        ret = 0;
    }
    inflateEnd(&s);
    free(out);
    return ret;
}

static void
roundtrip(ssize_t (*enc)(const void *, size_t, void *, size_t), size_t len,
          enum shape sh, size_t *ok, size_t *enospc)
{
    uint8_t *in = malloc(len);
    size_t cap = len + len / 8 + 1024;
    uint8_t *out = malloc(cap);
    ssize_t n;

    fill(in, len, sh);
    n = enc(in, len, out, cap);
    if (!CHECK(n > 0)) {
        printf("  len %zu shape %d: %zd\n", len, sh, n);
    } else if (!CHECK(inflate_check(out, (size_t)n, in, len) == 0)) {
        printf("  len %zu shape %d: does not inflate with -12\n", len, sh);
    } else {
        (*ok)++;
    }
    /*
     * An output one byte too small is refused, never truncated (ISA-L may
     * instead fit another valid encoding, e.g. stored blocks: it must
     * still inflate).
     */
    if (n > 1) {
        ssize_t m = enc(in, len, out, (size_t)n - 1);

        CHECK(m == -ENOSPC ||
              (m > 0 && m < n && inflate_check(out, (size_t)m, in, len) == 0));
        *enospc += m == -ENOSPC;
    }
    free(in);
    free(out);
}

static void
test_roundtrips(ssize_t (*enc)(const void *, size_t, void *, size_t),
                const char *name)
{
    static const size_t sizes[] = {
        512, 1000, 4096, 4097, 32768, 65536, 65536 + 512, 262144,
        1048576, 2097152,
    };
    size_t ok = 0, enospc = 0;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int sh = 0; sh < NSHAPES; sh++) {
            roundtrip(enc, sizes[i], (enum shape)sh, &ok, &enospc);
        }
    }
    /* Many random-sized 64 KiB-ish clusters of mixed content. */
    for (int k = 0; k < 200; k++) {
        size_t len = 512 + next_rand() % 131072;

        roundtrip(enc, len, (enum shape)(next_rand() % NSHAPES), &ok, &enospc);
    }
    printf("%s: %zu streams inflated with window 4 KiB, %zu ENOSPC refusals\n",
           name, ok, enospc);
}

/* Incompressible data into a cluster-sized buffer: -ENOSPC, as qcow2 expects. */
static void
test_incompressible(void)
{
    uint8_t in[65536], out[65536];

    fill(in, sizeof(in), RANDOM);
    CHECK_INT(blk_deflate_raw(in, sizeof(in), out, sizeof(out) - 1), -ENOSPC);
    CHECK_INT(blk_deflate_raw_zlib(in, sizeof(in), out, sizeof(out) - 1),
              -ENOSPC);
    fill(in, sizeof(in), ZEROS);
    CHECK(blk_deflate_raw(in, sizeof(in), out, 16) == -ENOSPC);
    CHECK(blk_deflate_raw(in, sizeof(in), out, 1024) > 0);
}

/* The encoder must not be worse than zlib's level 1 by much on text. */
static void
test_ratio(void)
{
    size_t len = 1 << 20;
    uint8_t *in = malloc(len), *out = malloc(len);
    ssize_t a, b;

    fill(in, len, TEXT);
    a = blk_deflate_raw(in, len, out, len);
    b = blk_deflate_raw_zlib(in, len, out, len);
    CHECK(a > 0 && b > 0);
    CHECK(a < b + b / 4);
    printf("text 1 MiB: %s %zd bytes, zlib-1 %zd bytes\n", blk_deflate_impl(),
           a, b);
    free(in);
    free(out);
}

int
main(void)
{
    test_roundtrips(blk_deflate_raw, blk_deflate_impl());
    test_roundtrips(blk_deflate_raw_zlib, "zlib");
    test_incompressible();
    test_ratio();
    blk_deflate_thread_release();
    return unit_done();
}
