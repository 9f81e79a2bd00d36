/*
 * memdrv.c - the "test-mem" driver of memdrv.h.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/memdrv.h"
#include "util/xalloc.h"


struct memdisk {
    unsigned char *data;
    unsigned seed;
    unsigned max_delay_us;
};


static void
random_delay(struct memdisk *m)
{
    unsigned r;

    if (m->max_delay_us == 0) {
        return;
    }
    r = (unsigned)rand_r(&m->seed);    /* racy seed is fine: only jitter */
    usleep(r % m->max_delay_us);
}

static int
mem_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    struct memdisk *m = blk_node_state(bs);
    struct blk_limits l = { 0 };

    m->data = xzalloc(MEMDRV_SIZE);
    m->seed = 1;
    m->max_delay_us = (unsigned)kv_get_int(opts, "delay", 200);
    l.request_alignment = (uint32_t)kv_get_int(opts, "align", 1);
    l.max_transfer = (uint64_t)kv_get_int(opts, "max-transfer", 0);
    blk_node_set_limits(bs, &l);
    return 0;
}

static void
mem_close(struct blk_node *bs)
{
    struct memdisk *m = blk_node_state(bs);

    free(m->data);
}

static int
mem_preadv_nodelay(struct blk_node *bs, uint64_t off, uint64_t len,
                   struct iovec *iov, int iovcnt)
{
    struct memdisk *m = blk_node_state(bs);
    const struct blk_limits *l = blk_node_get_limits(bs);
    int i;

    assert(off % l->request_alignment == 0 && len % l->request_alignment == 0);
    assert(l->max_transfer == 0 || len <= l->max_transfer);
    for (i = 0; i < iovcnt; i++) {
        memcpy(iov[i].iov_base, m->data + off, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return 0;
}

static int
mem_pwritev_nodelay(struct blk_node *bs, uint64_t off, uint64_t len,
                    struct iovec *iov, int iovcnt)
{
    struct memdisk *m = blk_node_state(bs);
    const struct blk_limits *l = blk_node_get_limits(bs);
    int i;

    assert(off % l->request_alignment == 0 && len % l->request_alignment == 0);
    for (i = 0; i < iovcnt; i++) {
        memcpy(m->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return 0;
}

static int
mem_preadv(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
           int iovcnt, unsigned flags, struct blk_error *err)
{
    random_delay(blk_node_state(bs));
    return mem_preadv_nodelay(bs, off, len, iov, iovcnt);
}

static int
mem_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_error *err)
{
    random_delay(blk_node_state(bs));
    return mem_pwritev_nodelay(bs, off, len, iov, iovcnt);
}

static int64_t
mem_get_length(struct blk_node *bs)
{
    return MEMDRV_SIZE;
}

/* The loop's fast path: takes about half the requests, refuses the rest. */
static int
mem_try_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
               struct iovec *iov, int iovcnt, unsigned flags,
               struct blk_error *err)
{
    struct memdisk *m = blk_node_state(bs);

    if (m->max_delay_us != 0 && (off / 512) % 2 == 0) {
        return -EAGAIN;
    }
    return mem_preadv_nodelay(bs, off, len, iov, iovcnt);
}

static int
mem_try_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_error *err)
{
    struct memdisk *m = blk_node_state(bs);

    if (m->max_delay_us != 0 && (off / 512) % 2 == 1) {
        return -EAGAIN;
    }
    return mem_pwritev_nodelay(bs, off, len, iov, iovcnt);
}

const struct blk_driver memdrv_driver = {
    .name = "test-mem",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct memdisk),
    .open = mem_open,
    .close = mem_close,
    .preadv = mem_preadv,
    .pwritev = mem_pwritev,
    .try_preadv = mem_try_preadv,
    .try_pwritev = mem_try_pwritev,
    .get_length = mem_get_length,
};

