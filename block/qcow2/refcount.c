/*
 * refcount.c - qcow2 refcount table and blocks: allocate and free host
 * clusters and keep their counts on disk consistent, growing the refcount
 * structures the way QEMU 7.2 does so images lay out identically.
 * Loop-independent; called from worker threads under q->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

uint64_t
qcow2_refblock_get(const void *block, uint64_t index, unsigned order)
{
    const uint8_t *p = block;

    switch (order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << order;
        unsigned shift = (unsigned)(index * bits) % 8;

        return (p[index * bits / 8] >> shift) & ((1u << bits) - 1);
    }
    case 3:
        return p[index];
    case 4:
        return qcow2_be16(p + index * 2);
    case 5:
        return qcow2_be32(p + index * 4);
    default:
        return qcow2_be64(p + index * 8);
    }
}

void
qcow2_refblock_set(void *block, uint64_t index, unsigned order, uint64_t value)
{
    uint8_t *p = block;

    switch (order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << order;
        unsigned shift = (unsigned)(index * bits) % 8;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);

        p[index * bits / 8] = (uint8_t)((p[index * bits / 8] & ~mask) |
                                        ((value << shift) & mask));
        break;
    }
    case 3:
        p[index] = (uint8_t)value;
        break;
    case 4:
        qcow2_put_be16(p + index * 2, (uint16_t)value);
        break;
    case 5:
        qcow2_put_be32(p + index * 4, (uint32_t)value);
        break;
    default:
        qcow2_put_be64(p + index * 8, value);
        break;
    }
}

static void
update_max_index(struct qcow2 *q)
{
    uint32_t i = q->reftable_size;

    while (i > 0 && (q->reftable[i - 1] & QCOW2_REFT_OFFSET_MASK) == 0) {
        i--;
    }
    q->max_reftable_index = i > 0 ? i - 1 : 0;
}

int
qcow2_refcount_init(struct qcow2 *q, struct blk_error *err)
{
    uint64_t bytes = (uint64_t)q->h.refcount_table_clusters << q->cluster_bits;
    uint8_t *raw;
    int r;

    q->reftable_offset = q->h.refcount_table_offset;
    q->reftable_size = (uint32_t)(bytes / 8);
    if (bytes == 0) {
        q->reftable = xzalloc(8);
        return 0;
    }
    raw = blk_try_malloc(bytes);
    q->reftable = blk_try_malloc(bytes);
    if (raw == NULL || q->reftable == NULL) {
        free(raw);
        return blk_error_set(err, -ENOMEM, "Could not allocate refcount "
                             "table");
    }
    r = blk_child_pread(q->file, q->reftable_offset, raw, bytes, err);
    if (r < 0) {
        free(raw);
        blk_error_prefix(err, "Could not read refcount table: ");
        return r;
    }
    for (uint32_t i = 0; i < q->reftable_size; i++) {
        q->reftable[i] = qcow2_be64(raw + (uint64_t)i * 8);
    }
    free(raw);
    update_max_index(q);
    return 0;
}

void
qcow2_refcount_close(struct qcow2 *q)
{
    free(q->reftable);
    q->reftable = NULL;
}

int
qcow2_write_reftable_entry(struct qcow2 *q, uint32_t i, struct blk_error *err)
{
    uint8_t buf[8];
    int r;

    qcow2_put_be64(buf, q->reftable[i]);
    r = qcow2_pre_write_check(q, QCOW2_OL_REFCOUNT_TABLE,
                              q->reftable_offset + (uint64_t)i * 8, 8, false,
                              err);
    if (r < 0) {
        return r;
    }
    r = blk_child_pwrite(q->file, q->reftable_offset + (uint64_t)i * 8, buf, 8,
                         0, err);
    if (r < 0) {
        return r;
    }
    return blk_child_flush(q->file, err);
}

static int
refblock_offset(struct qcow2 *q, uint64_t table_index, uint64_t *off,
                struct blk_error *err)
{
    *off = 0;
    if (table_index >= q->reftable_size) {
        return 0;
    }
    *off = q->reftable[table_index] & QCOW2_REFT_OFFSET_MASK;
    if (*off != 0 && (*off & (q->cluster_size - 1)) != 0) {
        return qcow2_signal_corruption(q, err, "Refblock offset %#" PRIx64
                                       " unaligned (reftable index: %#" PRIx64
                                       ")", *off, table_index);
    }
    return 0;
}

int
qcow2_get_refcount(struct qcow2 *q, uint64_t cluster_index, uint64_t *refcount,
                   struct blk_error *err)
{
    uint64_t off;
    void *block;
    int r;

    *refcount = 0;
    r = refblock_offset(q, cluster_index >> q->refcount_block_bits, &off, err);
    if (r < 0 || off == 0) {
        return r;
    }
    r = qcow2_cache_get(q, q->refcount_cache, off, &block, err);
    if (r < 0) {
        return r;
    }
    *refcount = qcow2_refblock_get(block, cluster_index &
                                   (q->refcount_block_entries - 1),
                                   q->refcount_order);
    qcow2_cache_put(q->refcount_cache, &block);
    return 0;
}

/* First fit of n free clusters from free_cluster_index; no refcount change. */
static int64_t
alloc_noref(struct qcow2 *q, uint64_t size, uint64_t max,
            struct blk_error *err)
{
    uint64_t n = qcow2_size_to_clusters(q, size);
    uint64_t i = 0;

