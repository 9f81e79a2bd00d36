/*
 * test-bitmap-qmp.c - the block-dirty-bitmap-* operations with QEMU's
 * checks and messages (add's order of checks, busy/read-only/inconsistent,
 * merge's size check and all-or-nothing sources) and the extent dump
 * (JSON and table, ranges, a partial last granule, a 1 TiB bitmap).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "tests/unit/memdrv.h"
#include "block/bitmap-qmp.h"
#include "keyval/schema.h"

static struct blk_node *
open_mem(struct blk_graph *g, const char *name)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *bs;

    kv_set(o, "node-name", kv_new_str(name));
    kv_set(o, "delay", kv_new_int(0));
    bs = blk_node_open_driver(g, &memdrv_driver, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    return bs;
}

static struct blk_node *
open_null(struct blk_graph *g, const char *opts)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_parse_typed(opts, "BlockdevOptions", NULL, NULL, &err);
    struct blk_node *bs;

    assert(o != NULL);
    bs = blk_node_open(g, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    assert(bs != NULL);
    return bs;
}

/* Dump into a string (caller frees). */
static char *
dump(struct blk_bitmap *bm, uint64_t off, uint64_t len, bool json)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);

    blk_bitmap_dump(bm, off, len, json, f);
    fclose(f);
    return buf;
}

static void
check_dump(struct blk_bitmap *bm, uint64_t off, uint64_t len, bool json,
           const char *want)
{
    char *got = dump(bm, off, len, json);

    CHECK_STR(got, want);
    free(got);
}

static void
test_add(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *a = open_mem(g, "a");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *bm;

    CHECK(blk_bitmap_qmp_add(a, "", true, 100, false, false, &err) == NULL);
    CHECK_STR(err.msg, "Bitmap name cannot be empty");
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK(blk_bitmap_qmp_add(a, "x", true, 100, false, false, &err) == NULL);
    CHECK_STR(err.msg, "Granularity must be power of 2 and at least 512");
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK(blk_bitmap_qmp_add(a, "x", true, 4ull << 30, false, false, &err) == NULL);
    CHECK_STR(err.msg, "Granularity must be power of 2 and at least 512");
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK(blk_bitmap_qmp_add(a, "x", true, 3000, false, false, &err) == NULL);
    err = (struct blk_error)BLK_ERROR_INIT;

    bm = blk_bitmap_qmp_add(a, "x", false, 0, false, true, &err);
    CHECK(bm != NULL);
    CHECK_INT(blk_bitmap_granularity(bm), 65536);
    CHECK(!blk_bitmap_enabled(bm));
    CHECK(!blk_bitmap_persistent(bm));
    CHECK(blk_bitmap_qmp_add(a, "y", true, 2ull << 30, false, false, &err) != NULL);
    CHECK(blk_bitmap_qmp_add(a, "z", true, 512, false, false, &err) != NULL);

    /* duplicate is checked before persistence, after granularity */
    CHECK(blk_bitmap_qmp_add(a, "x", false, 0, true, false, &err) == NULL);
    CHECK_STR(err.msg, "Bitmap already exists: x");
    CHECK_INT(err.code, -EEXIST);
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK(blk_bitmap_qmp_add(a, "p", false, 0, true, false, &err) == NULL);
    CHECK_STR(err.msg, "Can't store persistent bitmaps to a: Operation not supported");
    CHECK(blk_bitmap_find(a, "p") == NULL);

    blk_node_unref(a);
    blk_graph_free(g);
}

