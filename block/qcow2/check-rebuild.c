/*
 * check-rebuild.c - writing a new qcow2 refcount structure from the
 * in-memory refcounts: check -r all when the on-disk one is broken
 * (QEMU's rebuild_refcount_structure, same layout), and amend's refcount
 * width change.  q->lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/check-int.h"
#include "util/xalloc.h"

/*
 * Find count free clusters in the in-memory refcounts (first fit from
 * *first_free, growing the array past the end of the image), take them
 * (refcount 1) and return the first one's index (QEMU's
 * alloc_clusters_imrt).
 */
static int64_t
alloc_imrt(struct ck *ck, uint64_t count, uint64_t *first_free)
{
    uint64_t c = *first_free, run = 0;
    bool first_gap = true;

    for (; c < ck->n && run < count; c++) {
        if (ck->rc[c] == 0) {
            run++;
            if (first_gap) {
                *first_free = c;
                first_gap = false;
            }
        } else {
            run = 0;
        }
    }
    if (run < count && qcow2_ck_grow(ck, c + count - run) < 0) {
        return -ENOMEM;
    }
    c -= run;
    for (uint64_t i = 0; i < count; i++) {
        ck->rc[c + i] = 1;
    }
    return (int64_t)c;
}

/* The rebuilt reftable (host order), grown in whole clusters. */
struct newtab {
    uint64_t *t;
    uint64_t n;
};

/*
 * Write a refblock for every refblock-sized range of [first, end) that
 * has a referenced cluster, allocating it in the in-memory refcounts
 * (QEMU's rebuild_refcounts_write_refblocks).  Returns 1 if the reftable
 * had to grow, 0, or -errno.
 */
static int
write_refblocks(struct ck *ck, uint64_t first, uint64_t end, struct newtab *nt,
                struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    uint64_t first_free = 0, per = q->refcount_block_entries;
    uint8_t *blk = xmalloc(q->cluster_size);
    bool grown = false;
    int r = 0;

    for (uint64_t c = first; c < end; c++) {
        uint64_t ri = c / per, start = ri * per, off;

        if (rc_get(ck, c) == 0) {
            continue;
        }
        if (ri < nt->n && nt->t[ri] != 0) {
            off = nt->t[ri];
        } else {
            int64_t a;

            if (first_free < start) {
                first_free = start;
            }
            a = alloc_imrt(ck, 1, &first_free);
            if (a < 0) {
                r = blk_error_set(err, (int)a, "ERROR allocating refblock");
                goto out;
            }
            if ((uint64_t)a >= end) {
                end = (uint64_t)a + 1;
            }
            if (nt->n <= ri) {
                uint64_t per_cl = q->cluster_size / 8;
                uint64_t nn = (ri + 1 + per_cl - 1) / per_cl * per_cl;

                nt->t = xrealloc(nt->t, (size_t)nn * 8);
                memset(nt->t + nt->n, 0, (size_t)(nn - nt->n) * 8);
                nt->n = nn;
                grown = true;
            }
            off = (uint64_t)a << q->cluster_bits;
            nt->t[ri] = off;
        }
        memset(blk, 0, q->cluster_size);
        for (uint64_t j = 0; j < per; j++) {
            uint64_t v = rc_get(ck, start + j);

            if (v != 0) {
                qcow2_refblock_set(blk, j, q->refcount_order, v);
            }
        }
        r = qcow2_pre_write_check(q, 0, off, q->cluster_size, false, err);
        if (r == 0) {
            r = blk_child_pwrite(q->file, off, blk, q->cluster_size, 0, err);
        }
        if (r < 0) {
            blk_error_prefix(err, "ERROR writing refblock: ");
            goto out;
        }
        c = start + per - 1;
    }
    r = grown;
out:
    free(blk);
    return r;
}

/*
 * Replace the refcount structure by one built from the in-memory
 * refcounts, placed in free clusters (QEMU's rebuild_refcount_structure):
 * refblocks first, then the reftable, repeating until its size is stable;
 * then the header points at it.  The old structure becomes leaked.
 */
