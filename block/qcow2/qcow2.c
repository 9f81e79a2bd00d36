/*
 * qcow2.c - the qcow2 format driver: open/close, options, block status,
 * flush, truncate, and the vtable (the guest I/O path is rw.c).
 * Behaviour follows QEMU 7.2; the on-disk format is docs/interop/qcow2.txt.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

#define DEFAULT_L2_CACHE_MAX (32ULL << 20)
#define DEFAULT_CLEAN_INTERVAL 600
#define MIN_L2_CACHE_ENTRIES 2
#define MIN_REFCOUNT_CACHE_ENTRIES 4

/* ---- flush, status, length ------------------------------------------------- */

int
qcow2_flush_locked(struct qcow2 *q, struct blk_error *err)
{
    int r;

    /* After corruption was found nothing more is written (QEMU stops too). */
    if (q->read_only || q->corrupt) {
        return 0;
    }
    r = qcow2_cache_write(q, q->l2_cache, err);
    if (r == 0) {
        r = qcow2_cache_write(q, q->refcount_cache, err);
    }
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    return r;
}

static int
qcow2_flush(struct blk_node *bs, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    int r;

    pthread_mutex_lock(&q->lock);
    r = qcow2_flush_locked(q, err);
    pthread_mutex_unlock(&q->lock);
    if (r == 0 && q->data_file != q->file && !q->read_only) {
        r = blk_child_flush(q->data_file, err);
    }
    return r;
}

/*
 * QEMU's test for a metadata-preallocated image: many more clusters have
 * a refcount than the file has storage for, so "allocated" clusters may
 * be holes and block status must ask the file (RECURSE).
 */
static void
detect_metadata_prealloc(struct qcow2 *q)
{
    struct blk_error ignored = BLK_ERROR_INIT;
    int64_t flen = blk_child_get_length(q->file);
    int64_t alloc = blk_node_get_allocated_size(blk_child_node(q->file));
    uint64_t real, threshold, end, count = 0;

    q->prealloc_checked = true;
    q->metadata_prealloc = false;
    if (flen < 0 || alloc < 0) {
        return;
    }
    real = (uint64_t)alloc / q->cluster_size;
    threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
    end = qcow2_size_to_clusters(q, (uint64_t)flen);
    for (uint64_t i = 0; i < end && count <= threshold; i++) {
        uint64_t rc;

        if (qcow2_get_refcount(q, i, &rc, &ignored) < 0) {
            return;
        }
        count += rc != 0;
    }
    q->metadata_prealloc = count > threshold;
}

static int
qcow2_block_status(struct blk_node *bs, uint64_t off, uint64_t len,
                   struct blk_status *st, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t n = len, host;
    enum qcow2_subcluster_type t;
    int r;

    pthread_mutex_lock(&q->lock);
    if (!q->prealloc_checked) {
        detect_metadata_prealloc(q);
    }
    r = qcow2_get_host_offset(q, off, &n, &host, &t, err);
    pthread_mutex_unlock(&q->lock);
    if (r < 0) {
        return r;
    }
    memset(st, 0, sizeof(*st));
    st->pnum = n;
    /* QEMU 7.2 also maps unallocated subclusters of allocated clusters. */
    if (t == QCOW2_SC_NORMAL || t == QCOW2_SC_ZERO_ALLOC ||
        t == QCOW2_SC_UNALLOCATED_ALLOC) {
        st->map = host;
        st->file = blk_child_node(q->data_file);
        st->flags |= BLK_STATUS_OFFSET_VALID;
    }
    if (t == QCOW2_SC_ZERO_PLAIN || t == QCOW2_SC_ZERO_ALLOC) {
        st->flags |= BLK_STATUS_ZERO;
    } else if (t != QCOW2_SC_UNALLOCATED_PLAIN &&
               t != QCOW2_SC_UNALLOCATED_ALLOC) {
        st->flags |= BLK_STATUS_DATA;
    }
    if (t == QCOW2_SC_COMPRESSED) {
        st->flags |= BLK_STATUS_COMPRESSED;
    }
    if (q->metadata_prealloc && (st->flags & BLK_STATUS_DATA) &&
        (st->flags & BLK_STATUS_OFFSET_VALID)) {
        st->flags |= BLK_STATUS_RECURSE;
    }
    if (st->flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO)) {
        st->flags |= BLK_STATUS_ALLOCATED;
    }
    return 0;
}