static void
test_checks(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *a = open_mem(g, "a");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *bm = blk_bitmap_qmp_add(a, "b", false, 0, false, false, &err);

    CHECK(blk_bitmap_qmp_lookup(a, "nope", &err) == NULL);
    CHECK_STR(err.msg, "Dirty bitmap 'nope' not found");
    CHECK_INT(blk_bitmap_qmp_remove(a, "nope", NULL), -ENOENT);

    blk_bitmap_set_busy(bm, true);
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK_INT(blk_bitmap_qmp_clear(a, "b", &err), -EBUSY);
    CHECK_STR(err.msg, "Bitmap 'b' is currently in use by another operation "
              "and cannot be used");
    CHECK_INT(blk_bitmap_qmp_remove(a, "b", NULL), -EBUSY);
    blk_bitmap_set_busy(bm, false);

    blk_bitmap_set_inconsistent(bm, true);
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK_INT(blk_bitmap_qmp_enable(a, "b", true, &err), -ESTALE);
    CHECK_STR(err.msg, "Bitmap 'b' is inconsistent and cannot be used");
    CHECK_INT(blk_bitmap_qmp_clear(a, "b", NULL), -ESTALE);
    CHECK_INT(blk_bitmap_qmp_check(bm, BLK_BITMAP_CHECK_BUSY, NULL), 0);
    /* remove is what an inconsistent bitmap is good for */
    CHECK_INT(blk_bitmap_qmp_remove(a, "b", NULL), 0);
    CHECK(blk_bitmap_find(a, "b") == NULL);

    bm = blk_bitmap_qmp_add(a, "c", false, 0, false, false, NULL);
    CHECK_INT(blk_bitmap_qmp_enable(a, "c", false, NULL), 0);
    CHECK(!blk_bitmap_enabled(bm));
    CHECK_INT(blk_bitmap_qmp_enable(a, "c", true, NULL), 0);
    CHECK(blk_bitmap_enabled(bm));
    blk_bitmap_set(bm, 0, 1);
    CHECK_INT(blk_bitmap_qmp_clear(a, "c", NULL), 0);
    CHECK_INT(blk_bitmap_count(bm), 0);

    blk_node_unref(a);
    blk_graph_free(g);
}

static void
test_merge(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *a = open_mem(g, "a");
    struct blk_node *n = open_null(g, "driver=null-co,node-name=n,size=8388608");
    struct blk_node *m = open_null(g, "driver=null-co,node-name=m,size=4194304");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *dst, *fine, *other, *big, *srcs[3];

    dst = blk_bitmap_qmp_add(a, "dst", false, 0, false, true, NULL);
    fine = blk_bitmap_qmp_add(a, "fine", true, 512, false, true, NULL);
    other = blk_bitmap_qmp_add(m, "o", true, 1 << 20, false, true, NULL);
    big = blk_bitmap_qmp_add(n, "big", false, 0, false, true, NULL);
    blk_bitmap_set(fine, 1000, 10);
    blk_bitmap_set(other, 3 << 20, 1);

    /* a bad source anywhere in the list leaves the target unchanged */
    srcs[0] = fine;
    srcs[1] = big;
    CHECK_INT(blk_bitmap_qmp_merge(dst, srcs, 2, &err), -EINVAL);
    CHECK_STR(err.msg, "Bitmaps are of different sizes (destination size is "
              "4194304, source size is 8388608) and can't be merged");
    CHECK_INT(blk_bitmap_count(dst), 0);
    blk_bitmap_set_inconsistent(other, true);
    srcs[1] = other;
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK_INT(blk_bitmap_qmp_merge(dst, srcs, 2, &err), -ESTALE);
    CHECK_STR(err.msg, "Bitmap 'o' is inconsistent and cannot be used");
    CHECK_INT(blk_bitmap_count(dst), 0);
    blk_bitmap_set_inconsistent(other, false);

    /* sources on other nodes, other granularities, the target itself */
    srcs[2] = dst;
    CHECK_INT(blk_bitmap_qmp_merge(dst, srcs, 3, NULL), 0);
    check_dump(dst, 0, UINT64_MAX, true,
               "[{ \"start\": 0, \"length\": 65536, \"dirty\": true},\n"
               "{ \"start\": 65536, \"length\": 3080192, \"dirty\": false},\n"
               "{ \"start\": 3145728, \"length\": 1048576, \"dirty\": true}]\n");
    CHECK_INT(blk_bitmap_qmp_merge(dst, NULL, 0, NULL), 0);

    blk_bitmap_set_busy(dst, true);
    err = (struct blk_error)BLK_ERROR_INIT;
    CHECK_INT(blk_bitmap_qmp_merge(dst, srcs, 1, &err), -EBUSY);
    blk_bitmap_set_busy(dst, false);

    blk_node_unref(a);
    blk_node_unref(n);
    blk_node_unref(m);
    blk_graph_free(g);
}