    while (i < n) {
        uint64_t rc;
        int r = qcow2_get_refcount(q, q->free_cluster_index++, &rc, err);

        if (r < 0) {
            return r;
        }
        i = rc != 0 ? 0 : i + 1;
    }
    if (q->free_cluster_index > 0 &&
        q->free_cluster_index - 1 > (max >> q->cluster_bits)) {
        return blk_error_set(err, -EFBIG, "image file too large");
    }
    return (int64_t)((q->free_cluster_index - n) << q->cluster_bits);
}

/* QEMU's fixed point: refcount blocks needed to cover clusters plus themselves. */
static uint64_t
refcount_metadata_blocks(uint64_t clusters, uint64_t cluster_size,
                         unsigned order, bool generous)
{
    uint64_t per_table_cluster = cluster_size / 8;
    uint64_t per_block = cluster_size * 8 / (1u << order);
    uint64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = (clusters + table + blocks + per_block - 1) / per_block;
        table = (blocks + per_table_cluster - 1) / per_table_cluster;
        n = clusters + blocks + table;
        if (n == last && generous) {
            clusters += (table + 1) / 2;
            n = 0;
            generous = false;
        }
    } while (n != last);
    return blocks;
}

int64_t
qcow2_refcount_area(struct qcow2 *q, uint64_t start, uint64_t additional,
                    bool exact, uint64_t new_index, uint64_t new_block,
                    struct blk_error *err)
{
    uint64_t total = refcount_metadata_blocks(start / q->cluster_size +
                                              additional, q->cluster_size,
                                              q->refcount_order, !exact);
    uint64_t area_index, table_size, table_clusters, extra = 0;
    uint64_t table_off, end, block_off, old_off, old_size;
    uint64_t *nt;
    uint8_t *raw, hdr[12];
    int r;

    if (total > QCOW2_MAX_REFTABLE_BYTES) {
        return blk_error_set(err, -EFBIG, "refcount table too large");
    }
    area_index = (start / q->cluster_size) / q->refcount_block_entries;
    table_size = exact ? total : total + (total + 1) / 2;
    table_size = (table_size + q->cluster_size / 8 - 1) /
                 (q->cluster_size / 8) * (q->cluster_size / 8);
    table_clusters = table_size * 8 / q->cluster_size;
    if (table_size > QCOW2_MAX_REFTABLE_BYTES) {
        return blk_error_set(err, -EFBIG, "refcount table too large");
    }
    nt = blk_try_zalloc(table_size * 8);
    if (nt == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate refcount table");
    }
    if (table_size > q->max_reftable_index) {
        memcpy(nt, q->reftable, ((uint64_t)q->max_reftable_index + 1) * 8);
    } else {
        memcpy(nt, q->reftable, table_size * 8);
    }
    if (new_block != 0) {
        nt[new_index] = new_block;
    }
    for (uint64_t i = area_index; i < total; i++) {
        if (nt[i] == 0) {
            extra++;
        }
    }
    table_off = start + extra * q->cluster_size;
    end = table_off + table_clusters * q->cluster_size;

