/*
 * reopen.c - the qcow2 side of a reopen transaction: read-only <->
 * read-write and the options QEMU lets a reopen change (lazy-refcounts,
 * pass-discard-*, overlap-check).  Going read-only writes everything back
 * (caches, persistent bitmaps, the dirty bit) in prepare, so commit
 * cannot fail; going read-write refuses corrupt images and marks the
 * persistent bitmaps in_use again.
 * Limitation: cache sizes keep their values from open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

struct qcow2_reopen {
    bool read_only;
    bool lazy_refcounts;
    int overlap_check;
    bool discard[QCOW2_DISCARD_MAX];
    bool stored_bitmaps;        /* prepare wrote the bitmaps back */
};

int
qcow2_reopen_prepare(struct blk_node *bs, const struct kv *opts,
                     bool read_only, void **state, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct qcow2_reopen *rs = xzalloc(sizeof(*rs));
    int r = 0;

    rs->read_only = read_only;
    rs->lazy_refcounts = kv_get_bool(opts, "lazy-refcounts",
                                     q->h.compatible_features &
                                     QCOW2_COMPAT_LAZY_REFCOUNTS);
    if (rs->lazy_refcounts && q->version < 3) {
        r = blk_error_set(err, -EINVAL, "Lazy refcounts require a qcow2 "
                          "image with at least qemu 1.1 compatibility level");
        goto out_free;
    }
    r = qcow2_parse_overlap_opts(opts, &rs->overlap_check, err);
    if (r < 0) {
        goto out_free;
    }
    memcpy(rs->discard, q->discard_passthrough, sizeof(rs->discard));
    rs->discard[QCOW2_DISCARD_REQUEST] =
        kv_get_bool(opts, "pass-discard-request",
                    strcmp(kv_get_str(opts, "discard", "ignore"), "unmap") == 0);
    rs->discard[QCOW2_DISCARD_SNAPSHOT] =
        kv_get_bool(opts, "pass-discard-snapshot", true);
    rs->discard[QCOW2_DISCARD_OTHER] =
        kv_get_bool(opts, "pass-discard-other", false);

    pthread_mutex_lock(&q->lock);
    if (!read_only && q->read_only) {
        if (q->corrupt ||
            (q->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
            r = blk_error_set(err, -EACCES, "qcow2: Image is corrupt; cannot "
                              "be opened read/write");
        } else if (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) {
            r = blk_error_set(err, -EINVAL, "qcow2: Image is dirty (lazy "
                              "refcounts); repair it with 'blk-img check -r "
                              "all' before opening it read/write");
        }
    } else if (read_only && !q->read_only) {
        /* Everything reaches the disk while we still may write. */
        r = qcow2_bitmaps_store(q, err);
        rs->stored_bitmaps = r == 0;
        if (r == 0) {
            r = qcow2_flush_locked(q, err);
        }
        if (r == 0 && (q->lazy_refcounts || q->dirty_marked)) {
            r = qcow2_mark_clean(q, err);
        }
    }
    pthread_mutex_unlock(&q->lock);
    if (r < 0) {
        goto out_free;
    }
    *state = rs;
    return 0;

out_free:
    free(rs);
    return r;
}

void
qcow2_reopen_commit(struct blk_node *bs, void *state)
{
    struct qcow2 *q = qcow2_state(bs);
    struct qcow2_reopen *rs = state;
    struct blk_error err = BLK_ERROR_INIT;
    bool to_rw;

    pthread_mutex_lock(&q->lock);
    to_rw = q->read_only && !rs->read_only;
    q->read_only = rs->read_only;
    q->lazy_refcounts = rs->lazy_refcounts;
    q->overlap_check = rs->overlap_check;
    memcpy(q->discard_passthrough, rs->discard, sizeof(rs->discard));
    if (to_rw) {
        /* A crash from now on must leave the bitmaps inconsistent. */
        qcow2_bitmaps_set_in_use(q, &err);
    }
    pthread_mutex_unlock(&q->lock);
    free(rs);
}

void
qcow2_reopen_abort(struct blk_node *bs, void *state)
{
    struct qcow2 *q = qcow2_state(bs);
    struct qcow2_reopen *rs = state;
    struct blk_error err = BLK_ERROR_INIT;

    if (rs->stored_bitmaps) {
        /* Still read-write: the stored bitmaps are live again. */
        pthread_mutex_lock(&q->lock);
        qcow2_bitmaps_set_in_use(q, &err);
        pthread_mutex_unlock(&q->lock);
    }
    free(rs);
}
