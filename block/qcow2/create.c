/*
 * create.c - qcow2 image creation, laid out exactly as QEMU 7.2's
 * qemu-img create does it: a bootstrap header, refcount table and block in
 * clusters 0-2, then the image is opened and grown like any other (L1
 * table at cluster 3), so byte-for-byte comparisons with qemu-img hold.
 * Also the preallocation modes (metadata, falloc, full) of truncate.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

struct create_opts {
    uint64_t size;
    int version;
    uint64_t cluster_size;
    unsigned refcount_bits;
    bool lazy_refcounts;
    bool extended_l2;
    bool data_file_raw;
    enum qcow2_compression compression;
    enum blk_prealloc prealloc;
    const char *backing_file;
    const char *backing_fmt;
    const struct kv *file;
    const struct kv *data_file;
};

static int
parse_prealloc(const char *s, enum blk_prealloc *p, struct blk_error *err)
{
    if (strcmp(s, "off") == 0) {
        *p = BLK_PREALLOC_OFF;
    } else if (strcmp(s, "metadata") == 0) {
        *p = BLK_PREALLOC_METADATA;
    } else if (strcmp(s, "falloc") == 0) {
        *p = BLK_PREALLOC_FALLOC;
    } else if (strcmp(s, "full") == 0) {
        *p = BLK_PREALLOC_FULL;
    } else {
        return blk_error_set(err, -EINVAL, "Invalid preallocation mode: '%s'",
                             s);
    }
    return 0;
}

static int
parse_opts(const struct kv *opts, struct create_opts *o, struct blk_error *err)
{
    const char *v = kv_get_str(opts, "version", "v3");
    const char *ct = kv_get_str(opts, "compression-type", "zlib");
    int64_t rb = kv_get_int(opts, "refcount-bits", 16);
    int r;

    memset(o, 0, sizeof(*o));
    o->file = kv_get(opts, "file");
    o->data_file = kv_get(opts, "data-file");
    /* qemu-img rounds the size up to whole sectors. */
    o->size = (kv_get_uint(opts, "size", 0) + 511) & ~511ULL;
    o->version = strcmp(v, "v2") == 0 ? 2 : 3;
    o->cluster_size = kv_get_uint(opts, "cluster-size",
                                  QCOW2_DEFAULT_CLUSTER_SIZE);
    o->lazy_refcounts = kv_get_bool(opts, "lazy-refcounts", false);
    o->extended_l2 = kv_get_bool(opts, "extended-l2", false);
    o->data_file_raw = kv_get_bool(opts, "data-file-raw", false);
    o->compression = strcmp(ct, "zstd") == 0 ? QCOW2_COMPRESSION_ZSTD
                                            : QCOW2_COMPRESSION_ZLIB;
    o->backing_file = kv_get_str(opts, "backing-file", NULL);
    o->backing_fmt = kv_get_str(opts, "backing-fmt", NULL);
    r = parse_prealloc(kv_get_str(opts, "preallocation", "off"), &o->prealloc,
                       err);
    if (r < 0) {
        return r;
    }
    if (kv_get(opts, "encrypt") != NULL) {
        return blk_error_set(err, -ENOTSUP, "encrypted qcow2 images are not "
                             "supported");
    }
    if (o->cluster_size < 512 || o->cluster_size > (2u << 20) ||
        (o->cluster_size & (o->cluster_size - 1)) != 0) {
        return blk_error_set(err, -EINVAL, "Cluster size must be a power of "
                             "two between 512 and 2048k");
    }
    if (rb < 1 || rb > 64 || (rb & (rb - 1)) != 0) {
        return blk_error_set(err, -EINVAL, "Refcount width must be a power of "
                             "two and may not exceed 64 bits");
    }
    o->refcount_bits = (unsigned)rb;
    if (o->version < 3 && o->refcount_bits != 16) {
        return blk_error_set(err, -EINVAL, "Different refcount widths than 16 "
                             "bits require compatibility level 1.1 or above "
                             "(use version=v3 or greater)");
    }
    if (o->version < 3 && o->lazy_refcounts) {
        return blk_error_set(err, -EINVAL, "Lazy refcounts only supported with "
                             "compatibility level 1.1 and above (use "
                             "version=v3 or greater)");
    }
    if (o->extended_l2) {
        if (o->version < 3) {
            return blk_error_set(err, -EINVAL, "Extended L2 entries are only "
                                 "supported with compatibility level 1.1 and "
                                 "above (use version=v3 or greater)");
        }
        if (o->cluster_size < 16384) {
            return blk_error_set(err, -EINVAL, "Extended L2 entries are only "
                                 "supported with cluster sizes of at least "
                                 "16384 bytes");
        }
    }
    if (o->version < 3 && o->compression != QCOW2_COMPRESSION_ZLIB) {
        return blk_error_set(err, -EINVAL, "Non-zlib compression type is only "
                             "supported with compatibility level 1.1 and above "
                             "(use version=v3 or greater)");
    }
    if (o->backing_fmt != NULL && o->backing_file == NULL) {
        return blk_error_set(err, -EINVAL, "Backing format cannot be used "
                             "without backing file");
    }
    if (o->backing_file != NULL && o->prealloc != BLK_PREALLOC_OFF &&
        !o->extended_l2) {
        return blk_error_set(err, -EINVAL, "Backing file and preallocation can "
                             "only be used at the same time if extended_l2 is "
                             "on");
    }
    if (o->data_file != NULL && o->version < 3) {
        return blk_error_set(err, -EINVAL, "External data files are only "
                             "supported with compatibility level 1.1 and above "
                             "(use version=v3 or greater)");
    }
    if (o->data_file_raw && o->data_file == NULL) {
        return blk_error_set(err, -EINVAL, "data-file-raw requires data-file");
    }
    if (o->data_file_raw && o->backing_file != NULL) {
        return blk_error_set(err, -EINVAL, "Backing file and data-file-raw "
                             "cannot be used at the same time");
    }
    return 0;
}

