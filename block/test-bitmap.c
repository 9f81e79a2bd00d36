/*
 * test-bitmap.c - dirty bitmaps on nodes: creation rules, marking by every
 * write, write-zeroes and discard through the node (and not by reads or
 * disabled bitmaps), extents rounded to the granularity, merge, the
 * serialised form, resize, and (node, name) addressing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "tests/unit/memdrv.h"
#include "block/bitmap.h"
#include "block/block.h"

static struct blk_node *
open_mem(struct blk_graph *g, const char *name)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *bs;

    kv_set(o, "node-name", kv_new_str(name));
    kv_set(o, "delay", kv_new_int(0));
    kv_set(o, "discard", kv_new_str("unmap"));
    bs = blk_node_open_driver(g, &memdrv_driver, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    return bs;
}

/* The extents of bm as "start+len," text, for compact comparisons. */
static char *
extents(struct blk_bitmap *bm)
{
    static char buf[4096];
    uint64_t off = 0, s, l;
    size_t n = 0;

    buf[0] = '\0';
    while (blk_bitmap_next_dirty_area(bm, off, UINT64_MAX, &s, &l)) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%llu+%llu,",
                              (unsigned long long)s, (unsigned long long)l);
        off = s + l;
    }
    return buf;
}

static void
test_create_rules(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *a = open_mem(g, "a"), *b = open_mem(g, "b");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *x, *y;

    x = blk_bitmap_create(a, "x", 0, &err);
    CHECK(x != NULL);
    CHECK_INT(blk_bitmap_granularity(x), 65536);
    CHECK_INT(blk_bitmap_size(x), MEMDRV_SIZE);
    CHECK(blk_bitmap_create(a, "x", 4096, &err) == NULL);
    CHECK_STR(err.msg, "Bitmap already exists: x");
    blk_error_clear(&err);
    /* Same name on another node: a different bitmap. */
    y = blk_bitmap_create(b, "x", 4096, &err);
    CHECK(y != NULL && y != x);
    CHECK(blk_bitmap_find(a, "x") == x && blk_bitmap_find(b, "x") == y);
    CHECK(blk_bitmap_node(y) == b);
    CHECK(blk_bitmap_create(a, "g", 1000, &err) == NULL);
    CHECK(strstr(err.msg, "power of 2") != NULL);
    blk_error_clear(&err);
    CHECK(blk_bitmap_create(a, "g", 256, &err) == NULL);
    blk_error_clear(&err);
    CHECK(blk_bitmap_create(a, "g", 4ull << 30, &err) == NULL);
    blk_error_clear(&err);
    CHECK(blk_bitmap_create(a, "", 512, &err) == NULL);
    blk_error_clear(&err);
    CHECK(blk_bitmap_create(a, "g", 512, &err) != NULL);
    CHECK(blk_bitmap_next(a, NULL) == x);
    blk_bitmap_release(x);
    CHECK(blk_bitmap_find(a, "x") == NULL);
    blk_node_unref(a);      /* frees "g" with the node */
    blk_node_unref(b);
    blk_graph_free(g);
}

static void
test_marking(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *a = open_mem(g, "a");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *rec, *off;
    unsigned char buf[8192];

    rec = blk_bitmap_create(a, "rec", 4096, &err);
    off = blk_bitmap_create(a, "off", 4096, &err);
    blk_bitmap_set_enabled(off, false);
    memset(buf, 0x5a, sizeof(buf));
    CHECK(blk_node_pwrite(a, 100, buf, 10, 0, &err) == 0);
    CHECK(blk_node_pread(a, 1 << 20, buf, 8192, &err) == 0);   /* no mark */
    CHECK(blk_node_zero(a, 8192, 8192, 0, &err) == 0);
    CHECK(blk_node_discard(a, 65536, 4096, &err) == 0);
    CHECK(blk_node_pwrite(a, MEMDRV_SIZE - 1, buf, 1, 0, &err) == 0);
    CHECK_STR(extents(rec), "0+4096,8192+8192,65536+4096,4190208+4096,");
    CHECK_STR(extents(off), "");
    CHECK_INT(blk_bitmap_count(rec), 4096 * 5);
    CHECK(blk_bitmap_get(rec, 8192) && !blk_bitmap_get(rec, 4096));
    /* Range queries clip to the window. */
    {
        uint64_t s, l;

        CHECK(blk_bitmap_next_dirty_area(rec, 9000, 10000, &s, &l));
        CHECK(s == 9000 && l == 1000);
        CHECK(!blk_bitmap_next_dirty_area(rec, 16384, 65536, &s, &l));
    }
    blk_bitmap_reset(rec, 8192, 4096);
    CHECK_STR(extents(rec), "0+4096,12288+4096,65536+4096,4190208+4096,");
    blk_bitmap_clear(rec);
    CHECK_STR(extents(rec), "");
    blk_node_unref(a);
    blk_graph_free(g);
}

static void
test_merge_and_serialize(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *a = open_mem(g, "a");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *fine, *coarse, *copy;
    uint8_t ser[64];

    fine = blk_bitmap_create(a, "fine", 512, &err);
    coarse = blk_bitmap_create(a, "coarse", 65536, &err);
    blk_bitmap_set(fine, 1000, 10);
    blk_bitmap_set(fine, 200000, 1);
    CHECK(blk_bitmap_merge(coarse, fine, &err) == 0);
    CHECK_STR(extents(coarse), "0+65536,196608+65536,");
    blk_bitmap_set_busy(fine, true);
    CHECK(blk_bitmap_merge(coarse, fine, &err) == -EBUSY);
    blk_error_clear(&err);
    blk_bitmap_set_busy(fine, false);
    blk_bitmap_set_inconsistent(fine, true);
    CHECK(blk_bitmap_merge(coarse, fine, &err) == -EINVAL);
    blk_error_clear(&err);
    blk_bitmap_set_inconsistent(fine, false);

    /* QEMU's serialised order: bit i is bit i%8 of byte i/8. */
    blk_bitmap_serialize(fine, 0, ser, sizeof(ser));
    CHECK_INT(ser[0], 0x02);        /* unit 1: bytes 512..1023 */
    CHECK_INT(ser[390 / 8], 1 << (390 % 8));    /* byte 200000 */
    copy = blk_bitmap_create(a, "copy", 512, &err);
    blk_bitmap_deserialize(copy, 0, ser, sizeof(ser));
    CHECK_STR(extents(copy), "512+512,199680+512,");
    blk_bitmap_set_units(copy, 64, 2);
    CHECK_STR(extents(copy), "512+512,32768+1024,199680+512,");

    CHECK(blk_bitmaps_resize(a, 40000, &err) == 0);
    CHECK_INT(blk_bitmap_size(coarse), 40000);
    CHECK_STR(extents(coarse), "0+40000,");
    blk_node_unref(a);
    blk_graph_free(g);
}

int
main(void)
{
    test_create_rules();
    test_marking();
    test_merge_and_serialize();
    return unit_done();
}
