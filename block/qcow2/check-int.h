/*
 * check-int.h - what the qcow2 check files share: the in-memory refcount
 * array (struct ck) and the steps of QEMU's qcow2_check_refcounts, split
 * into counting (check-count.c), comparing and repairing (check.c) and
 * rebuilding the refcount structure (check-rebuild.c).  q->lock held.
 */
#ifndef BLOCK_QCOW2_CHECK_INT_H
#define BLOCK_QCOW2_CHECK_INT_H

#include <string.h>

#include "block/qcow2/qcow2-int.h"

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
    uint32_t sn_dropped;        /* snapshot entries whose extra data was cut */
};

enum {
    CHECK_FRAG_INFO = 1,        /* count allocation statistics (active L1) */
};

/* Append a QEMU check message to res->log (if any). */
void qcow2_ck_log(struct ck *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline const char *
errstr(int r)
{
    return strerror(-r);
}

static inline uint64_t
rc_get(const struct ck *ck, uint64_t i)
{
    return i < ck->n ? ck->rc[i] : 0;
}

/* QEMU's qcow2_get_cluster_type (without subcluster detail). */
enum ctype { CT_UNALLOCATED, CT_ZERO_PLAIN, CT_ZERO_ALLOC, CT_NORMAL,
             CT_COMPRESSED };

static inline enum ctype
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

static inline void
compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off,
                 uint64_t *len)
{
    uint64_t sectors = ((e >> q->csize_shift) & q->csize_mask) + 1;

    *off = e & q->cluster_offset_mask;
    *len = sectors * QCOW2_COMPRESSED_SECTOR -
           (*off & (QCOW2_COMPRESSED_SECTOR - 1));
}

static inline uint64_t
l2e_get(const struct qcow2 *q, const uint8_t *t, uint64_t i)
{
    return qcow2_be64(t + i * q->l2_entry_size);
}

static inline uint64_t
l2e_bitmap(const struct qcow2 *q, const uint8_t *t, uint64_t i)
{
    return q->extended_l2 ? qcow2_be64(t + i * q->l2_entry_size + 8) : 0;
}

/* Make ck->rc hold n counters (new ones zero); 0 or -ENOMEM. */
int qcow2_ck_grow(struct ck *ck, uint64_t n);
/* Read image file metadata; past the end of the file reads as zeroes. */
int qcow2_ck_read_meta(struct qcow2 *q, uint64_t off, void *buf, size_t len,
                       struct blk_error *err);
/* Drop cached slices of the L2 table at l2_off (rewritten directly). */
void qcow2_ck_forget_l2(struct qcow2 *q, uint64_t l2_off);
/*
 * Count every reference the metadata makes (header, active and snapshot
 * L1/L2 tables and data, snapshot table, refcount structure, bitmaps)
 * into ck->rc, logging what is wrong; sets ck->rebuild when the
 * refcount structure itself is broken.  0 or -errno (a fatal error).
 */
int qcow2_ck_calculate(struct ck *ck, unsigned fix,
                       const struct qcow2_snapshot *sn, uint32_t nb_sn);
/*
 * Compare on-disk refcounts with ck->rc, logging "Leaked"/"ERROR"/
 * "Repairing" lines and fixing what fix allows; *highest gets the last
 * cluster in use.
 */
void qcow2_ck_compare(struct ck *ck, unsigned fix, uint64_t *highest);
/*
 * Write a new refcount structure from ck->rc into free clusters and, if
 * write_hdr, point the header at it (else the caller writes the header).
 */
int qcow2_ck_rebuild(struct ck *ck, bool write_hdr, struct blk_error *err);

#endif
