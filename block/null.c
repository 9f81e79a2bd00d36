/*
 * null.c - the "null-co" and "null-aio" protocol drivers (one code): a
 * device of a given size that discards writes and, with read-zeroes=on,
 * reads zeroes (otherwise reads leave the buffer alone, as in QEMU).
 * latency-ns delays every read, write, zero and flush; for benchmarks.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "block/driver.h"
#include "util/iov.h"

#define SECTOR 512

struct null_state {
    uint64_t length;
    uint64_t latency_ns;
    bool read_zeroes;
};

static int
null_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    struct null_state *s = blk_node_state(bs);
    int64_t size = kv_get_int(opts, "size", INT64_C(1) << 30);
    uint64_t latency = kv_get_uint(opts, "latency-ns", 0);

    if (size < 0) {
        return blk_error_set(err, -EINVAL, "Parameter 'size' expects a "
                             "non-negative number below 2^64");
    }
    if (latency > INT64_MAX) {
        return blk_error_set(err, -EINVAL, "latency-ns is invalid");
    }
    s->length = (uint64_t)size;
    s->latency_ns = latency;
    s->read_zeroes = kv_get_bool(opts, "read-zeroes", false);

    /* QEMU names the node "null-co://" unless size or read-zeroes is set. */
    if (kv_get(opts, "size") == NULL && kv_get(opts, "read-zeroes") == NULL) {
        const char *name = blk_node_driver(bs)->name;

        blk_node_set_filename(bs, name[5] == 'c' ? "null-co://"
                                                 : "null-aio://");
    }
    return 0;
}

/* The simulated latency: this runs on a worker, so it may sleep. */
static void
delay(struct null_state *s)
{
    struct timespec ts = {
        .tv_sec = (time_t)(s->latency_ns / 1000000000u),
        .tv_nsec = (long)(s->latency_ns % 1000000000u),
    };

    if (s->latency_ns == 0) {
        return;
    }
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int
null_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_error *err)
{
    struct null_state *s = blk_node_state(bs);

    if (s->read_zeroes) {
        iov_memset(iov, iovcnt, 0, 0, len);
    }
    delay(s);
    return 0;
}

static int
null_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
             struct iovec *iov, int iovcnt, unsigned flags,
             struct blk_error *err)
{
    delay(blk_node_state(bs));
    return 0;
}

/*
 * null-co's fast path: without latency a request never blocks, so it
 * completes on the loop (as QEMU's null-co completes in its coroutine).
 * null-aio keeps the pool hop, like QEMU's, which completes in a BH.
 */
static int
null_try_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_error *err)
{
    struct null_state *s = blk_node_state(bs);

    return s->latency_ns ? -EAGAIN
                         : null_preadv(bs, off, len, iov, iovcnt, flags, err);
}

static int
null_try_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_error *err)
{
    struct null_state *s = blk_node_state(bs);

    return s->latency_ns ? -EAGAIN : 0;
}

static int
null_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
          struct blk_error *err)
{
    delay(blk_node_state(bs));
    return 0;
}

static int
null_discard(struct blk_node *bs, uint64_t off, uint64_t len,
             struct blk_error *err)
{
    return 0;
}

static int
null_flush(struct blk_node *bs, struct blk_error *err)
{
    delay(blk_node_state(bs));
    return 0;
}

/* Offsets are "valid" (map = offset); zero only with read-zeroes=on. */
static int
null_block_status(struct blk_node *bs, uint64_t off, uint64_t len,
                  struct blk_status *st, struct blk_error *err)
{
    struct null_state *s = blk_node_state(bs);

    st->pnum = len;
    st->flags = BLK_STATUS_OFFSET_VALID |
                (s->read_zeroes ? BLK_STATUS_ZERO : 0);
    st->map = off;
    st->file = bs;
    return 0;
}

/* size rounded up to 512 bytes, as QEMU 7.2 reports it (1000 -> 1024). */
static int64_t
null_get_length(struct blk_node *bs)
{
    struct null_state *s = blk_node_state(bs);
    uint64_t n = s->length;

    if (n % SECTOR != 0 && n < (uint64_t)INT64_MAX - SECTOR) {
        n += SECTOR - n % SECTOR;
    }
    return (int64_t)n;
}

static int64_t
null_get_allocated_size(struct blk_node *bs)
{
    return 0;
}

/* Reopen accepts any options and keeps the old ones, as QEMU's does. */
static int
null_reopen_prepare(struct blk_node *bs, const struct kv *opts, bool read_only,
                    void **state, struct blk_error *err)
{
    *state = NULL;
    return 0;
}

static void
null_reopen_done(struct blk_node *bs, void *state)
{
}

const struct blk_driver blk_driver_null_co = {
    .name = "null-co",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct null_state),
    .open = null_open,
    .preadv = null_preadv,
    .pwritev = null_pwritev,
    .try_preadv = null_try_preadv,
    .try_pwritev = null_try_pwritev,
    .zero = null_zero,
    .discard = null_discard,
    .flush = null_flush,
    .block_status = null_block_status,
    .get_length = null_get_length,
    .get_allocated_size = null_get_allocated_size,
    .reopen_prepare = null_reopen_prepare,
    .reopen_commit = null_reopen_done,
    .reopen_abort = null_reopen_done,
};

const struct blk_driver blk_driver_null_aio = {
    .name = "null-aio",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct null_state),
    .open = null_open,
    .preadv = null_preadv,
    .pwritev = null_pwritev,
    .zero = null_zero,
    .discard = null_discard,
    .flush = null_flush,
    .block_status = null_block_status,
    .get_length = null_get_length,
    .get_allocated_size = null_get_allocated_size,
    .reopen_prepare = null_reopen_prepare,
    .reopen_commit = null_reopen_done,
    .reopen_abort = null_reopen_done,
};
