/*
 * snapshot.c - qcow2 internal snapshots: the snapshot table (read at
 * open, rewritten on change), and list/create/apply/delete with QEMU
 * 7.2's refcount and OFLAG_COPIED bookkeeping, so snapshots made here
 * work in qemu-img and vice versa; and loading one read-only for the
 * time the image is open (convert -l).  Spec: "Snapshots".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/qcow2/qcow2-int.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

#define SN_HEADER_SIZE 40u              /* fixed part of a table entry */
#define SN_EXTRA_SIZE 24u               /* the extra data we know and write */

/* ---- the table on disk ---------------------------------------------------- */

void
qcow2_snapshot_free_table(struct qcow2_snapshot *sn, uint32_t nb)
{
    if (sn == NULL) {
        return;
    }
    for (uint32_t i = 0; i < nb; i++) {
        free(sn[i].id_str);
        free(sn[i].name);
        free(sn[i].unknown_extra_data);
    }
    free(sn);
}

/* Read len bytes at *off, advancing it; fails with QEMU's wording. */
static int
read_at(struct qcow2 *q, uint64_t *off, void *buf, size_t len,
        struct blk_error *err)
{
    int64_t flen = blk_child_get_length(q->file);
    int r;

    if (len == 0) {
        return 0;
    }
    size_t have = 0;

    if (flen < 0) {
        return blk_error_set(err, (int)flen, "Failed to read snapshot table");
    }
    /* Past the end of the file reads as zeroes, as in QEMU. */
    if (*off < (uint64_t)flen) {
        have = (uint64_t)flen - *off < len ? (size_t)((uint64_t)flen - *off)
                                           : len;
    }
    r = have ? blk_child_pread(q->file, *off, buf, have, err) : 0;
    if (r < 0) {
        blk_error_prefix(err, "Failed to read snapshot table: ");
        return r;
    }
    memset((uint8_t *)buf + have, 0, len - have);
    *off += len;
    return 0;
}

