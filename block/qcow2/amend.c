/*
 * amend.c - change qcow2 format options in place (qemu-img amend):
 * compat up/downgrade (expanding zero clusters for v2), lazy refcounts,
 * refcount width, the external data file name, and the virtual size.
 * Errors use QEMU 7.2's wording.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

/* A bool member given as a JSON bool or a keyval string. */
static int
opt_bool(const struct kv *opts, const char *key, int dflt)
{
    const struct kv *v = kv_get(opts, key);

    if (v == NULL) {
        return dflt;
    }
    if (v->type == KV_BOOL) {
        return v->v.b;
    }
    if (v->type == KV_STRING) {
        return strcmp(v->v.s, "on") == 0 || strcmp(v->v.s, "true") == 0 ||
               strcmp(v->v.s, "yes") == 0;
    }
    return dflt;
}

static bool
opt_u64(const struct kv *opts, const char *key, uint64_t *out)
{
    const struct kv *v = kv_get(opts, key);

    if (v == NULL) {
        return false;
    }
    if (v->type == KV_INT) {
        *out = (uint64_t)v->v.i;
        return true;
    }
    if (v->type == KV_UINT) {
        *out = v->v.u;
        return true;
    }
    if (v->type == KV_STRING) {
        char *end;

        *out = strtoull(v->v.s, &end, 0);
        return *end == '\0';
    }
    return false;
}

/* ---- v3 -> v2: zero clusters become data (or unallocated) clusters ---- */

static int
expand_entry(struct qcow2 *q, void *slice, uint64_t j, uint64_t l2_rc,
             struct blk_error *err)
{
    uint64_t e = qcow2_l2_get(q, slice, j), off;
    int r;

    if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFLAG_ZERO)) {
        return 0;
    }
    off = e & QCOW2_L2E_OFFSET_MASK;
    if (off != 0) {
        uint64_t rc;

        r = qcow2_get_refcount(q, off >> q->cluster_bits, &rc, err);
        if (r < 0) {
            return r;
        }
        if (rc > l2_rc) {
            /*
             * Better than QEMU 7.2, which zeroes the cluster in place and
             * so destroys a snapshot's data: the cluster is also
             * referenced elsewhere, so give this entry a new one.
             */
            r = qcow2_update_refcount(q, off, 1, -(int64_t)l2_rc,
                                      QCOW2_DISCARD_NEVER, err);
            if (r < 0) {
                return r;
            }
            off = 0;
        }
    }
    if (off == 0) {
        int64_t a;

        if (q->backing == NULL && !(e & QCOW2_L2E_OFFSET_MASK)) {
            /* Nothing below: unallocated reads as zeroes too. */
            qcow2_l2_set(q, slice, j, 0);
            qcow2_cache_mark_dirty(q->l2_cache, slice);
            return 0;
        }
        a = qcow2_alloc_clusters(q, q->cluster_size, err);
        if (a < 0) {
            return (int)a;
        }
        off = (uint64_t)a;
        if (l2_rc > 1) {
            /* a shared L2 table: every sharer references the cluster */
            r = qcow2_update_refcount(q, off, 1, (int64_t)l2_rc - 1,
                                      QCOW2_DISCARD_OTHER, err);
            if (r < 0) {
                return r;
            }
        }
    }
    r = qcow2_pre_write_check(q, 0, off, q->cluster_size, true, err);
    if (r == 0) {
        r = blk_child_zero(q->data_file, off, q->cluster_size, 0, err);
    }
    if (r < 0) {
        return r;
    }
    qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
    qcow2_l2_set(q, slice, j, l2_rc == 1 ? off | QCOW2_OFLAG_COPIED : off);
    qcow2_cache_mark_dirty(q->l2_cache, slice);
    return 0;
}

static int
expand_l1(struct qcow2 *q, const uint64_t *l1, uint32_t l1_size,
          struct blk_error *err)
{
    size_t slice_bytes = qcow2_cache_table_size(q->l2_cache);
    uint64_t per = slice_bytes / q->l2_entry_size;

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK, l2_rc;
        int r;

