/*
 * io.c - the blocking request path: every request, from the loop's workers
 * or an offline tool, passes here once per node.  It checks bounds and
 * read-only state, serialises overlapping requests, turns unaligned
 * requests into aligned read-modify-write, splits at max_transfer, applies
 * detect-zeroes and discard modes, enforces the driver's thread model, and
 * only then calls the driver (nbdkit's server/backend.c, in our shape).
 * Runs on worker threads; touches only the node's track_lock state.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap.h"
#include "block/node-int.h"
#include "block/uring.h"
#include "util/xalloc.h"

#define ZERO_CHUNK (1024 * 1024)    /* bytes per write when emulating zero */

static void length_grew(struct blk_node *bs, uint64_t end);
static void length_forget(struct blk_node *bs);

static bool
op_writes(enum blk_op op)
{
    return op == BLK_OP_WRITE || op == BLK_OP_ZERO || op == BLK_OP_DISCARD;
}

/* ---- overlap tracking ------------------------------------------------------ */

static bool
tracks_conflict(const struct blk_track *a, const struct blk_track *b)
{
    if (a->end <= b->start || b->end <= a->start) {
        return false;
    }
    /* Reads run side by side; anything that changes data goes in order. */
    return a->serialising || b->serialising || a->writes || b->writes;
}

/*
 * Register a request's range (in admission order).  Any thread; the async
 * engine calls it on the loop so that the order is the submission order.
 */
struct blk_track *
blk_track_begin(struct blk_node *bs, enum blk_op op, uint64_t off,
                uint64_t len, bool serialising)
{
    struct blk_track *t = xzalloc(sizeof(*t));
    uint64_t a = bs->limits.request_alignment;

    /* Unaligned requests cover their whole aligned blocks (RMW). */
    t->start = off & ~(a - 1);
    t->end = len ? ((off + len + a - 1) & ~(a - 1)) : t->start;
    if (op == BLK_OP_FLUSH || op == BLK_OP_BLOCK_STATUS) {
        t->end = t->start;      /* never conflicts */
    }
    t->writes = op_writes(op);
    t->serialising = serialising;
    pthread_mutex_lock(&bs->track_lock);
    t->seq = bs->track_seq++;
    t->prev = bs->tracks_tail;
    if (bs->tracks_tail != NULL) {
        bs->tracks_tail->next = t;
    } else {
        bs->tracks = t;
    }
    bs->tracks_tail = t;
    pthread_mutex_unlock(&bs->track_lock);
    return t;
}

/* Block until no earlier conflicting request is in flight.  Worker thread. */
void
blk_track_wait(struct blk_node *bs, struct blk_track *t)
{
    struct blk_track *o;

    if (t->start == t->end) {
        return;
    }
    pthread_mutex_lock(&bs->track_lock);
again:
    for (o = bs->tracks; o != NULL && o != t; o = o->next) {
        if (tracks_conflict(o, t)) {
            pthread_cond_wait(&bs->track_cond, &bs->track_lock);
            goto again;
        }
    }
    pthread_mutex_unlock(&bs->track_lock);
}

void
blk_track_end(struct blk_node *bs, struct blk_track *t)
{
    pthread_mutex_lock(&bs->track_lock);
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        bs->tracks = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    } else {
        bs->tracks_tail = t->prev;
    }
    pthread_cond_broadcast(&bs->track_cond);
    pthread_mutex_unlock(&bs->track_lock);
    free(t);
}

/* ---- small helpers ---------------------------------------------------------- */

static bool
iov_all_zero(const struct iovec *iov, int iovcnt)
{
    int i;

    for (i = 0; i < iovcnt; i++) {
        const unsigned char *p = iov[i].iov_base;
        size_t n = iov[i].iov_len;

        while (n >= 8) {
            uint64_t w;

            memcpy(&w, p, 8);
            if (w != 0) {
                return false;
            }
            p += 8;
            n -= 8;
        }
        while (n-- > 0) {
            if (*p++ != 0) {
                return false;
            }
        }
    }
    return true;
}

static void
iov_copy_out(struct iovec *iov, int iovcnt, const unsigned char *src,
             size_t len)
{
    int i;

    for (i = 0; i < iovcnt && len > 0; i++) {
        size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;

        memcpy(iov[i].iov_base, src, n);
        src += n;
        len -= n;
    }
}

static void
iov_copy_in(unsigned char *dst, const struct iovec *iov, int iovcnt,
            size_t len)
{
    int i;

    for (i = 0; i < iovcnt && len > 0; i++) {
        size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;

        memcpy(dst, iov[i].iov_base, n);
        dst += n;
        len -= n;
    }
}

