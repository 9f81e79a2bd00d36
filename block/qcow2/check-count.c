/*
 * check-count.c - the counting half of qcow2 check: every reference the
 * metadata makes, accumulated into an array sized by the image file
 * (QEMU's calculate_refcounts and its helpers), with QEMU 7.2's messages
 * for what is wrong on the way.  q->lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/check-int.h"
#include "util/xalloc.h"

/*
 * Read metadata from the image file the way QEMU's block layer does:
 * bytes past the end of the file read as zeroes.
 */
int
qcow2_ck_read_meta(struct qcow2 *q, uint64_t off, void *buf, size_t len,
                   struct blk_error *err)
{
    int64_t flen = blk_child_get_length(q->file);
    size_t have = 0;

    if (flen < 0) {
        return blk_error_set(err, (int)flen, "cannot get image file length");
    }
    if (off < (uint64_t)flen) {
        have =
            (uint64_t)flen - off < len ? (size_t)((uint64_t)flen - off) : len;
    }
    if (have > 0) {
        int r = blk_child_pread(q->file, off, buf, have, err);

        if (r < 0) {
            return r;
        }
    }
    memset((uint8_t *)buf + have, 0, len - have);
    return 0;
}

int
qcow2_ck_grow(struct ck *ck, uint64_t n)
{
    uint32_t *p;

    if (n <= ck->n) {
        return 0;
    }
    if (n > SIZE_MAX / sizeof(uint32_t)) {
        return -ENOMEM;
    }
    p = realloc(ck->rc, (size_t)n * sizeof(uint32_t));
    if (p == NULL) {
        return -ENOMEM;
    }
    memset(p + ck->n, 0, (size_t)(n - ck->n) * sizeof(uint32_t));
    ck->rc = p;
    ck->n = n;
    return 0;
}

/* QEMU's qcow2_inc_refcounts_imrt: one more reference to [off, off+size). */
static int
inc_refcounts(struct ck *ck, uint64_t off, uint64_t size)
{
    struct qcow2 *q = ck->q;
    uint64_t start, last;

    if (size == 0) {
        return 0;
    }
    if (off + size > ck->file_len &&
        off + size - ck->file_len >= q->cluster_size) {
        ck->res->corruptions++;
        qcow2_ck_log(ck,
                     "ERROR: counting reference for region exceeding the end "
                     "of the file by one cluster or more: offset 0x%" PRIx64
                     " size 0x%" PRIx64 "\n",
                     off, size);
        return 0;
    }
    start = qcow2_start_of_cluster(q, off);
    last = qcow2_start_of_cluster(q, off + size - 1);
    for (uint64_t c = start; c <= last; c += q->cluster_size) {
        uint64_t k = c >> q->cluster_bits;

        if (k >= ck->n && qcow2_ck_grow(ck, k + 1) < 0) {
            ck->res->check_errors++;
            return -ENOMEM;
        }
        if (ck->rc[k] >= ck->max) {
            qcow2_ck_log(ck, "ERROR: overflow cluster offset=0x%" PRIx64 "\n",
                         c);
            qcow2_ck_log(
                ck, "Use qemu-img amend to increase the refcount entry "
                    "width or qemu-img convert to create a clean copy if the "
                    "image cannot be opened for writing\n");
            ck->res->corruptions++;
            continue;
        }
        ck->rc[k]++;
    }
    return 0;
}

/* Forget cached copies of an L2 table we rewrote behind the cache. */
void
qcow2_ck_forget_l2(struct qcow2 *q, uint64_t l2_off)
{
    size_t s = qcow2_cache_table_size(q->l2_cache);

    for (uint64_t o = 0; o < q->cluster_size; o += s) {
        qcow2_cache_discard(q->l2_cache, l2_off + o);
    }
}

/*
 * A preallocated zero cluster with a misaligned offset: turn it into a
 * plain zero cluster (QEMU's fix_l2_entry_by_zero).  *overlap is set when
 * the write would hit other metadata.
 */