static char *
read_str(struct qcow2 *q, uint64_t *off, size_t len, struct blk_error *err)
{
    char *s = xmalloc(len + 1);

    if (read_at(q, off, s, len, err) < 0) {
        free(s);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

/*
 * Entry i at *off (8-byte aligned first); fills sn.  Extra data over
 * QEMU's limit fails, or with repair_log is cut to the limit (counted in
 * *dropped, logged as QEMU does).
 */
static int
read_entry(struct qcow2 *q, uint64_t *off, uint32_t i,
           struct qcow2_snapshot *sn, struct sbuf *repair_log,
           uint32_t *dropped, struct blk_error *err)
{
    uint32_t skip = 0;
    uint8_t h[SN_HEADER_SIZE], *extra;
    uint32_t extra_size;
    uint16_t id_len, name_len;
    int r;

    *off = (*off + 7) & ~7ULL;
    r = read_at(q, off, h, sizeof(h), err);
    if (r < 0) {
        return r;
    }
    sn->l1_table_offset = qcow2_be64(h);
    sn->l1_size = qcow2_be32(h + 8);
    id_len = qcow2_be16(h + 12);
    name_len = qcow2_be16(h + 14);
    sn->date_sec = qcow2_be32(h + 16);
    sn->date_nsec = qcow2_be32(h + 20);
    sn->vm_clock_nsec = qcow2_be64(h + 24);
    sn->vm_state_size = qcow2_be32(h + 32);
    extra_size = qcow2_be32(h + 36);
    if (extra_size > QCOW2_MAX_SNAPSHOT_EXTRA_DATA) {
        if (repair_log == NULL) {
            return blk_error_set(err, -EFBIG, "Too much extra metadata in "
                                 "snapshot table entry %" PRIu32, i);
        }
        sbuf_addf(repair_log, "Discarding too much extra metadata in "
                  "snapshot table entry %" PRIu32 " (%" PRIu32 " > %u)\n", i,
                  extra_size, QCOW2_MAX_SNAPSHOT_EXTRA_DATA);
        (*dropped)++;
        skip = extra_size - QCOW2_MAX_SNAPSHOT_EXTRA_DATA;
        extra_size = QCOW2_MAX_SNAPSHOT_EXTRA_DATA;
    }
    sn->extra_data_size = extra_size;
    extra = xzalloc(extra_size > SN_EXTRA_SIZE ? extra_size : SN_EXTRA_SIZE);
    r = read_at(q, off, extra, extra_size, err);
    if (r < 0) {
        free(extra);
        return r;
    }
    *off += skip;
    if (extra_size >= 8) {
        sn->vm_state_size = qcow2_be64(extra);
    }
    sn->disk_size = extra_size >= 16 ? qcow2_be64(extra + 8) : q->size;
    sn->icount = extra_size >= 24 ? qcow2_be64(extra + 16) : UINT64_MAX;
    if (extra_size > SN_EXTRA_SIZE) {
        sn->unknown_extra_data = xmemdup(extra + SN_EXTRA_SIZE,
                                         extra_size - SN_EXTRA_SIZE);
    }
    free(extra);
    sn->id_str = read_str(q, off, id_len, err);
    if (sn->id_str == NULL) {
        return err->code;
    }
    sn->name = read_str(q, off, name_len, err);
    if (sn->name == NULL) {
        return err->code;
    }
    return 0;
}

int
qcow2_snapshot_read_table(struct qcow2 *q, uint64_t off, uint32_t nb,
                          struct sbuf *repair_log, uint32_t *dropped,
                          struct qcow2_snapshot **out, uint64_t *size,
                          struct blk_error *err)
{
    struct qcow2_snapshot *sn;
    uint64_t pos = off;
    int r = 0;

    *out = NULL;
    *size = 0;
    if (nb == 0) {
        return 0;
    }
    sn = blk_try_zalloc((size_t)nb * sizeof(*sn));
    if (sn == NULL) {
        return blk_error_set(err, -ENOMEM, "Cannot allocate memory");
    }
    for (uint32_t i = 0; i < nb; i++) {
        r = read_entry(q, &pos, i, &sn[i], repair_log, dropped, err);
        if (r < 0) {
            break;
        }
        if (pos - off > QCOW2_MAX_SNAPSHOTS_BYTES) {
            r = blk_error_set(err, -EFBIG, "Snapshot table is too big");
            break;
        }
    }
    if (r < 0) {
        qcow2_snapshot_free_table(sn, nb);
        return r;
    }
    *out = sn;
    *size = pos - off;
    return 0;
}

/* Serialise the in-memory table; *len gets its size. Caller frees. */
static uint8_t *
build_table(const struct qcow2 *q, uint64_t *len)
{
    uint64_t size = 0, pos = 0;
    uint8_t *buf;

    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        const struct qcow2_snapshot *sn = &q->snapshots[i];

        size = (size + 7) & ~7ULL;
        size += SN_HEADER_SIZE + sn->extra_data_size + strlen(sn->id_str) +
                strlen(sn->name);
    }
    buf = xzalloc(size ? size : 1);
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        const struct qcow2_snapshot *sn = &q->snapshots[i];
        size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);
        uint8_t *h;

        pos = (pos + 7) & ~7ULL;
        h = buf + pos;
        qcow2_put_be64(h, sn->l1_table_offset);
        qcow2_put_be32(h + 8, sn->l1_size);
        qcow2_put_be16(h + 12, (uint16_t)id_len);
        qcow2_put_be16(h + 14, (uint16_t)name_len);
        qcow2_put_be32(h + 16, sn->date_sec);
        qcow2_put_be32(h + 20, sn->date_nsec);
        qcow2_put_be64(h + 24, sn->vm_clock_nsec);
        /* bigger VM states are only in the extra data (spec) */
        qcow2_put_be32(h + 32, sn->vm_state_size <= UINT32_MAX ?
                       (uint32_t)sn->vm_state_size : 0);
        qcow2_put_be32(h + 36, sn->extra_data_size);
        pos += SN_HEADER_SIZE;
        qcow2_put_be64(buf + pos, sn->vm_state_size);
        qcow2_put_be64(buf + pos + 8, sn->disk_size);
        qcow2_put_be64(buf + pos + 16, sn->icount);
        if (sn->extra_data_size > SN_EXTRA_SIZE) {
            memcpy(buf + pos + SN_EXTRA_SIZE, sn->unknown_extra_data,
                   sn->extra_data_size - SN_EXTRA_SIZE);
        }
        pos += sn->extra_data_size;
        memcpy(buf + pos, sn->id_str, id_len);
        pos += id_len;
        memcpy(buf + pos, sn->name, name_len);
        pos += name_len;
    }
    *len = size;
    return buf;
}