    block_off = start;
    for (uint64_t i = area_index; i < total; i++) {
        void *blk;
        uint64_t first;

        if (nt[i] != 0) {
            r = qcow2_cache_get(q, q->refcount_cache, nt[i], &blk, err);
        } else {
            r = qcow2_cache_get_empty(q, q->refcount_cache, block_off, &blk,
                                      err);
            if (r == 0) {
                qcow2_cache_mark_dirty(q->refcount_cache, blk);
                nt[i] = block_off;
                block_off += q->cluster_size;
            }
        }
        if (r < 0) {
            goto out_free;
        }
        first = i * q->refcount_block_entries * q->cluster_size;
        if (first < end) {
            uint64_t j = first < start ? (start - first) / q->cluster_size : 0;
            uint64_t stop = (end - first) / q->cluster_size;

            if (stop > q->refcount_block_entries) {
                stop = q->refcount_block_entries;
            }
            for (; j < stop; j++) {
                qcow2_refblock_set(blk, j, q->refcount_order, 1);
            }
            qcow2_cache_mark_dirty(q->refcount_cache, blk);
        }
        qcow2_cache_put(q->refcount_cache, &blk);
    }
    r = qcow2_cache_flush(q, q->refcount_cache, err);
    if (r < 0) {
        goto out_free;
    }
    raw = blk_try_zalloc(table_size * 8);
    if (raw == NULL) {
        r = blk_error_set(err, -ENOMEM, "cannot allocate refcount table");
        goto out_free;
    }
    for (uint64_t i = 0; i < table_size; i++) {
        qcow2_put_be64(raw + i * 8, nt[i]);
    }
    r = blk_child_pwrite(q->file, table_off, raw, table_size * 8, 0, err);
    free(raw);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        goto out_free;
    }
    qcow2_put_be64(hdr, table_off);
    qcow2_put_be32(hdr + 8, (uint32_t)table_clusters);
    r = blk_child_pwrite(q->file, 48, hdr, 12, 0, err);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        goto out_free;
    }
    old_off = q->reftable_offset;
    old_size = q->reftable_size;
    free(q->reftable);
    q->reftable = nt;
    q->reftable_size = (uint32_t)table_size;
    q->reftable_offset = table_off;
    q->h.refcount_table_offset = table_off;
    q->h.refcount_table_clusters = (uint32_t)table_clusters;
    update_max_index(q);
    qcow2_free_clusters(q, old_off, old_size * 8, QCOW2_DISCARD_OTHER);
    return (int64_t)end;

out_free:
    free(nt);
    return r;
}

static bool
same_refblock(const struct qcow2 *q, uint64_t a, uint64_t b)
{
    unsigned shift = q->cluster_bits + q->refcount_block_bits;

    return (a >> shift) == (b >> shift);
}

static int update_refcount(struct qcow2 *q, uint64_t off, uint64_t len,
                           uint64_t addend, bool decrease,
                           enum qcow2_discard_type type, struct blk_error *err);

/*
 * Pin the refcount block covering cluster_index, allocating it (and
 * growing the table) when missing.  -EAGAIN: something was allocated, the
 * caller must restart its search.
 */
static int
alloc_refblock(struct qcow2 *q, uint64_t cluster_index, void **block,
               struct blk_error *err)
{
    uint64_t tindex = cluster_index >> q->refcount_block_bits;
    uint64_t off, blocks_used;
    int64_t nb, r64;
    int r;