static int
fix_l2_by_zero(struct ck *ck, uint64_t l2_off, uint8_t *t, uint64_t i,
               bool active, bool *overlap)
{
    struct qcow2 *q = ck->q;
    uint64_t eoff = l2_off + i * q->l2_entry_size;
    uint8_t *p = t + i * q->l2_entry_size;
    struct blk_error err = BLK_ERROR_INIT;
    int r;

    if (q->extended_l2) {
        uint64_t b = qcow2_be64(p + 8);

        b |= b << 32;
        b &= QCOW2_BITMAP_ALL_ZERO;
        qcow2_put_be64(p + 8, b);
        qcow2_put_be64(p, 0);
    } else {
        qcow2_put_be64(p, QCOW2_OFLAG_ZERO);
    }
    r = qcow2_pre_write_check(
        q, active ? QCOW2_OL_ACTIVE_L2 : QCOW2_OL_INACTIVE_L2, eoff,
        q->l2_entry_size, false, &err);
    *overlap = r < 0;
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR: Overlap check failed\n");
        ck->res->check_errors++;
        return r;
    }
    r = blk_child_pwrite(q->file, eoff, p, q->l2_entry_size, 0, &err);
    if (r == 0) {
        r = blk_child_flush(q->file, &err);
    }
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR: Failed to overwrite L2 table entry: %s\n",
                     errstr(r));
        ck->res->check_errors++;
        return r;
    }
    qcow2_ck_forget_l2(q, l2_off);
    ck->res->corruptions--;
    ck->res->corruptions_fixed++;
    return 0;
}

/* Account one L2 entry of the normal/zero-alloc kind. */
static int
check_l2_alloc(struct ck *ck, uint64_t l2_off, uint8_t *t, uint64_t i,
               unsigned flags, unsigned fix, bool active, uint64_t *next)
{
    struct qcow2 *q = ck->q;
    uint64_t e = l2e_get(q, t, i), bm = l2e_bitmap(q, t, i);
    uint64_t off = e & QCOW2_L2E_OFFSET_MASK;

    if ((bm >> 32) & bm) {
        ck->res->corruptions++;
        qcow2_ck_log(ck,
                     "ERROR offset=%" PRIx64 ": Allocated cluster has "
                     "corrupted subcluster allocation bitmap\n",
                     off);
    }
    if (qcow2_offset_into_cluster(q, off) != 0) {
        bool data = q->extended_l2 ? (bm & QCOW2_BITMAP_ALL_ALLOC) != 0
                                   : !(e & QCOW2_OFLAG_ZERO);

        ck->res->corruptions++;
        if (!data) {
            qcow2_ck_log(ck,
                         "%s offset=%" PRIx64 ": Preallocated cluster is not "
                         "properly aligned; L2 entry corrupted.\n",
                         fix & BLK_CHECK_FIX_ERRORS ? "Repairing" : "ERROR",
                         off);
            if (fix & BLK_CHECK_FIX_ERRORS) {
                bool overlap = false;
                int r = fix_l2_by_zero(ck, l2_off, t, i, active, &overlap);

                if (overlap) {
                    return r;
                }
                if (r == 0) {
                    return 0;
                }
            }
        } else {
            qcow2_ck_log(ck,
                         "ERROR offset=%" PRIx64 ": Data cluster is not "
                         "properly aligned; L2 entry corrupted.\n",
                         off);
        }
    }
    if (flags & CHECK_FRAG_INFO) {
        ck->res->allocated_clusters++;
        if (*next != 0 && off != *next) {
            ck->res->fragmented_clusters++;
        }
        *next = off + q->cluster_size;
    }
    if (q->data_file == q->file) {
        return inc_refcounts(ck, off, q->cluster_size);
    }
    return 0;
}