/*
 * Write the in-memory table to newly allocated clusters, point the
 * header at it, then free the old table (QEMU's qcow2_write_snapshots).
 */
int
qcow2_snapshot_write_table(struct qcow2 *q, int *free_failed,
                           struct blk_error *err)
{
    uint64_t len = 0;
    uint8_t *buf = build_table(q, &len), hdr[12];
    int64_t off = 0;
    int r;

    if (len > QCOW2_MAX_SNAPSHOTS_BYTES) {
        free(buf);
        return blk_error_set(err, -EFBIG, "snapshot table too large");
    }
    if (len > 0) {
        off = qcow2_alloc_clusters(q, len, err);
        if (off < 0) {
            free(buf);
            return (int)off;
        }
    }
    r = qcow2_flush_locked(q, err);
    if (r == 0 && len > 0) {
        r = qcow2_pre_write_check(q, 0, (uint64_t)off, len, false, err);
    }
    if (r == 0 && len > 0) {
        r = blk_child_pwrite(q->file, (uint64_t)off, buf, len, 0, err);
    }
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    free(buf);
    if (r < 0) {
        goto out_free_new;
    }
    qcow2_put_be32(hdr, q->nb_snapshots);
    qcow2_put_be64(hdr + 4, (uint64_t)off);
    r = blk_child_pwrite(q->file, 60, hdr, sizeof(hdr), 0, err);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        goto out_free_new;
    }
    if (q->snapshots_size > 0) {
        struct blk_error ferr = BLK_ERROR_INIT;
        int64_t flen = blk_child_get_length(q->file);
        int fr;

        /*
         * A leak at worst; check reports it the way QEMU prints it.  A
         * table past the end of the file has no refcounts to drop (QEMU
         * would try to grow the refcount table for it).
         */
        if (flen >= 0 && q->snapshots_offset + q->snapshots_size >
                         (uint64_t)flen) {
            fr = -EINVAL;
        } else {
            fr = qcow2_update_refcount(q, q->snapshots_offset,
                                       q->snapshots_size, -1,
                                       QCOW2_DISCARD_SNAPSHOT, &ferr);
        }
        if (fr < 0 && free_failed != NULL) {
            *free_failed = fr;
        }
    }
    q->snapshots_offset = (uint64_t)off;
    q->snapshots_size = len;
    q->h.nb_snapshots = q->nb_snapshots;
    q->h.snapshots_offset = (uint64_t)off;
    return 0;

out_free_new:
    if (len > 0) {
        qcow2_free_clusters(q, (uint64_t)off, len, QCOW2_DISCARD_ALWAYS);
    }
    return r;
}

/* ---- refcounts of everything an L1 table reaches --------------------------- */

/*
 * A normal or preallocated-zero entry (QEMU's qcow2_get_cluster_type):
 * it has a host offset, or, with an external data file, offset 0 marked
 * COPIED.
 */
static bool
entry_has_cluster(const struct qcow2 *q, uint64_t e)
{
    if (e & QCOW2_L2E_OFFSET_MASK) {
        return true;
    }
    return q->data_file != q->file && (e & QCOW2_OFLAG_COPIED) &&
           !((e & QCOW2_OFLAG_ZERO) && !q->extended_l2);
}

/* One L2 entry: adjust the data refcount and recompute OFLAG_COPIED. */
static int
update_l2_entry(struct qcow2 *q, uint64_t *e, int addend, uint64_t l2_off,
                uint64_t idx, struct blk_error *err)
{
    uint64_t entry = *e & ~QCOW2_OFLAG_COPIED, rc = 0;
    int r;

    if (entry & QCOW2_OFLAG_COMPRESSED) {
        if (addend != 0) {
            uint64_t coff, clen;

            qcow2_parse_compressed(q, entry, &coff, &clen);
            r = qcow2_update_refcount(q, coff, clen, addend,
                                      QCOW2_DISCARD_SNAPSHOT, err);
            if (r < 0) {
                return r;
            }
        }
        rc = 2;                         /* never set COPIED on these */
    } else if (entry_has_cluster(q, *e) && q->data_file == q->file) {
        uint64_t off = entry & QCOW2_L2E_OFFSET_MASK;

        if (qcow2_offset_into_cluster(q, off) != 0) {
            return qcow2_signal_corruption(q, err, "Cluster allocation offset "
                                           "%#" PRIx64 " unaligned (L2 offset: "
                                           "%#" PRIx64 ", L2 index: %#x)", off,
                                           l2_off, (unsigned)idx);
        }
        if (addend != 0) {
            r = qcow2_update_refcount(q, off, 1, addend,
                                      QCOW2_DISCARD_SNAPSHOT, err);
            if (r < 0) {
                return r;
            }
        }
        r = qcow2_get_refcount(q, off >> q->cluster_bits, &rc, err);
        if (r < 0) {
            return r;
        }
    } else if (entry_has_cluster(q, *e)) {
        rc = 1;                         /* external data file: always 1 */
    }
    if (rc == 1) {
        entry |= QCOW2_OFLAG_COPIED;
    }
    *e = entry;
    return 0;
}

