/*
 * uring.c - the loop's io_uring, with raw syscalls and the mmap'ed rings
 * of <linux/io_uring.h> (no liburing).  SQEs collect during a loop turn
 * and are submitted by one io_uring_enter from a uv_prepare, just before
 * the loop polls; completions the kernel finished inline are reaped right
 * after it, the rest when the ring's fd polls readable (the CQ is not
 * empty).  Loop thread only.
 */
#include <errno.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "block/block.h"
#include "block/uring.h"
#include "util/iov.h"
#include "util/xalloc.h"

#define RING_ENTRIES 256        /* SQ entries; the kernel gives 2x CQ entries */

struct ring {
    int fd;
    unsigned sq_entries, cq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    struct io_uring_sqe *sqes;
    void *sq_map, *cq_map;      /* cq_map == sq_map with FEAT_SINGLE_MMAP */
    size_t sq_map_len, cq_map_len, sqes_len;
    unsigned sq_local;          /* our SQ tail: entries filled */
    unsigned to_submit;         /* filled, not yet taken by io_uring_enter */
    unsigned in_flight;         /* queued or in the kernel, cb not yet run */
    uv_poll_t *poll;            /* the ring fd; referenced while in_flight */
    uv_prepare_t *prepare;      /* active while anything is to submit */
    uv_idle_t *idle;            /* active while prepare left work behind */
};

static struct ring ring = { .fd = -1 };
static int ring_state;          /* 0 not tried, 1 ready, -1 off */

static int
sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int
sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete,
                        flags, NULL, 0);
}

static void
unmap_ring(struct ring *r)
{
    if (r->sqes != NULL && r->sqes != MAP_FAILED) {
        munmap(r->sqes, r->sqes_len);
    }
    if (r->cq_map != NULL && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map) {
        munmap(r->cq_map, r->cq_map_len);
    }
    if (r->sq_map != NULL && r->sq_map != MAP_FAILED) {
        munmap(r->sq_map, r->sq_map_len);
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

/* Create the ring and map it; 0 or -errno (nothing left behind). */
static int
map_ring(struct ring *r)
{
    struct io_uring_params p;
    unsigned i;
    char *sq;

    memset(&p, 0, sizeof(p));
    r->fd = sys_setup(RING_ENTRIES, &p);
    if (r->fd < 0) {
        r->fd = -1;
        return -errno;
    }
    r->sq_entries = p.sq_entries;
    r->cq_entries = p.cq_entries;
    r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (r->cq_map_len > r->sq_map_len) {
            r->sq_map_len = r->cq_map_len;
        }
        r->cq_map_len = r->sq_map_len;
    }
    r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED) {
        goto out_unmap;
    }
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED) {
            goto out_unmap;
        }
    }
    r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) {
        goto out_unmap;
    }
    sq = r->sq_map;
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)((char *)r->cq_map + p.cq_off.head);
    r->cq_tail = (unsigned *)((char *)r->cq_map + p.cq_off.tail);
    r->cq_mask = (unsigned *)((char *)r->cq_map + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)((char *)r->cq_map + p.cq_off.cqes);
    /* SQE i always sits at slot i: the indirection array is the identity. */
    for (i = 0; i < p.sq_entries; i++) {
        r->sq_array[i] = i;
    }
    r->sq_local = *r->sq_tail;
    return 0;

out_unmap:
    i = (unsigned)errno;
    unmap_ring(r);
    return -(int)i;
}

static void prepare_cb(uv_prepare_t *h);

/* ---- completions ------------------------------------------------------------ */

/*
 * Contiguous reads or writes of one fd queued in the same loop turn go to
 * the kernel as one readv/writev (a group): page-cache writes cost the
 * kernel about the same per call whatever their size (measured here:
 * 4 KiB pwrite 12.7 us, 256 KiB 128 us), and each call of the worker the
 * kernel punts buffered ext4 writes to runs alone on the file.
 */
#define MERGE_MAX_OPS 64
#define MERGE_MAX_BYTES (1024 * 1024)

struct group {
    struct blk_uring_op op;             /* the one in the SQE */
    struct blk_uring_op *members;       /* in file order, through next */
    struct iovec iov[];
};

static struct blk_uring_op *pend_head, *pend_tail;     /* not yet in an SQE */
static unsigned long merged_ops;        /* ops that went in a group */

static void group_cb(struct blk_uring_op *op, int res);

static void
start_prepare(void)
{
    if (!uv_is_active((uv_handle_t *)ring.prepare)) {
        uv_prepare_start(ring.prepare, prepare_cb);
    }
}

static void
pend(struct blk_uring_op *op)
{
    op->next = NULL;
    if (pend_tail != NULL) {
        pend_tail->next = op;
    } else {
        pend_head = op;
    }
    pend_tail = op;
    start_prepare();
}

/* One operation done: its callback, and the loop need not wait for it. */
static void
finish(struct blk_uring_op *op, int res)
{
    if (--ring.in_flight == 0) {
        uv_unref((uv_handle_t *)ring.poll);
    }
    op->cb(op, res);
}