    *block = NULL;
    r = refblock_offset(q, tindex, &off, err);
    if (r < 0) {
        return r;
    }
    if (off != 0) {
        return qcow2_cache_get(q, q->refcount_cache, off, block, err);
    }
    r = qcow2_cache_flush(q, q->l2_cache, err);
    if (r < 0) {
        return r;
    }
    nb = alloc_noref(q, q->cluster_size, INT64_MAX, err);
    if (nb < 0) {
        return (int)nb;
    }
    if (nb == 0) {
        return qcow2_signal_corruption(q, err, "Preventing invalid allocation "
                                       "of refcount block at offset 0");
    }
    if (same_refblock(q, (uint64_t)nb, cluster_index << q->cluster_bits)) {
        r = qcow2_cache_get_empty(q, q->refcount_cache, (uint64_t)nb, block,
                                  err);
        if (r < 0) {
            return r;
        }
        qcow2_refblock_set(*block, ((uint64_t)nb >> q->cluster_bits) &
                           (q->refcount_block_entries - 1),
                           q->refcount_order, 1);
    } else {
        r = update_refcount(q, (uint64_t)nb, q->cluster_size, 1, false,
                            QCOW2_DISCARD_NEVER, err);
        if (r < 0) {
            return r;
        }
        r = qcow2_cache_flush(q, q->refcount_cache, err);
        if (r < 0) {
            return r;
        }
        r = qcow2_cache_get_empty(q, q->refcount_cache, (uint64_t)nb, block,
                                  err);
        if (r < 0) {
            return r;
        }
    }
    qcow2_cache_mark_dirty(q->refcount_cache, *block);
    r = qcow2_cache_flush(q, q->refcount_cache, err);
    if (r < 0) {
        qcow2_cache_put(q->refcount_cache, block);
        return r;
    }
    if (tindex < q->reftable_size) {
        qcow2_cache_put(q->refcount_cache, block);
        q->reftable[tindex] = (uint64_t)nb;
        r = qcow2_write_reftable_entry(q, (uint32_t)tindex, err);
        if (r < 0) {
            q->reftable[tindex] = 0;
            return r;
        }
        if (tindex > q->max_reftable_index) {
            q->max_reftable_index = (uint32_t)tindex;
        }
        return -EAGAIN;
    }
    qcow2_cache_put(q->refcount_cache, block);

    /* The table is full: new table + self-describing blocks at the end. */
    blocks_used = cluster_index + 1;
    if (((uint64_t)nb >> q->cluster_bits) + 1 > blocks_used) {
        blocks_used = ((uint64_t)nb >> q->cluster_bits) + 1;
    }
    blocks_used = (blocks_used + q->refcount_block_entries - 1) /
                  q->refcount_block_entries;
    r64 = qcow2_refcount_area(q, blocks_used * q->refcount_block_entries *
                        q->cluster_size, 0, false, tindex, (uint64_t)nb, err);
    if (r64 < 0) {
        return (int)r64;
    }
    return -EAGAIN;
}

static void
discard_host(struct qcow2 *q, uint64_t off, uint64_t len)
{
    struct blk_error ignored = BLK_ERROR_INIT;

    blk_child_discard(q->file, off, len, &ignored);
}

static void
forget_cached(struct qcow2 *q, uint64_t off)
{
    size_t l2s = qcow2_cache_table_size(q->l2_cache);

    qcow2_cache_discard(q->refcount_cache, off);
    for (uint64_t s = 0; s < q->cluster_size; s += l2s) {
        qcow2_cache_discard(q->l2_cache, off + s);
    }
}

static int
update_refcount(struct qcow2 *q, uint64_t off, uint64_t len, uint64_t addend,
                bool decrease, enum qcow2_discard_type type,
                struct blk_error *err)
{
    uint64_t start, last, cur, old_tindex = UINT64_MAX;
    uint64_t disc_start = 0, disc_len = 0;
    void *block = NULL;
    int r = 0;