static int64_t
qcow2_get_length(struct blk_node *bs)
{
    return (int64_t)qcow2_state(bs)->size;
}

/*
 * Shrink to len (QEMU's order): discard the clusters past the end, free
 * the L2 tables of L1 entries past it, then cut the file after the last
 * cluster still in use.
 */
static int
shrink(struct qcow2 *q, uint64_t len, struct blk_error *err)
{
    uint64_t start = (len + q->cluster_size - 1) & ~(q->cluster_size - 1);
    uint64_t new_l1 = qcow2_l1_entries_for(len, q->cluster_bits,
                                           q->extended_l2);
    int64_t flen = blk_child_get_length(q->file);
    int r;

    r = qcow2_discard_clusters(q, start, q->size - start, QCOW2_DISCARD_ALWAYS,
                               true, err);
    if (r < 0) {
        return r;
    }
    if (new_l1 < q->l1_size) {
        r = qcow2_flush_locked(q, err);
        if (r < 0) {
            return r;
        }
        for (uint64_t i = new_l1; i < q->l1_size; i++) {
            uint64_t l2 = q->l1[i] & QCOW2_L1E_OFFSET_MASK;

            if (l2 != 0) {
                qcow2_free_clusters(q, l2, q->cluster_size,
                                    QCOW2_DISCARD_ALWAYS);
            }
            q->l1[i] = 0;
        }
        r = qcow2_write_l1_entries(q, new_l1, q->l1_size - new_l1, err);
        if (r < 0) {
            return r;
        }
    }
    r = qcow2_flush_locked(q, err);
    if (r == 0 && flen > 0) {
        uint64_t clusters = ((uint64_t)flen + q->cluster_size - 1) >>
                            q->cluster_bits;
        uint64_t last = clusters;

        while (last > 0) {
            uint64_t rc;

            r = qcow2_get_refcount(q, last - 1, &rc, err);
            if (r < 0 || rc > 0) {
                break;
            }
            last--;
        }
        if (r == 0 && last < clusters) {
            struct blk_error ignored = BLK_ERROR_INIT;

            /* A failure here only leaves a longer file, as in QEMU. */
            blk_child_truncate(q->file, last << q->cluster_bits, false,
                               BLK_PREALLOC_OFF, &ignored);
        }
    }
    return r;
}

static int
qcow2_truncate(struct blk_node *bs, uint64_t len, bool exact,
               enum blk_prealloc prealloc, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint8_t buf[8];
    int r;

    if (len & 511) {
        return blk_error_set(err, -EINVAL, "The new size must be a multiple of "
                             "512");
    }
    pthread_mutex_lock(&q->lock);
    if (q->nb_snapshots > 0 && q->version < 3) {
        r = blk_error_set(err, -ENOTSUP, "Can't resize a v2 image which has "
                          "snapshots");
        goto out;
    }
    if (len < q->size) {
        r = shrink(q, len, err);
    } else {
        r = qcow2_grow_l1(q, qcow2_l1_entries_for(len, q->cluster_bits,
                                                  q->extended_l2), true, err);
    }
    if (r == 0 && q->data_file != q->file && prealloc == BLK_PREALLOC_OFF) {
        /* The external data file follows the virtual size (QEMU does). */
        r = blk_child_truncate(q->data_file, len, exact, BLK_PREALLOC_OFF,
                               err);
    }
    if (r < 0) {
        goto out;
    }
    qcow2_put_be64(buf, len);
    r = blk_child_pwrite(q->file, 24, buf, 8, 0, err);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r == 0) {
        uint64_t old = q->size;

        q->size = len;
        q->h.size = len;
        q->l1_vm_state_index = qcow2_l1_entries_for(len, q->cluster_bits,
                                                    q->extended_l2);
        if (len > old && prealloc == BLK_PREALLOC_METADATA) {
            r = qcow2_preallocate(q, old, len, prealloc, err);
        } else if (len > old && prealloc != BLK_PREALLOC_OFF) {
            r = qcow2_preallocate_data(q, old, len, prealloc, err);
        }
    }