/* Every slice of the L2 table at l2_off. */
static int
update_l2_table(struct qcow2 *q, uint64_t l2_off, int addend,
                struct blk_error *err)
{
    size_t slice_bytes = qcow2_cache_table_size(q->l2_cache);
    uint64_t per = slice_bytes / q->l2_entry_size;

    for (uint64_t s = 0; s < q->cluster_size; s += slice_bytes) {
        void *slice;
        int r = qcow2_cache_get(q, q->l2_cache, l2_off + s, &slice, err);

        if (r < 0) {
            return r;
        }
        for (uint64_t j = 0; j < per; j++) {
            uint64_t old = qcow2_l2_get(q, slice, j), e = old;

            r = update_l2_entry(q, &e, addend, l2_off, s / q->l2_entry_size + j,
                                err);
            if (r < 0) {
                qcow2_cache_put(q->l2_cache, &slice);
                return r;
            }
            if (e != old) {
                if (addend > 0) {
                    qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
                }
                qcow2_l2_set(q, slice, j, e);
                qcow2_cache_mark_dirty(q->l2_cache, slice);
            }
        }
        qcow2_cache_put(q->l2_cache, &slice);
    }
    return 0;
}

/*
 * Add addend (-1, 0, 1) to the refcount of every cluster the L1 table at
 * l1_off reaches and recompute the OFLAG_COPIED flags (QEMU's
 * qcow2_update_snapshot_refcount).  The active table is used from memory
 * even when its on-disk copy was already overwritten (apply relies on
 * it).  The L1 table is written back unless addend < 0.
 */
static int
update_snapshot_refcount(struct qcow2 *q, uint64_t l1_off, uint32_t l1_size,
                         int addend, struct blk_error *err)
{
    bool active = l1_off == q->l1_offset;
    uint64_t *l1 = q->l1;
    bool modified = false;
    int r = 0;

    if (!active) {
        uint8_t *raw = blk_try_malloc((size_t)l1_size * 8 + 1);

        l1 = blk_try_malloc((size_t)l1_size * 8 + 1);
        if (raw == NULL || l1 == NULL) {
            free(raw);
            free(l1);
            return blk_error_set(err, -ENOMEM, "Cannot allocate memory");
        }
        r = l1_size ? blk_child_pread(q->file, l1_off, raw,
                                      (size_t)l1_size * 8, err) : 0;
        for (uint32_t i = 0; r == 0 && i < l1_size; i++) {
            l1[i] = qcow2_be64(raw + (size_t)i * 8);
        }
        free(raw);
        if (r < 0) {
            free(l1);
            return r;
        }
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t old = l1[i], l2_off = old & QCOW2_L1E_OFFSET_MASK, rc;

        if (old == 0) {
            continue;
        }
        if (qcow2_offset_into_cluster(q, l2_off) != 0) {
            r = qcow2_signal_corruption(q, err, "L2 table offset %#" PRIx64
                                        " unaligned (L1 index: %#x)", l2_off,
                                        i);
            goto out;
        }
        r = update_l2_table(q, l2_off, addend, err);
        if (r < 0) {
            goto out;
        }
        if (addend != 0) {
            r = qcow2_update_refcount(q, l2_off, 1, addend,
                                      QCOW2_DISCARD_SNAPSHOT, err);
            if (r < 0) {
                goto out;
            }
        }
        r = qcow2_get_refcount(q, l2_off >> q->cluster_bits, &rc, err);
        if (r < 0) {
            goto out;
        }
        if (rc == 1) {
            l2_off |= QCOW2_OFLAG_COPIED;
        }
        if (l2_off != old) {
            l1[i] = l2_off;
            modified = true;
        }
    }
    r = qcow2_flush_locked(q, err);
    if (r == 0 && addend >= 0 && modified) {
        uint8_t *raw = xmalloc((size_t)l1_size * 8);

        for (uint32_t i = 0; i < l1_size; i++) {
            qcow2_put_be64(raw + (size_t)i * 8, l1[i]);
        }
        r = blk_child_pwrite(q->file, l1_off, raw, (size_t)l1_size * 8, 0,
                             err);
        if (r == 0) {
            r = blk_child_flush(q->file, err);
        }
        free(raw);
    }
out:
    if (!active) {
        free(l1);
    }
    return r;
}

