/*
 * bitmap.c - bench-bitmap: what recording dirty bitmaps cost writes, and
 * how long dumping a huge bitmap takes.  bench/bitmap.sh drives it:
 *   bench-bitmap write TARGET NBITMAPS COUNT BYTES  (TARGET: null, raw file)
 *   bench-bitmap make IMAGE NAME EXTENTS    (persistent bitmap, N extents)
 *   bench-bitmap dump IMAGE NAME            (in-process dump to /dev/null)
 * Times are CPU time of the process (write: also wall time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/bitmap-qmp.h"
#include "block/block.h"
#include "keyval/schema.h"

static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const struct blk_error *err)
{
    fprintf(stderr, "bench-bitmap: %s: %s\n", what, err->msg);
    exit(1);
}

static struct blk_node *
open_target(struct blk_graph *g, const char *target, struct blk_error *err)
{
    struct kv *opts;
    struct blk_node *bs;

    if (strcmp(target, "null") == 0) {
        opts = kv_parse_typed("driver=null-co,size=1099511627776", "BlockdevOptions",
                              NULL, NULL, err);
        if (opts == NULL) {
            return NULL;
        }
        bs = blk_node_open(g, opts, BLK_OPEN_RDWR, err);
        kv_free(opts);
        return bs;
    }
    return blk_open_image(g, target, "raw", false, BLK_OPEN_RDWR, err);
}

/*
 * COUNT writes of BYTES, sequential, wrapping at 64 MiB (or the image end)
 * so that a raw file's working set stays in the page cache.  Prints the
 * target, NBITMAPS, MiB/s, wall ns per write and CPU ns per write.
 */
static int
bench_write(const char *target, int nbitmaps, long count, size_t bytes)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_target(g, target, &err);
    int64_t len;
    uint64_t span, off = 0;
    double c0, w0, cpu, wall;
    char *buf;
    long i;

    if (bs == NULL) {
        die(target, &err);
    }
    len = blk_node_get_length(bs);
    span = len > (64 << 20) ? (64 << 20) : (uint64_t)len;
    for (int k = 0; k < nbitmaps; k++) {
        char name[16];

        snprintf(name, sizeof(name), "b%d", k);
        if (blk_bitmap_create(bs, name, 65536, &err) == NULL) {
            die("bitmap", &err);
        }
    }
    buf = calloc(1, bytes);
    c0 = cpu_now();
    w0 = wall_now();
    for (i = 0; i < count; i++) {
        if (blk_node_pwrite(bs, off, buf, bytes, 0, &err) < 0) {
            die("write", &err);
        }
        off += bytes;
        if (off + bytes > span) {
            off = 0;
        }
    }
    cpu = cpu_now() - c0;
    wall = wall_now() - w0;
    printf("%s %d %.1f %.1f %.3f\n", target, nbitmaps,
           (double)count * (double)bytes / wall / 1048576.0,
           wall * 1e9 / (double)count, cpu * 1e9 / (double)count);
    free(buf);
    blk_node_unref(bs);
    blk_graph_free(g);
    return 0;
}

/* A persistent bitmap with n dirty extents spread evenly (stored at close). */
static int
bench_make(const char *image, const char *name, long n)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = blk_open_image(g, image, "qcow2", false,
                                         BLK_OPEN_RDWR, &err);
    struct blk_bitmap *bm;
    uint64_t size, step;

    if (bs == NULL) {
        die(image, &err);
    }
    bm = blk_bitmap_qmp_add(bs, name, false, 0, true, false, &err);
    if (bm == NULL) {
        die("bitmap", &err);
    }
    size = blk_bitmap_size(bm);
    step = size / (uint64_t)n;
    for (long i = 0; i < n; i++) {
        /* alternate one and three granules, so extents differ in length */
        blk_bitmap_set(bm, (uint64_t)i * step,
                       blk_bitmap_granularity(bm) * (i % 2 ? 3 : 1));
    }
    blk_node_unref(bs);
    blk_graph_free(g);
    return 0;
}

static int
bench_dump(const char *image, const char *name)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = blk_open_image(g, image, NULL, false, 0, &err);
    struct blk_bitmap *bm;
    FILE *null = fopen("/dev/null", "w");
    double c0, t_json, t_human;

    if (bs == NULL) {
        die(image, &err);
    }
    bm = blk_bitmap_qmp_lookup(bs, name, &err);
    if (bm == NULL || null == NULL) {
        die(name, &err);
    }
    c0 = cpu_now();
    blk_bitmap_dump(bm, 0, UINT64_MAX, true, null);
    t_json = cpu_now() - c0;
    c0 = cpu_now();
    blk_bitmap_dump(bm, 0, UINT64_MAX, false, null);
    t_human = cpu_now() - c0;
    printf("%.3f %.3f\n", t_json * 1e3, t_human * 1e3);
    fclose(null);
    blk_node_unref(bs);
    blk_graph_free(g);
    return 0;
}

int
main(int argc, char **argv)
{
    blk_loop_init(4);
    kv_schema_init();
    if (argc == 6 && strcmp(argv[1], "write") == 0) {
        return bench_write(argv[2], atoi(argv[3]), atol(argv[4]),
                           (size_t)atol(argv[5]));
    }
    if (argc == 5 && strcmp(argv[1], "make") == 0) {
        return bench_make(argv[2], argv[3], atol(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "dump") == 0) {
        return bench_dump(argv[2], argv[3]);
    }
    fprintf(stderr, "usage: bench-bitmap write null|RAWFILE NBITMAPS COUNT BYTES\n"
            "       bench-bitmap make IMAGE NAME EXTENTS\n"
            "       bench-bitmap dump IMAGE NAME\n");
    return 2;
}