out:
    pthread_mutex_unlock(&q->lock);
    return r;
}

/* ---- open / close ------------------------------------------------------------ */

static int
read_cache_options(struct qcow2 *q, const struct kv *opts, uint64_t *l2_bytes,
                   uint64_t *entry_size, uint64_t *rc_bytes,
                   struct blk_error *err)
{
    bool comb_set = kv_get(opts, "cache-size") != NULL;
    bool l2_set = kv_get(opts, "l2-cache-size") != NULL;
    bool rc_set = kv_get(opts, "refcount-cache-size") != NULL;
    bool es_set = kv_get(opts, "l2-cache-entry-size") != NULL;
    uint64_t comb = kv_get_uint(opts, "cache-size", 0);
    uint64_t l2_max = kv_get_uint(opts, "l2-cache-size", DEFAULT_L2_CACHE_MAX);
    uint64_t min_rc = MIN_REFCOUNT_CACHE_ENTRIES * q->cluster_size;
    uint64_t max_l2_entries = (q->size + q->cluster_size - 1) / q->cluster_size;
    uint64_t max_l2 = (max_l2_entries * 8 + q->cluster_size - 1) /
                      q->cluster_size * q->cluster_size;

    *rc_bytes = kv_get_uint(opts, "refcount-cache-size", 0);
    *entry_size = kv_get_uint(opts, "l2-cache-entry-size", q->cluster_size);
    *l2_bytes = max_l2 < l2_max ? max_l2 : l2_max;
    if (comb_set) {
        if (l2_set && rc_set) {
            return blk_error_set(err, -EINVAL, "cache-size, l2-cache-size and "
                                 "refcount-cache-size may not be set at the "
                                 "same time");
        } else if (l2_set && l2_max > comb) {
            return blk_error_set(err, -EINVAL, "l2-cache-size may not exceed "
                                 "cache-size");
        } else if (*rc_bytes > comb) {
            return blk_error_set(err, -EINVAL, "refcount-cache-size may not "
                                 "exceed cache-size");
        }
        if (l2_set) {
            *rc_bytes = comb - *l2_bytes;
        } else if (rc_set) {
            *l2_bytes = comb - *rc_bytes;
        } else if (comb >= max_l2 + min_rc) {
            *l2_bytes = max_l2;
            *rc_bytes = comb - max_l2;
        } else {
            *rc_bytes = comb < min_rc ? comb : min_rc;
            *l2_bytes = comb - *rc_bytes;
        }
    }
    if (*l2_bytes < max_l2 && !es_set) {
        *entry_size = q->cluster_size < 4096 ? q->cluster_size : 4096;
    }
    if (*entry_size < 512 || *entry_size > q->cluster_size ||
        (*entry_size & (*entry_size - 1)) != 0) {
        return blk_error_set(err, -EINVAL, "L2 cache entry size must be a "
                             "power of two between 512 and the cluster size "
                             "(%" PRIu64 ")", q->cluster_size);
    }
    return 0;
}

static int
apply_options(struct qcow2 *q, struct blk_node *bs, const struct kv *opts,
              struct blk_error *err)
{
    uint64_t l2_bytes, entry_size, rc_bytes, l2_n, rc_n;
    int64_t interval;
    int r;

