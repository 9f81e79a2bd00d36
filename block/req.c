/*
 * req.c - the asynchronous engine on the libuv loop: admission (checks,
 * the drain gate, throttle holds on timers), then a request's whole
 * driver chain on the loop (a page-cache hit), on the loop's io_uring
 * (block/uring.c), or handed to the thread pool, and the one completion
 * callback on the loop.  Loop thread only, except work_cb (a worker).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "block/node-int.h"
#include "block/uring.h"
#include "util/iov.h"
#include "util/xalloc.h"

static uv_loop_t *the_loop;

uv_loop_t *
blk_loop_init(unsigned threads)
{
    char buf[16];

    if (the_loop != NULL) {
        return the_loop;
    }
    if (threads == 0) {
        threads = 4;
    }
    if (threads > 1024) {
        threads = 1024;     /* libuv's own cap */
    }
    /* Read by libuv when the pool first starts, so set it before any work. */
    snprintf(buf, sizeof(buf), "%u", threads);
    setenv("UV_THREADPOOL_SIZE", buf, 1);
    the_loop = uv_default_loop();
    return the_loop;
}

uv_loop_t *
blk_loop(void)
{
    if (the_loop == NULL) {
        blk_loop_init(0);
    }
    return the_loop;
}

void
blk_loop_run_until(const bool *done)
{
    uv_loop_t *loop = blk_loop();

    while (!*done) {
        if (uv_run(loop, UV_RUN_ONCE) == 0 && !*done) {
            /* Nothing left that could ever set *done. */
            break;
        }
    }
}

/* ---- completion ---------------------------------------------------------- */

static void drain_check(struct blk_node *bs);

static bool
is_data_op(enum blk_op op)
{
    return op == BLK_OP_READ || op == BLK_OP_WRITE || op == BLK_OP_ZERO ||
           op == BLK_OP_DISCARD;
}

void
blk_order_gate_init(struct blk_order_gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    for (unsigned i = 0; i < BLK_ORDER_GATE_CONDS; i++) {
        pthread_cond_init(&g->cond[i], NULL);
    }
    g->issued = 0;
    g->passed = 0;
}

void
blk_order_gate_destroy(struct blk_order_gate *g)
{
    for (unsigned i = 0; i < BLK_ORDER_GATE_CONDS; i++) {
        pthread_cond_destroy(&g->cond[i]);
    }
    pthread_mutex_destroy(&g->lock);
}