static bool
iov_mem_aligned(const struct iovec *iov, int iovcnt, uint32_t align)
{
    int i;

    if (align <= 1) {
        return true;
    }
    for (i = 0; i < iovcnt; i++) {
        if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1)) {
            return false;
        }
    }
    return true;
}

static void *
bounce_alloc(struct blk_node *bs, size_t len)
{
    size_t align = bs->limits.min_mem_alignment;

    if (align < sizeof(void *)) {
        align = sizeof(void *);
    }
    return blk_try_memalign(align, len);
}

/* ---- calling the driver ------------------------------------------------------- */

static struct blk_child *
filtered_child(struct blk_node *bs)
{
    struct blk_child *c;

    for (c = bs->children; c != NULL; c = c->next) {
        if (c->role & (BLK_ROLE_FILTERED | BLK_ROLE_PRIMARY)) {
            return c;
        }
    }
    return NULL;
}

static int
emulate_zero(struct blk_node *bs, uint64_t off, uint64_t len,
             struct blk_error *err)
{
    size_t chunk = len < ZERO_CHUNK ? len : ZERO_CHUNK;
    void *buf = bounce_alloc(bs, chunk);
    int r = 0;

    if (buf == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate zero buffer");
    }
    memset(buf, 0, chunk);
    while (len > 0 && r == 0) {
        size_t n = len < chunk ? len : chunk;
        struct iovec v = { buf, n };

        r = bs->drv->pwritev(bs, off, n, &v, 1, 0, err);
        off += n;
        len -= n;
    }
    free(buf);
    return r;
}

/* One aligned, checked request to the driver itself. */
static int
call_driver(struct blk_node *bs, enum blk_op op, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_status *st, struct blk_error *err)
{
    const struct blk_driver *drv = bs->drv;
    struct blk_child *fc = NULL;
    bool serial = drv->threads == BLK_THREADS_SERIAL;
    int r;

    if (drv->is_filter || (drv->preadv == NULL && drv->pwritev == NULL)) {
        fc = filtered_child(bs);
    }
    if (serial) {
        pthread_mutex_lock(&bs->serial_lock);
    }
    switch (op) {
    case BLK_OP_READ:
        if (drv->preadv != NULL) {
            r = drv->preadv(bs, off, len, iov, iovcnt, flags, err);
        } else if (fc != NULL) {
            r = blk_child_preadv(fc, off, len, iov, iovcnt, flags, err);
        } else {
            r = blk_error_set(err, -ENOTSUP, "driver '%s' cannot read",
                              drv->name);
        }
        break;
    case BLK_OP_WRITE:
        if (drv->pwritev != NULL) {
            r = drv->pwritev(bs, off, len, iov, iovcnt, flags, err);
        } else if (fc != NULL) {
            r = blk_child_pwritev(fc, off, len, iov, iovcnt, flags, err);
        } else {
            r = blk_error_set(err, -ENOTSUP, "driver '%s' cannot write",
                              drv->name);
        }
        break;
    case BLK_OP_ZERO:
        r = -ENOTSUP;
        if (drv->zero != NULL) {
            struct blk_error zerr = BLK_ERROR_INIT;

            r = drv->zero(bs, off, len, flags, &zerr);
            if (r < 0 && r != -ENOTSUP) {
                blk_error_propagate(err, &zerr);
            }
        } else if (fc != NULL && drv->pwritev == NULL) {
            r = blk_child_zero(fc, off, len, flags, err);
        }
        if (r == -ENOTSUP) {
            if (flags & BLK_REQ_NO_FALLBACK) {
                r = blk_error_set(err, -ENOTSUP, "efficient zeroing is not "
                                  "supported by '%s'", bs->node_name);
            } else if (drv->pwritev != NULL) {
                r = emulate_zero(bs, off, len, err);
            } else {
                r = blk_error_set(err, -ENOTSUP, "driver '%s' cannot write",
                                  drv->name);
            }
        }
        break;
    case BLK_OP_DISCARD:
        if (drv->discard != NULL) {
            r = drv->discard(bs, off, len, err);
        } else if (fc != NULL && drv->pwritev == NULL) {
            r = blk_child_discard(fc, off, len, err);
        } else {
            r = 0;              /* discard is advisory */
        }
        if (r == -ENOTSUP) {
            r = 0;
        }
        break;
    case BLK_OP_BLOCK_STATUS:
        memset(st, 0, sizeof(*st));
        if (drv->block_status != NULL) {
            r = drv->block_status(bs, off, len, st, err);
        } else if (fc != NULL) {
            r = blk_child_block_status(fc, off, len, st, err);
        } else {
            st->pnum = len;
            st->flags = BLK_STATUS_DATA | BLK_STATUS_ALLOCATED |
                        BLK_STATUS_OFFSET_VALID;
            st->map = off;
            st->file = bs;
            r = 0;
        }
        if (r == 0 && (st->pnum == 0 || st->pnum > len)) {
            st->pnum = len;
        }
        break;
    default:
        r = blk_error_set(err, -EINVAL, "bad request op %d", (int)op);
        break;
    }
    if (serial) {
        pthread_mutex_unlock(&bs->serial_lock);
    }
    if (r > 0) {
        r = 0;
    }
    return r;
}