    r = read_cache_options(q, opts, &l2_bytes, &entry_size, &rc_bytes, err);
    if (r < 0) {
        return r;
    }
    l2_n = l2_bytes / entry_size;
    if (l2_n < MIN_L2_CACHE_ENTRIES) {
        l2_n = MIN_L2_CACHE_ENTRIES;
    }
    if (l2_n > INT32_MAX) {
        return blk_error_set(err, -EINVAL, "L2 cache size too big");
    }
    rc_n = rc_bytes / q->cluster_size;
    if (rc_n < MIN_REFCOUNT_CACHE_ENTRIES) {
        rc_n = MIN_REFCOUNT_CACHE_ENTRIES;
    }
    if (rc_n > INT32_MAX) {
        return blk_error_set(err, -EINVAL, "Refcount cache size too big");
    }
    interval = kv_get_int(opts, "cache-clean-interval", DEFAULT_CLEAN_INTERVAL);
    if (interval < 0 || interval > (int64_t)UINT32_MAX) {
        return blk_error_set(err, -EINVAL, "Cache clean interval too big");
    }
    q->lazy_refcounts = kv_get_bool(opts, "lazy-refcounts",
                                    q->h.compatible_features &
                                    QCOW2_COMPAT_LAZY_REFCOUNTS);
    if (q->lazy_refcounts && q->version < 3) {
        return blk_error_set(err, -EINVAL, "Lazy refcounts require a qcow2 "
                             "image with at least qemu 1.1 compatibility "
                             "level");
    }
    r = qcow2_parse_overlap_opts(opts, &q->overlap_check, err);
    if (r < 0) {
        return r;
    }
    if (kv_get(opts, "encrypt") != NULL) {
        return blk_error_set(err, -EINVAL, "No encryption in image header, but "
                             "options specified format 'luks'");
    }
    q->discard_passthrough[QCOW2_DISCARD_NEVER] = false;
    q->discard_passthrough[QCOW2_DISCARD_ALWAYS] = true;
    q->discard_passthrough[QCOW2_DISCARD_REQUEST] =
        kv_get_bool(opts, "pass-discard-request", blk_node_discard_unmap(bs));
    q->discard_passthrough[QCOW2_DISCARD_SNAPSHOT] =
        kv_get_bool(opts, "pass-discard-snapshot", true);
    q->discard_passthrough[QCOW2_DISCARD_OTHER] =
        kv_get_bool(opts, "pass-discard-other", false);

    q->l2_slice_entries = entry_size / q->l2_entry_size;
    q->cache_clean_interval = (uint64_t)interval;
    q->l2_cache = qcow2_cache_new(q, (unsigned)l2_n, entry_size,
                                  QCOW2_OL_ACTIVE_L2);
    q->refcount_cache = qcow2_cache_new(q, (unsigned)rc_n, q->cluster_size,
                                        QCOW2_OL_REFCOUNT_BLOCK);
    if (q->l2_cache == NULL || q->refcount_cache == NULL) {
        return blk_error_set(err, -ENOMEM, "Could not allocate metadata "
                             "caches");
    }
    qcow2_cache_set_clean_interval(q->l2_cache, q->cache_clean_interval);
    qcow2_cache_set_clean_interval(q->refcount_cache, q->cache_clean_interval);
    return 0;
}

/* Fill geometry from the parsed header. */
static void
set_geometry(struct qcow2 *q)
{
    const struct qcow2_header *h = &q->h;

    q->version = (int)h->version;
    q->cluster_bits = h->cluster_bits;
    q->cluster_size = 1ULL << h->cluster_bits;
    q->extended_l2 = h->incompatible_features & QCOW2_INCOMPAT_EXTL2;
    q->l2_entry_size = q->extended_l2 ? 16 : 8;
    q->l2_bits = q->cluster_bits - (q->extended_l2 ? 4 : 3);
    q->l2_entries = 1ULL << q->l2_bits;
    q->l2_slice_entries = q->l2_entries;
    q->subclusters_per_cluster = q->extended_l2 ? QCOW2_EXTL2_SUBCLUSTERS : 1;
    q->subcluster_bits = q->cluster_bits - (q->extended_l2 ? 5 : 0);
    q->subcluster_size = 1ULL << q->subcluster_bits;
    q->refcount_order = h->refcount_order;
    q->refcount_bits = 1u << h->refcount_order;
    q->refcount_max = q->refcount_bits == 64 ? UINT64_MAX
                                             : (1ULL << q->refcount_bits) - 1;
    q->refcount_block_bits = q->cluster_bits - (h->refcount_order - 3);
    if (h->refcount_order < 3) {
        q->refcount_block_bits = q->cluster_bits + (3 - h->refcount_order);
    }
    q->refcount_block_entries = 1ULL << q->refcount_block_bits;
    q->csize_shift = 62 - (q->cluster_bits - 8);
    q->csize_mask = (1ULL << (q->cluster_bits - 8)) - 1;
    q->cluster_offset_mask = (1ULL << q->csize_shift) - 1;
    q->size = h->size;
    q->compression_type = h->compression_type;
    q->data_file_raw = h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW;
    q->l1_vm_state_index = qcow2_l1_entries_for(h->size, q->cluster_bits,
                                                q->extended_l2);
    q->l1_size = h->l1_size;
    q->l1_offset = h->l1_table_offset;
    q->snapshots_offset = h->snapshots_offset;
    q->nb_snapshots = h->nb_snapshots;
}