static void
test_dump(void)
{
    struct blk_graph *g = blk_graph_new();
    /* 1000448 bytes (null-co rounds to 512): the last granule is 17408 bytes */
    struct blk_node *n = open_null(g, "driver=null-co,node-name=n,size=1000000");
    struct blk_bitmap *bm = blk_bitmap_qmp_add(n, "b", false, 0, false, true, NULL);

    check_dump(bm, 0, UINT64_MAX, true,
               "[{ \"start\": 0, \"length\": 1000448, \"dirty\": false}]\n");
    check_dump(bm, 0, UINT64_MAX, false,
               "Start           Length          Dirty\n"
               "0               0xf4400         no\n");
    blk_bitmap_set(bm, 70000, 1);
    blk_bitmap_set(bm, 999999, 1);
    check_dump(bm, 0, UINT64_MAX, true,
               "[{ \"start\": 0, \"length\": 65536, \"dirty\": false},\n"
               "{ \"start\": 65536, \"length\": 65536, \"dirty\": true},\n"
               "{ \"start\": 131072, \"length\": 851968, \"dirty\": false},\n"
               "{ \"start\": 983040, \"length\": 17408, \"dirty\": true}]\n");
    check_dump(bm, 0, UINT64_MAX, false,
               "Start           Length          Dirty\n"
               "0               0x10000         no\n"
               "0x10000         0x10000         yes\n"
               "0x20000         0xd0000         no\n"
               "0xf0000         0x4400          yes\n");
    /* ranges: cut inside extents, past the end, empty */
    check_dump(bm, 100000, 40000, true,
               "[{ \"start\": 100000, \"length\": 31072, \"dirty\": true},\n"
               "{ \"start\": 131072, \"length\": 8928, \"dirty\": false}]\n");
    check_dump(bm, 990000, UINT64_MAX, true,
               "[{ \"start\": 990000, \"length\": 10448, \"dirty\": true}]\n");
    check_dump(bm, 1000448, 10, true, "[]\n");
    check_dump(bm, 5, 0, true, "[]\n");
    check_dump(bm, 2000000, 10, false, "Start           Length          Dirty\n");

    blk_node_unref(n);
    blk_graph_free(g);
}

/* 1 TiB, 10,000 extents: the dump walks extents, not bits. */
static void
test_dump_huge(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *n = open_null(g, "driver=null-co,node-name=n,size=1099511627776");
    struct blk_bitmap *bm = blk_bitmap_qmp_add(n, "b", false, 0, false, true, NULL);
    uint64_t step = (1ull << 40) / 10000;
    char *out, *p;
    size_t lines = 0, dirty = 0;

    for (int i = 0; i < 10000; i++) {
        blk_bitmap_set(bm, (uint64_t)i * step, 1);
    }
    out = dump(bm, 0, UINT64_MAX, true);
    for (p = out; (p = strchr(p, '\n')) != NULL; p++) {
        lines++;
    }
    for (p = out; (p = strstr(p, "\"dirty\": true")) != NULL; p++) {
        dirty++;
    }
    CHECK_INT(dirty, 10000);
    CHECK_INT(lines, 20000);
    free(out);
    blk_node_unref(n);
    blk_graph_free(g);
}

int
main(void)
{
    blk_loop_init(4);
    kv_schema_init();
    test_add();
    test_checks();
    test_merge();
    test_dump();
    test_dump_huge();
    return unit_done();
}
