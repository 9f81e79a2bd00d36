/*
 * test-map.c - zero-copy reads (block.h blk_node_map_data): spans of file,
 * raw (with a window) and qcow2 nodes hold exactly what a read returns;
 * what cannot be a span (compressed clusters, a range over two mappings,
 * O_DIRECT, past the end) is -EAGAIN; a qcow2 range the image does not
 * allocate is the backing file's span, one that reads as zeroes a span
 * of zeroes; and a file that shrinks under its mapping
 * reads zeroes and counts a fault instead of killing the process.
 * qcow2 images are made with the real qemu-img/qemu-io 7.2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "keyval/schema.h"
#include "util/xalloc.h"

static char dir[] = "/tmp/blk-test-map-" UNIT_MKTEMP_SUFFIX;

static char *
path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

/* The span at [off, off+len) equals what a read returns. */
static void
check_span(struct blk_node *bs, uint64_t off, uint64_t len)
{
    struct blk_error err = BLK_ERROR_INIT;
    const uint8_t *p = NULL;
    uint8_t *rd = xmalloc(len);

    CHECK_INT(blk_node_map_data(bs, off, len, &p), 0);
    CHECK_INT(blk_node_pread(bs, off, rd, len, &err), 0);
    CHECK(p != NULL && memcmp(p, rd, len) == 0);
    free(rd);
}

static void
test_raw(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    const uint8_t *p;
    char *f = path("r.img"), *spec;

    CHECK_INT(unit_sh("qemu-img create -q -f raw %s 1M && "
                      "qemu-io -f raw -c 'write -P 0x11 0 64k' "
                      "-c 'write -P 0x22 64k 64k' %s >/dev/null", f, f), 0);
    bs = blk_open_image(g, f, "raw", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        check_span(bs, 0, 128 * 1024);
        check_span(bs, 1000, 70000);
        check_span(bs, 512 * 1024, 4096);       /* a hole reads zeroes */
        CHECK_INT(blk_node_map_data(bs, (1 << 20) - 512, 1024, &p), -EAGAIN);
        CHECK_INT(blk_node_map_data(bs, 0, 0, &p), -EAGAIN);
        blk_node_unref(bs);
    }

    /* a window: offsets move by its start, nothing past its end */
    spec = xasprintf("driver=raw,file.driver=file,file.filename=%s,"
                     "offset=65536,size=131072", f);
    bs = blk_open_image(g, spec, NULL, true, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_map_data(bs, 0, 4096, &p), 0);
        CHECK(p[0] == 0x22 && p[4095] == 0x22);
        check_span(bs, 0, 131072);
        CHECK_INT(blk_node_map_data(bs, 131072 - 100, 200, &p), -EAGAIN);
        blk_node_unref(bs);
    }
    free(spec);

    /* O_DIRECT: the user asked to bypass the page cache */
    bs = blk_open_image(g, f, "raw", false, BLK_OPEN_NOCACHE, &err);
    if (bs == NULL) {
        printf("note: O_DIRECT not supported in %s, skipped\n", dir);
        blk_error_clear(&err);
    } else {
        CHECK_INT(blk_node_map_data(bs, 0, 4096, &p), -EAGAIN);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    free(f);
}

static void
test_qcow2(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    const uint8_t *p;
    char *base = path("base.qcow2"), *top = path("top.qcow2");

    /*
     * base: data 0-1M, a zero cluster at 1M, a compressed cluster at 2M,
     * nothing at 3M; top: its own data at 256k-320k, 4M is past the base
     */
    CHECK_INT(unit_sh("qemu-img create -q -f qcow2 %s 4M && "
                      "qemu-io -f qcow2 -c 'write -P 0x31 0 1M' "
                      "-c 'write -z 1M 64k' -c 'write -c -P 0x32 2M 64k' "
                      "%s >/dev/null && "
                      "qemu-img create -q -f qcow2 -b %s -F qcow2 %s 5M && "
                      "qemu-io -f qcow2 -c 'write -P 0x41 256k 64k' "
                      "-c 'write -P 0x42 4M 64k' %s >/dev/null",
                      base, base, base, top, top), 0);
    bs = blk_open_image(g, top, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        fprintf(stderr, "    %s\n", err.msg);
        goto out;
    }
    /* metadata is cached by a first read (map_data never does I/O) */
    {
        uint8_t b[512];

        CHECK_INT(blk_node_pread(bs, 0, b, 512, &err), 0);
        CHECK_INT(blk_node_pread(bs, 4 << 20, b, 512, &err), 0);
        CHECK_INT(blk_node_pread(blk_node_backing(bs), 0, b, 512, &err), 0);
    }
    check_span(bs, 256 * 1024, 65536);          /* the top's own cluster */
    check_span(bs, 4 << 20, 65536);
    check_span(bs, 0, 256 * 1024);              /* the base's, through top */
    check_span(bs, 320 * 1024, 100 * 1024);
    /* zeroes: a zero cluster, nothing anywhere, past the base's end */
    check_span(bs, 1 << 20, 65536);
    check_span(bs, 3 << 20, 1 << 20);
    check_span(bs, (4 << 20) + 65536, 65536);
    CHECK_INT(blk_node_map_data(bs, 1 << 20, 4096, &p), 0);
    CHECK(p[0] == 0 && p[4095] == 0);
    /* several mappings, compressed, over 16 MiB, past the end */
    CHECK_INT(blk_node_map_data(bs, 192 * 1024, 128 * 1024, &p), -EAGAIN);
    CHECK_INT(blk_node_map_data(bs, 2 << 20, 4096, &p), -EAGAIN);
    CHECK_INT(blk_node_map_data(bs, 5 << 20, 1, &p), -EAGAIN);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(base);
    free(top);
}

/*
 * Another process truncates the file under the mapping: the pages past
 * the new end read as zeroes and the fault is counted; the pages before
 * it still hold the data.
 */
static void
test_shrink(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    const uint8_t *p = NULL;
    char *f = path("s.img");
    uint64_t before;
    volatile uint8_t v;

    CHECK_INT(unit_sh("qemu-img create -q -f raw %s 256k && "
                      "qemu-io -f raw -c 'write -P 0x77 0 256k' %s "
                      ">/dev/null", f, f), 0);
    bs = blk_open_image(g, f, "raw", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_map_data(bs, 0, 256 * 1024, &p), 0);
        CHECK(p != NULL && p[200000] == 0x77);
        CHECK_INT(truncate(f, 65536), 0);
        before = blk_map_faults();
        v = p[200000];
        CHECK_INT(v, 0);
        CHECK_INT(blk_map_faults(), before + 1);
        v = p[200001];                          /* the same page: no fault */
        CHECK_INT(v, 0);
        CHECK_INT(blk_map_faults(), before + 1);
        v = p[100];
        CHECK_INT(v, 0x77);
        CHECK_INT(blk_map_faults(), before + 1);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    free(f);
}

static void
cleanup(void)
{
    unit_sh("rm -rf '%s'", dir);
}

int
main(void)
{
    kv_schema_init();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_raw();
    test_qcow2();
    test_shrink();
    cleanup();
    return unit_done();
}
