/*
 * empty.c - the qcow2 make_empty op (qemu-img commit empties the top):
 * every cluster of the active L1/L2 tables becomes unallocated, so reads
 * fall through to the backing file, and the clusters nothing else uses
 * are freed.  Two ways, chosen as QEMU 7.2 chooses (block/qcow2.c):
 *
 * - fast: a v3 image without snapshots, persistent bitmaps or external
 *   data file, whose L1 table fits one refcount block with the header,
 *   refcount table and block, is rewritten to its empty state: header
 *   cluster kept, refcount table at cluster 1, its one block at 2, the
 *   zeroed L1 table at 3, the file cut after it (the dirty bit covers the
 *   moment the refcounts are wrong);
 * - otherwise every guest cluster is discarded in full ("snapshot"
 *   discards, passed to the file by default): clusters shared with
 *   snapshots keep their other references, data-file clusters are
 *   discarded in the data file, bitmaps are left as they are.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"

/* Does the image qualify for QEMU's rewrite-to-empty fast path? */
static bool
can_rewrite(const struct qcow2 *q, uint64_t l1_clusters)
{
    return q->version >= 3 && q->nb_snapshots == 0 &&
           !(q->has_bitmaps_ext && q->bitmaps.nb_bitmaps > 0) &&
           q->data_file == q->file &&
           3 + l1_clusters <= q->refcount_block_entries;
}

/* Drop every cached table, written back first. */
static int
empty_caches(struct qcow2 *q, struct blk_error *err)
{
    int r = qcow2_cache_write(q, q->l2_cache, err);

    if (r == 0) {
        r = qcow2_cache_write(q, q->refcount_cache, err);
    }
    if (r < 0) {
        return r;
    }
    qcow2_cache_clean(q->l2_cache);
    qcow2_cache_clean(q->refcount_cache);
    return 0;
}

/*
 * The fast path.  From the moment the old L1 table is zeroed until the
 * new refcounts are in place the image on disk is inconsistent, which
 * the dirty bit (set first) makes harmless: any failure there leaves a
 * dirty image that check -r repairs, and the node refuses further
 * writes.
 */
static int
rewrite_empty(struct qcow2 *q, uint64_t l1_clusters, struct blk_error *err)
{
    uint64_t cs = q->cluster_size, *reftable;
    uint8_t hdr[20], rt_entry[8];
    int64_t off;
    int r;

    r = empty_caches(q, err);
    if (r == 0) {
        r = qcow2_mark_dirty(q, err);
    }
    if (r < 0) {
        return r;
    }
    reftable = calloc(cs / 8, 8);
    if (reftable == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate refcount table");
    }
    if (l1_clusters > 0) {
        r = blk_child_zero(q->file, q->l1_offset, l1_clusters * cs, 0, err);
        memset(q->l1, 0, (size_t)q->l1_size * 8);
    }
    if (r == 0) {
        /* Room for the refcount table, its first block and the L1 table. */
        r = blk_child_zero(q->file, cs, (2 + l1_clusters) * cs, 0, err);
    }
    if (r < 0) {
        goto out_broken;
    }
    qcow2_put_be64(hdr, 3 * cs);                /* l1_table_offset */
    qcow2_put_be64(hdr + 8, cs);                /* refcount_table_offset */
    qcow2_put_be32(hdr + 16, 1);                /* refcount_table_clusters */
    r = blk_child_pwrite(q->file, 40, hdr, sizeof(hdr), BLK_REQ_FUA, err);
    if (r < 0) {
        goto out_broken;
    }
    q->l1_offset = q->h.l1_table_offset = 3 * cs;
    q->h.refcount_table_offset = cs;
    q->h.refcount_table_clusters = 1;
    free(q->reftable);
    q->reftable = reftable;
    reftable = NULL;
    q->reftable_offset = cs;
    q->reftable_size = (uint32_t)(cs / 8);
    q->max_reftable_index = 0;

    qcow2_put_be64(rt_entry, 2 * cs);
    r = blk_child_pwrite(q->file, cs, rt_entry, 8, BLK_REQ_FUA, err);
    if (r < 0) {
        goto out_broken;
    }
    q->reftable[0] = 2 * cs;
    q->free_cluster_index = 0;
    q->free_byte_offset = 0;
    q->prealloc_checked = false;
    off = qcow2_alloc_clusters(q, 3 * cs + (uint64_t)q->l1_size * 8, err);
    if (off != 0) {
        r = off < 0 ? (int)off : blk_error_set(err, -EIO, "first cluster in "
                                               "emptied image is in use");
        goto out_broken;
    }
    /* The refcounts are right again. */
    r = qcow2_mark_clean(q, err);
    if (r < 0) {
        return r;
    }
    return blk_child_truncate(q->file, (3 + l1_clusters) * cs, true,
                              BLK_PREALLOC_OFF, err);

out_broken:
    free(reftable);
    q->corrupt = true;          /* in memory only: the dirty bit is on disk */
    return r;
}

/* The slow path: discard every guest cluster, falling through to backing. */
static int
discard_all(struct qcow2 *q, struct blk_error *err)
{
    int r = qcow2_discard_clusters(q, 0, q->size, QCOW2_DISCARD_SNAPSHOT, true,
                                   err);

    if (r == 0) {
        r = qcow2_flush_locked(q, err);
    }
    return r;
}

int
qcow2_make_empty(struct blk_node *bs, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t l1_clusters;
    int r;

    pthread_mutex_lock(&q->lock);
    if (q->read_only || q->corrupt) {
        pthread_mutex_unlock(&q->lock);
        return blk_error_set(err, -EACCES, "image is read-only or corrupt");
    }
    l1_clusters = ((uint64_t)q->l1_size * 8 + q->cluster_size - 1) >>
                  q->cluster_bits;
    if (can_rewrite(q, l1_clusters)) {
        r = rewrite_empty(q, l1_clusters, err);
    } else {
        r = discard_all(q, err);
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}