static int
read_header(struct qcow2 *q, struct qcow2_header_info *hi, struct blk_error *err)
{
    int64_t flen = blk_child_get_length(q->file);
    uint8_t first[QCOW2_HEADER_SIZE];
    uint64_t want, have;
    uint8_t *buf;
    int r;

    if (flen < 0) {
        return blk_error_set(err, (int)flen, "Could not read qcow2 header");
    }
    memset(first, 0, sizeof(first));
    have = (uint64_t)flen < sizeof(first) ? (uint64_t)flen : sizeof(first);
    if (have > 0) {
        r = blk_child_pread(q->file, 0, first, have, err);
        if (r < 0) {
            blk_error_prefix(err, "Could not read qcow2 header: ");
            return r;
        }
    }
    want = sizeof(first);
    {
        uint32_t cb = qcow2_be32(first + 20);

        if (qcow2_be32(first) == QCOW2_MAGIC && cb >= QCOW2_MIN_CLUSTER_BITS &&
            cb <= QCOW2_MAX_CLUSTER_BITS) {
            want = 1ULL << cb;
        }
    }
    buf = xzalloc(want);
    have = (uint64_t)flen < want ? (uint64_t)flen : want;
    r = have ? blk_child_pread(q->file, 0, buf, have, err) : 0;
    if (r == 0) {
        r = qcow2_parse_header_cluster(buf, want, hi, err);
    }
    free(buf);
    return r;
}

static int
load_l1(struct qcow2 *q, struct blk_error *err)
{
    uint64_t bytes = (uint64_t)q->l1_size * 8;
    uint8_t *raw;
    int r;

    q->l1 = blk_try_zalloc(bytes ? bytes : 8);
    if (q->l1 == NULL) {
        return blk_error_set(err, -ENOMEM, "Could not allocate L1 table");
    }
    if (bytes == 0) {
        return 0;
    }
    raw = blk_try_malloc(bytes);
    if (raw == NULL) {
        return blk_error_set(err, -ENOMEM, "Could not allocate L1 table");
    }
    r = blk_child_pread(q->file, q->l1_offset, raw, bytes, err);
    if (r < 0) {
        free(raw);
        blk_error_prefix(err, "Could not read L1 table: ");
        return r;
    }
    for (uint64_t i = 0; i < q->l1_size; i++) {
        q->l1[i] = qcow2_be64(raw + i * 8);
    }
    free(raw);
    return 0;
}

static int
open_data_file(struct qcow2 *q, struct blk_node *bs, const struct kv *opts,
               struct blk_error *err)
{
    bool want = q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
    struct blk_child *c = NULL;

    if (kv_get(opts, "data-file") != NULL) {
        if (!want) {
            return blk_error_set(err, -EINVAL, "'data-file' can only be set "
                                 "for images with an external data file");
        }
        c = blk_node_open_child(bs, opts, "data-file", "data-file",
                                BLK_ROLE_DATA, false, err);
        if (c == NULL) {
            return -EINVAL;
        }
    } else if (want && q->data_file_name != NULL) {
        struct kv *o = kv_new_object(), *ref = kv_new_object();

        /* as QEMU 7.2 does, a relative name is from the working directory */
        kv_set(ref, "driver", kv_new_str("file"));
        kv_set(ref, "filename", kv_new_str(q->data_file_name));
        kv_set(o, "data-file", ref);
        c = blk_node_open_child(bs, o, "data-file", "data-file", BLK_ROLE_DATA,
                                false, err);
        kv_free(o);
        if (c == NULL) {
            return -EINVAL;
        }
    }
    if (want && c == NULL) {
        return blk_error_set(err, -EINVAL, "'data-file' is required for this "
                             "image");
    }
    if (!want && q->data_file_raw) {
        return blk_error_set(err, -EINVAL, "data-file-raw requires a data file");
    }
    q->data_file = c != NULL ? c : q->file;
    return 0;
}