/* Worker: wait until every ordered request before req is done. */
static void
gate_wait(struct blk_req *req)
{
    struct blk_order_gate *g = req->gate;

    pthread_mutex_lock(&g->lock);
    while (g->passed + 1 < req->gate_seq) {
        pthread_cond_wait(&g->cond[req->gate_seq % BLK_ORDER_GATE_CONDS],
                          &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
}

/*
 * req is done with its drivers: let the next one start.  passed only
 * grows, so a request that failed admission (passing at once) can never
 * move it back.
 */
static void
gate_pass(struct blk_req *req)
{
    struct blk_order_gate *g = req->gate;

    uint64_t old;

    pthread_mutex_lock(&g->lock);
    old = g->passed;
    if (req->gate_seq > g->passed) {
        g->passed = req->gate_seq;
    }
    if (g->passed == old + 1) {
        /* the usual case: only the request after this one may go on (a
         * waiter 16 sequences later shares the condition and rechecks) */
        pthread_cond_broadcast(&g->cond[(g->passed + 1) %
                                        BLK_ORDER_GATE_CONDS]);
    } else if (g->passed != old) {
        /* a request that failed admission jumped ahead: several may go */
        for (unsigned i = 0; i < BLK_ORDER_GATE_CONDS; i++) {
            pthread_cond_broadcast(&g->cond[i]);
        }
    }
    pthread_mutex_unlock(&g->lock);
}

static void
work_cb(uv_work_t *w)
{
    struct blk_req *req = container_of(w, struct blk_req, work);
    struct blk_track *t = req->track;
    bool ordered = (req->flags & BLK_REQ_ORDERED) != 0;

    if (req->ret < 0) {
        if (ordered) {
            gate_pass(req);
        }
        return;             /* failed admission: complete with that error */
    }
    if (ordered) {
        gate_wait(req);
    }
    if (t != NULL) {
        blk_track_wait(req->node, t);
    }
    req->ret = blk_io_run(req->node, req->op, req->offset, req->length,
                          req->iov, req->iovcnt,
                          req->flags & ~(unsigned)BLK_REQ_ORDERED,
                          &req->status, true, t != NULL, &req->err);
    if (ordered) {
        gate_pass(req);
    }
    if (t != NULL) {
        blk_track_end(req->node, t);
    }
}

static void
complete(struct blk_req *req)
{
    struct blk_node *bs = req->node;

    req->track = NULL;
    req->next_held = NULL;
    assert(bs->running > 0);
    bs->running--;
    /* The memory is the submitter's again once cb starts. */
    req->cb(req);
    drain_check(bs);
    blk_node_unref(bs);
}

/*
 * Adaptive polling (QEMU's poll-max-ns idea): while requests are on the
 * pool, the loop does not sleep in epoll for up to POLL_NS after the last
 * hand-off or completion, so a completion is seen without waking the
 * loop thread.  Past that, the loop sleeps as usual; with nothing on the
 * pool the idle handle is stopped and costs nothing.  O_DIRECT requests
 * on the ring wait for the device (50-100 us here), so while one is in
 * flight the window is DIRECT_POLL_NS: waking a sleeping vCPU costs more
 * than the poll (measured: 4 KiB O_DIRECT writes at depth 1, 11k -> 14k
 * requests/s).  Buffered writes on the ring are not polled for: the
 * kernel worker doing them needs the other core.
 */
#define POLL_NS 50000
#define DIRECT_POLL_NS 200000

static unsigned pool_inflight;
static unsigned direct_inflight;        /* O_DIRECT requests on the ring */
static uint64_t poll_since;
static uv_idle_t poll_idle;
static bool poll_idle_init;

static void
poll_idle_cb(uv_idle_t *h)
{
    if ((pool_inflight == 0 && direct_inflight == 0) ||
        uv_hrtime() - poll_since > (direct_inflight > 0 ? DIRECT_POLL_NS
                                                         : POLL_NS)) {
        uv_idle_stop(h);
    }
}

static void
poll_kick(void)
{
    if (!poll_idle_init) {
        uv_idle_init(blk_loop(), &poll_idle);
        poll_idle_init = true;
    }
    poll_since = uv_hrtime();
    if (!uv_is_active((uv_handle_t *)&poll_idle)) {
        uv_idle_start(&poll_idle, poll_idle_cb);
    }
}

static void
after_work_cb(uv_work_t *w, int status)
{
    struct blk_req *req = container_of(w, struct blk_req, work);

    pool_inflight--;
    if (pool_inflight > 0) {
        poll_kick();
    }

    if (status == UV_ECANCELED && req->ret == 0) {
        req->ret = blk_error_set(&req->err, -ECANCELED, "request cancelled");
    }
    complete(req);
}

/*
 * Requests finished on the loop by the fast path wait here for the next
 * loop turn, so a callback never runs inside blk_req_submit.  The idle
 * handle is active only while the queue is non-empty.
 */
static struct blk_req *done_head, *done_tail;
static uv_idle_t done_idle;
static bool done_idle_init;

static void
done_idle_cb(uv_idle_t *h)
{
    struct blk_req *req = done_head;

    done_head = done_tail = NULL;
    uv_idle_stop(h);
    while (req != NULL) {
        struct blk_req *next = req->next_held;

        req->next_held = NULL;
        complete(req);
        req = next;
    }
}

static void
defer_completion(struct blk_req *req)
{
    if (!done_idle_init) {
        uv_idle_init(blk_loop(), &done_idle);
        done_idle_init = true;
    }
    req->next_held = NULL;
    if (done_tail != NULL) {
        done_tail->next_held = req;
    } else {
        done_head = req;
        uv_idle_start(&done_idle, done_idle_cb);
    }
    done_tail = req;
}

/*
 * The fast path first: a read from the page cache costs a couple of
 * microseconds on the loop, against two thread wake-ups through the pool.
 * Where it keeps missing (writes the kernel cannot do without blocking,
 * data not cached) it is skipped for a while, then tried again, so a miss
 * costs little.  Returns true if req completed (req->ret is set).
 */
#define TRY_MISS_LIMIT 16       /* misses in a row before backing off */
#define TRY_SKIP 1024           /* requests sent past it (ring or pool) then */

/*
 * Loop turns, counted by a check handle (which does not keep the loop
 * alive).  The first read of a node in a turn takes the fast path; more
 * reads in the same turn (a deep queue refilled at once) go to the ring,
 * which merges contiguous ones into one system call: 4 KiB page-cache
 * reads at depth 64 went from 0.65M to 1.3M requests/s.  Depth 1 is
 * unchanged: its one read per turn still never leaves the loop thread.
 */
static uint64_t loop_turn = 1;
static uv_check_t turn_check;
static bool turn_check_init;

static void
turn_check_cb(uv_check_t *h)
{
    loop_turn++;
}

static void
count_turns(void)
{
    if (!turn_check_init) {
        uv_check_init(blk_loop(), &turn_check);
        uv_check_start(&turn_check, turn_check_cb);
        uv_unref((uv_handle_t *)&turn_check);
        turn_check_init = true;
    }
}

static bool
try_fast(struct blk_node *bs, struct blk_req *req)
{
    int w = req->op == BLK_OP_WRITE;
    int r;

    if (!w && blk_uring_ready()) {
        count_turns();
        if (bs->fast_read_turn == loop_turn) {
            return false;
        }
        bs->fast_read_turn = loop_turn;
    }

    if (bs->try_skip[w] > 0) {
        bs->try_skip[w]--;
        return false;
    }
    r = blk_io_try(bs, req->op, req->offset, req->length, req->iov,
                   req->iovcnt, req->flags, true, &req->err);
    if (r != -EAGAIN) {
        bs->try_misses[w] = 0;
        req->ret = r;
        return true;
    }
    blk_error_clear(&req->err);
    if (++bs->try_misses[w] >= TRY_MISS_LIMIT) {
        bs->try_misses[w] = 0;
        bs->try_skip[w] = TRY_SKIP;
    }
    return false;
}

/* ---- the ring path ----------------------------------------------------------- */

/*
 * A request whose whole chain has an aio op goes to the loop's io_uring:
 * no thread hop on the way out or back.  Every node it passes keeps its
 * track until the completion, so overlapping requests that come later
 * (which take the pool) still wait for it, in submission order.
 */
static struct blk_aio *aio_free_list;

static struct blk_aio *
aio_get(struct blk_req *req)
{
    struct blk_aio *aio = aio_free_list;

    if (aio != NULL) {
        aio_free_list = aio->next_free;
    } else {
        aio = xmalloc(sizeof(*aio));
    }
    memset(aio, 0, sizeof(*aio));
    aio->req = req;
    aio->fd = -1;
    return aio;
}

static void
aio_put(struct blk_aio *aio)
{
    free(aio->rest);
    aio->rest = NULL;
    aio->next_free = aio_free_list;
    aio_free_list = aio;
}

bool
blk_aio_push(struct blk_aio *aio, struct blk_node *bs, struct blk_track *t,
             int op, uint64_t off, uint64_t len)
{
    if (aio->nlv >= BLK_AIO_LEVELS) {
        return false;
    }
    aio->lv[aio->nlv].bs = bs;
    aio->lv[aio->nlv].t = t;
    aio->lv[aio->nlv].op = op;
    aio->lv[aio->nlv].off = off;
    aio->lv[aio->nlv].len = len;
    aio->nlv++;
    return true;
}

/* The leaf finished with r: every level from the leaf up, then the callback. */
static void
aio_end(struct blk_aio *aio, int r)
{
    struct blk_req *req = aio->req;
    int i;

    for (i = 0; i < aio->nlv; i++) {
        blk_io_aio_finish(aio->lv[i].bs, aio->lv[i].t, aio->lv[i].op,
                          aio->lv[i].off, aio->lv[i].len, r);
    }
    req->ret = r;
    if (aio->direct) {
        direct_inflight--;
        if (direct_inflight > 0) {
            poll_kick();
        }
    }
    aio_put(aio);
    /* Reaped outside any submit call, but the queue keeps one order. */
    defer_completion(req);
}

/* The part of aio's buffer not transferred yet; *cnt gets its length. */
static struct iovec *
rest_iov(struct blk_aio *aio, int *cnt)
{
    if (aio->done == 0) {
        *cnt = aio->iovcnt;
        return aio->iov;
    }
    if (aio->rest == NULL) {
        aio->rest = xcalloc((size_t)aio->iovcnt, sizeof(*aio->rest));
    }
    *cnt = iov_slice(aio->iov, aio->iovcnt, aio->done, aio->len - aio->done,
                     aio->rest, aio->iovcnt);
    return aio->rest;
}

static int
leaf_queue(struct blk_aio *aio, int rw_flags)
{
    int cnt;
    struct iovec *iov = rest_iov(aio, &cnt);

    return blk_uring_rw(&aio->op, aio->fd, aio->write, iov, cnt,
                        aio->off + aio->done, rw_flags);
}

static bool
leaf_at_eof(struct blk_aio *aio)
{
    struct stat st;

    return fstat(aio->fd, &st) == 0 &&
           aio->off + aio->done >= (uint64_t)st.st_size;
}

static void
leaf_cb(struct blk_uring_op *op, int res)
{
    struct blk_aio *aio = container_of(op, struct blk_aio, op);
    struct blk_req *req = aio->req;
    int r;

    if (res == -EINTR || res == -EAGAIN) {
        res = 0;                /* nothing moved: go again below */
        goto again;
    }
    if (res < 0) {
        blk_error_setsys(&req->err, res, "%s '%s' failed",
                         aio->write ? "writing" : "reading",
                         blk_node_get_filename(aio->leaf));
        aio_end(aio, res);
        return;
    }
    if (res == 0) {
        if (aio->write) {
            r = blk_error_setsys(&req->err, -ENOSPC, "writing '%s' failed",
                                 blk_node_get_filename(aio->leaf));
            aio_end(aio, r);
            return;
        }
        /* End of file: the rest reads as zeroes, as on the pool. */
        iov_memset(aio->iov, aio->iovcnt, aio->done, 0, aio->len - aio->done);
        aio_end(aio, 0);
        return;
    }
    aio->done += (uint64_t)res;
    if (aio->done >= aio->len) {
        aio_end(aio, 0);
        return;
    }
    if (!aio->write && leaf_at_eof(aio)) {
        /* O_DIRECT stops mid-block at end of file. */
        iov_memset(aio->iov, aio->iovcnt, aio->done, 0, aio->len - aio->done);
        aio_end(aio, 0);
        return;
    }
again:
    r = leaf_queue(aio, 0);
    if (r < 0) {
        r = blk_error_set(&req->err, -EIO, "%s '%s' failed: the loop's "
                          "io_uring is full", aio->write ? "writing"
                                                         : "reading",
                          blk_node_get_filename(aio->leaf));
        aio_end(aio, r);
    }
}

/* ---- inline small buffered writes (blk_loop_set_inline_writes) ---------- */

#define INLINE_MAX_BYTES 65536
#define INLINE_SLOW_NS 1000000      /* an inline write this slow ... */
#define INLINE_BACKOFF 1024         /* ... sends this many to the ring */

static bool inline_writes;
static unsigned inline_skip;
static uint64_t inline_turn;    /* loop turn of the last inline write */
static unsigned long inline_count;

unsigned long
blk_loop_inline_writes(void)
{
    return inline_count;
}

bool
blk_loop_may_block(void)
{
    return inline_writes;
}

void
blk_loop_set_inline_writes(bool on)
{
    inline_writes = on;
    inline_skip = 0;
}

/*
 * Write aio's whole range with pwritev on this thread.  Returns 1 when
 * the ring must take (the rest of) it, else 0 or -errno.
 */
static int
inline_write(struct blk_aio *aio)
{
    uint64_t t0 = uv_hrtime();
    int r = 0;

    while (aio->done < aio->len) {
        int cnt;
        struct iovec *iov = rest_iov(aio, &cnt);
        ssize_t n;

        n = pwritev(aio->fd, iov, cnt, (off_t)(aio->off + aio->done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0) {
            r = 1;              /* let the ring's path deal with it */
            break;
        }
        aio->done += (uint64_t)n;
    }
    if (uv_hrtime() - t0 > INLINE_SLOW_NS) {
        inline_skip = INLINE_BACKOFF;
    }
    inline_count++;
    return r;
}

/*
 * Should this leaf write run inline?  Small buffered writes only, the
 * first of a loop turn (the ring merges the turn's other writes), and not
 * while backing off after a slow one.
 */
static bool
write_inline_now(const struct blk_aio *aio, int rw_flags)
{
    if (!inline_writes || !aio->write || aio->direct || rw_flags != 0 ||
        aio->len > INLINE_MAX_BYTES) {
        return false;
    }
    count_turns();
    if (inline_turn == loop_turn) {
        return false;
    }
    if (inline_skip > 0) {
        inline_skip--;
        return false;
    }
    inline_turn = loop_turn;
    return true;
}

int
blk_aio_fd_rw(struct blk_aio *aio, struct blk_node *bs, int fd, bool write,
              bool direct, uint64_t off, uint64_t len, struct iovec *iov,
              int iovcnt, int rw_flags)
{
    int r;

    aio->op.cb = leaf_cb;
    aio->leaf = bs;
    aio->fd = fd;
    aio->write = write;
    aio->direct = direct;
    aio->off = off;
    aio->len = len;
    aio->done = 0;
    aio->iov = iov;
    aio->iovcnt = iovcnt;
    if (write_inline_now(aio, rw_flags)) {
        r = inline_write(aio);
        if (r <= 0) {
            return r;           /* done at once (0) or failed */
        }
    }
    r = leaf_queue(aio, rw_flags);
    return r < 0 ? r : -EINPROGRESS;
}

/*
 * Start req on the ring if its chain allows; true if it is started or
 * already finished (then its completion is deferred), false for the pool.
 */
static bool
try_aio(struct blk_node *bs, struct blk_req *req)
{
    struct blk_aio *aio;
    int r;

    if (!blk_uring_ready()) {
        return false;
    }
    aio = aio_get(req);
    r = blk_io_aio(bs, req->op, req->offset, req->length, req->iov,
                   req->iovcnt, req->flags, true, aio, &req->err);
    if (r == -EINPROGRESS) {
        if (aio->direct) {
            direct_inflight++;
            poll_kick();
        }
        return true;
    }
    aio_put(aio);
    if (r == -EAGAIN) {
        blk_error_clear(&req->err);
        return false;
    }
    req->ret = r;
    defer_completion(req);
    return true;
}

/*
 * Hand a request to the pool.  Its track is registered here, on the loop,
 * so that overlapping requests keep their submission order.
 */
static void
dispatch(struct blk_node *bs, struct blk_req *req)
{
    uint64_t a = bs->limits.request_alignment;
    bool unaligned = ((req->offset | req->length) & (a - 1)) != 0;

    if (req->ret == 0 && (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) &&
        !(req->flags & BLK_REQ_ORDERED)) {
        if (try_fast(bs, req)) {
            defer_completion(req);
            return;
        }
        if (try_aio(bs, req)) {
            return;
        }
    }
    if (req->ret == 0 && is_data_op(req->op)) {
        req->track = blk_track_begin(bs, req->op, req->offset, req->length,
                                     unaligned && req->op != BLK_OP_READ);
    }
    pool_inflight++;
    poll_kick();
    uv_queue_work(blk_loop(), &req->work, work_cb, after_work_cb);
}

/* ---- throttling ----------------------------------------------------------- */

static void throttle_kick(struct blk_node *bs);

static void
throttle_timer_cb(uv_timer_t *t)
{
    throttle_kick(t->data);
}

static void
throttle_arm(struct blk_node *holder, uint64_t ns)
{
    uint64_t ms = (ns + 999999) / 1000000;

    if (holder->throttle_timer == NULL) {
        holder->throttle_timer = xzalloc(sizeof(uv_timer_t));
        uv_timer_init(blk_loop(), holder->throttle_timer);
        holder->throttle_timer->data = holder;
    }
    uv_timer_start(holder->throttle_timer, throttle_timer_cb, ms ? ms : 1, 0);
}

static void
throttle_append(struct blk_node *holder, struct blk_req *req)
{
    req->next_held = NULL;
    if (holder->throttled_tail != NULL) {
        holder->throttled_tail->next_held = req;
    } else {
        holder->throttled_head = req;
    }
    holder->throttled_tail = req;
}

static struct blk_node *
filter_below(struct blk_node *n)
{
    return n->drv->is_filter ? blk_node_file(n) : NULL;
}

/*
 * Pass req down the filter chain from n: every throttle on the way admits
 * it once, in turn.  A node with requests waiting takes it at the back of
 * its queue (FIFO: a request never overtakes one held before it there);
 * a throttle that says wait queues it and arms its timer.  Past the last,
 * the request is dispatched.
 */
static void
throttle_pass(struct blk_node *n, struct blk_req *req)
{
    for (; n != NULL; n = filter_below(n)) {
        uint64_t ns;

        if (n->throttled_head != NULL) {
            throttle_append(n, req);
            return;
        }
        if (n->drv->admit == NULL) {
            continue;
        }
        ns = n->drv->admit(n, req->length, req->op != BLK_OP_READ);
        if (ns > 0) {
            throttle_append(n, req);
            throttle_arm(n, ns);
            return;
        }
    }
    dispatch(req->node, req);
}

/* Admit throttled requests in order until one must wait again. */
static void
throttle_kick(struct blk_node *holder)
{
    while (holder->throttled_head != NULL) {
        struct blk_req *req = holder->throttled_head;
        uint64_t ns = holder->drv->admit(holder, req->length,
                                         req->op != BLK_OP_READ);

        if (ns > 0) {
            throttle_arm(holder, ns);
            return;
        }
        holder->throttled_head = req->next_held;
        if (holder->throttled_head == NULL) {
            holder->throttled_tail = NULL;
        }
        req->next_held = NULL;
        throttle_pass(filter_below(holder), req);
    }
}

/* ---- admission --------------------------------------------------------------- */

static void
admit(struct blk_node *bs, struct blk_req *req)
{
    if (req->ret == 0 && is_data_op(req->op)) {
        throttle_pass(bs, req);
        return;
    }
    dispatch(bs, req);
}

static bool
node_quiesced(const struct blk_node *bs)
{
    const struct blk_child *c;

    if (bs->quiesce > 0) {
        return true;
    }
    /* A request on bs runs through its children: draining one holds it. */
    for (c = bs->children; c != NULL; c = c->next) {
        if (node_quiesced(c->child)) {
            return true;
        }
    }
    return false;
}

void
blk_req_submit(struct blk_node *bs, struct blk_req *req)
{
    assert(req->cb != NULL);
    req->node = bs;
    req->ret = 0;
    blk_error_clear(&req->err);
    memset(&req->status, 0, sizeof(req->status));
    req->track = NULL;
    req->next_held = NULL;
    if (req->flags & BLK_REQ_ORDERED) {
        assert(req->gate != NULL);
        req->gate_seq = ++req->gate->issued;
    }
    blk_node_ref(bs);
    bs->running++;
    if ((req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) &&
        req->iov == NULL && req->length > 0) {
        req->ret = blk_error_set(&req->err, -EINVAL, "request without buffer");
    }
    if (req->ret == 0 && node_quiesced(bs)) {
        bs->running--;
        bs->held++;
        if (bs->held_tail != NULL) {
            bs->held_tail->next_held = req;
        } else {
            bs->held_head = req;
        }
        bs->held_tail = req;
        return;
    }
    admit(bs, req);
}

void
blk_backend_submit(struct blk_backend *be, struct blk_req *req)
{
    blk_req_submit(be->root.child, req);
}

unsigned
blk_node_in_flight(const struct blk_node *bs)
{
    return bs->running + bs->held;
}

/* ---- drain --------------------------------------------------------------------- */

/* Requests running on bs or on any node whose requests pass through bs. */
static unsigned
running_through(const struct blk_node *bs)
{
    const struct blk_child *p;
    unsigned n = bs->running;

    for (p = bs->parents; p != NULL; p = p->next_parent) {
        if (p->parent != NULL) {
            n += running_through(p->parent);
        }
    }
    return n;
}

static void
drain_deferred_cb(uv_timer_t *t)
{
    struct blk_node *bs = t->data;

    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    drain_check(bs);
    blk_node_unref(bs);
}

/* Move the waits on bs and below it whose node is now idle to *tail. */
static void
drain_collect(struct blk_node *bs, struct blk_drain_wait ***tail)
{
    struct blk_drain_wait **pp = &bs->drain_waits;
    struct blk_child *c;

    while (*pp != NULL) {
        struct blk_drain_wait *w = *pp;

        if (running_through(w->node) > 0) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->next = NULL;
        **tail = w;
        *tail = &w->next;
    }
    for (c = bs->children; c != NULL; c = c->next) {
        drain_collect(c->child, tail);
    }
}

/*
 * After a completion on bs: wake drains waiting on bs or below it.  The
 * callbacks run after the walk, since they may change the graph.
 */
static void
drain_check(struct blk_node *bs)
{
    struct blk_drain_wait *ready = NULL, **tail = &ready;

    drain_collect(bs, &tail);
    while (ready != NULL) {
        struct blk_drain_wait *w = ready;

        ready = w->next;
        w->cb(w->opaque);
        free(w);
    }
}

void
blk_node_drain_begin(struct blk_node *bs, void (*cb)(void *), void *opaque)
{
    struct blk_drain_wait *w = xzalloc(sizeof(*w));
    uv_timer_t *t = xzalloc(sizeof(*t));

    bs->quiesce++;
    w->cb = cb;
    w->opaque = opaque;
    w->node = bs;
    w->next = bs->drain_waits;
    bs->drain_waits = w;
    /* Never call back from inside drain_begin: defer to the next loop turn. */
    blk_node_ref(bs);
    uv_timer_init(blk_loop(), t);
    t->data = bs;
    uv_timer_start(t, drain_deferred_cb, 0, 0);
}

static void
release_held(struct blk_node *bs)
{
    struct blk_child *p;

    while (bs->held_head != NULL && !node_quiesced(bs)) {
        struct blk_req *req = bs->held_head;

        bs->held_head = req->next_held;
        if (bs->held_head == NULL) {
            bs->held_tail = NULL;
        }
        req->next_held = NULL;
        bs->held--;
        bs->running++;
        admit(bs, req);
    }
    for (p = bs->parents; p != NULL; p = p->next_parent) {
        if (p->parent != NULL) {
            release_held(p->parent);
        }
    }
}

void
blk_node_drain_end(struct blk_node *bs)
{
    assert(bs->quiesce > 0);
    if (--bs->quiesce == 0) {
        release_held(bs);
    }
}