/* Split at max_transfer and bounce misaligned memory; offsets are aligned. */
static int
run_aligned(struct blk_node *bs, enum blk_op op, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_status *st, struct blk_error *err)
{
    uint64_t max = bs->limits.max_transfer;
    int r;

    if ((op == BLK_OP_READ || op == BLK_OP_WRITE) &&
        (!iov_mem_aligned(iov, iovcnt, bs->limits.min_mem_alignment) ||
         (max != 0 && len > max))) {
        size_t chunk = max != 0 && len > max ? max : len;
        unsigned char *buf = bounce_alloc(bs, chunk);
        uint64_t done = 0;

        if (buf == NULL) {
            return blk_error_set(err, -ENOMEM, "cannot allocate %zu bytes "
                                 "bounce buffer", chunk);
        }
        r = 0;
        while (done < len && r == 0) {
            uint64_t n = len - done < chunk ? len - done : chunk;
            struct iovec v = { buf, n };
            struct iovec *sub;
            int subcnt;

            /* Copy through the bounce buffer chunk by chunk. */
            sub = xmalloc(sizeof(*sub) * (iovcnt + 1));
            subcnt = 0;
            {
                uint64_t skip = done, want = n;
                int i;

                for (i = 0; i < iovcnt && want > 0; i++) {
                    if (skip >= iov[i].iov_len) {
                        skip -= iov[i].iov_len;
                        continue;
                    }
                    sub[subcnt].iov_base = (char *)iov[i].iov_base + skip;
                    sub[subcnt].iov_len = iov[i].iov_len - skip < want ?
                                          iov[i].iov_len - skip : want;
                    want -= sub[subcnt].iov_len;
                    skip = 0;
                    subcnt++;
                }
            }
            if (op == BLK_OP_WRITE) {
                iov_copy_in(buf, sub, subcnt, n);
                r = call_driver(bs, op, off + done, n, &v, 1, flags, st, err);
            } else {
                r = call_driver(bs, op, off + done, n, &v, 1, flags, st, err);
                if (r == 0) {
                    iov_copy_out(sub, subcnt, buf, n);
                }
            }
            free(sub);
            done += n;
        }
        free(buf);
        return r;
    }
    if (op == BLK_OP_ZERO && max != 0 && len > max) {
        r = 0;
        while (len > 0 && r == 0) {
            uint64_t n = len < max ? len : max;

            r = call_driver(bs, op, off, n, NULL, 0, flags, st, err);
            off += n;
            len -= n;
        }
        return r;
    }
    return call_driver(bs, op, off, len, iov, iovcnt, flags, st, err);
}

/* Read-modify-write of an unaligned write or zero request. */
static int
rmw(struct blk_node *bs, enum blk_op op, uint64_t off, uint64_t len,
    struct iovec *iov, int iovcnt, unsigned flags, struct blk_error *err)
{
    uint64_t a = bs->limits.request_alignment;
    uint64_t head = off & ~(a - 1);
    uint64_t end = (off + len + a - 1) & ~(a - 1);
    unsigned char *buf;
    struct iovec v;
    int r;

    if (op == BLK_OP_ZERO && end - head > 2 * a) {
        /* Zero the aligned middle efficiently, RMW only the edges. */
        uint64_t mid_start = (off + a - 1) & ~(a - 1);
        uint64_t mid_end = (off + len) & ~(a - 1);

        if (mid_start < mid_end) {
            r = run_aligned(bs, op, mid_start, mid_end - mid_start, NULL, 0,
                            flags, NULL, err);
            if (r < 0) {
                return r;
            }
            if (off < mid_start) {
                r = rmw(bs, op, off, mid_start - off, NULL, 0, flags, err);
                if (r < 0) {
                    return r;
                }
            }
            if (mid_end < off + len) {
                r = rmw(bs, op, mid_end, off + len - mid_end, NULL, 0, flags,
                        err);
            }
            return r;
        }
    }
    buf = bounce_alloc(bs, end - head);
    if (buf == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate RMW buffer");
    }
    v.iov_base = buf;
    v.iov_len = end - head;
    r = run_aligned(bs, BLK_OP_READ, head, end - head, &v, 1, 0, NULL, err);
    if (r == 0) {
        if (op == BLK_OP_ZERO) {
            memset(buf + (off - head), 0, len);
        } else {
            iov_copy_in(buf + (off - head), iov, iovcnt, len);
        }
        r = run_aligned(bs, BLK_OP_WRITE, head, end - head, &v, 1,
                        flags & BLK_REQ_FUA, NULL, err);
    }
    free(buf);
    return r;
}