static int
open_backing(struct qcow2 *q, struct blk_node *bs, const struct kv *opts,
             struct blk_error *err)
{
    const struct kv *b = kv_get(opts, "backing");

    q->backing = NULL;
    if (b != NULL) {
        if (b->type == KV_NULL) {
            return 0;
        }
        q->backing = blk_node_open_child(bs, opts, "backing", "backing",
                                         BLK_ROLE_COW, false, err);
        return q->backing != NULL ? 0 : -EINVAL;
    }
    if (q->backing_file == NULL ||
        (blk_node_open_flags(bs) & BLK_OPEN_NO_BACKING)) {
        return 0;
    }
    q->backing = blk_node_open_backing(bs, q->backing_file, q->backing_format,
                                       err);
    return q->backing != NULL ? 0 : -EINVAL;
}

static void
release_state(struct qcow2 *q)
{
    struct qcow2_ext *e = q->exts;

    while (e != NULL) {
        struct qcow2_ext *next = e->next;

        free(e->data);
        free(e);
        e = next;
    }
    q->exts = NULL;
    qcow2_cache_free(q->l2_cache);
    qcow2_cache_free(q->refcount_cache);
    q->l2_cache = q->refcount_cache = NULL;
    qcow2_refcount_close(q);
    qcow2_free_snapshots(q);
    free(q->l1);
    free(q->unknown_header_fields);
    free(q->backing_file);
    free(q->backing_format);
    free(q->data_file_name);
    q->l1 = NULL;
    q->unknown_header_fields = NULL;
    q->backing_file = q->backing_format = q->data_file_name = NULL;
}