/*
 * A group completed: all of it, or each member goes again alone, so that
 * errors and short transfers reach the one request they belong to
 * (repeating a read or a write of the same bytes is harmless; the core
 * keeps overlapping requests out meanwhile).
 */
static void
group_cb(struct blk_uring_op *op, int res)
{
    struct group *g = container_of(op, struct group, op);
    struct blk_uring_op *m = g->members, *next;
    bool whole = res >= 0 && (uint64_t)res == g->op.len;

    free(g);
    for (; m != NULL; m = next) {
        next = m->next;
        if (whole) {
            finish(m, (int)m->len);
        } else {
            m->solo = true;
            pend(m);
        }
    }
}

static void
complete_op(struct blk_uring_op *op, int res)
{
    if (op->cb == group_cb) {
        group_cb(op, res);
    } else {
        finish(op, res);
    }
}

/* Run the callback of every completion in the CQ. */
static void
reap(void)
{
    unsigned head = *ring.cq_head;

    for (;;) {
        unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);

        if (head == tail) {
            break;
        }
        while (head != tail) {
            struct io_uring_cqe *cqe = &ring.cqes[head & *ring.cq_mask];
            struct blk_uring_op *op = (void *)(uintptr_t)cqe->user_data;
            int res = cqe->res;

            head++;
            __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
            complete_op(op, res);
        }
    }
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
    reap();
}

/* Fail the SQEs the kernel has not taken (io_uring_enter failed hard). */
static void
fail_unsubmitted(int res)
{
    unsigned head = __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
    unsigned i, n = ring.sq_local - head;
    struct blk_uring_op **ops = xcalloc(n ? n : 1, sizeof(*ops));

    for (i = 0; i < n; i++) {
        ops[i] = (void *)(uintptr_t)ring.sqes[(head + i) & *ring.sq_mask]
                     .user_data;
    }
    ring.sq_local = head;
    __atomic_store_n(ring.sq_tail, head, __ATOMIC_RELEASE);
    ring.to_submit = 0;
    for (i = 0; i < n; i++) {
        if (ops[i]->cb == group_cb) {
            struct group *g = container_of(ops[i], struct group, op);
            struct blk_uring_op *m = g->members, *next;

            free(g);
            for (; m != NULL; m = next) {
                next = m->next;
                finish(m, res);
            }
        } else {
            finish(ops[i], res);
        }
    }
    free(ops);
}

/* Hand every filled SQE to the kernel. */
static void
flush(void)
{
    while (ring.to_submit > 0) {
        int n = sys_enter(ring.fd, ring.to_submit, 0, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EBUSY) {
                return;         /* short of resources: next loop turn */
            }
            fail_unsubmitted(-errno);
            return;
        }
        if (n == 0) {
            return;
        }
        ring.to_submit -= (unsigned)n < ring.to_submit ? (unsigned)n
                                                       : ring.to_submit;
    }
}

/* ---- submission ------------------------------------------------------------ */

static struct io_uring_sqe *
sq_slot(void)
{
    unsigned head = __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
    struct io_uring_sqe *sqe;

    if (ring.sq_local - head >= ring.sq_entries) {
        return NULL;
    }
    sqe = &ring.sqes[ring.sq_local & *ring.sq_mask];
    memset(sqe, 0, sizeof(*sqe));
    return sqe;
}

static void
fill_sqe(struct io_uring_sqe *sqe, struct blk_uring_op *op,
         const struct iovec *iov, int iovcnt)
{
    bool write = op->opcode == IORING_OP_WRITEV;

    sqe->fd = op->fd;
    sqe->off = op->off;
    sqe->user_data = (uint64_t)(uintptr_t)op;
    if (iovcnt == 1 && iov[0].iov_len <= UINT32_MAX) {
        sqe->opcode = write ? IORING_OP_WRITE : IORING_OP_READ;
        sqe->addr = (uint64_t)(uintptr_t)iov[0].iov_base;
        sqe->len = (uint32_t)iov[0].iov_len;
        sqe->rw_flags = op->rw_flags;
    } else {
        sqe->opcode = op->opcode;
        sqe->addr = (uint64_t)(uintptr_t)iov;
        sqe->len = (uint32_t)iovcnt;
        sqe->rw_flags = op->rw_flags;
    }
    ring.sq_local++;
    __atomic_store_n(ring.sq_tail, ring.sq_local, __ATOMIC_RELEASE);
    ring.to_submit++;
}

static bool
mergeable(const struct blk_uring_op *a, const struct blk_uring_op *b)
{
    return b->opcode == a->opcode && !a->solo && !b->solo && a->fd == b->fd &&
           a->rw_flags == b->rw_flags && a->off + a->len == b->off;
}