        if (l2_off == 0) {
            continue;
        }
        r = qcow2_get_refcount(q, l2_off >> q->cluster_bits, &l2_rc, err);
        if (r < 0) {
            return r;
        }
        for (uint64_t s = 0; s < q->cluster_size; s += slice_bytes) {
            void *slice;

            r = qcow2_cache_get(q, q->l2_cache, l2_off + s, &slice, err);
            if (r < 0) {
                return r;
            }
            for (uint64_t j = 0; j < per && r == 0; j++) {
                r = expand_entry(q, slice, j, l2_rc, err);
            }
            qcow2_cache_put(q->l2_cache, &slice);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

static int
expand_zero_clusters(struct qcow2 *q, struct blk_error *err)
{
    int r = expand_l1(q, q->l1, q->l1_size, err);

    for (uint32_t i = 0; r == 0 && i < q->nb_snapshots; i++) {
        const struct qcow2_snapshot *sn = &q->snapshots[i];
        uint64_t bytes = (uint64_t)sn->l1_size * 8;
        uint8_t *raw = blk_try_malloc(bytes ? bytes : 1);
        uint64_t *l1 = blk_try_malloc(bytes ? bytes : 1);

        if (raw == NULL || l1 == NULL) {
            free(raw);
            free(l1);
            return blk_error_set(err, -ENOMEM, "Cannot allocate memory");
        }
        r = bytes ? blk_child_pread(q->file, sn->l1_table_offset, raw, bytes,
                                    err) : 0;
        for (uint32_t k = 0; r == 0 && k < sn->l1_size; k++) {
            l1[k] = qcow2_be64(raw + (size_t)k * 8);
        }
        if (r == 0) {
            r = expand_l1(q, l1, sn->l1_size, err);
        }
        free(raw);
        free(l1);
    }
    if (r == 0) {
        r = qcow2_flush_locked(q, err);
    }
    return r;
}

/* Does the active layer have a compressed cluster? */
static int
has_compressed(struct qcow2 *q, bool *any, struct blk_error *err)
{
    size_t slice_bytes = qcow2_cache_table_size(q->l2_cache);
    uint64_t per = slice_bytes / q->l2_entry_size;

    *any = false;
    for (uint32_t i = 0; i < q->l1_size && !*any; i++) {
        uint64_t l2_off = q->l1[i] & QCOW2_L1E_OFFSET_MASK;

        for (uint64_t s = 0; l2_off != 0 && s < q->cluster_size && !*any;
             s += slice_bytes) {
            void *slice;
            int r = qcow2_cache_get(q, q->l2_cache, l2_off + s, &slice, err);

            if (r < 0) {
                return r;
            }
            for (uint64_t j = 0; j < per; j++) {
                if (qcow2_l2_get(q, slice, j) & QCOW2_OFLAG_COMPRESSED) {
                    *any = true;
                    break;
                }
            }
            qcow2_cache_put(q->l2_cache, &slice);
        }
    }
    return 0;
}

static int
downgrade(struct qcow2 *q, struct blk_error *err)
{
    int r;

    if (q->refcount_order != 4) {
        return blk_error_set(err, -ENOTSUP, "compat=0.10 requires "
                             "refcount_bits=16");
    }
    if (q->data_file != q->file || q->data_file_name != NULL) {
        return blk_error_set(err, -ENOTSUP, "Cannot downgrade an image with "
                             "a data file");
    }
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        if (q->snapshots[i].vm_state_size > UINT32_MAX ||
            q->snapshots[i].disk_size != q->size) {
            return blk_error_set(err, -ENOTSUP, "Internal snapshots prevent "
                                 "downgrade of image");
        }
    }
    if (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        r = qcow2_mark_clean(q, err);
        if (r < 0) {
            blk_error_prefix(err, "Failed to make the image clean: ");
            return r;
        }
    }
    if (q->h.incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        bool any = false;

        r = has_compressed(q, &any, err);
        if (r < 0) {
            return blk_error_set(err, -EINVAL, "Failed to check block status");
        }
        if (any) {
            return blk_error_set(err, -ENOTSUP, "Cannot downgrade an image "
                                 "with zstd compression type and existing "
                                 "compressed clusters");
        }
        /* Nothing compressed yet: the default (zlib) will do. */
        q->h.incompatible_features &= ~(uint64_t)QCOW2_INCOMPAT_COMPRESSION;
        q->h.compression_type = QCOW2_COMPRESSION_ZLIB;
        q->compression_type = QCOW2_COMPRESSION_ZLIB;
    }
    if (q->h.incompatible_features) {
        return blk_error_set(err, -ENOTSUP, "Cannot downgrade an image with "
                             "incompatible features %#" PRIx64 " set",
                             q->h.incompatible_features);
    }
    q->h.compatible_features = 0;
    q->h.autoclear_features = 0;
    q->lazy_refcounts = false;
    r = expand_zero_clusters(q, err);
    if (r < 0) {
        blk_error_prefix(err, "Failed to turn zero into data clusters: ");
        return r;
    }
    q->version = 2;
    q->h.version = 2;
    q->h.header_length = QCOW2_V2_HEADER_SIZE;
    q->has_bitmaps_ext = false;
    r = qcow2_write_header(q, err);
    if (r < 0) {
        q->version = 3;
        q->h.version = 3;
        blk_error_prefix(err, "Failed to update the image header: ");
    }
    return r;
}

static int
upgrade(struct qcow2 *q, struct blk_error *err)
{
    int r;

    q->version = 3;
    q->h.version = 3;
    q->h.header_length = QCOW2_HEADER_SIZE;
    r = qcow2_write_header(q, err);
    if (r < 0) {
        q->version = 2;
        q->h.version = 2;
        q->h.header_length = QCOW2_V2_HEADER_SIZE;
        blk_error_prefix(err, "Failed to update the image header: ");
    }
    return r;
}

static int
set_lazy_refcounts(struct qcow2 *q, bool on, struct blk_error *err)
{
    int r;

    if (on) {
        if (q->version < 3) {
            return blk_error_set(err, -EINVAL, "Lazy refcounts only supported "
                                 "with compatibility level 1.1 and above (use "
                                 "compat=1.1 or greater)");
        }
        q->h.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        r = qcow2_write_header(q, err);
        if (r < 0) {
            q->h.compatible_features &= ~(uint64_t)QCOW2_COMPAT_LAZY_REFCOUNTS;
            blk_error_prefix(err, "Failed to update the image header: ");
            return r;
        }
        q->lazy_refcounts = true;
        return 0;
    }
    r = qcow2_mark_clean(q, err);
    if (r < 0) {
        blk_error_prefix(err, "Failed to make the image clean: ");
        return r;
    }
    q->h.compatible_features &= ~(uint64_t)QCOW2_COMPAT_LAZY_REFCOUNTS;
    r = qcow2_write_header(q, err);
    if (r < 0) {
        q->h.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        blk_error_prefix(err, "Failed to update the image header: ");
        return r;
    }
    q->lazy_refcounts = false;
    return 0;
}

static int
amend_locked(struct qcow2 *q, const struct kv *opts, struct blk_error *err)
{
    const char *version = kv_get_str(opts, "version", NULL);
    const char *data_file = kv_get_str(opts, "data-file", NULL);
    int target = q->version, lazy = opt_bool(opts, "lazy-refcounts", -1);
    uint64_t bits;
    int r;

    if (version != NULL) {
        target = strcmp(version, "v2") == 0 ? 2 : 3;
    }
    if (opt_bool(opts, "data-file-raw", -1) == 1 && !q->data_file_raw) {
        return blk_error_set(err, -ENOTSUP, "data-file-raw cannot be set on "
                             "existing images");
    }
    if (data_file != NULL && q->data_file_name == NULL) {
        return blk_error_set(err, -EINVAL, "data-file can only be set for "
                             "images that use an external data file");
    }
    if (opt_u64(opts, "refcount-bits", &bits)) {
        if (bits == 0 || bits > 64 || (bits & (bits - 1)) != 0) {
            return blk_error_set(err, -EINVAL, "Refcount width must be a "
                                 "power of two and may not exceed 64 bits");
        }
        if (bits != 16 && target < 3) {
            return blk_error_set(err, -EINVAL, "Refcount widths other than 16 "
                                 "bits require compatibility level 1.1 or "
                                 "above (use compat=1.1 or greater)");
        }
    } else {
        bits = q->refcount_bits;
    }
    if (lazy == 1 && target < 3) {
        return blk_error_set(err, -EINVAL, "Lazy refcounts only supported "
                             "with compatibility level 1.1 and above (use "
                             "compat=1.1 or greater)");
    }
    /* QEMU's order: upgrade first, then the options, downgrade last. */
    if (target > q->version) {
        r = upgrade(q, err);
        if (r < 0) {
            return r;
        }
    }
    if (bits != q->refcount_bits) {
        unsigned order = 0;

        while ((1u << order) < bits) {
            order++;
        }
        r = qcow2_change_refcount_order(q, order, err);
        if (r < 0) {
            return r;
        }
    }
    if (data_file != NULL && strcmp(data_file, q->data_file_name) != 0) {
        char *old = q->data_file_name;

        q->data_file_name = xstrdup(data_file);
        r = qcow2_write_header(q, err);
        if (r < 0) {
            free(q->data_file_name);
            q->data_file_name = old;
            blk_error_prefix(err, "Failed to update the image header: ");
            return r;
        }
        free(old);
    }
    if (lazy >= 0 &&
        lazy != ((q->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0)) {
        r = set_lazy_refcounts(q, lazy == 1, err);
        if (r < 0) {
            return r;
        }
    }
    if (target < q->version) {
        r = downgrade(q, err);
        if (r < 0) {
            return r;
        }
    }
    return qcow2_flush_locked(q, err);
}

int
qcow2_amend(struct blk_node *bs, const struct kv *opts, bool force,
            struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t size;
    int r;

    (void)force;
    if (q->read_only) {
        return blk_error_set(err, -EACCES, "image is read-only");
    }
    pthread_mutex_lock(&q->lock);
    r = amend_locked(q, opts, err);
    pthread_mutex_unlock(&q->lock);
    if (r < 0) {
        return r;
    }
    if (opt_u64(opts, "size", &size) && size != q->size) {
        const struct blk_driver *drv = blk_node_driver(bs);

        if (drv->truncate == NULL) {
            return blk_error_set(err, -ENOTSUP, "Operation not supported");
        }
        r = drv->truncate(bs, size, false, BLK_PREALLOC_OFF, err);
    }
    return r;
}
