/*
 * test-gate.c - ordering gates (block.h struct blk_order_gate): requests
 * submitted with BLK_REQ_ORDERED enter their driver one after another in
 * submission order even when the pool runs them on many workers with
 * random delays, a request that fails admission does not hold the others
 * up, and requests without the flag are not ordered by the gate.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "util/xalloc.h"

#define NREQ 200
#define BLOCK 4096u
#define SIZE ((uint64_t)NREQ * BLOCK)

/* A driver that logs, per 4 KiB block, when a write entered and left it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned clock_now;
static unsigned entered[NREQ], left[NREQ];
static unsigned overlapping;        /* writes found inside another's driver run */
static unsigned inside;

static int
log_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    return 0;
}

static int
log_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_error *err)
{
    unsigned i = (unsigned)(off / BLOCK);
    unsigned seed = i * 2654435761u;

    pthread_mutex_lock(&log_lock);
    entered[i] = ++clock_now;
    if (inside++ > 0) {
        overlapping++;
    }
    pthread_mutex_unlock(&log_lock);
    usleep((unsigned)rand_r(&seed) % 300);
    pthread_mutex_lock(&log_lock);
    left[i] = ++clock_now;
    inside--;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

static int64_t
log_get_length(struct blk_node *bs)
{
    return (int64_t)SIZE;
}

static const struct blk_driver log_driver = {
    .name = "test-log",
    .threads = BLK_THREADS_PARALLEL,
    .open = log_open,
    .pwritev = log_pwritev,
    .get_length = log_get_length,
};

struct wreq {
    struct blk_req req;
    struct iovec iov;
    bool done;
};

static unsigned completed;
static bool finished;
static unsigned char buf[BLOCK];

static void
done_cb(struct blk_req *req)
{
    struct wreq *w = req->opaque;

    w->done = true;
    completed++;
    finished = completed == NREQ;
}

/* Submit NREQ writes, block i at offset i * 4 KiB (one past the end if bad). */
static void
run(struct blk_node *bs, struct blk_order_gate *gate, unsigned bad,
    struct wreq *w)
{
    memset(entered, 0, sizeof(entered));
    memset(left, 0, sizeof(left));
    clock_now = 0;
    overlapping = 0;
    completed = 0;
    finished = false;
    for (unsigned i = 0; i < NREQ; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].iov.iov_base = buf;
        w[i].iov.iov_len = BLOCK;
        w[i].req.op = BLK_OP_WRITE;
        w[i].req.offset = i == bad ? SIZE : (uint64_t)i * BLOCK;
        w[i].req.length = BLOCK;
        w[i].req.iov = &w[i].iov;
        w[i].req.iovcnt = 1;
        w[i].req.cb = done_cb;
        w[i].req.opaque = &w[i];
        if (gate != NULL) {
            w[i].req.flags = BLK_REQ_ORDERED;
            w[i].req.gate = gate;
        }
        blk_req_submit(bs, &w[i].req);
    }
    blk_loop_run_until(&finished);
}

static void
test_ordered(struct blk_node *bs)
{
    struct blk_order_gate gate;
    struct wreq *w = xzalloc(NREQ * sizeof(*w));
    bool in_order = true;

    blk_order_gate_init(&gate);
    run(bs, &gate, NREQ, w);
    CHECK_INT(completed, NREQ);
    for (unsigned i = 0; i < NREQ; i++) {
        CHECK_INT(w[i].req.ret, 0);
        if (i > 0 && entered[i] < left[i - 1]) {
            in_order = false;
        }
    }
    /* each write entered the driver after the one before it had left */
    CHECK(in_order);
    CHECK_INT(overlapping, 0);
    blk_order_gate_destroy(&gate);
    free(w);
}

static void
test_failed_admission(struct blk_node *bs)
{
    struct blk_order_gate gate;
    struct wreq *w = xzalloc(NREQ * sizeof(*w));
    bool in_order = true;

    blk_order_gate_init(&gate);
    run(bs, &gate, 37, w);
    CHECK_INT(completed, NREQ);
    CHECK(w[37].req.ret < 0);
    CHECK_INT(entered[37], 0);
    for (unsigned i = 0; i < NREQ; i++) {
        if (i != 37) {
            CHECK_INT(w[i].req.ret, 0);
        }
        if (i > 0 && i != 37 && i != 38 && entered[i] < left[i - 1]) {
            in_order = false;
        }
    }
    CHECK(in_order);
    CHECK(entered[38] > left[36]);
    /* the gate goes on working after the failure */
    run(bs, &gate, NREQ, w);
    CHECK_INT(completed, NREQ);
    CHECK_INT(overlapping, 0);
    blk_order_gate_destroy(&gate);
    free(w);
}

static void
test_unordered(struct blk_node *bs)
{
    struct wreq *w = xzalloc(NREQ * sizeof(*w));

    run(bs, NULL, NREQ, w);
    CHECK_INT(completed, NREQ);
    /* without the flag the pool runs writes side by side */
    CHECK(overlapping > 0);
    free(w);
}

int
main(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    struct kv *o = kv_new_object();

    blk_loop_init(8);
    g = blk_graph_new();
    bs = blk_node_open_driver(g, &log_driver, o, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        test_ordered(bs);
        test_failed_admission(bs);
        test_unordered(bs);
        blk_node_unref(bs);
    }
    kv_free(o);
    blk_graph_free(g);
    return unit_done();
}