static int
qcow2_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct qcow2_header_info hi;
    unsigned oflags = blk_node_open_flags(bs);
    bool update = false;
    int r;

    memset(&hi, 0, sizeof(hi));
    pthread_mutex_init(&q->lock, NULL);
    q->bs = bs;
    q->read_only = blk_node_is_read_only(bs);
    q->check_mode = oflags & BLK_OPEN_CHECK;
    q->file = blk_node_open_child(bs, opts, "file", "file",
                                  BLK_ROLE_DATA | BLK_ROLE_METADATA |
                                  BLK_ROLE_PRIMARY, false, err);
    if (q->file == NULL) {
        return -EINVAL;
    }
    q->data_file = q->file;
    hi.check_mode = q->check_mode;
    r = read_header(q, &hi, err);
    if (r < 0) {
        goto out_fail;
    }
    if ((hi.h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) &&
        !q->read_only && !q->check_mode) {
        r = blk_error_set(err, -EACCES, "qcow2: Image is corrupt; cannot be "
                          "opened read/write");
        goto out_fail;
    }
    q->h = hi.h;
    q->unknown_header_fields = hi.unknown_fields;
    q->unknown_header_fields_len = hi.unknown_fields_len;
    q->exts = hi.exts;
    q->backing_file = hi.backing_file;
    q->backing_format = hi.backing_format;
    q->data_file_name = hi.data_file;
    q->has_bitmaps_ext = hi.has_bitmaps_ext;
    q->bitmaps = hi.bitmaps;
    hi.unknown_fields = NULL;
    hi.exts = NULL;
    hi.backing_file = hi.backing_format = hi.data_file = NULL;
    update = hi.bitmaps_stale;
    set_geometry(q);

    r = load_l1(q, err);
    if (r == 0) {
        r = apply_options(q, bs, opts, err);
    }
    if (r == 0) {
        r = qcow2_refcount_init(q, err);
    }
    if (r == 0) {
        r = open_data_file(q, bs, opts, err);
    }
    if (r == 0 && !q->check_mode) {
        r = qcow2_read_snapshots(q, err);
    }
    if (r == 0) {
        r = open_backing(q, bs, opts, err);
    }
    if (r < 0) {
        goto out_fail;
    }
    if (q->h.autoclear_features & ~(uint64_t)QCOW2_AUTOCLEAR_MASK) {
        update = true;
    }
    if (update && !q->read_only) {
        q->h.autoclear_features &= QCOW2_AUTOCLEAR_MASK;
        r = qcow2_write_header(q, err);
        if (r < 0) {
            blk_error_prefix(err, "Could not update qcow2 header: ");
            goto out_fail;
        }
    }
    if (!q->read_only && !q->check_mode &&
        (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        const struct blk_driver *drv = blk_node_driver(bs);
        struct blk_check_result res;

        memset(&res, 0, sizeof(res));
        if (drv->check == NULL) {
            r = blk_error_set(err, -ENOTSUP, "Could not repair dirty image: "
                              "no check support");
            goto out_fail;
        }
        r = drv->check(bs, &res, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS,
                       err);
        if (r < 0 || res.check_errors) {
            r = r < 0 ? r : -EIO;
            blk_error_set(err, r, "Could not repair dirty image");
            goto out_fail;
        }
    }
    if (!q->check_mode) {
        r = qcow2_bitmaps_load(q, err);
        if (r < 0) {
            goto out_fail;
        }
    }
    {
        struct blk_limits lim;

        memset(&lim, 0, sizeof(lim));
        lim.request_alignment = 1;
        lim.pwrite_zeroes_alignment = (uint32_t)q->subcluster_size;
        lim.pdiscard_alignment = (uint32_t)q->cluster_size;
        blk_node_set_limits(bs, &lim);
    }
    qcow2_header_info_release(&hi);
    return 0;

out_fail:
    qcow2_header_info_release(&hi);
    release_state(q);
    pthread_mutex_destroy(&q->lock);
    return r;
}

static void
qcow2_close(struct blk_node *bs)
{
    struct qcow2 *q = qcow2_state(bs);
    struct blk_error err = BLK_ERROR_INIT;

    pthread_mutex_lock(&q->lock);
    if (!q->read_only) {
        qcow2_bitmaps_store(q, &err);
        qcow2_flush_locked(q, &err);
        if (q->lazy_refcounts || q->dirty_marked) {
            qcow2_mark_clean(q, &err);
        }
    }
    pthread_mutex_unlock(&q->lock);
    release_state(q);
    pthread_mutex_destroy(&q->lock);
}

static int
qcow2_probe(const uint8_t *buf, size_t len, const char *filename)
{
    if (len >= 8 && qcow2_be32(buf) == QCOW2_MAGIC && qcow2_be32(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

const struct blk_driver blk_driver_qcow2 = {
    .name = "qcow2",
    .compressed_writes = true,
    .try_preadv = qcow2_try_preadv,
    .aio_preadv = qcow2_aio_preadv,
    .map_data = qcow2_map_data,
    .aio_pwritev = qcow2_aio_pwritev,
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct qcow2),
    .is_format = true,
    .has_backing = true,
    .create_type = "BlockdevCreateOptionsQcow2",
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .zero = qcow2_zero,
    .discard = qcow2_discard,
    .flush = qcow2_flush,
    .block_status = qcow2_block_status,
    .get_length = qcow2_get_length,
    .truncate = qcow2_truncate,
    .create = qcow2_create,
    .check = qcow2_check,
    .get_info = qcow2_get_info,
    .amend = qcow2_amend,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_goto = qcow2_snapshot_goto,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_load_tmp = qcow2_snapshot_load_tmp,
    .make_empty = qcow2_make_empty,
    .load_vmstate = qcow2_load_vmstate,
    .save_vmstate = qcow2_save_vmstate,
    .reopen_prepare = qcow2_reopen_prepare,
    .reopen_commit = qcow2_reopen_commit,
    .reopen_abort = qcow2_reopen_abort,
};