/* QEMU's check_refcounts_l2. */
static int
check_l2(struct ck *ck, uint64_t l2_off, unsigned flags, unsigned fix,
         bool active)
{
    struct qcow2 *q = ck->q;
    size_t bytes = (size_t)(q->l2_entries * q->l2_entry_size);
    struct blk_error err = BLK_ERROR_INIT;
    uint64_t next = 0;
    uint8_t *t = blk_try_malloc(bytes);
    int r;

    if (t == NULL) {
        ck->res->check_errors++;
        return -ENOMEM;
    }
    r = qcow2_ck_read_meta(q, l2_off, t, bytes, &err);
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR: I/O error in check_refcounts_l2\n");
        ck->res->check_errors++;
        goto out;
    }
    for (uint64_t i = 0; i < q->l2_entries; i++) {
        uint64_t e = l2e_get(q, t, i), bm = l2e_bitmap(q, t, i);
        enum ctype type = cluster_type(q, e);

        if (type != CT_COMPRESSED && (e & QCOW2_L2E_STD_RESERVED_MASK)) {
            qcow2_ck_log(ck,
                         "ERROR found l2 entry with reserved bits set: %" PRIx64
                         "\n",
                         e);
            ck->res->corruptions++;
        }
        switch (type) {
        case CT_COMPRESSED: {
            uint64_t coff, clen;

            if (e & QCOW2_OFLAG_COPIED) {
                qcow2_ck_log(ck,
                             "ERROR: coffset=0x%" PRIx64 ": copied flag must "
                             "never be set for compressed clusters\n",
                             e & q->cluster_offset_mask);
                e &= ~QCOW2_OFLAG_COPIED;
                ck->res->corruptions++;
            }
            if (q->data_file != q->file) {
                qcow2_ck_log(ck,
                             "ERROR compressed cluster %d with data file, "
                             "entry=0x%" PRIx64 "\n",
                             (int)i, e);
                ck->res->corruptions++;
                break;
            }
            if (bm != 0) {
                qcow2_ck_log(ck,
                             "ERROR compressed cluster %d with non-zero "
                             "subcluster allocation bitmap, entry=0x%" PRIx64
                             "\n",
                             (int)i, e);
                ck->res->corruptions++;
                break;
            }
            compressed_range(q, e, &coff, &clen);
            r = inc_refcounts(ck, coff, clen);
            if (r < 0) {
                goto out;
            }
            if (flags & CHECK_FRAG_INFO) {
                ck->res->allocated_clusters++;
                ck->res->compressed_clusters++;
                ck->res->fragmented_clusters++;
            }
            break;
        }
        case CT_ZERO_ALLOC:
        case CT_NORMAL:
            r = check_l2_alloc(ck, l2_off, t, i, flags, fix, active, &next);
            if (r < 0) {
                goto out;
            }
            break;
        case CT_ZERO_PLAIN:
            break;
        case CT_UNALLOCATED:
            if (bm & QCOW2_BITMAP_ALL_ALLOC) {
                ck->res->corruptions++;
                qcow2_ck_log(ck, "ERROR: Unallocated cluster has non-zero "
                                 "subcluster allocation map\n");
            }
            break;
        }
    }
    r = 0;
out:
    free(t);
    return r;
}