    if (len == 0) {
        return 0;
    }
    if (decrease) {
        qcow2_cache_set_dependency(q->refcount_cache, q->l2_cache);
    }
    start = qcow2_start_of_cluster(q, off);
    last = qcow2_start_of_cluster(q, off + len - 1);
    for (cur = start; cur <= last; cur += q->cluster_size) {
        uint64_t ci = cur >> q->cluster_bits;
        uint64_t ti = ci >> q->refcount_block_bits;
        uint64_t bi, rc;

        if (ti != old_tindex) {
            qcow2_cache_put(q->refcount_cache, &block);
            r = alloc_refblock(q, ci, &block, err);
            if (r == -EAGAIN) {
                if (q->free_cluster_index > (start >> q->cluster_bits)) {
                    q->free_cluster_index = start >> q->cluster_bits;
                }
            }
            if (r < 0) {
                break;
            }
        }
        old_tindex = ti;
        qcow2_cache_mark_dirty(q->refcount_cache, block);
        bi = ci & (q->refcount_block_entries - 1);
        rc = qcow2_refblock_get(block, bi, q->refcount_order);
        if (decrease ? (rc < addend) : (rc + addend < rc ||
                                         rc + addend > q->refcount_max)) {
            r = blk_error_set(err, -EINVAL, "refcount of cluster %#" PRIx64
                              " would %s", cur,
                              decrease ? "underflow" : "overflow");
            break;
        }
        rc = decrease ? rc - addend : rc + addend;
        if (rc == 0 && ci < q->free_cluster_index) {
            q->free_cluster_index = ci;
        }
        qcow2_refblock_set(block, bi, q->refcount_order, rc);
        if (rc == 0) {
            if (qcow2_cache_contains(q->refcount_cache, cur)) {
                qcow2_cache_put(q->refcount_cache, &block);
                old_tindex = UINT64_MAX;
            }
            forget_cached(q, cur);
            if (q->discard_passthrough[type]) {
                if (disc_len > 0 && disc_start + disc_len == cur) {
                    disc_len += q->cluster_size;
                } else {
                    if (disc_len > 0) {
                        discard_host(q, disc_start, disc_len);
                    }
                    disc_start = cur;
                    disc_len = q->cluster_size;
                }
            }
        }
    }
    if (disc_len > 0) {
        discard_host(q, disc_start, disc_len);
    }
    qcow2_cache_put(q->refcount_cache, &block);
    if (r < 0 && cur > off) {
        struct blk_error ignored = BLK_ERROR_INIT;

        /* Undo what we did (may succeed, e.g. after -ENOSPC). */
        update_refcount(q, off, cur - off, addend, !decrease,
                        QCOW2_DISCARD_NEVER, &ignored);
    }
    return r;
}

int
qcow2_update_refcount(struct qcow2 *q, uint64_t off, uint64_t len,
                      int64_t addend, enum qcow2_discard_type type,
                      struct blk_error *err)
{
    if (addend < 0) {
        return update_refcount(q, off, len, (uint64_t)-addend, true, type,
                               err);
    }
    return update_refcount(q, off, len, (uint64_t)addend, false, type, err);
}

int64_t
qcow2_alloc_clusters(struct qcow2 *q, uint64_t size, struct blk_error *err)
{
    int64_t off;
    int r;

    do {
        struct blk_error tmp = BLK_ERROR_INIT;

        off = alloc_noref(q, size, QCOW2_MAX_CLUSTER_OFFSET, err);
        if (off < 0) {
            return off;
        }
        r = update_refcount(q, (uint64_t)off, size, 1, false,
                            QCOW2_DISCARD_NEVER, &tmp);
        if (r < 0 && r != -EAGAIN) {
            blk_error_propagate(err, &tmp);
            return r;
        }
    } while (r == -EAGAIN);
    return off;
}

int64_t
qcow2_alloc_clusters_at(struct qcow2 *q, uint64_t off, uint64_t n,
                        struct blk_error *err)
{
    uint64_t i;
    int r;

    do {
        struct blk_error tmp = BLK_ERROR_INIT;
        uint64_t ci = off >> q->cluster_bits;

        for (i = 0; i < n; i++) {
            uint64_t rc;

            r = qcow2_get_refcount(q, ci++, &rc, err);
            if (r < 0) {
                return r;
            }
            if (rc != 0) {
                break;
            }
        }
        r = update_refcount(q, off, i << q->cluster_bits, 1, false,
                            QCOW2_DISCARD_NEVER, &tmp);
        if (r < 0 && r != -EAGAIN) {
            blk_error_propagate(err, &tmp);
            return r;
        }
    } while (r == -EAGAIN);
    return (int64_t)i;
}

