/*
 * cor.c - the "copy-on-read" filter: reads of ranges that the image below
 * it (its "file" child, the top of a backing chain) does not allocate are
 * read through the chain and written into that image unchanged, so the
 * next read finds them there.  "bottom" names the lowest backing layer
 * whose data is copied.  Behaviour follows QEMU 7.2's filter together
 * with its generic copy-on-read (block/io.c): whole (sub)clusters are
 * copied, and ranges that read as zeroes become zero writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "util/iov.h"
#include "util/xalloc.h"

/* Largest piece copied with one bounce buffer (QEMU's MAX_BOUNCE_BUFFER). */
#define COR_MAX_BOUNCE (32768u * 512u)

/*
 * A range of the child locked by a request of this filter.  Copies
 * exclude every overlapping request, writes only copies: a copy that read
 * old data must not land on top of a newer write, and two reads of one
 * unallocated cluster must not both copy it.
 */
struct cor_range {
    uint64_t start, end;        /* bytes, [start, end) */
    bool copy;
    struct cor_range *next;
};

/*
 * Invariant: ranges holds the requests now inside the driver; no two
 * overlapping entries where either is a copy.
 */
struct cor_state {
    struct blk_child *file;
    char *bottom;               /* node-name of the lowest copied layer; owned */
    pthread_mutex_t lock;       /* guards ranges */
    pthread_cond_t cond;
    struct cor_range *ranges;
};

static struct blk_node *skip_filters(struct blk_node *n);

/* ---- range locks ------------------------------------------------------------ */

static bool
range_blocked(const struct cor_state *s, const struct cor_range *r)
{
    const struct cor_range *o;

    for (o = s->ranges; o != NULL; o = o->next) {
        if (o->start < r->end && r->start < o->end && (o->copy || r->copy)) {
            return true;
        }
    }
    return false;
}

/* Wait until [start, end) is free for this kind of request, then hold it. */
static void
range_lock(struct cor_state *s, struct cor_range *r, uint64_t start,
           uint64_t end, bool copy)
{
    r->start = start;
    r->end = end;
    r->copy = copy;
    pthread_mutex_lock(&s->lock);
    while (range_blocked(s, r)) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    r->next = s->ranges;
    s->ranges = r;
    pthread_mutex_unlock(&s->lock);
}