/*
 * A flush: the node's own, then its children's (not backing files).
 * With BLK_REQ_WRITEBACK only the drivers' writeback ops, which start
 * writing cached data back and wait for nothing.
 */
static int
do_flush(struct blk_node *bs, unsigned flags, struct blk_error *err)
{
    struct blk_child *c;
    int r = 0;

    if (bs->read_only) {
        return 0;
    }
    if (flags & BLK_REQ_WRITEBACK) {
        if (bs->drv->writeback != NULL) {
            r = bs->drv->writeback(bs, err);
            if (r < 0) {
                return r;
            }
        }
    } else if (bs->drv->flush != NULL) {
        if (bs->drv->threads == BLK_THREADS_SERIAL) {
            pthread_mutex_lock(&bs->serial_lock);
        }
        r = bs->drv->flush(bs, err);
        if (bs->drv->threads == BLK_THREADS_SERIAL) {
            pthread_mutex_unlock(&bs->serial_lock);
        }
        if (r < 0) {
            return r;
        }
    }
    for (c = bs->children; c != NULL; c = c->next) {
        if (!(c->role & BLK_ROLE_COW)) {
            r = blk_io_run(c->child, BLK_OP_FLUSH, 0, 0, NULL, 0,
                           flags & BLK_REQ_WRITEBACK, NULL, false, false,
                           err);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

static int
check_request(struct blk_node *bs, enum blk_op op, uint64_t off,
              uint64_t *len, bool top, struct blk_error *err)
{
    int64_t size;

    if (op_writes(op) && bs->read_only) {
        return blk_error_set(err, -EPERM, "Block node '%s' is read-only",
                             bs->node_name);
    }
    if (off > INT64_MAX || *len > INT64_MAX - off) {
        return blk_error_set(err, -EIO, "request at offset %" PRIu64
                             " is out of range", off);
    }
    if (!top) {
        return 0;
    }
    size = blk_node_get_length(bs);
    if (size < 0) {
        return blk_error_set(err, (int)size, "cannot get length of '%s'",
                             bs->node_name);
    }
    if (op == BLK_OP_BLOCK_STATUS) {
        if (off >= (uint64_t)size) {
            return blk_error_set(err, -EIO, "block status at offset %" PRIu64
                                 " is beyond the end (%" PRId64 ")", off,
                                 size);
        }
        if (*len > (uint64_t)size - off) {
            *len = (uint64_t)size - off;
        }
        return 0;
    }
    if (off + *len > (uint64_t)size) {
        return blk_error_set(err, -EIO, "request at offset %" PRIu64
                             " length %" PRIu64 " is beyond the end of '%s' "
                             "(%" PRId64 " bytes)", off, *len, bs->node_name,
                             size);
    }
    return 0;
}

int
blk_io_run(struct blk_node *bs, enum blk_op op, uint64_t off, uint64_t len,
           struct iovec *iov, int iovcnt, unsigned flags,
           struct blk_status *st, bool top, bool tracked,
           struct blk_error *err)
{
    uint64_t a = bs->limits.request_alignment;
    struct blk_track *t = NULL;
    bool aligned;
    int r;

    if (op == BLK_OP_FLUSH) {
        return do_flush(bs, flags, err);
    }
    r = check_request(bs, op, off, &len, top, err);
    if (r < 0) {
        return r;
    }
    if (len == 0 && op != BLK_OP_BLOCK_STATUS) {
        return 0;
    }
    if (op == BLK_OP_WRITE && (flags & BLK_REQ_COMPRESSED) &&
        !bs->drv->compressed_writes) {
        return blk_error_set(err, -ENOTSUP, "Compressed writes are not "
                             "supported by the '%s' driver", bs->drv->name);
    }
    if (op == BLK_OP_WRITE && bs->detect_zeroes != BLK_DZ_OFF &&
        !(flags & BLK_REQ_COMPRESSED) && iov_all_zero(iov, iovcnt)) {
        op = BLK_OP_ZERO;
        if (bs->detect_zeroes == BLK_DZ_UNMAP) {
            flags |= BLK_REQ_MAY_UNMAP;
        }
    }
    if (op == BLK_OP_ZERO && !bs->discard_unmap) {
        flags &= ~BLK_REQ_MAY_UNMAP;
    }
    if (op == BLK_OP_DISCARD) {
        if (!bs->discard_unmap) {
            return 0;
        }
        /* Discard is advisory: shrink to whole aligned blocks. */
        uint64_t s = (off + a - 1) & ~(a - 1), e = (off + len) & ~(a - 1);

        if (s >= e) {
            return 0;
        }
        off = s;
        len = e - s;
    }
    aligned = ((off | len) & (a - 1)) == 0 || op == BLK_OP_BLOCK_STATUS;
    if (!tracked) {
        t = blk_track_begin(bs, op, off, len, !aligned && op_writes(op));
        blk_track_wait(bs, t);
    }
    if (aligned) {
        r = run_aligned(bs, op, off, len, iov, iovcnt, flags, st, err);
    } else if (op == BLK_OP_READ) {
        uint64_t head = off & ~(a - 1);
        uint64_t end = (off + len + a - 1) & ~(a - 1);
        unsigned char *buf = bounce_alloc(bs, end - head);
        struct iovec v = { buf, end - head };

        if (buf == NULL) {
            r = blk_error_set(err, -ENOMEM, "cannot allocate read buffer");
        } else {
            r = run_aligned(bs, op, head, end - head, &v, 1, flags, NULL, err);
            if (r == 0) {
                iov_copy_out(iov, iovcnt, buf + (off - head), len);
            }
            free(buf);
        }
    } else {
        r = rmw(bs, op, off, len, iov, iovcnt, flags, err);
    }
    if (r == 0 && op_writes(op)) {
        blk_bitmaps_mark(bs, off, len);
        if (op != BLK_OP_DISCARD) {
            /* Read-modify-write wrote (and so extended to) whole blocks. */
            length_grew(bs, (off + len + a - 1) & ~(a - 1));
        }
    }
    if (t != NULL) {
        blk_track_end(bs, t);
    }
    return r;
}

/* ---- the fast path ------------------------------------------------------------------ */

/*
 * Register [off, off+len) unless a request in flight on bs overlaps it;
 * NULL if one does.  Checked and registered under one lock, so a worker
 * cannot slip an overlapping track in between.
 */
static struct blk_track *
track_begin_alone(struct blk_node *bs, enum blk_op op, uint64_t off,
                  uint64_t len)
{
    struct blk_track *t;

    pthread_mutex_lock(&bs->track_lock);
    for (t = bs->tracks; t != NULL; t = t->next) {
        if (t->start < off + len && off < t->end) {
            pthread_mutex_unlock(&bs->track_lock);
            return NULL;
        }
    }
    t = xzalloc(sizeof(*t));
    t->start = off;
    t->end = off + len;
    t->writes = op_writes(op);
    t->seq = bs->track_seq++;
    t->prev = bs->tracks_tail;
    if (bs->tracks_tail != NULL) {
        bs->tracks_tail->next = t;
    } else {
        bs->tracks = t;
    }
    bs->tracks_tail = t;
    pthread_mutex_unlock(&bs->track_lock);
    return t;
}

/*
 * Run an aligned read or write on the loop without blocking, or say
 * -EAGAIN.  Only the plain case qualifies: aligned, within max_transfer,
 * memory aligned, no detect-zeroes rewrite, not compressed (the slow path
 * refuses that where the driver cannot), no overlap with anything in
 * flight, and a driver that offers a try op (a SERIAL driver only if its
 * lock is free).  A track is held meanwhile, so a worker's nested request
 * that overlaps waits for us.  With aio, the driver's aio op instead
 * (PARALLEL drivers only); when it starts the I/O, the track stays with
 * aio until the completion (blk_io_aio_finish).
 */
static int
io_fast(struct blk_node *bs, enum blk_op op, uint64_t off, uint64_t len,
        struct iovec *iov, int iovcnt, unsigned flags, bool top,
        struct blk_aio *aio, struct blk_error *err)
{
    const struct blk_driver *drv = bs->drv;
    uint64_t a = bs->limits.request_alignment;
    struct blk_track *t;
    bool serial = drv->threads == BLK_THREADS_SERIAL;
    bool has_op;
    int r;

    if (aio != NULL) {
        has_op = (op == BLK_OP_READ ? drv->aio_preadv : drv->aio_pwritev) !=
                 NULL && !serial && aio->nlv < BLK_AIO_LEVELS;
    } else {
        has_op = (op == BLK_OP_READ ? drv->try_preadv : drv->try_pwritev) !=
                 NULL;
    }
    if (!has_op || (op != BLK_OP_READ && op != BLK_OP_WRITE) || len == 0 ||
        ((off | len) & (a - 1)) != 0 ||
        (bs->limits.max_transfer != 0 && len > bs->limits.max_transfer) ||
        !iov_mem_aligned(iov, iovcnt, bs->limits.min_mem_alignment) ||
        (op == BLK_OP_WRITE && (bs->detect_zeroes != BLK_DZ_OFF ||
                                (flags & BLK_REQ_COMPRESSED)))) {
        return -EAGAIN;
    }
    r = check_request(bs, op, off, &len, top, err);
    if (r < 0) {
        return r;
    }
    if (serial && pthread_mutex_trylock(&bs->serial_lock) != 0) {
        return -EAGAIN;
    }
    t = track_begin_alone(bs, op, off, len);
    if (t == NULL) {
        if (serial) {
            pthread_mutex_unlock(&bs->serial_lock);
        }
        return -EAGAIN;
    }
    if (aio != NULL) {
        r = op == BLK_OP_READ
                ? drv->aio_preadv(bs, off, len, iov, iovcnt, flags, aio, err)
                : drv->aio_pwritev(bs, off, len, iov, iovcnt, flags, aio, err);
        if (r == -EINPROGRESS) {
            /* Room was checked above; the levels below push first. */
            if (!blk_aio_push(aio, bs, t, op, off, len)) {
                abort();
            }
            return r;
        }
    } else {
        r = op == BLK_OP_READ
                ? drv->try_preadv(bs, off, len, iov, iovcnt, flags, err)
                : drv->try_pwritev(bs, off, len, iov, iovcnt, flags, err);
    }
    if (r > 0) {
        r = 0;
    }
    blk_io_aio_finish(bs, t, op, off, len, r);
    if (serial) {
        pthread_mutex_unlock(&bs->serial_lock);
    }
    return r;
}

int
blk_io_try(struct blk_node *bs, enum blk_op op, uint64_t off, uint64_t len,
           struct iovec *iov, int iovcnt, unsigned flags, bool top,
           struct blk_error *err)
{
    return io_fast(bs, op, off, len, iov, iovcnt, flags, top, NULL, err);
}

int
blk_io_aio(struct blk_node *bs, int op, uint64_t off, uint64_t len,
           struct iovec *iov, int iovcnt, unsigned flags, bool top,
           struct blk_aio *aio, struct blk_error *err)
{
    return io_fast(bs, (enum blk_op)op, off, len, iov, iovcnt, flags, top,
                   aio, err);
}

void
blk_io_aio_finish(struct blk_node *bs, struct blk_track *t, int op,
                  uint64_t off, uint64_t len, int r)
{
    if (r == 0 && op == BLK_OP_WRITE) {
        blk_bitmaps_mark(bs, off, len);
        length_grew(bs, off + len);
    }
    blk_track_end(bs, t);
}

int
blk_child_aio_preadv(struct blk_child *c, uint64_t off, uint64_t len,
                     struct iovec *iov, int iovcnt, unsigned flags,
                     struct blk_aio *aio, struct blk_error *err)
{
    return io_fast(c->child, BLK_OP_READ, off, len, iov, iovcnt, flags, false,
                   aio, err);
}

int
blk_child_aio_pwritev(struct blk_child *c, uint64_t off, uint64_t len,
                      struct iovec *iov, int iovcnt, unsigned flags,
                      struct blk_aio *aio, struct blk_error *err)
{
    return io_fast(c->child, BLK_OP_WRITE, off, len, iov, iovcnt, flags,
                   false, aio, err);
}

int
blk_node_map_data(struct blk_node *bs, uint64_t off, uint64_t len,
                  const uint8_t **ptr)
{
    int64_t size;

    if (bs->drv->map_data == NULL || bs->drv->threads == BLK_THREADS_SERIAL ||
        len == 0) {
        return -EAGAIN;
    }
    size = blk_node_get_length(bs);
    if (size < 0 || off > (uint64_t)size || len > (uint64_t)size - off) {
        return -EAGAIN;
    }
    return bs->drv->map_data(bs, off, len, ptr);
}

int
blk_child_map_data(struct blk_child *c, uint64_t off, uint64_t len,
                   const uint8_t **ptr)
{
    return blk_node_map_data(c->child, off, len, ptr);
}

int
blk_child_try_preadv(struct blk_child *c, uint64_t off, uint64_t len,
                     struct iovec *iov, int iovcnt, unsigned flags,
                     struct blk_error *err)
{
    return blk_io_try(c->child, BLK_OP_READ, off, len, iov, iovcnt, flags,
                      false, err);
}

int
blk_child_try_pwritev(struct blk_child *c, uint64_t off, uint64_t len,
                      struct iovec *iov, int iovcnt, unsigned flags,
                      struct blk_error *err)
{
    return blk_io_try(c->child, BLK_OP_WRITE, off, len, iov, iovcnt, flags,
                      false, err);
}

/* ---- the blocking API ------------------------------------------------------------- */

int
blk_child_preadv(struct blk_child *c, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_error *err)
{
    return blk_io_run(c->child, BLK_OP_READ, off, len, iov, iovcnt, flags,
                      NULL, false, false, err);
}

int
blk_child_pwritev(struct blk_child *c, uint64_t off, uint64_t len,
                  struct iovec *iov, int iovcnt, unsigned flags,
                  struct blk_error *err)
{
    return blk_io_run(c->child, BLK_OP_WRITE, off, len, iov, iovcnt, flags,
                      NULL, false, false, err);
}

int
blk_io_buf(struct blk_node *bs, enum blk_op op, uint64_t off,
           const void *buf, size_t len, unsigned flags, bool top,
           struct blk_error *err)
{
    struct iovec v = { (void *)buf, len };

    return blk_io_run(bs, op, off, len, &v, 1, flags, NULL, top, false, err);
}

int
blk_child_pread(struct blk_child *c, uint64_t off, void *buf, size_t len,
                struct blk_error *err)
{
    return blk_io_buf(c->child, BLK_OP_READ, off, buf, len, 0, false, err);
}

int
blk_child_pwrite(struct blk_child *c, uint64_t off, const void *buf,
                 size_t len, unsigned flags, struct blk_error *err)
{
    return blk_io_buf(c->child, BLK_OP_WRITE, off, buf, len, flags, false,
                      err);
}

int
blk_child_zero(struct blk_child *c, uint64_t off, uint64_t len,
               unsigned flags, struct blk_error *err)
{
    return blk_io_run(c->child, BLK_OP_ZERO, off, len, NULL, 0, flags, NULL,
                      false, false, err);
}

int
blk_child_discard(struct blk_child *c, uint64_t off, uint64_t len,
                  struct blk_error *err)
{
    return blk_io_run(c->child, BLK_OP_DISCARD, off, len, NULL, 0, 0, NULL,
                      false, false, err);
}

int
blk_child_flush(struct blk_child *c, struct blk_error *err)
{
    return blk_io_run(c->child, BLK_OP_FLUSH, 0, 0, NULL, 0, 0, NULL, false,
                      false, err);
}

int
blk_child_block_status(struct blk_child *c, uint64_t off, uint64_t len,
                       struct blk_status *st, struct blk_error *err)
{
    return blk_io_run(c->child, BLK_OP_BLOCK_STATUS, off, len, NULL, 0, 0, st,
                      false, false, err);
}

int64_t
blk_child_get_length(struct blk_child *c)
{
    return blk_node_get_length(c->child);
}

int
blk_child_truncate(struct blk_child *c, uint64_t len, bool exact,
                   enum blk_prealloc prealloc, struct blk_error *err)
{
    return blk_node_truncate(c->child, len, exact, prealloc, err);
}

static bool
caches_length(const struct blk_node *bs)
{
    return !bs->drv->is_format && !bs->drv->is_filter &&
           bs->drv->get_length != NULL;
}

/* Data now reaches end on bs: a protocol node grew if end is past it. */
static void
length_grew(struct blk_node *bs, uint64_t end)
{
    uint64_t cur;

    if (!__atomic_load_n(&bs->length_valid, __ATOMIC_ACQUIRE)) {
        return;
    }
    cur = __atomic_load_n(&bs->length, __ATOMIC_RELAXED);
    while (end > cur &&
           !__atomic_compare_exchange_n(&bs->length, &cur, end, false,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
    }
}

/* Forget the cached length (truncate, reopen, anything that resizes). */
static void
length_forget(struct blk_node *bs)
{
    __atomic_store_n(&bs->length_valid, 0, __ATOMIC_RELEASE);
}

int64_t
blk_node_get_length(struct blk_node *bs)
{
    struct blk_node *f;
    int64_t len;

    if (caches_length(bs)) {
        if (__atomic_load_n(&bs->length_valid, __ATOMIC_ACQUIRE)) {
            return (int64_t)__atomic_load_n(&bs->length, __ATOMIC_RELAXED);
        }
        len = bs->drv->get_length(bs);
        if (len >= 0) {
            __atomic_store_n(&bs->length, (uint64_t)len, __ATOMIC_RELAXED);
            __atomic_store_n(&bs->length_valid, 1, __ATOMIC_RELEASE);
        }
        return len;
    }
    if (bs->drv->get_length != NULL) {
        return bs->drv->get_length(bs);
    }
    f = blk_node_file(bs);
    return f != NULL ? blk_node_get_length(f) : -ENOTSUP;
}

int64_t
blk_node_get_allocated_size(struct blk_node *bs)
{
    struct blk_child *c;
    int64_t sum = 0, r;

    if (bs->drv->get_allocated_size != NULL) {
        return bs->drv->get_allocated_size(bs);
    }
    /* Like QEMU: the sum over the children that hold this node's data. */
    for (c = bs->children; c != NULL; c = c->next) {
        if (c->role & BLK_ROLE_COW) {
            continue;
        }
        r = blk_node_get_allocated_size(c->child);
        if (r < 0) {
            return r;
        }
        sum += r;
    }
    return bs->children != NULL ? sum : -ENOTSUP;
}

int
blk_node_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_error *err)
{
    return blk_io_run(bs, BLK_OP_READ, off, len, iov, iovcnt, flags, NULL,
                      true, false, err);
}

int
blk_node_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_error *err)
{
    return blk_io_run(bs, BLK_OP_WRITE, off, len, iov, iovcnt, flags, NULL,
                      true, false, err);
}

int
blk_node_pread(struct blk_node *bs, uint64_t off, void *buf, size_t len,
               struct blk_error *err)
{
    return blk_io_buf(bs, BLK_OP_READ, off, buf, len, 0, true, err);
}

int
blk_node_pwrite(struct blk_node *bs, uint64_t off, const void *buf,
                size_t len, unsigned flags, struct blk_error *err)
{
    return blk_io_buf(bs, BLK_OP_WRITE, off, buf, len, flags, true, err);
}

int
blk_node_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
              struct blk_error *err)
{
    return blk_io_run(bs, BLK_OP_ZERO, off, len, NULL, 0, flags, NULL, true,
                      false, err);
}

int
blk_node_discard(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct blk_error *err)
{
    return blk_io_run(bs, BLK_OP_DISCARD, off, len, NULL, 0, 0, NULL, true,
                      false, err);
}

int
blk_node_flush(struct blk_node *bs, struct blk_error *err)
{
    return blk_io_run(bs, BLK_OP_FLUSH, 0, 0, NULL, 0, 0, NULL, true, false,
                      err);
}

int
blk_node_block_status(struct blk_node *bs, uint64_t off, uint64_t len,
                      struct blk_status *st, struct blk_error *err)
{
    return blk_io_run(bs, BLK_OP_BLOCK_STATUS, off, len, NULL, 0, 0, st, true,
                      false, err);
}

/* After a resize: the node's bitmaps cover its new length. */
static int
resize_bitmaps(struct blk_node *bs, struct blk_error *err)
{
    int64_t size;

    if (bs->bitmaps == NULL) {
        return 0;
    }
    size = blk_node_get_length(bs);
    if (size < 0) {
        return blk_error_set(err, (int)size, "cannot get length of '%s'",
                             bs->node_name);
    }
    return blk_bitmaps_resize(bs, (uint64_t)size, err);
}

int
blk_node_truncate(struct blk_node *bs, uint64_t len, bool exact,
                  enum blk_prealloc prealloc, struct blk_error *err)
{
    int r;

    if (bs->read_only) {
        return blk_error_set(err, -EPERM, "Block node '%s' is read-only",
                             bs->node_name);
    }
    if (bs->drv->truncate == NULL) {
        struct blk_child *fc = bs->drv->is_filter ? filtered_child(bs) : NULL;

        if (fc != NULL) {
            r = blk_node_truncate(fc->child, len, exact, prealloc, err);
            return r < 0 ? r : resize_bitmaps(bs, err);
        }
        return blk_error_set(err, -ENOTSUP, "Image format '%s' does not "
                             "support resizing", bs->drv->name);
    }
    length_forget(bs);
    r = bs->drv->truncate(bs, len, exact, prealloc, err);
    length_forget(bs);
    if (r == 0) {
        r = resize_bitmaps(bs, err);
    }
    return r;
}