int64_t
qcow2_alloc_bytes(struct qcow2 *q, uint64_t size, struct blk_error *err)
{
    uint64_t off = q->free_byte_offset, free_in;
    int r;

    if (off != 0) {
        uint64_t rc;

        r = qcow2_get_refcount(q, off >> q->cluster_bits, &rc, err);
        if (r < 0) {
            return r;
        }
        if (rc == q->refcount_max) {
            off = 0;
        }
    }
    free_in = q->cluster_size - qcow2_offset_into_cluster(q, off);
    do {
        struct blk_error tmp = BLK_ERROR_INIT;

        if (off == 0 || free_in < size) {
            uint64_t max = q->cluster_offset_mask < QCOW2_MAX_CLUSTER_OFFSET ?
                           q->cluster_offset_mask : QCOW2_MAX_CLUSTER_OFFSET;
            int64_t nc = alloc_noref(q, q->cluster_size, max, err);

            if (nc < 0) {
                return nc;
            }
            if (nc == 0) {
                return qcow2_signal_corruption(q, err, "Preventing invalid "
                                               "allocation of compressed "
                                               "cluster at offset 0");
            }
            if (off == 0 || ((off + q->cluster_size - 1) &
                             ~(q->cluster_size - 1)) != (uint64_t)nc) {
                off = (uint64_t)nc;
                free_in = q->cluster_size;
            } else {
                free_in += q->cluster_size;
            }
        }
        r = update_refcount(q, off, size, 1, false, QCOW2_DISCARD_NEVER, &tmp);
        if (r < 0) {
            off = 0;
            if (r != -EAGAIN) {
                blk_error_propagate(err, &tmp);
                return r;
            }
        }
    } while (r == -EAGAIN);
    qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
    q->free_byte_offset = off + size;
    if (qcow2_offset_into_cluster(q, q->free_byte_offset) == 0) {
        q->free_byte_offset = 0;
    }
    return (int64_t)off;
}

void
qcow2_free_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
                    enum qcow2_discard_type type)
{
    struct blk_error err = BLK_ERROR_INIT;

    if (update_refcount(q, off, len, 1, true, type, &err) < 0) {
        /* A leak at worst; check -r leaks repairs it. */
        (void)err;
    }
}

void
qcow2_free_any_cluster(struct qcow2 *q, uint64_t l2_entry, uint64_t n,
                       enum qcow2_discard_type type)
{
    uint64_t host;

    if (q->data_file != q->file) {
        host = l2_entry & QCOW2_L2E_OFFSET_MASK;
        /* Guest cluster 0 may sit at offset 0 of the data file. */
        if (q->discard_passthrough[type] &&
            (host != 0 || (l2_entry & QCOW2_OFLAG_COPIED)) &&
            !(l2_entry & QCOW2_OFLAG_COMPRESSED)) {
            struct blk_error ignored = BLK_ERROR_INIT;

            blk_child_discard(q->data_file, host, n << q->cluster_bits,
                              &ignored);
        }
        return;
    }
    if (l2_entry & QCOW2_OFLAG_COMPRESSED) {
        uint64_t coff, clen;

        qcow2_parse_compressed(q, l2_entry, &coff, &clen);
        qcow2_free_clusters(q, coff, clen, type);
        return;
    }
    host = l2_entry & QCOW2_L2E_OFFSET_MASK;
    if (host == 0) {
        return;
    }
    if (qcow2_offset_into_cluster(q, host) != 0) {
        struct blk_error ignored = BLK_ERROR_INIT;

        qcow2_signal_corruption(q, &ignored, "Cannot free unaligned cluster %#"
                                PRIx64, host);
        return;
    }
    qcow2_free_clusters(q, host, n << q->cluster_bits, type);
}