static void
range_unlock(struct cor_state *s, struct cor_range *r)
{
    struct cor_range **pp;

    pthread_mutex_lock(&s->lock);
    for (pp = &s->ranges; *pp != r; pp = &(*pp)->next) {
    }
    *pp = r->next;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/*
 * The unit of copying: the child's zero-write granularity, which a format
 * sets to its (sub)cluster size (QEMU rounds to bdi.subcluster_size).
 */
static uint64_t
cor_granularity(const struct cor_state *s)
{
    const struct blk_limits *l;
    struct blk_node *n = skip_filters(blk_child_node(s->file));
    uint64_t g;

    l = blk_node_get_limits(n != NULL ? n : blk_child_node(s->file));
    g = l->pwrite_zeroes_alignment;

    if (g == 0) {
        g = l->request_alignment;
    }
    return g != 0 ? g : 1;
}

/* ---- the backing chain --------------------------------------------------------- */

static bool
status_allocated(const struct blk_status *st)
{
    return (st->flags & (BLK_STATUS_ALLOCATED | BLK_STATUS_DATA |
                         BLK_STATUS_ZERO)) != 0;
}

/* n, or the node below it when n is a filter (and so on). */
static struct blk_node *
skip_filters(struct blk_node *n)
{
    while (n != NULL && blk_node_driver(n)->is_filter) {
        struct blk_child *c = blk_node_get_child(n, "file");

        n = c != NULL ? blk_child_node(c) : NULL;
    }
    return n;
}

/* The backing edge of n (filters skipped), or NULL at the chain's end. */
static struct blk_child *
backing_edge(struct blk_node *n)
{
    n = skip_filters(n);
    return n != NULL ? blk_node_get_child(n, "backing") : NULL;
}

/*
 * Is [off, off+n) allocated in some layer below the top image, down to and
 * including bottom?  Returns 1 or 0 with *pnum bytes alike, or -errno.
 */
static int
allocated_below(struct cor_state *s, uint64_t off, uint64_t n,
                uint64_t *pnum, struct blk_error *err)
{
    struct blk_node *top = skip_filters(blk_child_node(s->file));
    struct blk_child *c;

    *pnum = n;
    if (top == NULL || strcmp(blk_node_get_name(top), s->bottom) == 0) {
        return 0;
    }
    for (c = backing_edge(top); c != NULL;
         c = backing_edge(blk_child_node(c))) {
        struct blk_node *layer = skip_filters(blk_child_node(c));
        int64_t len = blk_child_get_length(c);
        struct blk_status st;
        int r;

        if (len < 0) {
            return blk_error_set(err, (int)len, "cannot get the length of "
                                 "'%s'", blk_node_get_name(layer));
        }
        if (off < (uint64_t)len) {
            uint64_t m = (uint64_t)len - off < n ? (uint64_t)len - off : n;

            r = blk_child_block_status(c, off, m, &st, err);
            if (r < 0) {
                return r;
            }
            if (st.pnum > 0 && st.pnum < n) {
                n = st.pnum;
            }
            if (status_allocated(&st)) {
                *pnum = n;
                return 1;
            }
        }
        if (layer == NULL ||
            strcmp(blk_node_get_name(layer), s->bottom) == 0) {
            break;
        }
    }
    *pnum = n;
    return 0;
}

/* ---- reads ------------------------------------------------------------------------ */

/* Read [off, off+len) of the child into iov at byte pos. */
static int
read_into(struct cor_state *s, uint64_t off, uint64_t len, struct iovec *iov,
          int iovcnt, size_t pos, unsigned flags, struct blk_error *err)
{
    struct iovec *v = xmalloc(sizeof(*v) * (size_t)iovcnt);
    int vc = iov_slice(iov, iovcnt, pos, len, v, iovcnt);
    int r = blk_child_preadv(s->file, off, len, v, vc, flags, err);

    free(v);
    return r;
}

/* Copy [at, at+n) of the chain into the top image; a piece of the read. */
static int
copy_piece(struct cor_state *s, uint64_t at, uint64_t n, uint64_t off,
           uint64_t len, struct iovec *iov, int iovcnt, size_t pos,
           struct blk_error *err)
{
    struct blk_node *img = skip_filters(blk_child_node(s->file));
    uint8_t *buf = blk_try_malloc(n);
    uint64_t lo, hi;
    int r;

    if (buf == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate %llu bytes to "
                             "copy on read", (unsigned long long)n);
    }
    r = blk_child_pread(s->file, at, buf, n, err);
    if (r < 0) {
        goto out_free;
    }
    /* QEMU writes zeroes where the image's driver has a zero op. */
    if (img != NULL && blk_node_driver(img)->zero != NULL &&
        buffer_is_zero(buf, n)) {
        r = blk_child_zero(s->file, at, n, 0, err);
    } else {
        r = blk_child_pwrite(s->file, at, buf, n, BLK_REQ_UNCHANGED, err);
    }
    if (r < 0) {
        goto out_free;
    }
    lo = at > off ? at : off;
    hi = at + n < off + len ? at + n : off + len;
    if (lo < hi) {
        iov_from_buf(iov, iovcnt, pos + (lo - off), buf + (lo - at), hi - lo);
    }
out_free:
    free(buf);
    return r;
}

/*
 * Copy-on-read of [off, off+len) into iov at byte pos: every unallocated
 * piece of the granularity-rounded range is copied into the top image
 * (and its part of the request taken from the copy); allocated pieces
 * are read as they are.  The rounded range is locked meanwhile.
 */
