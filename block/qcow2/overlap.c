/*
 * overlap.c - qcow2 metadata overlap checks: before any write to the image
 * file, make sure it does not land on metadata (header, L1/L2 tables,
 * refcount structures, snapshot table, bitmap directory), as QEMU's
 * overlap-check option selects.  Called under q->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

static const char *const ol_names[QCOW2_OL_MAX_BITNR] = {
    "qcow2_header", "active L1 table", "active L2 table", "refcount table",
    "refcount block", "snapshot table", "inactive L1 table",
    "inactive L2 table", "bitmap directory",
};

/* Option names of the per-kind booleans, in bit order. */
static const char *const ol_opts[QCOW2_OL_MAX_BITNR] = {
    "main-header", "active-l1", "active-l2", "refcount-table",
    "refcount-block", "snapshot-table", "inactive-l1", "inactive-l2",
    "bitmap-directory",
};

const char *
qcow2_overlap_name(int kind)
{
    for (int i = 0; i < QCOW2_OL_MAX_BITNR; i++) {
        if (kind == (1 << i)) {
            return ol_names[i];
        }
    }
    return "metadata";
}

static bool
overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

static int
check_inactive_l2(struct qcow2 *q, uint64_t off, uint64_t len)
{
    for (uint32_t s = 0; s < q->nb_snapshots; s++) {
        const struct qcow2_snapshot *sn = &q->snapshots[s];
        uint64_t bytes = (uint64_t)sn->l1_size * 8;
        struct blk_error ignored = BLK_ERROR_INIT;
        uint8_t *l1;
        int hit = 0;

        if (bytes == 0 || bytes > QCOW2_MAX_L1_BYTES) {
            continue;
        }
        l1 = blk_try_malloc(bytes);
        if (l1 == NULL) {
            return 0;
        }
        if (blk_child_pread(q->file, sn->l1_table_offset, l1, bytes,
                            &ignored) == 0) {
            for (uint32_t i = 0; i < sn->l1_size && !hit; i++) {
                uint64_t l2 = qcow2_be64(l1 + (uint64_t)i * 8) &
                              QCOW2_L1E_OFFSET_MASK;

                hit = l2 && overlaps(off, len, l2, q->cluster_size);
            }
        }
        free(l1);
        if (hit) {
            return QCOW2_OL_INACTIVE_L2;
        }
    }
    return 0;
}

