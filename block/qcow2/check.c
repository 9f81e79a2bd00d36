/*
 * check.c - qcow2 consistency check and repair (qemu-img check): rebuild
 * every cluster's refcount in memory from the metadata, compare it with
 * the refcounts on disk, and optionally fix leaks, wrong counts, the
 * OFLAG_COPIED flags, or rebuild the whole refcount structure.  Messages
 * are QEMU 7.2's, written to res->log.  Runs with q->lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

/*
 * The in-memory refcounts: one counter per host cluster of the image
 * file (so memory follows the file's size, never the virtual size).
 * Counters saturate at UINT32_MAX; max is the image's refcount_max capped
 * to that.
 */
struct ck {
    struct qcow2 *q;
    struct blk_check_result *res;
    uint32_t *rc;               /* computed refcounts, n entries; owned */
    uint64_t n;
    uint64_t file_len;          /* bytes */
    uint64_t max;               /* highest countable refcount */
    bool rebuild;               /* the refcount structure needs rebuilding */
    unsigned fix;               /* BLK_CHECK_FIX_* of the whole check */
};

enum {
    CHECK_FRAG_INFO = 1,        /* count allocation statistics (active L1) */
};

static void
ck_log(struct ck *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ck_log(struct ck *ck, const char *fmt, ...)
{
    va_list ap;

    if (ck->res->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    sbuf_vaddf(ck->res->log, fmt, ap);
    va_end(ap);
}

static const char *
errstr(int r)
{
    return strerror(-r);
}

/*
 * Read metadata from the image file the way QEMU's block layer does:
 * bytes past the end of the file read as zeroes.
 */
static int
read_meta(struct qcow2 *q, uint64_t off, void *buf, size_t len,
          struct blk_error *err)
{
    int64_t flen = blk_child_get_length(q->file);
    size_t have = 0;

    if (flen < 0) {
        return blk_error_set(err, (int)flen, "cannot get image file length");
    }
    if (off < (uint64_t)flen) {
        have = (uint64_t)flen - off < len ? (size_t)((uint64_t)flen - off) : len;
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

static int
grow(struct ck *ck, uint64_t n)
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

static uint64_t
rc_get(const struct ck *ck, uint64_t i)
{
    return i < ck->n ? ck->rc[i] : 0;
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
        ck_log(ck, "ERROR: counting reference for region exceeding the end "
               "of the file by one cluster or more: offset 0x%" PRIx64
               " size 0x%" PRIx64 "\n", off, size);
        return 0;
    }
    start = qcow2_start_of_cluster(q, off);
    last = qcow2_start_of_cluster(q, off + size - 1);
    for (uint64_t c = start; c <= last; c += q->cluster_size) {
        uint64_t k = c >> q->cluster_bits;

        if (k >= ck->n && grow(ck, k + 1) < 0) {
            ck->res->check_errors++;
            return -ENOMEM;
        }
        if (ck->rc[k] >= ck->max) {
            ck_log(ck, "ERROR: overflow cluster offset=0x%" PRIx64 "\n", c);
            ck_log(ck, "Use qemu-img amend to increase the refcount entry "
                   "width or qemu-img convert to create a clean copy if the "
                   "image cannot be opened for writing\n");
            ck->res->corruptions++;
            continue;
        }
        ck->rc[k]++;
    }
    return 0;
}

/* QEMU's qcow2_get_cluster_type (without subcluster detail). */
enum ctype { CT_UNALLOCATED, CT_ZERO_PLAIN, CT_ZERO_ALLOC, CT_NORMAL,
             CT_COMPRESSED };

static enum ctype
cluster_type(const struct qcow2 *q, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        return CT_COMPRESSED;
    }
    if ((e & QCOW2_OFLAG_ZERO) && !q->extended_l2) {
        return (e & QCOW2_L2E_OFFSET_MASK) ? CT_ZERO_ALLOC : CT_ZERO_PLAIN;
    }
    if (!(e & QCOW2_L2E_OFFSET_MASK)) {
        if (q->data_file != q->file && (e & QCOW2_OFLAG_COPIED)) {
            return CT_NORMAL;
        }
        return CT_UNALLOCATED;
    }
    return CT_NORMAL;
}

static void
compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off,
                 uint64_t *len)
{
    uint64_t sectors = ((e >> q->csize_shift) & q->csize_mask) + 1;

    *off = e & q->cluster_offset_mask;
    *len = sectors * QCOW2_COMPRESSED_SECTOR -
           (*off & (QCOW2_COMPRESSED_SECTOR - 1));
}

static uint64_t
l2e_get(const struct qcow2 *q, const uint8_t *t, uint64_t i)
{
    return qcow2_be64(t + i * q->l2_entry_size);
}

static uint64_t
l2e_bitmap(const struct qcow2 *q, const uint8_t *t, uint64_t i)
{
    return q->extended_l2 ? qcow2_be64(t + i * q->l2_entry_size + 8) : 0;
}

/* Forget cached copies of an L2 table we rewrote behind the cache. */
static void
forget_l2(struct qcow2 *q, uint64_t l2_off)
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
    r = qcow2_pre_write_check(q, active ? QCOW2_OL_ACTIVE_L2 :
                              QCOW2_OL_INACTIVE_L2, eoff, q->l2_entry_size,
                              false, &err);
    *overlap = r < 0;
    if (r < 0) {
        ck_log(ck, "ERROR: Overlap check failed\n");
        ck->res->check_errors++;
        return r;
    }
    r = blk_child_pwrite(q->file, eoff, p, q->l2_entry_size, 0, &err);
    if (r == 0) {
        r = blk_child_flush(q->file, &err);
    }
    if (r < 0) {
        ck_log(ck, "ERROR: Failed to overwrite L2 table entry: %s\n",
               errstr(r));
        ck->res->check_errors++;
        return r;
    }
    forget_l2(q, l2_off);
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
        ck_log(ck, "ERROR offset=%" PRIx64 ": Allocated cluster has "
               "corrupted subcluster allocation bitmap\n", off);
    }
    if (qcow2_offset_into_cluster(q, off) != 0) {
        bool data = q->extended_l2 ? (bm & QCOW2_BITMAP_ALL_ALLOC) != 0
                                   : !(e & QCOW2_OFLAG_ZERO);

        ck->res->corruptions++;
        if (!data) {
            ck_log(ck, "%s offset=%" PRIx64 ": Preallocated cluster is not "
                   "properly aligned; L2 entry corrupted.\n",
                   fix & BLK_CHECK_FIX_ERRORS ? "Repairing" : "ERROR", off);
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
            ck_log(ck, "ERROR offset=%" PRIx64 ": Data cluster is not "
                   "properly aligned; L2 entry corrupted.\n", off);
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
    r = read_meta(q, l2_off, t, bytes, &err);
    if (r < 0) {
        ck_log(ck, "ERROR: I/O error in check_refcounts_l2\n");
        ck->res->check_errors++;
        goto out;
    }
    for (uint64_t i = 0; i < q->l2_entries; i++) {
        uint64_t e = l2e_get(q, t, i), bm = l2e_bitmap(q, t, i);
        enum ctype type = cluster_type(q, e);

        if (type != CT_COMPRESSED && (e & QCOW2_L2E_STD_RESERVED_MASK)) {
            ck_log(ck, "ERROR found l2 entry with reserved bits set: %"
                   PRIx64 "\n", e);
            ck->res->corruptions++;
        }
        switch (type) {
        case CT_COMPRESSED: {
            uint64_t coff, clen;

            if (e & QCOW2_OFLAG_COPIED) {
                ck_log(ck, "ERROR: coffset=0x%" PRIx64 ": copied flag must "
                       "never be set for compressed clusters\n",
                       e & q->cluster_offset_mask);
                e &= ~QCOW2_OFLAG_COPIED;
                ck->res->corruptions++;
            }
            if (q->data_file != q->file) {
                ck_log(ck, "ERROR compressed cluster %d with data file, "
                       "entry=0x%" PRIx64 "\n", (int)i, e);
                ck->res->corruptions++;
                break;
            }
            if (bm != 0) {
                ck_log(ck, "ERROR compressed cluster %d with non-zero "
                       "subcluster allocation bitmap, entry=0x%" PRIx64 "\n",
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
                ck_log(ck, "ERROR: Unallocated cluster has non-zero "
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
    r = read_meta(q, l1_off, raw, bytes, &err);
    if (r < 0) {
        ck_log(ck, "ERROR: I/O error in check_refcounts_l1\n");
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
            ck_log(ck, "ERROR found L1 entry with reserved bits set: %"
                   PRIx64 "\n", e);
            ck->res->corruptions++;
        }
        l2_off = e & QCOW2_L1E_OFFSET_MASK;
        r = inc_refcounts(ck, l2_off, q->cluster_size);
        if (r < 0) {
            goto out;
        }
        if (qcow2_offset_into_cluster(q, l2_off) != 0) {
            ck_log(ck, "ERROR l2_offset=%" PRIx64 ": Table is not cluster "
                   "aligned; L1 entry corrupted\n", l2_off);
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
            ck_log(ck, "ERROR refcount table entry %" PRIu32 " has reserved "
                   "bits set\n", i);
            ck->res->corruptions++;
            ck->rebuild = true;
            continue;
        }
        if (qcow2_offset_into_cluster(q, off) != 0) {
            ck_log(ck, "ERROR refcount block %" PRIu32 " is not cluster "
                   "aligned; refcount table entry corrupted\n", i);
            ck->res->corruptions++;
            ck->rebuild = true;
            continue;
        }
        if (off != 0 && off >= ck->file_len) {
            struct blk_error err = BLK_ERROR_INIT;

            ck->res->corruptions++;
            ck_log(ck, "%s refcount block %" PRIu32 " is outside image\n",
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
                ck_log(ck, "ERROR could not resize image: %s\n", errstr(r));
                continue;
            }
            ck->file_len = off + q->cluster_size;
            if (grow(ck, qcow2_size_to_clusters(q, ck->file_len)) < 0) {
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
                ck_log(ck, "ERROR refcount block %" PRIu32 " refcount=%"
                       PRIu64 "\n", i, rc_get(ck, cl));
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
    if (qcow2_offset_into_cluster(q, off) != 0 ||
        bytes > QCOW2_MAX_L1_BYTES) {
        ck->res->corruptions++;
        return 0;
    }
    t = blk_try_malloc(bytes);
    if (t == NULL) {
        ck->res->check_errors++;
        return -ENOMEM;
    }
    if (read_meta(q, off, t, bytes, &err) < 0) {
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
    if (read_meta(q, q->bitmaps.directory_offset, dir, size, &err) < 0) {
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
static int
calculate_refcounts(struct ck *ck, unsigned fix,
                    const struct qcow2_snapshot *sn, uint32_t nb_sn)
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
        ck_log(ck, "ERROR %d snapshots in image with data file\n", (int)nb_sn);
        ck->res->corruptions++;
    }
    for (uint32_t i = 0; i < nb_sn; i++) {
        if (qcow2_offset_into_cluster(q, sn[i].l1_table_offset) != 0) {
            ck_log(ck, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 "
                   "table is not cluster aligned; snapshot table entry "
                   "corrupted\n", sn[i].id_str, sn[i].name,
                   sn[i].l1_table_offset);
            ck->res->corruptions++;
            continue;
        }
        if (sn[i].l1_size > QCOW2_MAX_L1_BYTES / 8) {
            ck_log(ck, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 "
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
                      (uint64_t)q->h.refcount_table_clusters << q->cluster_bits);
    if (r < 0) {
        return r;
    }
    r = check_bitmaps(ck);
    if (r < 0) {
        return r;
    }
    return check_refblocks(ck, fix);
}

/* On-disk refcount of cluster i, through the refcount cache. */
static int
disk_refcount(struct qcow2 *q, uint64_t i, uint64_t *rc)
{
    struct blk_error err = BLK_ERROR_INIT;

    return qcow2_get_refcount(q, i, rc, &err);
}

/* QEMU's compare_refcounts: on-disk against computed, fixing if allowed. */
static void
compare_refcounts(struct ck *ck, unsigned fix, uint64_t *highest)
{
    struct qcow2 *q = ck->q;
    struct blk_check_result *res = ck->res;

    *highest = 0;
    for (uint64_t i = 0; i < ck->n; i++) {
        uint64_t r1, r2 = ck->rc[i];
        int *fixed = NULL;
        int r = disk_refcount(q, i, &r1);

        if (r < 0) {
            ck_log(ck, "Can't get refcount for cluster %" PRIu64 ": %s\n", i,
                   errstr(r));
            res->check_errors++;
            continue;
        }
        if (r1 > 0 || r2 > 0) {
            *highest = i;
        }
        if (r1 == r2) {
            continue;
        }
        if (r1 == 0) {
            ck->rebuild = true;
        } else if (r1 > r2 && (fix & BLK_CHECK_FIX_LEAKS)) {
            fixed = &res->leaks_fixed;
        } else if (r1 < r2 && (fix & BLK_CHECK_FIX_ERRORS)) {
            fixed = &res->corruptions_fixed;
        }
        ck_log(ck, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%"
               PRIu64 "\n", fixed != NULL ? "Repairing" :
               r1 < r2 ? "ERROR" : "Leaked", i, r1, r2);
        if (fixed != NULL) {
            struct blk_error err = BLK_ERROR_INIT;
            int64_t diff = r1 > r2 ? -(int64_t)(r1 - r2) : (int64_t)(r2 - r1);

            if (qcow2_update_refcount(q, i << q->cluster_bits, 1, diff,
                                      QCOW2_DISCARD_ALWAYS, &err) >= 0) {
                (*fixed)++;
                continue;
            }
        }
        if (r1 < r2) {
            res->corruptions++;
        } else {
            res->leaks++;
        }
    }
}

/* Write one L2 table back after fixing flags (OFLAG_COPIED repair). */
static int
write_l2(struct ck *ck, uint64_t l2_off, const uint8_t *t, size_t bytes)
{
    struct qcow2 *q = ck->q;
    struct blk_error err = BLK_ERROR_INIT;
    int r;

    r = qcow2_pre_write_check(q, QCOW2_OL_ACTIVE_L2, l2_off, bytes, false,
                              &err);
    if (r < 0) {
        ck_log(ck, "ERROR: Could not write L2 table; metadata overlap check "
               "failed: %s\n", errstr(r));
        ck->res->check_errors++;
        return r;
    }
    r = blk_child_pwrite(q->file, l2_off, t, bytes, 0, &err);
    if (r < 0) {
        ck_log(ck, "ERROR: Could not write L2 table: %s\n", errstr(r));
        ck->res->check_errors++;
        return r;
    }
    forget_l2(q, l2_off);
    return 0;
}

/* The data clusters of one active L2 table (check_oflag_copied's inner loop). */
static int
oflag_l2(struct ck *ck, uint64_t l2_off, bool repair)
{
    struct qcow2 *q = ck->q;
    struct blk_error err = BLK_ERROR_INIT;
    size_t bytes = (size_t)(q->l2_entries * q->l2_entry_size);
    uint8_t *t = blk_try_malloc(bytes);
    int dirty = 0, r;

    if (t == NULL) {
        ck->res->check_errors++;
        return -ENOMEM;
    }
    r = read_meta(q, l2_off, t, bytes, &err);
    if (r < 0) {
        ck_log(ck, "ERROR: Could not read L2 table: %s\n", errstr(r));
        ck->res->check_errors++;
        goto out;
    }
    for (uint64_t j = 0; j < q->l2_entries; j++) {
        uint64_t e = l2e_get(q, t, j), rc = 1;
        enum ctype type = cluster_type(q, e);

        if (type != CT_NORMAL && type != CT_ZERO_ALLOC) {
            continue;
        }
        if (q->data_file == q->file &&
            disk_refcount(q, (e & QCOW2_L2E_OFFSET_MASK) >> q->cluster_bits,
                          &rc) < 0) {
            continue;
        }
        if ((rc == 1) != ((e & QCOW2_OFLAG_COPIED) != 0)) {
            ck->res->corruptions++;
            ck_log(ck, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
                   " refcount=%" PRIu64 "\n", repair ? "Repairing" : "ERROR",
                   e, rc);
            if (repair) {
                qcow2_put_be64(t + j * q->l2_entry_size,
                               rc == 1 ? e | QCOW2_OFLAG_COPIED
                                       : e & ~QCOW2_OFLAG_COPIED);
                dirty++;
            }
        }
    }
    r = 0;
    if (dirty > 0) {
        r = write_l2(ck, l2_off, t, bytes);
        if (r == 0) {
            ck->res->corruptions -= dirty;
            ck->res->corruptions_fixed += dirty;
        }
    }
out:
    free(t);
    return r;
}

/* QEMU's check_oflag_copied, on the active tables. */
static int
check_oflag_copied(struct ck *ck, unsigned fix)
{
    struct qcow2 *q = ck->q;
    struct blk_check_result *res = ck->res;
    bool repair;

    if (fix & BLK_CHECK_FIX_ERRORS) {
        repair = true;
    } else if (fix & BLK_CHECK_FIX_LEAKS) {
        repair = !res->check_errors && !res->corruptions && !res->leaks;
    } else {
        repair = false;
    }
    for (uint32_t i = 0; i < q->l1_size; i++) {
        uint64_t e = q->l1[i], l2_off = e & QCOW2_L1E_OFFSET_MASK, rc;
        int r;

        if (l2_off == 0) {
            continue;
        }
        if (disk_refcount(q, l2_off >> q->cluster_bits, &rc) < 0) {
            continue;
        }
        if ((rc == 1) != ((e & QCOW2_OFLAG_COPIED) != 0)) {
            res->corruptions++;
            ck_log(ck, "%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%"
                   PRIx64 " refcount=%" PRIu64 "\n",
                   repair ? "Repairing" : "ERROR", (int)i, e, rc);
            if (repair) {
                struct blk_error err = BLK_ERROR_INIT;

                q->l1[i] = rc == 1 ? e | QCOW2_OFLAG_COPIED
                                   : e & ~QCOW2_OFLAG_COPIED;
                r = qcow2_write_l1_entries(q, i, 1, &err);
                if (r < 0) {
                    res->check_errors++;
                    return r;
                }
                res->corruptions--;
                res->corruptions_fixed++;
            }
        }
        r = oflag_l2(ck, l2_off, repair);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

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
    if (run < count && grow(ck, c + count - run) < 0) {
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
write_refblocks(struct ck *ck, uint64_t first, uint64_t end,
                struct newtab *nt, struct blk_error *err)
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
static int
rebuild_refcounts(struct ck *ck, bool write_hdr, struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    struct newtab nt = { NULL, 0 };
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
    r = qcow2_pre_write_check(q, 0, (uint64_t)rt << q->cluster_bits,
                              nt.n * 8, false, err);
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
    r = write_hdr ? blk_child_pwrite(q->file, 48, hdr, sizeof(hdr), 0, err)
                  : 0;
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

/* QEMU's qcow2_check_refcounts: count, compare, repair. */
static int
check_refcounts(struct ck *ck, unsigned fix, const struct qcow2_snapshot *sn,
                uint32_t nb_sn, struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    struct blk_check_result *res = ck->res, pre;
    uint64_t highest = 0;
    int r;

    res->total_clusters = qcow2_size_to_clusters(q, q->size);
    r = calculate_refcounts(ck, fix, sn, nb_sn);
    if (r < 0) {
        return blk_error_set(err, r, "%s", errstr(r));
    }
    /* The first comparison only reports; a repair pass may follow. */
    pre = *res;
    compare_refcounts(ck, 0, &highest);

    if (ck->rebuild && (fix & BLK_CHECK_FIX_ERRORS)) {
        struct blk_check_result old = *res;
        int fresh_leaks = 0;

        ck_log(ck, "Rebuilding refcount structure\n");
        r = rebuild_refcounts(ck, true, err);
        if (r < 0) {
            ck_log(ck, "%s\n", err->msg);
            return r;
        }
        res->corruptions = 0;
        res->leaks = 0;
        ck->rebuild = false;
        /* The new structure may lie past the old end of the file. */
        {
            int64_t flen = blk_child_get_length(q->file);

            if (flen > 0 && (uint64_t)flen > ck->file_len) {
                ck->file_len = (uint64_t)flen;
            }
        }
        memset(ck->rc, 0, (size_t)ck->n * sizeof(uint32_t));
        r = calculate_refcounts(ck, 0, sn, nb_sn);
        if (r < 0) {
            return blk_error_set(err, r, "%s", errstr(r));
        }
        if (fix & BLK_CHECK_FIX_LEAKS) {
            struct blk_check_result saved = *res;

            memset(res, 0, sizeof(*res));
            res->log = saved.log;
            compare_refcounts(ck, BLK_CHECK_FIX_LEAKS, &highest);
            if (ck->rebuild) {
                ck_log(ck, "ERROR rebuilt refcount structure is still "
                       "broken\n");
            }
            fresh_leaks = res->leaks;
            *res = saved;
        }
        if (res->corruptions < old.corruptions) {
            res->corruptions_fixed += old.corruptions - res->corruptions;
        }
        if (res->leaks < old.leaks) {
            res->leaks_fixed += old.leaks - res->leaks;
        }
        res->leaks += fresh_leaks;
    } else if (fix) {
        if (ck->rebuild) {
            ck_log(ck, "ERROR need to rebuild refcount structures\n");
            res->check_errors++;
            return blk_error_set(err, -EIO, "Input/output error");
        }
        if (res->leaks || res->corruptions) {
            *res = pre;
            compare_refcounts(ck, fix, &highest);
        }
    }
    r = check_oflag_copied(ck, fix);
    if (r < 0) {
        return blk_error_set(err, r, "%s", errstr(r));
    }
    res->image_end_offset = (highest + 1) << q->cluster_bits;
    return 0;
}

/*
 * Read the snapshot table for check (the open may have skipped it, as
 * QEMU's does in check mode).  Errors are reported the way qemu-img
 * check reports them and count as check errors.
 */
static int
check_read_snapshots(struct ck *ck, struct qcow2_snapshot **sn,
                     uint64_t *size, struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    uint32_t nb = q->h.nb_snapshots;
    uint64_t off = q->h.snapshots_offset;
    int r;

    *sn = NULL;
    *size = 0;
    if (nb > QCOW2_MAX_SNAPSHOTS) {
        ck->res->check_errors++;
        ck_log(ck, "blk-img: ERROR snapshot table too large\n");
        return blk_error_set(err, -EFBIG, "File too large");
    }
    if ((uint64_t)INT64_MAX - (uint64_t)nb * 40 < off ||
        qcow2_offset_into_cluster(q, off) != 0) {
        ck->res->check_errors++;
        ck_log(ck, "blk-img: ERROR snapshot table offset invalid\n");
        return blk_error_set(err, -EINVAL, "Invalid argument");
    }
    r = qcow2_snapshot_read_table(q, off, nb, sn, size, err);
    if (r < 0) {
        ck->res->check_errors++;
        ck_log(ck, "blk-img: ERROR failed to read the snapshot table: %s\n",
               err->msg);
        return r;
    }
    for (uint32_t i = 0; q->version >= 3 && i < nb; i++) {
        if ((*sn)[i].extra_data_size < 16) {
            ck_log(ck, "%s snapshot table entry %" PRIu32 " is incomplete\n",
                   ck->fix & BLK_CHECK_FIX_ERRORS ? "Repairing" : "ERROR", i);
        }
    }
    return 0;
}

/*
 * v3 snapshot entries must carry vm_state_size_large and disk_size
 * (QEMU's qcow2_check_fix_snapshot_table).  With FIX_ERRORS the entries
 * are completed (disk size = the image's) and q's table rewritten.
 */
static int
check_fix_snapshots(struct ck *ck, unsigned fix, struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    struct qcow2_snapshot *sn = q->snapshots;
    uint32_t nb = q->nb_snapshots, bad = 0;
    int r, free_failed = 0;

    if (q->version < 3) {
        return 0;
    }
    for (uint32_t i = 0; i < nb; i++) {
        if (sn[i].extra_data_size < 16) {
            ck->res->corruptions++;
            bad++;
        }
    }
    if (bad == 0 || !(fix & BLK_CHECK_FIX_ERRORS)) {
        return 0;
    }
    for (uint32_t i = 0; i < nb; i++) {
        struct qcow2_snapshot *s = &sn[i];

        if (s->extra_data_size < 16) {
            s->disk_size = q->size;
        }
        if (s->extra_data_size < 24) {
            s->icount = UINT64_MAX;
            s->extra_data_size = 24;
        }
    }
    r = qcow2_snapshot_write_table(q, &free_failed, err);
    if (free_failed < 0) {
        ck_log(ck, "qcow2_free_clusters failed: %s\n", errstr(free_failed));
    }
    if (r < 0) {
        ck_log(ck, "ERROR failed to update snapshot table: %s\n", err->msg);
        ck->res->check_errors++;
        return r;
    }
    ck->res->corruptions -= (int)bad;
    ck->res->corruptions_fixed += (int)bad;
    return 0;
}

int
qcow2_check(struct blk_node *bs, struct blk_check_result *res, unsigned fix,
            struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct sbuf *log = res->log;
    struct qcow2_snapshot *sn = NULL;
    struct ck ck;
    uint64_t sn_size = 0;
    int64_t flen;
    int r;

    memset(res, 0, sizeof(*res));
    res->log = log;
    if (fix != 0 && q->read_only) {
        return blk_error_set(err, -EACCES, "cannot repair a read-only image");
    }
    memset(&ck, 0, sizeof(ck));
    ck.q = q;
    ck.res = res;
    ck.fix = fix;
    ck.max = q->refcount_max < UINT32_MAX ? q->refcount_max : UINT32_MAX;

    pthread_mutex_lock(&q->lock);
    if (fix != 0) {
        /* What we compare against must be on disk. */
        r = qcow2_flush_locked(q, err);
        if (r < 0) {
            goto out;
        }
    }
    r = check_read_snapshots(&ck, &sn, &sn_size, err);
    if (r < 0) {
        goto out;
    }
    flen = blk_child_get_length(q->file);
    if (flen < 0) {
        res->check_errors++;
        r = blk_error_set(err, (int)flen, "%s", errstr((int)flen));
        goto out;
    }
    ck.file_len = (uint64_t)flen;
    if (grow(&ck, qcow2_size_to_clusters(q, ck.file_len)) < 0) {
        res->check_errors++;
        r = blk_error_set(err, -ENOMEM, "Cannot allocate memory");
        goto out;
    }
    /*
     * The table as read now becomes q's (an open for check skips it), so
     * that overlap checks during repairs know the snapshots' L1 tables.
     */
    qcow2_free_snapshots(q);
    q->snapshots = sn;
    q->nb_snapshots = q->h.nb_snapshots;
    q->snapshots_offset = q->h.snapshots_offset;
    q->snapshots_size = sn_size;
    sn = NULL;
    r = check_refcounts(&ck, fix, q->snapshots, q->nb_snapshots, err);
    res->has_stats = true;
    if (r < 0) {
        goto out;
    }
    r = check_fix_snapshots(&ck, fix, err);
    if (r < 0) {
        goto out;
    }
    if (fix != 0) {
        r = qcow2_flush_locked(q, err);
        if (r < 0) {
            goto out;
        }
    }
    if (fix != 0 && res->check_errors == 0 && res->corruptions == 0) {
        r = qcow2_mark_clean(q, err);
        if (r < 0) {
            goto out;
        }
        if (q->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
            q->h.incompatible_features &= ~(uint64_t)QCOW2_INCOMPAT_CORRUPT;
            r = qcow2_write_features(q, err);
            if (r < 0) {
                goto out;
            }
            r = blk_child_flush(q->file, err);
            if (r < 0) {
                goto out;
            }
        }
        q->corrupt = false;
    }
out:
    pthread_mutex_unlock(&q->lock);
    qcow2_snapshot_free_table(sn, q->h.nb_snapshots);
    free(ck.rc);
    return r;
}

/* Switch q's refcount geometry to 2^order-bit entries. */
static void
set_refcount_order(struct qcow2 *q, unsigned order)
{
    q->refcount_order = order;
    q->refcount_bits = 1u << order;
    q->refcount_max = order == 6 ? UINT64_MAX
                                 : (1ULL << q->refcount_bits) - 1;
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
    uint64_t new_max = order == 6 ? UINT64_MAX
                                  : (1ULL << (1u << order)) - 1, highest;
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
    if (grow(&ck, qcow2_size_to_clusters(q, ck.file_len)) < 0) {
        return blk_error_set(err, -ENOMEM, "Cannot allocate memory");
    }
    r = calculate_refcounts(&ck, 0, q->snapshots, q->nb_snapshots);
    if (r == 0 && (res.corruptions || res.check_errors)) {
        r = blk_error_set(err, -EIO, "image is corrupt; repair it with "
                          "'check -r all' first");
    }
    for (uint64_t i = 0; r == 0 && i < ck.n; i++) {
        if (ck.rc[i] > new_max) {
            r = blk_error_set(err, -EINVAL, "Cannot decrease refcount entry "
                              "width to %u bits: Cluster at offset %#" PRIx64
                              " has a refcount of %" PRIu32, 1u << order,
                              i << q->cluster_bits, ck.rc[i]);
        }
    }
    if (r < 0) {
        goto out;
    }
    set_refcount_order(q, order);
    r = rebuild_refcounts(&ck, false, err);
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
    r = calculate_refcounts(&ck, 0, q->snapshots, q->nb_snapshots);
    if (r == 0) {
        compare_refcounts(&ck, BLK_CHECK_FIX_LEAKS, &highest);
        r = qcow2_flush_locked(q, err);
    }
out:
    free(ck.rc);
    return r;
}