static int
copy_range(struct cor_state *s, uint64_t off, uint64_t len, struct iovec *iov,
           int iovcnt, size_t pos, unsigned flags, struct blk_error *err)
{
    uint64_t g = cor_granularity(s);
    uint64_t start = off / g * g, end = (off + len + g - 1) / g * g, at;
    int64_t flen = blk_child_get_length(s->file);
    struct cor_range lock;
    int r = 0;

    if (flen < 0) {
        return blk_error_set(err, (int)flen, "cannot get the image length");
    }
    if (end > (uint64_t)flen) {
        end = (uint64_t)flen > off + len ? (uint64_t)flen : off + len;
    }
    range_lock(s, &lock, start, end, true);
    for (at = start; at < end && r == 0;) {
        struct blk_status st;
        uint64_t n, lo, hi;

        r = blk_child_block_status(s->file, at, end - at, &st, err);
        if (r < 0) {
            break;
        }
        n = st.pnum > 0 && st.pnum < end - at ? st.pnum : end - at;
        if (!status_allocated(&st)) {
            n = n < COR_MAX_BOUNCE ? n : COR_MAX_BOUNCE;
            r = copy_piece(s, at, n, off, len, iov, iovcnt, pos, err);
        } else {
            lo = at > off ? at : off;
            hi = at + n < off + len ? at + n : off + len;
            if (lo < hi) {
                r = read_into(s, lo, hi - lo, iov, iovcnt, pos + (lo - off),
                              flags, err);
            }
        }
        at += n;
    }
    range_unlock(s, &lock);
    return r;
}

static int
cor_preadv(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
           int iovcnt, unsigned flags, struct blk_error *err)
{
    struct cor_state *s = blk_node_state(bs);
    uint64_t done = 0;

    while (done < len) {
        uint64_t at = off + done, n = len - done;
        struct blk_status st;
        bool copy;
        int r;

        r = blk_child_block_status(s->file, at, n, &st, err);
        if (r < 0) {
            return r;
        }
        if (st.pnum > 0 && st.pnum < n) {
            n = st.pnum;
        }
        if (status_allocated(&st)) {
            copy = false;
        } else if (s->bottom == NULL) {
            /* No bottom: the rest of the request is one copy-on-read. */
            n = len - done;
            copy = true;
        } else {
            r = allocated_below(s, at, n, &n, err);
            if (r < 0) {
                return r;
            }
            copy = r > 0;
        }
        r = copy ? copy_range(s, at, n, iov, iovcnt, done, flags, err)
                 : read_into(s, at, n, iov, iovcnt, done, flags, err);
        if (r < 0) {
            return r;
        }
        done += n;
    }
    return 0;
}

/* ---- writes: passed down, excluded from copies of their clusters ---------------- */

static void
lock_write(struct cor_state *s, struct cor_range *lock, uint64_t off,
           uint64_t len)
{
    uint64_t g = cor_granularity(s);

    range_lock(s, lock, off / g * g, (off + len + g - 1) / g * g, false);
}

static int
cor_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_error *err)
{
    struct cor_state *s = blk_node_state(bs);
    struct cor_range lock;
    int r;

    lock_write(s, &lock, off, len);
    r = blk_child_pwritev(s->file, off, len, iov, iovcnt, flags, err);
    range_unlock(s, &lock);
    return r;
}

static int
cor_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
         struct blk_error *err)
{
    struct cor_state *s = blk_node_state(bs);
    struct cor_range lock;
    int r;

    lock_write(s, &lock, off, len);
    r = blk_child_zero(s->file, off, len, flags, err);
    range_unlock(s, &lock);
    return r;
}

static int
cor_discard(struct blk_node *bs, uint64_t off, uint64_t len,
            struct blk_error *err)
{
    struct cor_state *s = blk_node_state(bs);
    struct cor_range lock;
    int r;

    lock_write(s, &lock, off, len);
    r = blk_child_discard(s->file, off, len, err);
    range_unlock(s, &lock);
    return r;
}

