/*
 * test-inline.c - small buffered writes run inline on the loop
 * (blk_loop_set_inline_writes): many asynchronous writes of mixed sizes,
 * some small enough to run inline and some not, interleaved with reads of
 * what was written, through raw and qcow2 images on a real file; every
 * byte must read back as a model of the writes says, on both the inline
 * and the ring/pool paths, and the inline path must really have run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "block/uring.h"
#include "util/xalloc.h"

#define IMG_SIZE (4u << 20)
#define NREQ 32

static char dir[] = "/tmp/blk-test-inline-" UNIT_MKTEMP_SUFFIX;

struct wreq {
    struct blk_req req;
    struct iovec iov;
    unsigned char *buf;
};

static unsigned completed, expected;
static bool finished;
static int first_error;

static void
done_cb(struct blk_req *req)
{
    if (req->ret < 0 && first_error == 0) {
        first_error = req->ret;
    }
    finished = ++completed == expected;
}

/*
 * NREQ writes on bs, sizes 512 B to 128 KiB (so both sides of the inline
 * limit), at non-overlapping offsets, each with its own pattern; then the
 * image must equal the model.
 */
static void
write_and_check(struct blk_node *bs, unsigned seed)
{
    unsigned char *model = xzalloc(IMG_SIZE), *back = xmalloc(IMG_SIZE);
    struct wreq *w = xzalloc(NREQ * sizeof(*w));
    struct blk_error err = BLK_ERROR_INIT;
    uint64_t slot = IMG_SIZE / NREQ;        /* 128 KiB per request */
    int r;

    r = blk_node_pread(bs, 0, model, IMG_SIZE, &err);
    CHECK_INT(r, 0);
    completed = 0;
    expected = NREQ;
    finished = false;
    first_error = 0;
    for (unsigned i = 0; i < NREQ; i++) {
        unsigned k = (i * 7 + seed) % 9;
        uint64_t len = 512ull << k;        /* 512 B .. 128 KiB */
        uint64_t off = (uint64_t)i * slot;

        w[i].buf = xmalloc(len);
        memset(w[i].buf, (int)(i * 31 + seed) & 0xff, len);
        memcpy(model + off, w[i].buf, len);
        w[i].iov.iov_base = w[i].buf;
        w[i].iov.iov_len = len;
        w[i].req.op = BLK_OP_WRITE;
        w[i].req.offset = off;
        w[i].req.length = len;
        w[i].req.iov = &w[i].iov;
        w[i].req.iovcnt = 1;
        w[i].req.cb = done_cb;
        blk_req_submit(bs, &w[i].req);
    }
    blk_loop_run_until(&finished);
    CHECK_INT(first_error, 0);
    CHECK_INT(completed, expected);
    r = blk_node_pread(bs, 0, back, IMG_SIZE, &err);
    CHECK_INT(r, 0);
    CHECK(memcmp(model, back, IMG_SIZE) == 0);
    for (unsigned i = 0; i < NREQ; i++) {
        free(w[i].buf);
    }
    free(w);
    free(model);
    free(back);
}

static void
run_format(const char *fmt)
{
    char *p = xasprintf("%s/img.%s", dir, fmt);
    char cmd[512];
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    unsigned long before;

    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f %s %s %u && "
             "qemu-io -f %s -c 'write -q -P 0x11 0 %u' %s >/dev/null",
             fmt, p, IMG_SIZE, fmt, IMG_SIZE, p);
    if (system(cmd) != 0) {
        /* no QEMU: a raw file of the same size */
        FILE *f = fopen(p, "wb");

        CHECK(f != NULL);
        if (f == NULL || strcmp(fmt, "raw") != 0) {
            if (f != NULL) {
                fclose(f);
            }
            free(p);
            return;
        }
        CHECK_INT(ftruncate(fileno(f), IMG_SIZE), 0);
        fclose(f);
    }
    g = blk_graph_new();
    bs = blk_open_image(g, p, fmt, false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        blk_graph_free(g);
        free(p);
        return;
    }
    blk_loop_set_inline_writes(true);
    before = blk_loop_inline_writes();
    write_and_check(bs, 1);
    if (blk_uring_ready()) {
        /* writes of 64 KiB or less ran inline */
        CHECK(blk_loop_inline_writes() > before);
    }
    blk_loop_set_inline_writes(false);
    before = blk_loop_inline_writes();
    write_and_check(bs, 2);
    CHECK(blk_loop_inline_writes() == before);
    blk_node_unref(bs);
    blk_graph_free(g);
    free(p);
}

int
main(void)
{
    char cmd[256];

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    blk_loop_init(8);
    run_format("raw");
    run_format("qcow2");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup failed\n");
    }
    return unit_done();
}
