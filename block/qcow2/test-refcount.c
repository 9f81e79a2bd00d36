/*
 * test-refcount.c - qcow2 refcount entries of every width (1..64 bits):
 * get/set against a simple model, neighbours untouched, big-endian
 * layout as the spec has it; and the compressed descriptor geometry.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
test_widths(void)
{
    for (unsigned order = 0; order <= 6; order++) {
        unsigned bits = 1u << order;
        uint64_t max = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
        size_t entries = 4096 * 8 / bits;
        uint8_t *block = xzalloc(4096);
        uint64_t *model = xcalloc(entries, sizeof(uint64_t));
        uint64_t seed = 0x12345 + order;
        int bad = 0;

        for (int k = 0; k < 20000; k++) {
            size_t i = next_rand(&seed) % entries;
            uint64_t v = next_rand(&seed) & max;

            qcow2_refblock_set(block, i, order, v);
            model[i] = v;
        }
        for (size_t i = 0; i < entries; i++) {
            if (qcow2_refblock_get(block, i, order) != model[i]) {
                bad++;
            }
        }
        CHECK_INT(bad, 0);
        /* The maximum fits; bits beyond the width are dropped. */
        qcow2_refblock_set(block, 3, order, max);
        CHECK(qcow2_refblock_get(block, 3, order) == max);
        CHECK(qcow2_refblock_get(block, 2, order) == model[2]);
        CHECK(qcow2_refblock_get(block, 4, order) == model[4]);
        free(block);
        free(model);
    }
}

static void
test_layout(void)
{
    uint8_t b[16];

    memset(b, 0, sizeof(b));
    qcow2_refblock_set(b, 1, 4, 0x0102);
    CHECK(b[2] == 0x01 && b[3] == 0x02);
    memset(b, 0, sizeof(b));
    qcow2_refblock_set(b, 0, 0, 1);
    qcow2_refblock_set(b, 9, 0, 1);
    CHECK(b[0] == 0x01 && b[1] == 0x02);    /* bit i of byte i/8, LSB first */
    memset(b, 0, sizeof(b));
    qcow2_refblock_set(b, 1, 2, 0xa);
    CHECK(b[0] == 0xa0);
    qcow2_refblock_set(b, 1, 6, 0x0102030405060708ULL);
    CHECK(b[8] == 1 && b[15] == 8);
    qcow2_refblock_set(b, 2, 5, 0xdeadbeef);
    CHECK(qcow2_be32(b + 8) == 0xdeadbeef);
}

static void
test_compressed_descriptor(void)
{
    struct qcow2 q;
    uint64_t host, bytes;

    memset(&q, 0, sizeof(q));
    q.cluster_bits = 16;
    q.csize_shift = 62 - (16 - 8);
    q.csize_mask = (1ULL << 8) - 1;
    q.cluster_offset_mask = (1ULL << q.csize_shift) - 1;
    /* 0x5004f with 0 additional sectors: to the end of its sector. */
    qcow2_parse_compressed(&q, QCOW2_OFLAG_COMPRESSED | 0x5004f, &host, &bytes);
    CHECK_INT(host, 0x5004f);
    CHECK_INT(bytes, 512 - 0x4f);
    qcow2_parse_compressed(&q, QCOW2_OFLAG_COMPRESSED | (3ULL << 54) | 0x60000,
                           &host, &bytes);
    CHECK_INT(host, 0x60000);
    CHECK_INT(bytes, 4 * 512);
}

int
main(void)
{
    test_widths();
    test_layout();
    test_compressed_descriptor();
    return unit_done();
}
