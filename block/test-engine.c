/*
 * test-engine.c - the asynchronous engine (block/req.c) where filters
 * stack: two throttling filters, one over the other, each admitting every
 * request once and in order; drain of a child holding its parents' new
 * requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/bitmap.h"
#include "block/block.h"
#include "util/xalloc.h"
#include "tests/unit/memdrv.h"

static int
filt_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    return blk_node_open_child(bs, opts, "file", "file", BLK_ROLE_FILTERED,
                               false, err) ? 0 : -EINVAL;
}

/* The upper throttle admits everything at once and counts admissions. */
static unsigned upper_admits;

static uint64_t
upper_admit(struct blk_node *bs, uint64_t bytes, bool is_write)
{
    upper_admits++;
    return 0;
}

/* The lower one holds its first request 5 ms, then admits. */
static unsigned lower_calls;

static uint64_t
lower_admit(struct blk_node *bs, uint64_t bytes, bool is_write)
{
    return lower_calls++ == 0 ? 5000000 : 0;
}

static const struct blk_driver upper_driver = {
    .name = "test-upper",
    .threads = BLK_THREADS_PARALLEL,
    .is_filter = true,
    .open = filt_open,
    .admit = upper_admit,
};

static const struct blk_driver lower_driver = {
    .name = "test-lower",
    .threads = BLK_THREADS_PARALLEL,
    .is_filter = true,
    .open = filt_open,
    .admit = lower_admit,
};

struct treq {
    struct blk_req req;
    struct iovec iov;
    unsigned char buf[4096];
    unsigned calls;
};

static unsigned completed, want;
static bool all_done;

static void
treq_cb(struct blk_req *r)
{
    struct treq *t = container_of(r, struct treq, req);

    t->calls++;
    if (++completed == want) {
        all_done = true;
    }
}

static struct blk_node *
open_over(struct blk_graph *g, const struct blk_driver *drv,
          struct blk_node *file)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *bs;

    kv_set(o, "file", kv_new_str(blk_node_get_name(file)));
    bs = blk_node_open_driver(g, drv, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    if (bs == NULL) {
        fprintf(stderr, "open: %s\n", err.msg);
    }
    return bs;
}

static struct blk_node *
open_mem(struct blk_graph *g)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *bs;

    kv_set(o, "delay", kv_new_int(0));
    bs = blk_node_open_driver(g, &memdrv_driver, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    return bs;
}

/*
 * While the lower throttle holds a request, later ones queue behind it;
 * the upper throttle must still admit (and account) each of them.
 */
static void
test_stacked_throttles(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *mem = open_mem(g);
    struct blk_node *lower = open_over(g, &lower_driver, mem);
    struct blk_node *upper = open_over(g, &upper_driver, lower);
    enum { N = 10 };
    struct treq *reqs[N];
    unsigned i;

    CHECK(upper != NULL);
    completed = 0;
    want = N;
    all_done = false;
    upper_admits = lower_calls = 0;
    for (i = 0; i < N; i++) {
        reqs[i] = xzalloc(sizeof(*reqs[i]));
        reqs[i]->req.op = i % 2 ? BLK_OP_READ : BLK_OP_WRITE;
        reqs[i]->req.offset = (uint64_t)i * 4096;
        reqs[i]->req.length = 4096;
        reqs[i]->iov.iov_base = reqs[i]->buf;
        reqs[i]->iov.iov_len = 4096;
        reqs[i]->req.iov = &reqs[i]->iov;
        reqs[i]->req.iovcnt = 1;
        reqs[i]->req.cb = treq_cb;
        blk_req_submit(upper, &reqs[i]->req);
    }
    blk_loop_run_until(&all_done);
    CHECK_INT(completed, N);
    CHECK_INT(upper_admits, N);
    CHECK(lower_calls >= N);
    for (i = 0; i < N; i++) {
        CHECK_INT(reqs[i]->calls, 1);
        CHECK_INT(reqs[i]->req.ret, 0);
        free(reqs[i]);
    }
    blk_node_unref(upper);
    blk_node_unref(lower);
    blk_node_unref(mem);
    blk_graph_free(g);
}

static bool drained;

static void
drain_cb(void *opaque)
{
    drained = true;
}