/* ---- the driver ops ---------------------------------------------------------- */

static int
find_by_id(const struct qcow2 *q, const char *id)
{
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        if (strcmp(q->snapshots[i].id_str, id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int
find_by_name(const struct qcow2 *q, const char *name)
{
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        if (strcmp(q->snapshots[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* QEMU's qcow2_validate_table for a snapshot's L1 table. */
static int
validate_sn_l1(const struct qcow2 *q, const struct qcow2_snapshot *sn,
               struct blk_error *err)
{
    if (sn->l1_size > QCOW2_MAX_L1_BYTES / 8) {
        return blk_error_set(err, -EFBIG, "Snapshot L1 table too large");
    }
    if ((uint64_t)INT64_MAX - (uint64_t)sn->l1_size * 8 < sn->l1_table_offset ||
        qcow2_offset_into_cluster(q, sn->l1_table_offset) != 0) {
        return blk_error_set(err, -EINVAL, "Snapshot L1 table offset invalid");
    }
    return 0;
}

int
qcow2_snapshot_list(struct blk_node *bs, struct blk_snapshot_info **list,
                    size_t *n, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct blk_snapshot_info *l;

    (void)err;
    pthread_mutex_lock(&q->lock);
    l = xcalloc(q->nb_snapshots ? q->nb_snapshots : 1, sizeof(*l));
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        const struct qcow2_snapshot *sn = &q->snapshots[i];

        l[i].id = xstrdup(sn->id_str);
        l[i].name = xstrdup(sn->name);
        l[i].vm_state_size = sn->vm_state_size;
        l[i].date_sec = sn->date_sec;
        l[i].date_nsec = sn->date_nsec;
        l[i].vm_clock_nsec = sn->vm_clock_nsec;
        l[i].icount = sn->icount;
    }
    *list = l;
    *n = q->nb_snapshots;
    pthread_mutex_unlock(&q->lock);
    return 0;
}

static int
create_locked(struct qcow2 *q, const char *name, struct blk_error *err)
{
    struct qcow2_snapshot sn, *nl;
    struct timespec now;
    unsigned long max_id = 0;
    uint64_t bytes = (uint64_t)q->l1_size * 8;
    uint8_t *raw;
    int64_t off;
    int r;

    if (q->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        return blk_error_set(err, -EFBIG, "File too large");
    }
    if (q->data_file != q->file) {
        return blk_error_set(err, -ENOTSUP, "Operation not supported");
    }
    if (strlen(name) > UINT16_MAX) {
        return blk_error_set(err, -EINVAL, "snapshot name is too long");
    }
    memset(&sn, 0, sizeof(sn));
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        unsigned long id = strtoul(q->snapshots[i].id_str, NULL, 10);

        if (id > max_id) {
            max_id = id;
        }
    }
    clock_gettime(CLOCK_REALTIME, &now);
    sn.id_str = xasprintf("%lu", max_id + 1);
    sn.name = xstrdup(name);
    sn.disk_size = q->size;
    sn.date_sec = (uint32_t)now.tv_sec;
    /* qemu-img takes the time in microseconds */
    sn.date_nsec = (uint32_t)(now.tv_nsec / 1000 * 1000);
    sn.icount = 0;
    sn.extra_data_size = SN_EXTRA_SIZE;
    sn.l1_size = q->l1_size;

    off = qcow2_alloc_clusters(q, bytes ? bytes : 1, err);
    if (off < 0) {
        r = (int)off;
        goto out_free;
    }
    sn.l1_table_offset = (uint64_t)off;
    raw = xzalloc(bytes ? bytes : 1);
    for (uint32_t i = 0; i < q->l1_size; i++) {
        qcow2_put_be64(raw + (size_t)i * 8, q->l1[i]);
    }
    r = qcow2_pre_write_check(q, 0, (uint64_t)off, bytes, false, err);
    if (r == 0 && bytes > 0) {
        r = blk_child_pwrite(q->file, (uint64_t)off, raw, bytes, 0, err);
    }
    free(raw);
    if (r < 0) {
        goto out_free;
    }
    r = update_snapshot_refcount(q, q->l1_offset, q->l1_size, 1, err);
    if (r < 0) {
        goto out_free;
    }
    nl = xrealloc(q->snapshots, (q->nb_snapshots + 1) * sizeof(*nl));
    q->snapshots = nl;
    q->snapshots[q->nb_snapshots++] = sn;
    r = qcow2_snapshot_write_table(q, NULL, err);
    if (r < 0) {
        q->nb_snapshots--;
        goto out_free;
    }
    return 0;

out_free:
    free(sn.id_str);
    free(sn.name);
    return r;
}

int
qcow2_snapshot_create(struct blk_node *bs, const char *name,
                      struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    int r;

    pthread_mutex_lock(&q->lock);
    r = create_locked(q, name, err);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int
goto_locked(struct qcow2 *q, struct qcow2_snapshot *sn, struct blk_error *err)
{
    uint64_t cur_bytes, sn_bytes;
    uint8_t *raw;
    int r;

    r = qcow2_grow_l1(q, sn->l1_size, true, err);
    if (r < 0) {
        return r;
    }
    cur_bytes = (uint64_t)q->l1_size * 8;
    sn_bytes = (uint64_t)sn->l1_size * 8;
    raw = blk_try_zalloc(cur_bytes ? cur_bytes : 1);
    if (raw == NULL) {
        return blk_error_set(err, -ENOMEM, "Cannot allocate memory");
    }
    r = sn_bytes ? blk_child_pread(q->file, sn->l1_table_offset, raw, sn_bytes,
                                   err) : 0;
    if (r == 0) {
        r = update_snapshot_refcount(q, sn->l1_table_offset, sn->l1_size, 1,
                                     err);
    }
    if (r == 0) {
        r = qcow2_pre_write_check(q, QCOW2_OL_ACTIVE_L1, q->l1_offset,
                                  cur_bytes, false, err);
    }
    if (r == 0 && cur_bytes > 0) {
        r = blk_child_pwrite(q->file, q->l1_offset, raw, cur_bytes, 0, err);
    }
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        free(raw);
        return r;
    }
    /* The in-memory table still holds the old entries: release them. */
    r = update_snapshot_refcount(q, q->l1_offset, q->l1_size, -1, err);
    for (uint32_t i = 0; i < q->l1_size; i++) {
        q->l1[i] = qcow2_be64(raw + (size_t)i * 8);
    }
    free(raw);
    if (r < 0) {
        return r;
    }
    return update_snapshot_refcount(q, q->l1_offset, q->l1_size, 0, err);
}

int
qcow2_snapshot_goto(struct blk_node *bs, const char *name,
                    struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct qcow2_snapshot *sn;
    uint64_t disk_size;
    int i, r;

    pthread_mutex_lock(&q->lock);
    i = find_by_id(q, name);
    if (i < 0) {
        i = find_by_name(q, name);
    }
    if (i < 0) {
        pthread_mutex_unlock(&q->lock);
        return blk_error_set(err, -ENOENT, "Failed to load snapshot: No such "
                             "file or directory");
    }
    sn = &q->snapshots[i];
    r = validate_sn_l1(q, sn, err);
    disk_size = sn->disk_size;
    pthread_mutex_unlock(&q->lock);
    if (r < 0) {
        return r;
    }
    if (disk_size != q->size) {
        /* The snapshot had another size: resize first, as QEMU 7.2 does. */
        const struct blk_driver *drv = blk_node_driver(bs);

        r = drv->truncate(bs, disk_size, true, BLK_PREALLOC_OFF, err);
        if (r < 0) {
            return r;
        }
    }
    pthread_mutex_lock(&q->lock);
    i = find_by_id(q, name);
    if (i < 0) {
        i = find_by_name(q, name);
    }
    r = i < 0 ? blk_error_set(err, -ENOENT, "Failed to load snapshot: No "
                              "such file or directory")
              : goto_locked(q, &q->snapshots[i], err);
    if (r < 0 && !blk_error_is_set(err)) {
        blk_error_set(err, r, "Failed to load snapshot");
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int
delete_locked(struct qcow2 *q, const char *name, struct blk_error *err)
{
    struct qcow2_snapshot sn;
    int i = find_by_name(q, name);
    int r;

    if (i < 0) {
        return blk_error_set(err, -ENOENT, "snapshot not found");
    }
    sn = q->snapshots[i];
    r = validate_sn_l1(q, &sn, err);
    if (r < 0) {
        return r;
    }
    memmove(&q->snapshots[i], &q->snapshots[i + 1],
            (q->nb_snapshots - (uint32_t)i - 1) * sizeof(sn));
    q->nb_snapshots--;
    r = qcow2_snapshot_write_table(q, NULL, err);
    if (r < 0) {
        /* Put it back: nothing changed on disk. */
        memmove(&q->snapshots[i + 1], &q->snapshots[i],
                (q->nb_snapshots - (uint32_t)i) * sizeof(sn));
        q->snapshots[i] = sn;
        q->nb_snapshots++;
        blk_error_prefix(err, "Failed to remove snapshot from snapshot list: ");
        return r;
    }
    free(sn.id_str);
    free(sn.name);
    free(sn.unknown_extra_data);
    r = update_snapshot_refcount(q, sn.l1_table_offset, sn.l1_size, -1, err);
    if (r < 0) {
        blk_error_prefix(err, "Failed to free the cluster and L1 table: ");
        return r;
    }
    qcow2_free_clusters(q, sn.l1_table_offset, (uint64_t)sn.l1_size * 8,
                        QCOW2_DISCARD_SNAPSHOT);
    r = update_snapshot_refcount(q, q->l1_offset, q->l1_size, 0, err);
    if (r < 0) {
        blk_error_prefix(err, "Failed to update snapshot status in disk: ");
        return r;
    }
    return qcow2_flush_locked(q, err);
}

int
qcow2_snapshot_delete(struct blk_node *bs, const char *name,
                      struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    int r;

    pthread_mutex_lock(&q->lock);
    r = delete_locked(q, name, err);
    pthread_mutex_unlock(&q->lock);
    return r;
}

/* QEMU's find_snapshot_by_id_and_name: both given must match. */
static int
find_by_id_and_name(const struct qcow2 *q, const char *id, const char *name)
{
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        if ((id == NULL || strcmp(q->snapshots[i].id_str, id) == 0) &&
            (name == NULL || strcmp(q->snapshots[i].name, name) == 0)) {
            return (int)i;
        }
    }
    return -1;
}

int
qcow2_snapshot_load_tmp(struct blk_node *bs, const char *id, const char *name,
                        struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct qcow2_snapshot *sn;
    uint64_t bytes, *l1;
    int i, r;

    pthread_mutex_lock(&q->lock);
    i = id == NULL && name == NULL ? -1 : find_by_id_and_name(q, id, name);
    if (i < 0) {
        r = blk_error_set(err, -ENOENT, "Can't find snapshot");
        goto out_unlock;
    }
    if (!q->read_only) {
        r = blk_error_set(err, -EINVAL, "Device is not readonly");
        goto out_unlock;
    }
    sn = &q->snapshots[i];
    r = validate_sn_l1(q, sn, err);
    if (r < 0) {
        goto out_unlock;
    }
    bytes = (uint64_t)sn->l1_size * 8;
    l1 = blk_try_zalloc(bytes ? bytes : 8);
    if (l1 == NULL) {
        r = blk_error_set(err, -ENOMEM, "Cannot allocate memory");
        goto out_unlock;
    }
    r = bytes ? blk_child_pread(q->file, sn->l1_table_offset, l1, bytes, err)
              : 0;
    if (r < 0) {
        free(l1);
        blk_error_clear(err);
        r = blk_error_set(err, r, "Failed to read l1 table for snapshot");
        goto out_unlock;
    }
    for (uint32_t k = 0; k < sn->l1_size; k++) {
        l1[k] = qcow2_be64((const uint8_t *)&l1[k]);
    }
    /* The image size stays the active one, as in QEMU. */
    free(q->l1);
    q->l1 = l1;
    q->l1_size = sn->l1_size;
    q->l1_offset = sn->l1_table_offset;

out_unlock:
    pthread_mutex_unlock(&q->lock);
    return r;
}