/* ---- open and close ----------------------------------------------------------------- */

/* QEMU's checks of bottom: a node of the chain below the filter, not a filter. */
static int
check_bottom(struct cor_state *s, const char *name, struct blk_error *err)
{
    struct blk_node *n = blk_child_node(s->file);
    struct blk_child *c;

    while (n != NULL) {
        if (strcmp(blk_node_get_name(n), name) == 0) {
            if (blk_node_driver(n)->is_filter) {
                return blk_error_set(err, -EINVAL, "Bottom node '%s' is a "
                                     "filter", name);
            }
            return 0;
        }
        if (blk_node_driver(n)->is_filter) {
            c = blk_node_get_child(n, "file");
        } else {
            c = blk_node_get_child(n, "backing");
        }
        n = c != NULL ? blk_child_node(c) : NULL;
    }
    return blk_error_set(err, -EINVAL, "Bottom node '%s' not found in the "
                         "backing chain of '%s'", name,
                         blk_node_get_name(blk_child_node(s->file)));
}

static int
cor_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    struct cor_state *s = blk_node_state(bs);
    const char *bottom = kv_get_str(opts, "bottom", NULL);
    struct blk_node *child;
    int r;

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->file = blk_node_open_child(bs, opts, "file", "file",
                                  BLK_ROLE_FILTERED | BLK_ROLE_PRIMARY, false,
                                  err);
    if (s->file == NULL) {
        r = err != NULL && err->code < 0 ? err->code : -EINVAL;
        goto out_destroy;
    }
    /*
     * Copies write into the child (QEMU takes write-unchanged on it), so
     * a read-only child cannot work under this filter.
     */
    child = blk_child_node(s->file);
    if (blk_node_is_read_only(child)) {
        r = blk_error_set(err, -EPERM, "Block node '%s' is read-only",
                          blk_node_get_name(child));
        goto out_destroy;
    }
    if (bottom != NULL) {
        r = check_bottom(s, bottom, err);
        if (r < 0) {
            goto out_destroy;
        }
        s->bottom = xstrdup(bottom);
    }
    return 0;

out_destroy:
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    return r;
}

static void
cor_close(struct blk_node *bs)
{
    struct cor_state *s = blk_node_state(bs);

    free(s->bottom);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

/*
 * Reopen: the filter keeps copying, so it cannot go read-only (QEMU 7.2
 * refuses a copy-on-read node the same way, naming the image); bottom
 * stays as opened.
 */
static int
cor_reopen_prepare(struct blk_node *bs, const struct kv *opts, bool read_only,
                   void **state, struct blk_error *err)
{
    struct cor_state *s = blk_node_state(bs);
    const char *bottom = kv_get_str(opts, "bottom", NULL);
    struct blk_node *img = skip_filters(blk_child_node(s->file));

    if (read_only) {
        return blk_error_set(err, -EINVAL, "Can't set node '%s' to r/o with "
                             "copy-on-read enabled",
                             blk_node_get_name(img != NULL ? img : bs));
    }
    if ((bottom == NULL) != (s->bottom == NULL) ||
        (bottom != NULL && strcmp(bottom, s->bottom) != 0)) {
        return blk_error_set(err, -EINVAL, "bottom of '%s' cannot be changed "
                             "by reopen", blk_node_get_name(bs));
    }
    *state = NULL;
    return 0;
}

static void
cor_reopen_end(struct blk_node *bs, void *state)
{
}

const struct blk_driver blk_driver_copy_on_read = {
    .name = "copy-on-read",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct cor_state),
    .is_filter = true,
    .open = cor_open,
    .close = cor_close,
    .preadv = cor_preadv,
    .pwritev = cor_pwritev,
    .zero = cor_zero,
    .discard = cor_discard,
    .reopen_prepare = cor_reopen_prepare,
    .reopen_commit = cor_reopen_end,
    .reopen_abort = cor_reopen_end,
};