int
qcow2_check_metadata_overlap(struct qcow2 *q, int ignore, uint64_t off,
                             uint64_t len)
{
    int chk = q->overlap_check & ~ignore;

    if (chk == 0 || len == 0) {
        return 0;
    }
    len = (qcow2_offset_into_cluster(q, off) + len + q->cluster_size - 1) &
          ~(q->cluster_size - 1);
    off = qcow2_start_of_cluster(q, off);

    if ((chk & QCOW2_OL_MAIN_HEADER) && off < q->cluster_size) {
        return QCOW2_OL_MAIN_HEADER;
    }
    if ((chk & QCOW2_OL_ACTIVE_L1) &&
        overlaps(off, len, q->l1_offset, (uint64_t)q->l1_size * 8)) {
        return QCOW2_OL_ACTIVE_L1;
    }
    if ((chk & QCOW2_OL_REFCOUNT_TABLE) &&
        overlaps(off, len, q->reftable_offset, (uint64_t)q->reftable_size * 8)) {
        return QCOW2_OL_REFCOUNT_TABLE;
    }
    if ((chk & QCOW2_OL_SNAPSHOT_TABLE) &&
        overlaps(off, len, q->snapshots_offset, q->snapshots_size)) {
        return QCOW2_OL_SNAPSHOT_TABLE;
    }
    if (chk & QCOW2_OL_INACTIVE_L1) {
        for (uint32_t s = 0; s < q->nb_snapshots; s++) {
            if (overlaps(off, len, q->snapshots[s].l1_table_offset,
                         (uint64_t)q->snapshots[s].l1_size * 8)) {
                return QCOW2_OL_INACTIVE_L1;
            }
        }
    }
    if ((chk & QCOW2_OL_ACTIVE_L2) && q->l1 != NULL) {
        for (uint32_t i = 0; i < q->l1_size; i++) {
            uint64_t l2 = q->l1[i] & QCOW2_L1E_OFFSET_MASK;

            if (l2 && overlaps(off, len, l2, q->cluster_size)) {
                return QCOW2_OL_ACTIVE_L2;
            }
        }
    }
    if ((chk & QCOW2_OL_REFCOUNT_BLOCK) && q->reftable != NULL) {
        /*
         * Entries past max_reftable_index are zero (refcount.c keeps the
         * index wherever the table changes), so the scan stops there: a
         * large, mostly empty table cost every write a full walk.
         */
        uint32_t end = q->reftable_size == 0 ? 0 :
                       q->max_reftable_index < q->reftable_size ?
                       q->max_reftable_index + 1 : q->reftable_size;

        for (uint32_t i = 0; i < end; i++) {
            uint64_t rb = q->reftable[i] & QCOW2_REFT_OFFSET_MASK;

            if (rb && overlaps(off, len, rb, q->cluster_size)) {
                return QCOW2_OL_REFCOUNT_BLOCK;
            }
        }
    }
    if ((chk & QCOW2_OL_BITMAP_DIRECTORY) && q->has_bitmaps_ext &&
        overlaps(off, len, q->bitmaps.directory_offset,
                 q->bitmaps.directory_size)) {
        return QCOW2_OL_BITMAP_DIRECTORY;
    }
    if (chk & QCOW2_OL_INACTIVE_L2) {
        return check_inactive_l2(q, off, len);
    }
    return 0;
}

int
qcow2_pre_write_check(struct qcow2 *q, int ignore, uint64_t off, uint64_t len,
                      bool data_file, struct blk_error *err)
{
    int kind;

    if (data_file && q->data_file != q->file) {
        return 0;
    }
    kind = qcow2_check_metadata_overlap(q, ignore, off, len);
    if (kind == 0) {
        return 0;
    }
    return qcow2_signal_corruption(q, err, "Preventing invalid write on "
                                   "metadata (overlaps with %s)",
                                   qcow2_overlap_name(kind));
}

int
qcow2_parse_overlap_opts(const struct kv *opts, int *mask,
                         struct blk_error *err)
{
    const struct kv *oc = opts ? kv_get(opts, "overlap-check") : NULL;
    const char *tmpl = "cached";
    const struct kv *flags = NULL;
    int base;

    if (oc != NULL && oc->type == KV_STRING) {
        tmpl = oc->v.s;
    } else if (oc != NULL && oc->type == KV_OBJECT) {
        flags = oc;
        tmpl = kv_get_str(oc, "template", "cached");
    }
    if (strcmp(tmpl, "none") == 0) {
        base = QCOW2_OL_NONE;
    } else if (strcmp(tmpl, "constant") == 0) {
        base = QCOW2_OL_CONSTANT;
    } else if (strcmp(tmpl, "cached") == 0) {
        base = QCOW2_OL_CACHED;
    } else if (strcmp(tmpl, "all") == 0) {
        base = QCOW2_OL_ALL;
    } else {
        return blk_error_set(err, -EINVAL, "Unsupported value '%s' for qcow2 "
                             "option 'overlap-check'. Allowed are any of the "
                             "following: none, constant, cached, all", tmpl);
    }
    for (int i = 0; i < QCOW2_OL_MAX_BITNR; i++) {
        bool dflt = (base >> i) & 1;
        bool on = flags ? kv_get_bool(flags, ol_opts[i], dflt) : dflt;

        base = on ? (base | (1 << i)) : (base & ~(1 << i));
    }
    *mask = base;
    return 0;
}