int
qcow2_ck_rebuild(struct ck *ck, bool write_hdr, struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    struct newtab nt = {NULL, 0};
    uint64_t first_free = 0, clusters = 0;
    int64_t rt = -1;
    uint8_t hdr[12], *raw = NULL;
    int r;

    r = qcow2_flush_locked(q, err);
    if (r < 0) {
        return r;
    }
    qcow2_cache_clean(q->refcount_cache);
    r = write_refblocks(ck, 0, ck->n, &nt, err);
    if (r < 0) {
        goto out;
    }
    do {
        uint64_t bytes = nt.n * 8;

        clusters = qcow2_size_to_clusters(q, bytes);
        rt = alloc_imrt(ck, clusters, &first_free);
        if (rt < 0) {
            r = blk_error_set(err, (int)rt, "ERROR allocating reftable");
            goto out;
        }
        r = write_refblocks(ck, (uint64_t)rt, (uint64_t)rt + clusters, &nt,
                            err);
        if (r < 0) {
            goto out;
        }
        if (r > 0) {
            for (uint64_t i = 0; i < clusters; i++) {
                ck->rc[rt + i] = 0;
            }
        }
    } while (r > 0);

    raw = xzalloc((size_t)(clusters << q->cluster_bits));
    for (uint64_t i = 0; i < nt.n; i++) {
        qcow2_put_be64(raw + i * 8, nt.t[i]);
    }
    r = qcow2_pre_write_check(q, 0, (uint64_t)rt << q->cluster_bits, nt.n * 8,
                              false, err);
    if (r == 0) {
        r = blk_child_pwrite(q->file, (uint64_t)rt << q->cluster_bits, raw,
                             (size_t)(nt.n * 8), 0, err);
    }
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        blk_error_prefix(err, "ERROR writing reftable: ");
        goto out;
    }
    /* header: refcount_table_offset (8 bytes) and _clusters (4) at 48 */
    qcow2_put_be64(hdr, (uint64_t)rt << q->cluster_bits);
    qcow2_put_be32(hdr + 8, (uint32_t)clusters);
    r = write_hdr ? blk_child_pwrite(q->file, 48, hdr, sizeof(hdr), 0, err) : 0;
    if (r == 0 && write_hdr) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        blk_error_prefix(err, "ERROR setting reftable: ");
        goto out;
    }
    free(q->reftable);
    q->reftable = nt.t;
    nt.t = NULL;
    q->reftable_size = (uint32_t)nt.n;
    q->reftable_offset = (uint64_t)rt << q->cluster_bits;
    q->h.refcount_table_offset = q->reftable_offset;
    q->h.refcount_table_clusters = (uint32_t)clusters;
    q->max_reftable_index = 0;
    for (uint32_t i = 0; i < q->reftable_size; i++) {
        if (q->reftable[i] != 0) {
            q->max_reftable_index = i;
        }
    }
    q->free_cluster_index = 0;
    qcow2_cache_clean(q->refcount_cache);
    r = 0;
out:
    free(raw);
    free(nt.t);
    return r;
}

/* Switch q's refcount geometry to 2^order-bit entries. */
static void
set_refcount_order(struct qcow2 *q, unsigned order)
{
    q->refcount_order = order;
    q->refcount_bits = 1u << order;
    q->refcount_max = order == 6 ? UINT64_MAX : (1ULL << q->refcount_bits) - 1;
    q->refcount_block_bits = q->cluster_bits + 3 - order;
    q->refcount_block_entries = 1ULL << q->refcount_block_bits;
    q->h.refcount_order = order;
}

int
qcow2_change_refcount_order(struct qcow2 *q, unsigned order,
                            struct blk_error *err)
{
    struct blk_check_result res;
    struct ck ck;
    unsigned old = q->refcount_order;
    uint64_t new_max = order == 6 ? UINT64_MAX : (1ULL << (1u << order)) - 1,
             highest;
    uint64_t old_rt = q->h.refcount_table_offset;
    uint32_t old_rc = q->h.refcount_table_clusters;
    int64_t flen;
    int r;

    memset(&res, 0, sizeof(res));
    memset(&ck, 0, sizeof(ck));
    ck.q = q;
    ck.res = &res;
    ck.max = UINT32_MAX;
    r = qcow2_flush_locked(q, err);
    if (r < 0) {
        return r;
    }
    flen = blk_child_get_length(q->file);
    if (flen < 0) {
        return blk_error_set(err, (int)flen, "cannot get image file length");
    }
    ck.file_len = (uint64_t)flen;
    if (qcow2_ck_grow(&ck, qcow2_size_to_clusters(q, ck.file_len)) < 0) {
        return blk_error_set(err, -ENOMEM, "Cannot allocate memory");
    }
    r = qcow2_ck_calculate(&ck, 0, q->snapshots, q->nb_snapshots);
    if (r == 0 && (res.corruptions || res.check_errors)) {
        r = blk_error_set(err, -EIO,
                          "image is corrupt; repair it with "
                          "'check -r all' first");
    }
    for (uint64_t i = 0; r == 0 && i < ck.n; i++) {
        if (ck.rc[i] > new_max) {
            r = blk_error_set(err, -EINVAL,
                              "Cannot decrease refcount entry "
                              "width to %u bits: Cluster at offset %#" PRIx64
                              " has a refcount of %" PRIu32,
                              1u << order, i << q->cluster_bits, ck.rc[i]);
        }
    }
    if (r < 0) {
        goto out;
    }
    set_refcount_order(q, order);
    r = qcow2_ck_rebuild(&ck, false, err);
    if (r == 0) {
        r = qcow2_write_header(q, err);
        if (r < 0) {
            blk_error_prefix(err, "Failed to update the qcow2 header: ");
        }
    }
    if (r < 0) {
        /* The old structure is untouched; point back at it. */
        set_refcount_order(q, old);
        q->h.refcount_table_offset = old_rt;
        q->h.refcount_table_clusters = old_rc;
        {
            struct blk_error ignored = BLK_ERROR_INIT;

            qcow2_refcount_close(q);
            qcow2_refcount_init(q, &ignored);
        }
        goto out;
    }
    /* The old refcount structure is leaked now: free it. */
    memset(ck.rc, 0, (size_t)ck.n * sizeof(uint32_t));
    memset(&res, 0, sizeof(res));
    ck.rebuild = false;
    flen = blk_child_get_length(q->file);
    if (flen > 0 && (uint64_t)flen > ck.file_len) {
        ck.file_len = (uint64_t)flen;
    }
    r = qcow2_ck_calculate(&ck, 0, q->snapshots, q->nb_snapshots);
    if (r == 0) {
        qcow2_ck_compare(&ck, BLK_CHECK_FIX_LEAKS, &highest);
        r = qcow2_flush_locked(q, err);
    }
out:
    free(ck.rc);
    return r;
}
