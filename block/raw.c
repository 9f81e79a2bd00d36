/*
 * raw.c - the "raw" format driver: the guest sees its "file" child as is,
 * or a window of it (options offset and size).  Requests pass straight
 * through with the offset added; images are created by the file driver.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "block/driver.h"
#include "util/xalloc.h"

#define SECTOR 512

struct raw_state {
    struct blk_child *file;
    uint64_t offset;
    uint64_t size;              /* the window, when has_size */
    bool has_size;
};

static int
raw_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return 1;                   /* anything is raw, if nothing else claims it */
}

/* QEMU's checks of a window against the file, with its messages. */
static int
check_window(struct blk_child *file, uint64_t offset, bool has_size,
             uint64_t size, struct blk_error *err)
{
    int64_t real_size = blk_child_get_length(file);

    if (real_size < 0) {
        return blk_error_setsys(err, (int)real_size,
                                "Could not get image size");
    }
    if (offset > (uint64_t)real_size) {
        return blk_error_set(err, -EINVAL,
                             "Offset (%" PRIu64 ") cannot be greater than "
                             "size of the containing file (%" PRId64 ")",
                             offset, real_size);
    }
    if (has_size && (uint64_t)real_size - offset < size) {
        return blk_error_set(err, -EINVAL,
                             "The sum of offset (%" PRIu64 ") and size "
                             "(%" PRIu64 ") has to be smaller or equal to "
                             "the  actual size of the containing file "
                             "(%" PRId64 ")", offset, size, real_size);
    }
    if (has_size && size % SECTOR != 0) {
        return blk_error_set(err, -EINVAL,
                             "Specified size is not multiple of %d", SECTOR);
    }
    return 0;
}

static int
raw_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    unsigned role;

    s->offset = kv_get_uint(opts, "offset", 0);
    s->has_size = kv_get(opts, "size") != NULL;
    s->size = kv_get_uint(opts, "size", 0);

    /* Without a window raw is nearly a filter; with one it is not. */
    role = BLK_ROLE_PRIMARY |
           (s->offset != 0 || s->has_size ? BLK_ROLE_DATA : BLK_ROLE_FILTERED);
    s->file = blk_node_open_child(bs, opts, "file", "file", role, false, err);
    if (s->file == NULL) {
        return err != NULL && err->code < 0 ? err->code : -EINVAL;
    }

    return check_window(s->file, s->offset, s->has_size, s->size, err);
}

/* Move a request into the window; refuse what leaves it. */
static int
adjust(struct raw_state *s, uint64_t *off, uint64_t len, bool write,
       struct blk_error *err)
{
    if (s->has_size && (*off > s->size || len > s->size - *off)) {
        return blk_error_set(err, write ? -ENOSPC : -EINVAL,
                             "request at offset %" PRIu64 " length %" PRIu64
                             " leaves the raw window (%" PRIu64 " bytes)",
                             *off, len, s->size);
    }
    if (*off > INT64_MAX - s->offset) {
        return blk_error_set(err, -EINVAL, "request at offset %" PRIu64
                             " is out of range", *off);
    }
    *off += s->offset;
    return 0;
}

static int
raw_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
           struct iovec *iov, int iovcnt, unsigned flags,
           struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, false, err);

    return r < 0 ? r : blk_child_preadv(s->file, off, len, iov, iovcnt, flags,
                                        err);
}

static int
raw_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, true, err);

    return r < 0 ? r : blk_child_pwritev(s->file, off, len, iov, iovcnt,
                                         flags, err);
}

/* The loop's fast path: the same window, the child's try op. */
static int
raw_try_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
               struct iovec *iov, int iovcnt, unsigned flags,
               struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, false, err);

    return r < 0 ? r : blk_child_try_preadv(s->file, off, len, iov, iovcnt,
                                            flags, err);
}

static int
raw_try_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, true, err);

    return r < 0 ? r : blk_child_try_pwritev(s->file, off, len, iov, iovcnt,
                                             flags, err);
}

/* Zero-copy reads: the same window, the child's span. */
static int
raw_map_data(struct blk_node *bs, uint64_t off, uint64_t len,
             const uint8_t **ptr)
{
    struct raw_state *s = blk_node_state(bs);

    if (adjust(s, &off, len, false, NULL) < 0) {
        return -EAGAIN;
    }
    return blk_child_map_data(s->file, off, len, ptr);
}