/* Move the queued operations into SQEs, contiguous runs as one group. */
static void
build(void)
{
    while (pend_head != NULL) {
        struct blk_uring_op *op = pend_head, *last = op;
        struct io_uring_sqe *sqe = sq_slot();
        uint64_t len = op->len;
        int n = 1, iovs = op->iovcnt;

        if (sqe == NULL) {
            flush();
            sqe = sq_slot();
            if (sqe == NULL) {
                return;         /* the kernel is full: next loop turn */
            }
        }
        while (last->next != NULL && n < MERGE_MAX_OPS &&
               mergeable(last, last->next) &&
               iovs + last->next->iovcnt <= IOV_MAX &&
               len + last->next->len <= MERGE_MAX_BYTES) {
            last = last->next;
            n++;
            iovs += last->iovcnt;
            len += last->len;
        }
        pend_head = last->next;
        if (pend_head == NULL) {
            pend_tail = NULL;
        }
        last->next = NULL;
        if (n == 1) {
            fill_sqe(sqe, op, op->iov, op->iovcnt);
        } else {
            struct group *g = xmalloc(sizeof(*g) +
                                      (size_t)iovs * sizeof(struct iovec));
            struct blk_uring_op *m;
            int k = 0;

            g->op = *op;
            g->op.cb = group_cb;
            g->op.len = len;
            g->op.next = NULL;
            g->members = op;
            merged_ops += (unsigned long)n;
            for (m = op; m != NULL; m = m->next) {
                memcpy(&g->iov[k], m->iov, (size_t)m->iovcnt * sizeof(*m->iov));
                k += m->iovcnt;
            }
            fill_sqe(sqe, &g->op, g->iov, iovs);
        }
    }
}

static void
idle_cb(uv_idle_t *h)
{
}

/*
 * Just before the loop polls: submit.  Page-cache hits and errors
 * complete inside io_uring_enter, and their callbacks may queue more (a
 * short transfer goes on, a failed group's members go again alone), which
 * must be submitted before the loop sleeps: a prepare handle started now
 * would run only after the poll.  If work is left even so, an idle handle
 * keeps the loop from sleeping until the next turn submits it.
 */
static void
prepare_cb(uv_prepare_t *h)
{
    int rounds = 0;

    do {
        build();
        flush();
        reap();
    } while ((pend_head != NULL || ring.to_submit > 0) && ++rounds < 8);
    if (pend_head == NULL && ring.to_submit == 0) {
        uv_prepare_stop(h);
        uv_idle_stop(ring.idle);
    } else {
        uv_idle_start(ring.idle, idle_cb);
    }
}

/* ---- setup ------------------------------------------------------------------ */

static bool
env_off(void)
{
    const char *v = getenv("BLK_URING");

    return v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 ||
                         strcmp(v, "no") == 0);
}

bool
blk_uring_ready(void)
{
    uv_loop_t *loop;

    if (ring_state != 0) {
        return ring_state > 0;
    }
    ring_state = -1;
    if (env_off() || map_ring(&ring) < 0) {
        return false;
    }
    loop = blk_loop();
    ring.poll = xzalloc(sizeof(*ring.poll));
    ring.prepare = xzalloc(sizeof(*ring.prepare));
    ring.idle = xzalloc(sizeof(*ring.idle));
    if (uv_poll_init(loop, ring.poll, ring.fd) < 0) {
        free(ring.poll);
        free(ring.prepare);
        free(ring.idle);
        unmap_ring(&ring);
        return false;
    }
    uv_prepare_init(loop, ring.prepare);
    uv_idle_init(loop, ring.idle);
    /*
     * Always watched, so no epoll_ctl per request; it keeps the loop alive
     * (referenced) only while something is in flight.
     */
    uv_poll_start(ring.poll, UV_READABLE, poll_cb);
    uv_unref((uv_handle_t *)ring.poll);
    ring_state = 1;
    return true;
}

/* Take op (filled in) into the next submission; 0, or -EAGAIN. */
static int
queue_op(struct blk_uring_op *op)
{
    if (!blk_uring_ready() || ring.in_flight >= ring.cq_entries) {
        return -EAGAIN;
    }
    if (ring.in_flight++ == 0) {
        uv_ref((uv_handle_t *)ring.poll);
    }
    pend(op);
    return 0;
}

int
blk_uring_rw(struct blk_uring_op *op, int fd, bool write,
             const struct iovec *iov, int iovcnt, uint64_t off, int rw_flags)
{
    op->opcode = write ? IORING_OP_WRITEV : IORING_OP_READV;
    op->solo = iovcnt > IOV_MAX;
    op->fd = fd;
    op->rw_flags = rw_flags;
    op->iov = iov;
    op->iovcnt = iovcnt;
    op->off = off;
    op->len = iov_size(iov, iovcnt);
    return queue_op(op);
}

unsigned
blk_uring_in_flight(void)
{
    return ring_state > 0 ? ring.in_flight : 0;
}

unsigned long
blk_uring_merged(void)
{
    return merged_ops;
}

void
blk_uring_shutdown(void)
{
    if (ring_state > 0) {
        uv_close((uv_handle_t *)ring.poll, (uv_close_cb)free);
        uv_close((uv_handle_t *)ring.prepare, (uv_close_cb)free);
        uv_close((uv_handle_t *)ring.idle, (uv_close_cb)free);
        unmap_ring(&ring);
    }
    ring_state = 0;
}