/* QEMU's check_refcounts_l1: the L1 table, its L2 tables and their data. */
static int
check_l1(struct ck *ck, uint64_t l1_off, uint32_t l1_size, unsigned flags,
         unsigned fix, bool active)
{
    struct qcow2 *q = ck->q;
    struct blk_error err = BLK_ERROR_INIT;
    size_t bytes = (size_t)l1_size * 8;
    uint8_t *raw;
    int r;

    if (l1_size == 0) {
        return 0;
    }
    r = inc_refcounts(ck, l1_off, bytes);
    if (r < 0) {
        return r;
    }
    raw = blk_try_malloc(bytes);
    if (raw == NULL) {
        ck->res->check_errors++;
        return -ENOMEM;
    }
    r = qcow2_ck_read_meta(q, l1_off, raw, bytes, &err);
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR: I/O error in check_refcounts_l1\n");
        ck->res->check_errors++;
        goto out;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t e = qcow2_be64(raw + (size_t)i * 8);
        uint64_t l2_off;

        if (e == 0) {
            continue;
        }
        if (e & QCOW2_L1E_RESERVED_MASK) {
            qcow2_ck_log(ck,
                         "ERROR found L1 entry with reserved bits set: %" PRIx64
                         "\n",
                         e);
            ck->res->corruptions++;
        }
        l2_off = e & QCOW2_L1E_OFFSET_MASK;
        r = inc_refcounts(ck, l2_off, q->cluster_size);
        if (r < 0) {
            goto out;
        }
        if (qcow2_offset_into_cluster(q, l2_off) != 0) {
            qcow2_ck_log(ck,
                         "ERROR l2_offset=%" PRIx64 ": Table is not cluster "
                         "aligned; L1 entry corrupted\n",
                         l2_off);
            ck->res->corruptions++;
        }
        r = check_l2(ck, l2_off, flags, fix, active);
        if (r < 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(raw);
    return r;
}

/* How far check -r may grow the image file to reach a refcount block. */
#define GROW_LIMIT (1ULL << 30)

/* QEMU's check_refblocks: the refcount blocks themselves. */
static int
check_refblocks(struct ck *ck, unsigned fix)
{
    struct qcow2 *q = ck->q;

    for (uint32_t i = 0; i < q->reftable_size; i++) {
        uint64_t off = q->reftable[i] & QCOW2_REFT_OFFSET_MASK;
        uint64_t cl = off >> q->cluster_bits;
        int r;

        if (q->reftable[i] & ~QCOW2_REFT_OFFSET_MASK) {
            qcow2_ck_log(ck,
                         "ERROR refcount table entry %" PRIu32 " has reserved "
                         "bits set\n",
                         i);
            ck->res->corruptions++;
            ck->rebuild = true;
            continue;
        }
        if (qcow2_offset_into_cluster(q, off) != 0) {
            qcow2_ck_log(ck,
                         "ERROR refcount block %" PRIu32 " is not cluster "
                         "aligned; refcount table entry corrupted\n",
                         i);
            ck->res->corruptions++;
            ck->rebuild = true;
            continue;
        }
        if (off != 0 && off >= ck->file_len) {
            struct blk_error err = BLK_ERROR_INIT;

            ck->res->corruptions++;
            qcow2_ck_log(ck, "%s refcount block %" PRIu32 " is outside image\n",
                         fix & BLK_CHECK_FIX_ERRORS ? "Repairing" : "ERROR", i);
            if (!(fix & BLK_CHECK_FIX_ERRORS)) {
                continue;
            }
            /*
             * Grow the file to hold it, as QEMU does; but not by more
             * than GROW_LIMIT (QEMU makes a 16 TiB sparse file out of a
             * garbage entry, then takes ages): that is a failed resize,
             * and the refcount structure gets rebuilt instead.
             */
            if (off - ck->file_len > GROW_LIMIT) {
                r = -EFBIG;
            } else {
                r = blk_child_truncate(q->file, off + q->cluster_size, false,
                                       BLK_PREALLOC_OFF, &err);
            }
            if (r < 0) {
                ck->rebuild = true;
                qcow2_ck_log(ck, "ERROR could not resize image: %s\n",
                             errstr(r));
                continue;
            }
            ck->file_len = off + q->cluster_size;
            if (qcow2_ck_grow(ck, qcow2_size_to_clusters(q, ck->file_len)) <
                0) {
                ck->res->check_errors++;
                return -ENOMEM;
            }
            ck->res->corruptions--;
            ck->res->corruptions_fixed++;
            r = inc_refcounts(ck, off, q->cluster_size);
            if (r < 0) {
                return r;
            }
            continue;
        }
        if (off != 0) {
            r = inc_refcounts(ck, off, q->cluster_size);
            if (r < 0) {
                return r;
            }
            if (rc_get(ck, cl) != 1) {
                qcow2_ck_log(ck,
                             "ERROR refcount block %" PRIu32
                             " refcount=%" PRIu64 "\n",
                             i, rc_get(ck, cl));
                ck->res->corruptions++;
                ck->rebuild = true;
            }
        }
    }
    return 0;
}

/* One bitmap's table and the data clusters it points at. */
static int
check_bitmap_table(struct ck *ck, uint64_t off, uint32_t entries)
{
    struct qcow2 *q = ck->q;
    struct blk_error err = BLK_ERROR_INIT;
    size_t bytes = (size_t)entries * 8;
    uint8_t *t;
    int r;

    r = inc_refcounts(ck, off, bytes);
    if (r < 0 || entries == 0) {
        return r;
    }
    if (qcow2_offset_into_cluster(q, off) != 0 || bytes > QCOW2_MAX_L1_BYTES) {
        ck->res->corruptions++;
        return 0;
    }
    t = blk_try_malloc(bytes);
    if (t == NULL) {
        ck->res->check_errors++;
        return -ENOMEM;
    }
    if (qcow2_ck_read_meta(q, off, t, bytes, &err) < 0) {
        ck->res->corruptions++;
        free(t);
        return 0;
    }
    for (uint32_t i = 0; i < entries && r == 0; i++) {
        /* bitmaps spec: bits 9-55 the data cluster offset, 0 = none */
        uint64_t doff = qcow2_be64(t + (size_t)i * 8) & 0x00fffffffffffe00ULL;

        if (doff != 0) {
            r = inc_refcounts(ck, doff, q->cluster_size);
        }
    }
    free(t);
    return r;
}

/*
 * The persistent bitmaps: directory, tables and data (QEMU's
 * qcow2_check_bitmaps_refcounts).  A directory we cannot parse counts as
 * one corruption and fails the check with -EINVAL, as in QEMU.
 */
static int
check_bitmaps(struct ck *ck)
{
    struct qcow2 *q = ck->q;
    struct blk_error err = BLK_ERROR_INIT;
    uint64_t size = q->bitmaps.directory_size;
    uint8_t *dir;
    size_t pos = 0;
    int r;

    if (!q->has_bitmaps_ext || q->bitmaps.nb_bitmaps == 0) {
        return 0;
    }
    r = inc_refcounts(ck, q->bitmaps.directory_offset, size);
    if (r < 0) {
        return r;
    }
    if (size > QCOW2_MAX_BITMAP_DIRECTORY_BYTES || size < 24) {
        ck->res->corruptions++;
        return -EINVAL;
    }
    dir = blk_try_malloc(size);
    if (dir == NULL) {
        ck->res->check_errors++;
        return -ENOMEM;
    }
    if (qcow2_ck_read_meta(q, q->bitmaps.directory_offset, dir, size, &err) <
        0) {
        free(dir);
        ck->res->corruptions++;
        return -EINVAL;
    }
    for (uint32_t i = 0; i < q->bitmaps.nb_bitmaps; i++) {
        uint64_t toff, len;
        uint32_t tsize, extra;
        uint16_t name;

        if (pos + 24 > size) {
            r = -EINVAL;
            break;
        }
        toff = qcow2_be64(dir + pos);
        tsize = qcow2_be32(dir + pos + 8);
        name = qcow2_be16(dir + pos + 18);
        extra = qcow2_be32(dir + pos + 20);
        len = (24 + (uint64_t)extra + name + 7) & ~7ULL;
        if (pos + len > size) {
            r = -EINVAL;
            break;
        }
        r = check_bitmap_table(ck, toff, tsize);
        if (r < 0) {
            break;
        }
        pos += len;
    }
    free(dir);
    if (r == -EINVAL) {
        ck->res->corruptions++;
    }
    return r;
}

/* QEMU's calculate_refcounts: every reference the metadata makes. */
int
qcow2_ck_calculate(struct ck *ck, unsigned fix, const struct qcow2_snapshot *sn,
                   uint32_t nb_sn)
{
    struct qcow2 *q = ck->q;
    int r;

    r = inc_refcounts(ck, 0, q->cluster_size);
    if (r < 0) {
        return r;
    }
    r = check_l1(ck, q->l1_offset, q->l1_size, CHECK_FRAG_INFO, fix, true);
    if (r < 0) {
        return r;
    }
    if (q->data_file != q->file && nb_sn > 0) {
        qcow2_ck_log(ck, "ERROR %d snapshots in image with data file\n",
                     (int)nb_sn);
        ck->res->corruptions++;
    }
    for (uint32_t i = 0; i < nb_sn; i++) {
        if (qcow2_offset_into_cluster(q, sn[i].l1_table_offset) != 0) {
            qcow2_ck_log(ck,
                         "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 "
                         "table is not cluster aligned; snapshot table entry "
                         "corrupted\n",
                         sn[i].id_str, sn[i].name, sn[i].l1_table_offset);
            ck->res->corruptions++;
            continue;
        }
        if (sn[i].l1_size > QCOW2_MAX_L1_BYTES / 8) {
            qcow2_ck_log(ck,
                         "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 "
                         "table is too large; snapshot table entry corrupted\n",
                         sn[i].id_str, sn[i].name, sn[i].l1_size);
            ck->res->corruptions++;
            continue;
        }
        r = check_l1(ck, sn[i].l1_table_offset, sn[i].l1_size, 0, fix, false);
        if (r < 0) {
            return r;
        }
    }
    r = inc_refcounts(ck, q->snapshots_offset, q->snapshots_size);
    if (r < 0) {
        return r;
    }
    r = inc_refcounts(ck, q->reftable_offset,
                      (uint64_t)q->h.refcount_table_clusters
                          << q->cluster_bits);
    if (r < 0) {
        return r;
    }
    r = check_bitmaps(ck);
    if (r < 0) {
        return r;
    }
    return check_refblocks(ck, fix);
}
