/*
 * check.c - qcow2 consistency check and repair (qemu-img check): count
 * every cluster's references (check-count.c), compare with the refcounts
 * on disk, and optionally fix leaks, wrong counts and the OFLAG_COPIED
 * flags, or rebuild the refcount structure (check-rebuild.c).  Messages
 * are QEMU 7.2's, written to res->log.  Takes q->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/check-int.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

void
qcow2_ck_log(struct ck *ck, const char *fmt, ...)
{
    va_list ap;

    if (ck->res->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    sbuf_vaddf(ck->res->log, fmt, ap);
    va_end(ap);
}

/* On-disk refcount of cluster i, through the refcount cache. */
static int
disk_refcount(struct qcow2 *q, uint64_t i, uint64_t *rc)
{
    struct blk_error err = BLK_ERROR_INIT;

    return qcow2_get_refcount(q, i, rc, &err);
}

/* QEMU's compare_refcounts: on-disk against computed, fixing if allowed. */
void
qcow2_ck_compare(struct ck *ck, unsigned fix, uint64_t *highest)
{
    struct qcow2 *q = ck->q;
    struct blk_check_result *res = ck->res;

    *highest = 0;
    for (uint64_t i = 0; i < ck->n; i++) {
        uint64_t r1, r2 = ck->rc[i];
        int *fixed = NULL;
        int r = disk_refcount(q, i, &r1);

        if (r < 0) {
            qcow2_ck_log(ck, "Can't get refcount for cluster %" PRIu64 ": %s\n",
                         i, errstr(r));
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
        qcow2_ck_log(ck,
                     "%s cluster %" PRIu64 " refcount=%" PRIu64
                     " reference=%" PRIu64 "\n",
                     fixed != NULL ? "Repairing"
                     : r1 < r2     ? "ERROR"
                                   : "Leaked",
                     i, r1, r2);
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
        qcow2_ck_log(ck,
                     "ERROR: Could not write L2 table; metadata overlap check "
                     "failed: %s\n",
                     errstr(r));
        ck->res->check_errors++;
        return r;
    }
    r = blk_child_pwrite(q->file, l2_off, t, bytes, 0, &err);
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR: Could not write L2 table: %s\n", errstr(r));
        ck->res->check_errors++;
        return r;
    }
    qcow2_ck_forget_l2(q, l2_off);
    return 0;
}

/* The data clusters of one active L2 table (check_oflag_copied inner loop). */
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
    r = qcow2_ck_read_meta(q, l2_off, t, bytes, &err);
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR: Could not read L2 table: %s\n", errstr(r));
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
            qcow2_ck_log(ck,
                         "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
                         " refcount=%" PRIu64 "\n",
                         repair ? "Repairing" : "ERROR", e, rc);
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
            qcow2_ck_log(
                ck,
                "%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%" PRIx64
                " refcount=%" PRIu64 "\n",
                repair ? "Repairing" : "ERROR", (int)i, e, rc);
            if (repair) {
                struct blk_error err = BLK_ERROR_INIT;

                q->l1[i] =
                    rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
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
    r = qcow2_ck_calculate(ck, fix, sn, nb_sn);
    if (r < 0) {
        return blk_error_set(err, r, "%s", errstr(r));
    }
    /* The first comparison only reports; a repair pass may follow. */
    pre = *res;
    qcow2_ck_compare(ck, 0, &highest);

    if (ck->rebuild && (fix & BLK_CHECK_FIX_ERRORS)) {
        struct blk_check_result old = *res;
        int fresh_leaks = 0;

        qcow2_ck_log(ck, "Rebuilding refcount structure\n");
        r = qcow2_ck_rebuild(ck, true, err);
        if (r < 0) {
            qcow2_ck_log(ck, "%s\n", err->msg);
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
        r = qcow2_ck_calculate(ck, 0, sn, nb_sn);
        if (r < 0) {
            return blk_error_set(err, r, "%s", errstr(r));
        }
        if (fix & BLK_CHECK_FIX_LEAKS) {
            struct blk_check_result saved = *res;

            memset(res, 0, sizeof(*res));
            res->log = saved.log;
            qcow2_ck_compare(ck, BLK_CHECK_FIX_LEAKS, &highest);
            if (ck->rebuild) {
                qcow2_ck_log(ck, "ERROR rebuilt refcount structure is still "
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
            qcow2_ck_log(ck, "ERROR need to rebuild refcount structures\n");
            res->check_errors++;
            return blk_error_set(err, -EIO, "Input/output error");
        }
        if (res->leaks || res->corruptions) {
            *res = pre;
            qcow2_ck_compare(ck, fix, &highest);
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
check_read_snapshots(struct ck *ck, struct qcow2_snapshot **sn, uint64_t *size,
                     struct blk_error *err)
{
    struct qcow2 *q = ck->q;
    uint32_t nb = q->h.nb_snapshots;
    uint64_t off = q->h.snapshots_offset;
    struct sbuf repair_log = SBUF_INIT;
    int r;

    *sn = NULL;
    *size = 0;
    if (nb > QCOW2_MAX_SNAPSHOTS) {
        ck->res->check_errors++;
        qcow2_ck_log(ck, "blk-img: ERROR snapshot table too large\n");
        return blk_error_set(err, -EFBIG, "File too large");
    }
    if ((uint64_t)INT64_MAX - (uint64_t)nb * 40 < off ||
        qcow2_offset_into_cluster(q, off) != 0) {
        ck->res->check_errors++;
        qcow2_ck_log(ck, "blk-img: ERROR snapshot table offset invalid\n");
        return blk_error_set(err, -EINVAL, "Invalid argument");
    }
    r = qcow2_snapshot_read_table(q, off, nb,
                                  (ck->fix & BLK_CHECK_FIX_ERRORS)
                                      ? &repair_log : NULL,
                                  &ck->sn_dropped, sn, size, err);
    qcow2_ck_log(ck, "%s", repair_log.buf);
    sbuf_release(&repair_log);
    ck->res->corruptions += (int)ck->sn_dropped;
    if (r < 0) {
        ck->res->check_errors++;
        qcow2_ck_log(ck,
                     "blk-img: ERROR failed to read the snapshot table: %s\n",
                     err->msg);
        if (r == -EFBIG && strstr(err->msg, "extra metadata") != NULL) {
            qcow2_ck_log(ck, "You can force-remove this extra metadata with "
                             "blk-img check -r all\n");
        }
        blk_error_clear(err);
        return blk_error_set(err, r, "%s", errstr(r));
    }
    for (uint32_t i = 0; q->version >= 3 && i < nb; i++) {
        if ((*sn)[i].extra_data_size < 16) {
            qcow2_ck_log(
                ck, "%s snapshot table entry %" PRIu32 " is incomplete\n",
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

    for (uint32_t i = 0; q->version >= 3 && i < nb; i++) {
        if (sn[i].extra_data_size < 16) {
            ck->res->corruptions++;
            bad++;
        }
    }
    bad += ck->sn_dropped;      /* already counted when read */
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
        qcow2_ck_log(ck, "qcow2_free_clusters failed: %s\n",
                     errstr(free_failed));
    }
    if (r < 0) {
        qcow2_ck_log(ck, "ERROR failed to update snapshot table: %s\n",
                     err->msg);
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
    if (qcow2_ck_grow(&ck, qcow2_size_to_clusters(q, ck.file_len)) < 0) {
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