/* The ring path: the same window, the child's aio op. */
static int
raw_aio_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
               struct iovec *iov, int iovcnt, unsigned flags,
               struct blk_aio *aio, struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, false, err);

    return r < 0 ? r : blk_child_aio_preadv(s->file, off, len, iov, iovcnt,
                                            flags, aio, err);
}

static int
raw_aio_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_aio *aio, struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, true, err);

    return r < 0 ? r : blk_child_aio_pwritev(s->file, off, len, iov, iovcnt,
                                             flags, aio, err);
}

static int
raw_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
         struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, true, err);

    return r < 0 ? r : blk_child_zero(s->file, off, len, flags, err);
}

static int
raw_discard(struct blk_node *bs, uint64_t off, uint64_t len,
            struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    int r = adjust(s, &off, len, true, err);

    return r < 0 ? r : blk_child_discard(s->file, off, len, err);
}

static int
raw_block_status(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct blk_status *st, struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);

    st->pnum = len;
    st->flags = BLK_STATUS_RECURSE | BLK_STATUS_OFFSET_VALID;
    st->map = off + s->offset;
    st->file = blk_child_node(s->file);
    return 0;
}

/*
 * The window's length: the file's from offset on, or size if given (and
 * the file still holds it); rounded up to 512 bytes as QEMU 7.2 reports
 * lengths, so an unaligned offset shows one partial sector more.
 */
static int64_t
raw_get_length(struct blk_node *bs)
{
    struct raw_state *s = blk_node_state(bs);
    int64_t len = blk_child_get_length(s->file);
    uint64_t n;

    if (len < 0) {
        return len;
    }
    if ((uint64_t)len < s->offset) {
        return 0;
    }
    n = (uint64_t)len - s->offset;
    if (s->has_size && s->size < n) {
        n = s->size;
    }
    if (n % SECTOR != 0 && n < (uint64_t)INT64_MAX - SECTOR) {
        n += SECTOR - n % SECTOR;
    }
    return (int64_t)n;
}

static int
raw_truncate(struct blk_node *bs, uint64_t len, bool exact,
             enum blk_prealloc prealloc, struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);

    if (s->has_size) {
        return blk_error_set(err, -ENOTSUP,
                             "Cannot resize fixed-size raw disks");
    }
    if (len > INT64_MAX - s->offset) {
        return blk_error_set(err, -EINVAL,
                             "Disk size too large for the chosen offset");
    }
    return blk_child_truncate(s->file, len + s->offset, exact, prealloc, err);
}

/* offset and size may change on reopen (checked like at open). */
static int
raw_reopen_prepare(struct blk_node *bs, const struct kv *opts, bool read_only,
                   void **state, struct blk_error *err)
{
    struct raw_state *s = blk_node_state(bs);
    struct raw_state *ns = xmalloc(sizeof(*ns));
    int r;

    ns->file = s->file;
    ns->offset = kv_get_uint(opts, "offset", 0);
    ns->has_size = kv_get(opts, "size") != NULL;
    ns->size = kv_get_uint(opts, "size", 0);
    r = check_window(s->file, ns->offset, ns->has_size, ns->size, err);
    if (r < 0) {
        free(ns);
        return r;
    }
    *state = ns;
    return 0;
}

static void
raw_reopen_commit(struct blk_node *bs, void *state)
{
    struct raw_state *s = blk_node_state(bs);

    *s = *(struct raw_state *)state;
    free(state);
}

static void
raw_reopen_abort(struct blk_node *bs, void *state)
{
    free(state);
}

const struct blk_driver blk_driver_raw = {
    .name = "raw",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct raw_state),
    .is_format = true,
    .probe = raw_probe,
    .open = raw_open,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .try_preadv = raw_try_preadv,
    .map_data = raw_map_data,
    .try_pwritev = raw_try_pwritev,
    .aio_preadv = raw_aio_preadv,
    .aio_pwritev = raw_aio_pwritev,
    .zero = raw_zero,
    .discard = raw_discard,
    .block_status = raw_block_status,
    .get_length = raw_get_length,
    .truncate = raw_truncate,
    .reopen_prepare = raw_reopen_prepare,
    .reopen_commit = raw_reopen_commit,
    .reopen_abort = raw_reopen_abort,
};