/* Draining a child holds new requests on its parent until drain_end. */
static void
test_drain_child_holds_parent(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *mem = open_mem(g);
    struct blk_node *upper = open_over(g, &upper_driver, mem);
    struct treq *t = xzalloc(sizeof(*t));

    completed = 0;
    want = 1;
    all_done = false;
    drained = false;
    blk_node_drain_begin(mem, drain_cb, NULL);
    blk_loop_run_until(&drained);
    t->req.op = BLK_OP_READ;
    t->req.length = 4096;
    t->iov.iov_base = t->buf;
    t->iov.iov_len = 4096;
    t->req.iov = &t->iov;
    t->req.iovcnt = 1;
    t->req.cb = treq_cb;
    blk_req_submit(upper, &t->req);
    CHECK_INT(blk_node_in_flight(upper), 1);
    uv_run(blk_loop(), UV_RUN_NOWAIT);
    CHECK_INT(t->calls, 0);
    blk_node_drain_end(mem);
    blk_loop_run_until(&all_done);
    CHECK_INT(t->calls, 1);
    free(t);
    blk_node_unref(upper);
    blk_node_unref(mem);
    blk_graph_free(g);
}

/*
 * Bitmaps come and go on the loop while workers write and mark: the
 * node's bitmap list is published to the markers safely.
 */
static void
test_bitmap_while_writing(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *mem;
    enum { N = 200 };
    struct treq *reqs[N];
    struct blk_bitmap *bm;
    unsigned i;

    kv_set(o, "delay", kv_new_int(300));
    mem = blk_node_open_driver(g, &memdrv_driver, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    completed = 0;
    want = N;
    all_done = false;
    for (i = 0; i < N; i++) {
        reqs[i] = xzalloc(sizeof(*reqs[i]));
        reqs[i]->req.op = BLK_OP_WRITE;
        reqs[i]->req.offset = (uint64_t)(i % 64) * 4096 + 512;  /* the pool */
        reqs[i]->req.length = 4096;
        reqs[i]->iov.iov_base = reqs[i]->buf;
        reqs[i]->iov.iov_len = 4096;
        reqs[i]->req.iov = &reqs[i]->iov;
        reqs[i]->req.iovcnt = 1;
        reqs[i]->req.cb = treq_cb;
        blk_req_submit(mem, &reqs[i]->req);
    }
    while (!all_done) {
        bm = blk_bitmap_create(mem, "b", 4096, &err);
        CHECK(bm != NULL);
        uv_run(blk_loop(), UV_RUN_NOWAIT);
        (void)blk_bitmap_count(bm);
        blk_bitmap_release(bm);
        usleep(100);
    }
    for (i = 0; i < N; i++) {
        CHECK_INT(reqs[i]->calls, 1);
        free(reqs[i]);
    }
    blk_node_unref(mem);
    blk_graph_free(g);
}

/* The drain callback changes the graph: the edge it drops is not touched again. */
static struct blk_node *detach_parent;

static void
drain_detach_cb(void *opaque)
{
    struct blk_node *child = opaque;

    drained = true;
    blk_node_drain_end(child);
    blk_node_detach_child(detach_parent,
                          blk_node_get_child(detach_parent, "file"));
}

static void
test_drain_cb_changes_graph(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *mem = open_mem(g);
    struct blk_node *upper = open_over(g, &upper_driver, mem);
    struct treq *t = xzalloc(sizeof(*t));

    completed = 0;
    want = 1;
    all_done = false;
    drained = false;
    detach_parent = upper;
    t->req.op = BLK_OP_WRITE;
    t->req.length = 4096;
    t->iov.iov_base = t->buf;
    t->iov.iov_len = 4096;
    t->req.iov = &t->iov;
    t->req.iovcnt = 1;
    t->req.cb = treq_cb;
    blk_req_submit(upper, &t->req);
    blk_node_drain_begin(mem, drain_detach_cb, mem);
    blk_loop_run_until(&all_done);
    blk_loop_run_until(&drained);
    CHECK_INT(t->calls, 1);
    CHECK(drained);
    CHECK(blk_node_file(upper) == NULL);
    free(t);
    blk_node_unref(upper);
    blk_node_unref(mem);
    blk_graph_free(g);
}

int
main(void)
{
    blk_loop_init(4);
    test_stacked_throttles();
    test_drain_child_holds_parent();
    test_bitmap_while_writing();
    test_drain_cb_changes_graph();
    uv_loop_close(blk_loop());
    return unit_done();
}