/* Clusters 0-2: header, refcount table, one (empty) refcount block. */
static int
write_bootstrap(const struct create_opts *o, struct blk_error *err)
{
    struct blk_node *file = blk_create_open_child(o->file, err);
    uint64_t cs = o->cluster_size;
    unsigned order = 0;
    uint8_t *buf;
    int r;

    if (file == NULL) {
        return err != NULL && err->code < 0 ? err->code : -EIO;
    }
    while ((1u << order) < o->refcount_bits) {
        order++;
    }
    buf = xzalloc(cs * 2);
    qcow2_put_be32(buf, QCOW2_MAGIC);
    qcow2_put_be32(buf + 4, (uint32_t)o->version);
    qcow2_put_be32(buf + 20, (uint32_t)__builtin_ctzll(cs));
    qcow2_put_be64(buf + 48, cs);
    qcow2_put_be32(buf + 56, 1);
    if (o->version >= 3) {
        uint64_t incompat = 0;

        if (o->data_file != NULL) {
            incompat |= QCOW2_INCOMPAT_DATA_FILE;
        }
        if (o->compression != QCOW2_COMPRESSION_ZLIB) {
            incompat |= QCOW2_INCOMPAT_COMPRESSION;
        }
        if (o->extended_l2) {
            incompat |= QCOW2_INCOMPAT_EXTL2;
        }
        qcow2_put_be64(buf + 72, incompat);
        qcow2_put_be64(buf + 80, o->lazy_refcounts ?
                       QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        qcow2_put_be32(buf + 96, order);
        qcow2_put_be32(buf + 100, QCOW2_HEADER_SIZE);
        buf[104] = (uint8_t)o->compression;
    }
    r = blk_create_truncate(file, 0, BLK_PREALLOC_OFF, err);
    if (r == 0) {
        r = blk_create_pwrite(file, 0, buf, cs, err);
    }
    if (r == 0) {
        memset(buf, 0, cs * 2);
        qcow2_put_be64(buf, 2 * cs);
        r = blk_create_pwrite(file, cs, buf, cs * 2, err);
    }
    if (r == 0) {
        r = blk_create_flush(file, err);
    }
    free(buf);
    blk_create_close_child(file);
    return r;
}

static char *
data_file_name(const struct kv *ref)
{
    if (ref->type == KV_STRING) {
        return xstrdup(ref->v.s);
    }
    return xstrdup(kv_get_str(ref, "filename", ""));
}

int
qcow2_create(const struct kv *opts, struct blk_error *err)
{
    struct create_opts o;
    struct blk_node *bs;
    struct kv *oo;
    struct qcow2 *q;
    int64_t off;
    int r;

    r = parse_opts(opts, &o, err);
    if (r < 0) {
        return r;
    }
    /*
     * A raw data file is readable as a raw image on its own, so (as in
     * QEMU) every cluster is mapped: metadata preallocation at least.
     */
    if (o.data_file_raw && o.prealloc == BLK_PREALLOC_OFF) {
        o.prealloc = BLK_PREALLOC_METADATA;
    }
    r = write_bootstrap(&o, err);
    if (r < 0) {
        return r;
    }
    oo = kv_new_object();
    kv_set(oo, "driver", kv_new_str("qcow2"));
    kv_set(oo, "file", kv_dup(o.file));
    if (o.data_file != NULL) {
        kv_set(oo, "data-file", kv_dup(o.data_file));
    }
    bs = blk_create_open_child(oo, err);
    kv_free(oo);
    if (bs == NULL) {
        return err != NULL && err->code < 0 ? err->code : -EIO;
    }
    q = blk_node_state(bs);
    pthread_mutex_lock(&q->lock);
    off = qcow2_alloc_clusters(q, 3 * o.cluster_size, err);
    if (off < 0) {
        r = (int)off;
        goto out_unlock;
    }
    if (o.data_file != NULL) {
        free(q->data_file_name);
        q->data_file_name = data_file_name(o.data_file);
        if (o.data_file_raw) {
            q->h.autoclear_features |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
            q->data_file_raw = true;
        }
    }
    r = qcow2_write_header(q, err);
    if (r < 0) {
        goto out_unlock;
    }
    pthread_mutex_unlock(&q->lock);
    r = blk_driver_qcow2.truncate(bs, o.size, false, o.prealloc, err);
    pthread_mutex_lock(&q->lock);
    if (r < 0) {
        goto out_unlock;
    }
    if (o.backing_file != NULL) {
        free(q->backing_file);
        free(q->backing_format);
        q->backing_file = xstrdup(o.backing_file);
        q->backing_format = o.backing_fmt ? xstrdup(o.backing_fmt) : NULL;
        r = qcow2_write_header(q, err);
    }

out_unlock:
    pthread_mutex_unlock(&q->lock);
    blk_create_close_child(bs);
    return r;
}

/* ---- preallocation (truncate) ------------------------------------------- */

int
qcow2_preallocate(struct qcow2 *q, uint64_t from, uint64_t to,
                  enum blk_prealloc mode, struct blk_error *err)
{
    uint64_t off = from, last_end = 0;
    int64_t flen;
    int r = 0;

    q->in_prealloc = true;
    while (off < to) {
        uint64_t n = to - off, host;

        r = qcow2_alloc_for_write(q, off, &n, &host, err);
        if (r < 0) {
            break;
        }
        last_end = host + n;
        off += n;
    }
    q->in_prealloc = false;
    if (r < 0) {
        return r;
    }
    r = qcow2_flush_locked(q, err);
    if (r < 0) {
        return r;
    }
    flen = blk_child_get_length(q->data_file);
    if (flen >= 0 && last_end > (uint64_t)flen) {
        r = blk_child_truncate(q->data_file, last_end, false,
                               mode == BLK_PREALLOC_METADATA ? BLK_PREALLOC_OFF
                                                             : mode, err);
    }
    return r;
}

int
qcow2_preallocate_data(struct qcow2 *q, uint64_t from, uint64_t to,
                       enum blk_prealloc mode, struct blk_error *err)
{
    int64_t flen = blk_child_get_length(q->file);
    uint64_t old_fsize, ndata, nl2, start, guest, host;
    int64_t a, got;
    int r;

    if (q->data_file != q->file) {
        return qcow2_preallocate(q, from, to, mode, err);
    }
    if (flen < 0) {
        return blk_error_set(err, (int)flen, "cannot get the image file size");
    }
    old_fsize = ((uint64_t)flen + q->cluster_size - 1) & ~(q->cluster_size - 1);
    ndata = (((to + q->cluster_size - 1) & ~(q->cluster_size - 1)) -
             qcow2_start_of_cluster(q, from)) >> q->cluster_bits;
    nl2 = (ndata + q->l2_entries - 1) / q->l2_entries + 1;
    a = qcow2_refcount_area(q, old_fsize, ndata + nl2, true, 0, 0, err);
    if (a < 0) {
        return (int)a;
    }
    start = (uint64_t)a;
    got = qcow2_alloc_clusters_at(q, start, ndata, err);
    if (got < 0) {
        return (int)got;
    }
    if ((uint64_t)got != ndata) {
        return blk_error_set(err, -EIO, "preallocation area is not free");
    }
    r = blk_child_truncate(q->file, start + ndata * q->cluster_size, false,
                           mode, err);
    if (r < 0) {
        return r;
    }
    guest = qcow2_start_of_cluster(q, from);
    host = start;
    while (ndata > 0) {
        uint64_t i, n;
        void *slice;

        r = qcow2_get_l2_slice(q, guest, true, &slice, &i, err);
        if (r < 0) {
            return r;
        }
        n = q->l2_slice_entries - i < ndata ? q->l2_slice_entries - i : ndata;
        qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
        qcow2_cache_mark_dirty(q->l2_cache, slice);
        for (uint64_t c = 0; c < n; c++) {
            uint64_t old = qcow2_l2_get(q, slice, i + c);

            qcow2_l2_set(q, slice, i + c,
                         (host + c * q->cluster_size) | QCOW2_OFLAG_COPIED);
            /* Subclusters stay unallocated (QEMU's preallocation). */
            if ((old & QCOW2_OFLAG_COMPRESSED) ||
                (old & QCOW2_L2E_OFFSET_MASK) != 0) {
                qcow2_free_any_cluster(q, old, 1, QCOW2_DISCARD_NEVER);
            }
        }
        qcow2_cache_put(q->l2_cache, &slice);
        guest += n * q->cluster_size;
        host += n * q->cluster_size;
        ndata -= n;
    }
    return qcow2_flush_locked(q, err);
}
