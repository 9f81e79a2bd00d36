/*
 * uring.c - the loop's io_uring, with raw syscalls and the mmap'ed rings
 * of <linux/io_uring.h> (no liburing).  SQEs collect during a loop turn
 * and are submitted by one io_uring_enter from a uv_prepare, just before
 * the loop polls; completions the kernel finished inline are reaped right
 * after it, the rest when the ring's fd polls readable (the CQ is not
 * empty).  Loop thread only.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "block/block.h"
#include "block/uring.h"
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
    uv_prepare_t *prepare;      /* active while to_submit */
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

/* ---- completions ------------------------------------------------------------ */

/* One operation less in flight: the loop need not wait for the ring. */
static void
op_done(void)
{
    if (--ring.in_flight == 0) {
        uv_unref((uv_handle_t *)ring.poll);
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
            op_done();
            op->cb(op, res);
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
        op_done();
        ops[i]->cb(ops[i], res);
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

static void
prepare_cb(uv_prepare_t *h)
{
    flush();
    if (ring.to_submit == 0) {
        uv_prepare_stop(h);
    }
    /* Page-cache hits and errors complete inside io_uring_enter. */
    reap();
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
    if (uv_poll_init(loop, ring.poll, ring.fd) < 0) {
        free(ring.poll);
        free(ring.prepare);
        unmap_ring(&ring);
        return false;
    }
    uv_prepare_init(loop, ring.prepare);
    /*
     * Always watched, so no epoll_ctl per request; it keeps the loop alive
     * (referenced) only while something is in flight.
     */
    uv_poll_start(ring.poll, UV_READABLE, poll_cb);
    uv_unref((uv_handle_t *)ring.poll);
    ring_state = 1;
    return true;
}

static struct io_uring_sqe *
get_sqe(void)
{
    unsigned head;
    struct io_uring_sqe *sqe;

    if (!blk_uring_ready() || ring.in_flight >= ring.cq_entries) {
        return NULL;
    }
    head = __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
    if (ring.sq_local - head >= ring.sq_entries) {
        flush();
        head = __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
        if (ring.sq_local - head >= ring.sq_entries) {
            return NULL;
        }
    }
    sqe = &ring.sqes[ring.sq_local & *ring.sq_mask];
    memset(sqe, 0, sizeof(*sqe));
    return sqe;
}

/* Publish the SQE just filled; the prepare handle submits it. */
static void
queue_sqe(struct io_uring_sqe *sqe, struct blk_uring_op *op)
{
    sqe->user_data = (uint64_t)(uintptr_t)op;
    ring.sq_local++;
    __atomic_store_n(ring.sq_tail, ring.sq_local, __ATOMIC_RELEASE);
    ring.to_submit++;
    if (ring.in_flight++ == 0) {
        uv_ref((uv_handle_t *)ring.poll);
    }
    if (!uv_is_active((uv_handle_t *)ring.prepare)) {
        uv_prepare_start(ring.prepare, prepare_cb);
    }
}

int
blk_uring_rw(struct blk_uring_op *op, int fd, bool write,
             const struct iovec *iov, int iovcnt, uint64_t off, int rw_flags)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL) {
        return -EAGAIN;
    }
    if (iovcnt == 1) {
        sqe->opcode = write ? IORING_OP_WRITE : IORING_OP_READ;
        sqe->addr = (uint64_t)(uintptr_t)iov[0].iov_base;
        sqe->len = (uint32_t)iov[0].iov_len;
    } else {
        sqe->opcode = write ? IORING_OP_WRITEV : IORING_OP_READV;
        sqe->addr = (uint64_t)(uintptr_t)iov;
        sqe->len = (uint32_t)iovcnt;
    }
    sqe->fd = fd;
    sqe->off = off;
    sqe->rw_flags = rw_flags;
    queue_sqe(sqe, op);
    return 0;
}

int
blk_uring_fsync(struct blk_uring_op *op, int fd, bool datasync)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL) {
        return -EAGAIN;
    }
    sqe->opcode = IORING_OP_FSYNC;
    sqe->fd = fd;
    sqe->fsync_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
    queue_sqe(sqe, op);
    return 0;
}

unsigned
blk_uring_in_flight(void)
{
    return ring_state > 0 ? ring.in_flight : 0;
}

void
blk_uring_shutdown(void)
{
    if (ring_state > 0) {
        uv_close((uv_handle_t *)ring.poll, (uv_close_cb)free);
        uv_close((uv_handle_t *)ring.prepare, (uv_close_cb)free);
        unmap_ring(&ring);
    }
    ring_state = 0;
}
