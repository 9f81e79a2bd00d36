/*
 * cluster.c - qcow2 guest-to-host mapping: L1 growth, L2 tables (in cache
 * slices), lookups with subcluster types, and the metadata side of writes:
 * allocation in QEMU 7.2's order (L2 table before data), copy-on-write of
 * shared clusters, zero and discard.  Called under q->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

/* ---- entries ---------------------------------------------------------------- */

uint64_t
qcow2_l2_get(const struct qcow2 *q, const void *slice, uint64_t i)
{
    return qcow2_be64((const uint8_t *)slice + i * q->l2_entry_size);
}

uint64_t
qcow2_l2_get_bitmap(const struct qcow2 *q, const void *slice, uint64_t i)
{
    if (!q->extended_l2) {
        return 0;
    }
    return qcow2_be64((const uint8_t *)slice + i * q->l2_entry_size + 8);
}

void
qcow2_l2_set(const struct qcow2 *q, void *slice, uint64_t i, uint64_t e)
{
    qcow2_put_be64((uint8_t *)slice + i * q->l2_entry_size, e);
}

void
qcow2_l2_set_bitmap(const struct qcow2 *q, void *slice, uint64_t i, uint64_t b)
{
    if (q->extended_l2) {
        qcow2_put_be64((uint8_t *)slice + i * q->l2_entry_size + 8, b);
    }
}

static bool
has_data_file(const struct qcow2 *q)
{
    return q->data_file != q->file;
}

enum qcow2_subcluster_type
qcow2_subcluster_type(const struct qcow2 *q, uint64_t entry, uint64_t bitmap,
                      unsigned sc)
{
    uint64_t host = entry & QCOW2_L2E_OFFSET_MASK;
    bool allocated;

    if (entry & QCOW2_OFLAG_COMPRESSED) {
        return QCOW2_SC_COMPRESSED;
    }
    if (!q->extended_l2 && (entry & QCOW2_OFLAG_ZERO)) {
        return host ? QCOW2_SC_ZERO_ALLOC : QCOW2_SC_ZERO_PLAIN;
    }
    allocated = host != 0 ||
                (has_data_file(q) && (entry & QCOW2_OFLAG_COPIED));
    if (!q->extended_l2) {
        return allocated ? QCOW2_SC_NORMAL : QCOW2_SC_UNALLOCATED_PLAIN;
    }
    if (allocated) {
        if ((bitmap >> 32) & bitmap) {
            return QCOW2_SC_INVALID;
        }
        if (bitmap & QCOW2_SUB_ZERO(sc)) {
            return QCOW2_SC_ZERO_ALLOC;
        }
        if (bitmap & QCOW2_SUB_ALLOC(sc)) {
            return QCOW2_SC_NORMAL;
        }
        return QCOW2_SC_UNALLOCATED_ALLOC;
    }
    if (bitmap & QCOW2_BITMAP_ALL_ALLOC) {
        return QCOW2_SC_INVALID;
    }
    if (bitmap & QCOW2_SUB_ZERO(sc)) {
        return QCOW2_SC_ZERO_PLAIN;
    }
    return QCOW2_SC_UNALLOCATED_PLAIN;
}

void
qcow2_parse_compressed(const struct qcow2 *q, uint64_t l2_entry,
                       uint64_t *host, uint64_t *bytes)
{
    uint64_t sectors;

    *host = l2_entry & q->cluster_offset_mask;
    sectors = ((l2_entry >> q->csize_shift) & q->csize_mask) + 1;
    *bytes = sectors * QCOW2_COMPRESSED_SECTOR -
             (*host & (QCOW2_COMPRESSED_SECTOR - 1));
}

/* ---- L1 --------------------------------------------------------------------- */

int
qcow2_write_l1_entries(struct qcow2 *q, uint64_t first, uint64_t n,
                       struct blk_error *err)
{
    uint64_t start = first & ~63ULL;        /* whole 512-byte sectors */
    uint64_t end = (first + n + 63) & ~63ULL;
    uint8_t *buf;
    int r;

    if (end > q->l1_size) {
        end = q->l1_size;
    }
    buf = xmalloc((end - start) * 8);
    for (uint64_t i = start; i < end; i++) {
        qcow2_put_be64(buf + (i - start) * 8, q->l1[i]);
    }
    r = qcow2_pre_write_check(q, QCOW2_OL_ACTIVE_L1, q->l1_offset + start * 8,
                              (end - start) * 8, false, err);
    if (r == 0) {
        r = blk_child_pwrite(q->file, q->l1_offset + start * 8, buf,
                             (end - start) * 8, 0, err);
    }
    free(buf);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    return r;
}

int
qcow2_grow_l1(struct qcow2 *q, uint64_t min, bool exact, struct blk_error *err)
{
    uint64_t new_size, bytes, old_off, old_size;
    uint64_t *nt;
    uint8_t *raw, hdr[12];
    int64_t off;
    int r;

    if (min <= q->l1_size) {
        return 0;
    }
    if (min > INT32_MAX / 8) {
        return blk_error_set(err, -EFBIG, "L1 table would be too large");
    }
    if (exact) {
        new_size = min;
    } else {
        new_size = q->l1_size ? q->l1_size : 1;
        while (min > new_size) {
            new_size = (new_size * 3 + 1) / 2;
        }
    }
    if (new_size > QCOW2_MAX_L1_BYTES / 8) {
        return blk_error_set(err, -EFBIG, "L1 table would be too large");
    }
    bytes = new_size * 8;
    nt = blk_try_zalloc(bytes);
    raw = blk_try_zalloc(bytes);
    if (nt == NULL || raw == NULL) {
        free(nt);
        free(raw);
        return blk_error_set(err, -ENOMEM, "cannot allocate L1 table");
    }
    if (q->l1_size > 0) {
        memcpy(nt, q->l1, (uint64_t)q->l1_size * 8);
    }
    off = qcow2_alloc_clusters(q, bytes, err);
    if (off < 0) {
        r = (int)off;
        goto out_free;
    }
    r = qcow2_cache_flush(q, q->refcount_cache, err);
    if (r == 0) {
        r = qcow2_pre_write_check(q, 0, (uint64_t)off, bytes, false, err);
    }
    if (r < 0) {
        qcow2_free_clusters(q, (uint64_t)off, bytes, QCOW2_DISCARD_OTHER);
        goto out_free;
    }
    for (uint64_t i = 0; i < new_size; i++) {
        qcow2_put_be64(raw + i * 8, nt[i]);
    }
    r = blk_child_pwrite(q->file, (uint64_t)off, raw, bytes, 0, err);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        qcow2_free_clusters(q, (uint64_t)off, bytes, QCOW2_DISCARD_OTHER);
        goto out_free;
    }
    qcow2_put_be32(hdr, (uint32_t)new_size);
    qcow2_put_be64(hdr + 4, (uint64_t)off);
    r = blk_child_pwrite(q->file, 36, hdr, 12, 0, err);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r < 0) {
        qcow2_free_clusters(q, (uint64_t)off, bytes, QCOW2_DISCARD_OTHER);
        goto out_free;
    }
    free(raw);
    free(q->l1);
    old_off = q->l1_offset;
    old_size = q->l1_size;
    q->l1 = nt;
    q->l1_offset = (uint64_t)off;
    q->l1_size = (uint32_t)new_size;
    q->h.l1_table_offset = (uint64_t)off;
    q->h.l1_size = (uint32_t)new_size;
    if (old_size > 0) {
        qcow2_free_clusters(q, old_off, old_size * 8, QCOW2_DISCARD_OTHER);
    }
    return 0;

out_free:
    free(nt);
    free(raw);
    return r;
}

/* ---- L2 ---------------------------------------------------------------------- */

static int
check_l2_offset(struct qcow2 *q, uint64_t l2_off, uint64_t l1_index,
                struct blk_error *err)
{
    if (qcow2_offset_into_cluster(q, l2_off) != 0) {
        return qcow2_signal_corruption(q, err, "L2 table offset %#" PRIx64
                                       " unaligned (L1 index: %#" PRIx64 ")",
                                       l2_off, l1_index);
    }
    return 0;
}

/* New L2 table for l1_index (a copy of the old one when it was shared). */
static int
l2_allocate(struct qcow2 *q, uint64_t l1_index, struct blk_error *err)
{
    uint64_t old = q->l1[l1_index] & QCOW2_L1E_OFFSET_MASK;
    size_t slice_bytes = q->l2_slice_entries * q->l2_entry_size;
    uint64_t nslices = q->cluster_size / slice_bytes;
    int64_t l2;
    int r;

    l2 = qcow2_alloc_clusters(q, q->cluster_size, err);
    if (l2 < 0) {
        return (int)l2;
    }
    if (l2 == 0) {
        return qcow2_signal_corruption(q, err, "Preventing invalid allocation "
                                       "of L2 table at offset 0");
    }
    r = qcow2_cache_flush(q, q->refcount_cache, err);
    if (r < 0) {
        goto out_free;
    }
    for (uint64_t s = 0; s < nslices; s++) {
        void *slice, *old_slice;

        r = qcow2_cache_get_empty(q, q->l2_cache, (uint64_t)l2 + s * slice_bytes,
                                  &slice, err);
        if (r < 0) {
            goto out_free;
        }
        if (old != 0) {
            r = qcow2_cache_get(q, q->l2_cache, old + s * slice_bytes,
                                &old_slice, err);
            if (r < 0) {
                qcow2_cache_put(q->l2_cache, &slice);
                goto out_free;
            }
            memcpy(slice, old_slice, slice_bytes);
            qcow2_cache_put(q->l2_cache, &old_slice);
        }
        qcow2_cache_mark_dirty(q->l2_cache, slice);
        qcow2_cache_put(q->l2_cache, &slice);
    }
    r = qcow2_cache_flush(q, q->l2_cache, err);
    if (r < 0) {
        goto out_free;
    }
    q->l1[l1_index] = (uint64_t)l2 | QCOW2_OFLAG_COPIED;
    r = qcow2_write_l1_entries(q, l1_index, 1, err);
    if (r < 0) {
        q->l1[l1_index] = old ? (old | 0) : 0;
        goto out_free;
    }
    if (old != 0) {
        qcow2_free_clusters(q, old, q->cluster_size, QCOW2_DISCARD_OTHER);
    }
    return 0;

out_free:
    for (uint64_t s = 0; s < nslices; s++) {
        qcow2_cache_discard(q->l2_cache, (uint64_t)l2 + s * slice_bytes);
    }
    qcow2_free_clusters(q, (uint64_t)l2, q->cluster_size, QCOW2_DISCARD_ALWAYS);
    return r;
}

int
qcow2_get_l2_slice(struct qcow2 *q, uint64_t off, bool for_write, void **slice,
                   uint64_t *slice_index, struct blk_error *err)
{
    uint64_t l1_index = qcow2_l1_index(q, off);
    uint64_t l2_index = qcow2_l2_index(q, off);
    size_t slice_bytes = q->l2_slice_entries * q->l2_entry_size;
    uint64_t l2_off, slice_start;
    int r;

    *slice = NULL;
    if (l1_index >= q->l1_size) {
        if (!for_write) {
            return 0;
        }
        r = qcow2_grow_l1(q, l1_index + 1, false, err);
        if (r < 0) {
            return r;
        }
    }
    l2_off = q->l1[l1_index] & QCOW2_L1E_OFFSET_MASK;
    r = check_l2_offset(q, l2_off, l1_index, err);
    if (r < 0) {
        return r;
    }
    if (for_write && !(q->l1[l1_index] & QCOW2_OFLAG_COPIED)) {
        r = l2_allocate(q, l1_index, err);
        if (r < 0) {
            return r;
        }
        l2_off = q->l1[l1_index] & QCOW2_L1E_OFFSET_MASK;
    }
    if (l2_off == 0) {
        return 0;
    }
    slice_start = (l2_index / q->l2_slice_entries) * q->l2_slice_entries;
    r = qcow2_cache_get(q, q->l2_cache,
                        l2_off + slice_start * q->l2_entry_size, slice, err);
    if (r < 0) {
        return r;
    }
    (void)slice_bytes;
    *slice_index = l2_index - slice_start;
    return 0;
}

/* ---- lookup ------------------------------------------------------------------- */

static bool
host_type(enum qcow2_subcluster_type t)
{
    return t == QCOW2_SC_NORMAL || t == QCOW2_SC_ZERO_ALLOC ||
           t == QCOW2_SC_UNALLOCATED_ALLOC;
}

/* Subclusters from (i, sc) of the same type and contiguous host offsets. */
static uint64_t
count_contiguous(struct qcow2 *q, void *slice, uint64_t i, unsigned sc,
                 uint64_t max_clusters, enum qcow2_subcluster_type type)
{
    uint64_t first = qcow2_l2_get(q, slice, i) & QCOW2_L2E_OFFSET_MASK;
    uint64_t count = 0;

    for (uint64_t c = 0; c < max_clusters; c++) {
        uint64_t e = qcow2_l2_get(q, slice, i + c);
        uint64_t b = qcow2_l2_get_bitmap(q, slice, i + c);

        if (host_type(type) &&
            (e & QCOW2_L2E_OFFSET_MASK) != first + c * q->cluster_size) {
            break;
        }
        for (unsigned s = c == 0 ? sc : 0; s < q->subclusters_per_cluster;
             s++) {
            if (qcow2_subcluster_type(q, e, b, s) != type) {
                return count;
            }
            count++;
        }
        if (type == QCOW2_SC_COMPRESSED) {
            break;
        }
    }
    return count;
}

int
qcow2_get_host_offset(struct qcow2 *q, uint64_t off, uint64_t *bytes,
                      uint64_t *host, enum qcow2_subcluster_type *type,
                      struct blk_error *err)
{
    uint64_t in_cluster = qcow2_offset_into_cluster(q, off);
    uint64_t needed = *bytes + in_cluster;
    uint64_t l1_index = qcow2_l1_index(q, off);
    uint64_t avail, l2_off, i, e, b, sc_count;
    unsigned sc;
    void *slice;
    int r;

    *host = 0;
    *type = QCOW2_SC_UNALLOCATED_PLAIN;
    if (l1_index >= q->l1_size || !(q->l1[l1_index] & QCOW2_L1E_OFFSET_MASK)) {
        /* Skip every empty L1 entry at once: O(1) per entry. */
        uint64_t span = 1ULL << (q->l2_bits + q->cluster_bits);
        uint64_t j = l1_index + 1;

        while (j < q->l1_size && !(q->l1[j] & QCOW2_L1E_OFFSET_MASK) &&
               (j - l1_index) * span < needed) {
            j++;
        }
        avail = (j - l1_index) * span - (off & (span - 1)) + in_cluster;
        if (l1_index >= q->l1_size) {
            avail = needed;
        }
        goto out;
    }
    l2_off = q->l1[l1_index] & QCOW2_L1E_OFFSET_MASK;
    r = check_l2_offset(q, l2_off, l1_index, err);
    if (r < 0) {
        return r;
    }
    r = qcow2_get_l2_slice(q, off, false, &slice, &i, err);
    if (r < 0) {
        return r;
    }
    avail = (q->l2_slice_entries - i) << q->cluster_bits;
    if (needed > avail) {
        needed = avail;
    }
    e = qcow2_l2_get(q, slice, i);
    b = qcow2_l2_get_bitmap(q, slice, i);
    sc = (unsigned)(in_cluster >> q->subcluster_bits);
    *type = qcow2_subcluster_type(q, e, b, sc);
    if (q->version < 3 &&
        (*type == QCOW2_SC_ZERO_PLAIN || *type == QCOW2_SC_ZERO_ALLOC)) {
        qcow2_cache_put(q->l2_cache, &slice);
        return qcow2_signal_corruption(q, err, "Zero cluster entry found in "
                                       "pre-v3 image (L2 offset: %#" PRIx64
                                       ", L2 index: %#" PRIx64 ")", l2_off,
                                       qcow2_l2_index(q, off));
    }
    if (*type == QCOW2_SC_INVALID) {
        qcow2_cache_put(q->l2_cache, &slice);
        return qcow2_signal_corruption(q, err, "Invalid cluster entry found "
                                       "(L2 offset: %#" PRIx64 ", L2 index: %#"
                                       PRIx64 ")", l2_off,
                                       qcow2_l2_index(q, off));
    }
    if (*type == QCOW2_SC_COMPRESSED) {
        if (has_data_file(q)) {
            qcow2_cache_put(q->l2_cache, &slice);
            return qcow2_signal_corruption(q, err, "Compressed cluster entry "
                                           "found in image with external data "
                                           "file (L2 offset: %#" PRIx64 ", L2 "
                                           "index: %#" PRIx64 ")", l2_off,
                                           qcow2_l2_index(q, off));
        }
        *host = e;
    } else if (host_type(*type)) {
        uint64_t hc = e & QCOW2_L2E_OFFSET_MASK;

        if (qcow2_offset_into_cluster(q, hc) != 0) {
            qcow2_cache_put(q->l2_cache, &slice);
            return qcow2_signal_corruption(q, err, "Cluster allocation offset %#"
                                           PRIx64 " unaligned (L2 offset: %#"
                                           PRIx64 ", L2 index: %#" PRIx64 ")",
                                           hc, l2_off, qcow2_l2_index(q, off));
        }
        if (has_data_file(q) && hc != off - in_cluster) {
            qcow2_cache_put(q->l2_cache, &slice);
            return qcow2_signal_corruption(q, err, "External data file host "
                                           "cluster offset %#" PRIx64 " does "
                                           "not match guest cluster offset: %#"
                                           PRIx64 ", L2 index: %#" PRIx64 ")",
                                           hc, off - in_cluster,
                                           qcow2_l2_index(q, off));
        }
        *host = hc + in_cluster;
    }
    sc_count = count_contiguous(q, slice, i, sc, qcow2_size_to_clusters(q, needed),
                                *type);
    qcow2_cache_put(q->l2_cache, &slice);
    avail = (sc_count + sc) << q->subcluster_bits;

out:
    if (avail > needed) {
        avail = needed;
    }
    *bytes = avail - in_cluster;
    return 0;
}

/* ---- zero detection ------------------------------------------------------- */

bool
qcow2_range_reads_zero(struct qcow2 *q, uint64_t off, uint64_t len)
{
    while (len > 0) {
        struct blk_error ignored = BLK_ERROR_INIT;
        uint64_t n = len, host;
        enum qcow2_subcluster_type t;

        if (qcow2_get_host_offset(q, off, &n, &host, &t, &ignored) < 0) {
            return false;
        }
        if (t == QCOW2_SC_UNALLOCATED_PLAIN || t == QCOW2_SC_UNALLOCATED_ALLOC) {
            if (q->backing != NULL) {
                int64_t blen = blk_child_get_length(q->backing);
                struct blk_status st;

                if (blen < 0 || off < (uint64_t)blen) {
                    if (blk_child_block_status(q->backing, off, n, &st,
                                               &ignored) < 0 ||
                        !(st.flags & BLK_STATUS_ZERO)) {
                        return false;
                    }
                    n = st.pnum < n ? st.pnum : n;
                }
            }
        } else if (t != QCOW2_SC_ZERO_PLAIN && t != QCOW2_SC_ZERO_ALLOC) {
            return false;
        }
        off += n;
        len -= n;
    }
    return true;
}

/* ---- writes --------------------------------------------------------------------- */

/* How a cluster must be handled to write subclusters [sc0, sc1) of it. */
enum wkind { W_INPLACE, W_KEEP, W_NEW };

static enum wkind
write_kind(const struct qcow2 *q, uint64_t e, uint64_t b, unsigned sc0,
           unsigned sc1)
{
    uint64_t host = e & QCOW2_L2E_OFFSET_MASK;
    bool copied = e & QCOW2_OFLAG_COPIED;

    if ((e & QCOW2_OFLAG_COMPRESSED) || !copied ||
        (host == 0 && !has_data_file(q))) {
        return W_NEW;
    }
    if (!q->extended_l2) {
        return (e & QCOW2_OFLAG_ZERO) ? W_KEEP : W_INPLACE;
    }
    for (unsigned s = sc0; s < sc1; s++) {
        if (qcow2_subcluster_type(q, e, b, s) != QCOW2_SC_NORMAL) {
            return W_KEEP;
        }
    }
    return W_INPLACE;
}

/* Copy guest [from, to) into host at host + (from - base). */
static int
cow_copy(struct qcow2 *q, uint64_t from, uint64_t to, uint64_t base,
         uint64_t host, struct blk_error *err)
{
    uint8_t *buf;
    int r;

    if (to <= from) {
        return 0;
    }
    buf = blk_try_malloc(to - from);
    if (buf == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate COW buffer");
    }
    r = qcow2_read_guest_locked(q, from, to - from, buf, err);
    if (r == 0) {
        r = qcow2_pre_write_check(q, 0, host + (from - base), to - from, true,
                                  err);
    }
    if (r == 0) {
        r = blk_child_pwrite(q->data_file, host + (from - base), buf,
                             to - from, 0, err);
    }
    free(buf);
    return r;
}

/* First/last allocated subcluster bounds for ext-l2 COW (QEMU's rule). */
static uint64_t
cow_start_in(const struct qcow2 *q, uint64_t e, uint64_t b, unsigned sc)
{
    enum qcow2_subcluster_type t = qcow2_subcluster_type(q, e, b, sc);

    if (!q->extended_l2 || t == QCOW2_SC_COMPRESSED) {
        return 0;
    }
    if (t == QCOW2_SC_ZERO_PLAIN || t == QCOW2_SC_UNALLOCATED_PLAIN) {
        return (uint64_t)sc << q->subcluster_bits;
    }
    {
        uint32_t alloc = (uint32_t)(b & QCOW2_BITMAP_ALL_ALLOC);
        unsigned first = alloc ? (unsigned)__builtin_ctz(alloc) : 32;

        return (uint64_t)(first < sc ? first : sc) << q->subcluster_bits;
    }
}

static uint64_t
cow_end_in(const struct qcow2 *q, uint64_t e, uint64_t b, unsigned sc_last)
{
    enum qcow2_subcluster_type t = qcow2_subcluster_type(q, e, b, sc_last);

    if (!q->extended_l2 || t == QCOW2_SC_COMPRESSED) {
        return q->cluster_size;
    }
    if (t == QCOW2_SC_ZERO_PLAIN || t == QCOW2_SC_UNALLOCATED_PLAIN) {
        return (uint64_t)(sc_last + 1) << q->subcluster_bits;
    }
    {
        uint32_t alloc = (uint32_t)(b & QCOW2_BITMAP_ALL_ALLOC);
        unsigned last = alloc ? 31 - (unsigned)__builtin_clz(alloc) : 0;

        if (last < sc_last) {
            last = sc_last;
        }
        return (uint64_t)(last + 1) << q->subcluster_bits;
    }
}

/*
 * How many clusters from slice entry i (at most want) are writable in
 * place at host h0 onwards, for a write ending stop bytes after the
 * start of the first cluster.
 */
static uint64_t
inplace_run(const struct qcow2 *q, const void *slice, uint64_t i,
            uint64_t want, uint64_t stop, uint64_t h0)
{
    uint64_t n;

    for (n = 1; n < want; n++) {
        uint64_t en = qcow2_l2_get(q, slice, i + n);
        uint64_t bn = qcow2_l2_get_bitmap(q, slice, i + n);
        uint64_t in_n = stop - n * q->cluster_size;
        unsigned sc1;

        if (in_n > q->cluster_size) {
            in_n = q->cluster_size;
        }
        sc1 = (unsigned)((in_n - 1) >> q->subcluster_bits) + 1;
        if ((en & QCOW2_L2E_OFFSET_MASK) != h0 + n * q->cluster_size ||
            write_kind(q, en, bn, 0, sc1) != W_INPLACE) {
            break;
        }
    }
    return n;
}

/*
 * The guest range [*from, *to) a write of [off, end) fills in its new (or
 * kept) clusters: whole clusters, or with subclusters from the first to
 * the last allocated one (QEMU's rule); a kept cluster only needs the
 * touched subclusters.
 */
static void
cow_range(const struct qcow2 *q, const void *slice, uint64_t i, bool keep,
          uint64_t off, uint64_t end, uint64_t *from, uint64_t *to)
{
    uint64_t c0 = qcow2_start_of_cluster(q, off);
    uint64_t last_c = (end - 1 - c0) >> q->cluster_bits;
    uint64_t in_first = off - c0;
    uint64_t in_last = (end - 1) & (q->cluster_size - 1);

    if (keep) {
        *from = off & ~(q->subcluster_size - 1);
        *to = (end + q->subcluster_size - 1) & ~(q->subcluster_size - 1);
        return;
    }
    *from = c0 + cow_start_in(q, qcow2_l2_get(q, slice, i),
                              qcow2_l2_get_bitmap(q, slice, i),
                              (unsigned)(in_first >> q->subcluster_bits));
    *to = c0 + last_c * q->cluster_size +
          cow_end_in(q, qcow2_l2_get(q, slice, i + last_c),
                     qcow2_l2_get_bitmap(q, slice, i + last_c),
                     (unsigned)(in_last >> q->subcluster_bits));
}

/*
 * Point the n guest clusters from off at new_host..., setting the
 * subcluster bits of the range [cs_from, cs_to) that now holds data;
 * with replaced, the clusters were moved and the old ones are freed.
 */
static int
link_l2(struct qcow2 *q, uint64_t off, uint64_t n, uint64_t new_host,
        uint64_t c0, uint64_t cs_from, uint64_t cs_to, bool replaced,
        struct blk_error *err)
{
    uint64_t i;
    void *slice;
    int r;

    r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);
    if (r < 0) {
        return r;
    }
    qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
    qcow2_cache_mark_dirty(q->l2_cache, slice);
    for (uint64_t c = 0; c < n; c++) {
        uint64_t old = qcow2_l2_get(q, slice, i + c);
        uint64_t ob = qcow2_l2_get_bitmap(q, slice, i + c);
        uint64_t base = c0 + c * q->cluster_size;
        bool had_host = (old & QCOW2_OFLAG_COMPRESSED) ||
                        (old & QCOW2_L2E_OFFSET_MASK) != 0;

        qcow2_l2_set(q, slice, i + c,
                     (new_host + c * q->cluster_size) | QCOW2_OFLAG_COPIED);
        if (q->extended_l2 && !q->in_prealloc) {
            uint64_t from = cs_from > base ? cs_from - base : 0;
            uint64_t to = cs_to - base < q->cluster_size ? cs_to - base
                                                         : q->cluster_size;
            unsigned s0 = (unsigned)(from >> q->subcluster_bits);
            unsigned s1 = (unsigned)((to - 1) >> q->subcluster_bits) + 1;

            if (replaced && had_host) {
                /* The old cluster's data was copied: the range is ours. */
                ob = (old & QCOW2_OFLAG_COMPRESSED) ? 0
                                                    : ob & ~QCOW2_BITMAP_ALL_ALLOC;
            }
            ob |= QCOW2_SUB_ALLOC_RANGE(s0, s1);
            ob &= ~QCOW2_SUB_ZERO_RANGE(s0, s1);
            qcow2_l2_set_bitmap(q, slice, i + c, ob);
        }
        if (replaced && had_host && !has_data_file(q)) {
            qcow2_free_any_cluster(q, old, 1, QCOW2_DISCARD_NEVER);
        }
    }
    qcow2_cache_put(q->l2_cache, &slice);
    return 0;
}

/*
 * QEMU's shortcut for new clusters whose copy-on-write parts read as
 * zeroes: zero the whole new clusters on the file efficiently (no data
 * moved) instead of copying.  False when it does not apply or the file
 * cannot zero efficiently; the caller then copies.
 */
static bool
zero_new_clusters(struct qcow2 *q, uint64_t c0, uint64_t off, uint64_t end,
                  uint64_t cs_from, uint64_t cs_to, uint64_t new_host,
                  uint64_t n)
{
    struct blk_error ignored = BLK_ERROR_INIT;
    uint64_t len = n * q->cluster_size;

    (void)c0;
    /* QEMU 7.2 copies subcluster COW regions even when they are zero. */
    if (q->extended_l2 || (cs_from >= off && cs_to <= end)) {
        return false;
    }
    if ((cs_from < off && !qcow2_range_reads_zero(q, cs_from, off - cs_from)) ||
        (end < cs_to && !qcow2_range_reads_zero(q, end, cs_to - end))) {
        return false;
    }
    if (qcow2_pre_write_check(q, 0, new_host, len, true, &ignored) < 0) {
        return false;
    }
    return blk_child_zero(q->data_file, new_host, len, BLK_REQ_NO_FALLBACK,
                          &ignored) == 0;
}

int
qcow2_alloc_for_write(struct qcow2 *q, uint64_t off, uint64_t *bytes,
                      uint64_t *host, struct blk_error *err)
{
    return qcow2_prepare_write(q, off, bytes, host, NULL, err);
}

int
qcow2_prepare_write(struct qcow2 *q, uint64_t off, uint64_t *bytes,
                    uint64_t *host, bool *in_place, struct blk_error *err)
{
    uint64_t in_cluster = qcow2_offset_into_cluster(q, off);
    uint64_t c0 = off - in_cluster;
    uint64_t i, n, e, b, want, end, new_host = 0;
    uint64_t cs_from, cs_to;
    enum wkind k;
    void *slice;
    int r;

    if (in_place != NULL) {
        *in_place = false;
    }
    r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);
    if (r < 0) {
        return r;
    }
    want = qcow2_size_to_clusters(q, in_cluster + *bytes);
    if (want > q->l2_slice_entries - i) {
        want = q->l2_slice_entries - i;
    }
    e = qcow2_l2_get(q, slice, i);
    b = qcow2_l2_get_bitmap(q, slice, i);
    {
        uint64_t stop = in_cluster + *bytes;
        unsigned sc1;

        if (stop > q->cluster_size) {
            stop = q->cluster_size;
        }
        sc1 = (unsigned)((stop - 1) >> q->subcluster_bits) + 1;
        k = write_kind(q, e, b, (unsigned)(in_cluster >> q->subcluster_bits),
                       sc1);
    }

    if (k == W_INPLACE) {
        uint64_t h0 = e & QCOW2_L2E_OFFSET_MASK;

        n = inplace_run(q, slice, i, want, in_cluster + *bytes, h0);
        qcow2_cache_put(q->l2_cache, &slice);
        if (in_cluster + *bytes > n * q->cluster_size) {
            *bytes = n * q->cluster_size - in_cluster;
        }
        *host = h0 + in_cluster;
        if (in_place != NULL) {
            *in_place = true;
        }
        return qcow2_pre_write_check(q, 0, *host, *bytes, true, err);
    }

    if (k == W_KEEP) {
        n = 1;
        new_host = e & QCOW2_L2E_OFFSET_MASK;
    } else {
        for (n = 1; n < want; n++) {
            uint64_t en = qcow2_l2_get(q, slice, i + n);
            uint64_t bn = qcow2_l2_get_bitmap(q, slice, i + n);

            if (write_kind(q, en, bn, 0, 1) != W_NEW) {
                break;
            }
        }
    }
    end = off + *bytes;
    if (end > c0 + n * q->cluster_size) {
        end = c0 + n * q->cluster_size;
    }
    cow_range(q, slice, i, k == W_KEEP, off, end, &cs_from, &cs_to);
    qcow2_cache_put(q->l2_cache, &slice);

    if (k == W_NEW) {
        if (has_data_file(q)) {
            new_host = c0;
        } else {
            int64_t a = qcow2_alloc_clusters(q, n * q->cluster_size, err);

            if (a < 0) {
                return (int)a;
            }
            new_host = (uint64_t)a;
        }
    }

    /* Copy-on-write of the parts of the clusters the guest doesn't write. */
    r = 0;
    if (!q->in_prealloc && !(k == W_NEW && zero_new_clusters(q, c0, off, end,
                                                             cs_from, cs_to,
                                                             new_host, n))) {
        r = cow_copy(q, cs_from, off, c0, new_host, err);
        if (r == 0) {
            r = cow_copy(q, end, cs_to, c0, new_host, err);
        }
    }
    if (r < 0) {
        goto out_free;
    }

    /* Link the L2 entries (after the refcounts reach the disk). */
    r = link_l2(q, off, n, new_host, c0, cs_from, cs_to, k == W_NEW, err);
    if (r < 0) {
        goto out_free;
    }
    *host = new_host + in_cluster;
    *bytes = end - off;
    return 0;

out_free:
    if (k == W_NEW && !has_data_file(q)) {
        qcow2_free_clusters(q, new_host, n * q->cluster_size,
                            QCOW2_DISCARD_NEVER);
    }
    return r;
}

int
qcow2_set_compressed(struct qcow2 *q, uint64_t off, uint64_t host,
                     uint64_t csize, struct blk_error *err)
{
    uint64_t i, sectors;
    void *slice;
    int r;

    r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);
    if (r < 0) {
        return r;
    }
    sectors = (host + csize - 1) / QCOW2_COMPRESSED_SECTOR -
              host / QCOW2_COMPRESSED_SECTOR;
    qcow2_cache_mark_dirty(q->l2_cache, slice);
    qcow2_l2_set(q, slice, i, host | QCOW2_OFLAG_COMPRESSED |
                 (sectors << q->csize_shift));
    qcow2_l2_set_bitmap(q, slice, i, 0);
    qcow2_cache_put(q->l2_cache, &slice);
    return 0;
}

/* ---- zero and discard ---------------------------------------------------------- */

int
qcow2_zero_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
                    unsigned flags, struct blk_error *err)
{
    uint64_t end = off + len;

    if (q->version < 3) {
        return -ENOTSUP;
    }
    while (off < end) {
        uint64_t i, n;
        void *slice;
        int r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);

        if (r < 0) {
            return r;
        }
        n = qcow2_size_to_clusters(q, end - off);
        if (n > q->l2_slice_entries - i) {
            n = q->l2_slice_entries - i;
        }
        for (uint64_t c = 0; c < n; c++) {
            uint64_t old = qcow2_l2_get(q, slice, i + c);
            uint64_t ob = qcow2_l2_get_bitmap(q, slice, i + c);
            bool allocated = (old & QCOW2_OFLAG_COMPRESSED) ||
                             (old & QCOW2_L2E_OFFSET_MASK) ||
                             (has_data_file(q) && (old & QCOW2_OFLAG_COPIED));
            bool unmap = (old & QCOW2_OFLAG_COMPRESSED) ||
                         ((flags & BLK_REQ_MAY_UNMAP) && allocated);
            uint64_t ne = unmap ? 0 : old, nb = ob;

            if (q->extended_l2) {
                nb = QCOW2_BITMAP_ALL_ZERO;
            } else {
                ne |= QCOW2_OFLAG_ZERO;
            }
            if (ne == old && nb == ob) {
                continue;
            }
            qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
            qcow2_cache_mark_dirty(q->l2_cache, slice);
            qcow2_l2_set(q, slice, i + c, ne);
            qcow2_l2_set_bitmap(q, slice, i + c, nb);
            if (unmap) {
                qcow2_free_any_cluster(q, old, 1, QCOW2_DISCARD_REQUEST);
            }
        }
        qcow2_cache_put(q->l2_cache, &slice);
        off = qcow2_start_of_cluster(q, off) + n * q->cluster_size;
    }
    return 0;
}

int
qcow2_zero_subclusters(struct qcow2 *q, uint64_t off, uint64_t len,
                       struct blk_error *err)
{
    uint64_t i, e, b, nb;
    unsigned s0 = (unsigned)(qcow2_offset_into_cluster(q, off) >>
                             q->subcluster_bits);
    unsigned s1 = s0 + (unsigned)(len >> q->subcluster_bits);
    void *slice;
    int r;

    r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);
    if (r < 0) {
        return r;
    }
    e = qcow2_l2_get(q, slice, i);
    b = qcow2_l2_get_bitmap(q, slice, i);
    if (e & QCOW2_OFLAG_COMPRESSED) {
        qcow2_cache_put(q->l2_cache, &slice);
        return -ENOTSUP;
    }
    nb = (b | QCOW2_SUB_ZERO_RANGE(s0, s1)) & ~QCOW2_SUB_ALLOC_RANGE(s0, s1);
    if (nb != b) {
        qcow2_cache_mark_dirty(q->l2_cache, slice);
        qcow2_l2_set_bitmap(q, slice, i, nb);
    }
    qcow2_cache_put(q->l2_cache, &slice);
    return 0;
}

int
qcow2_discard_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
                       enum qcow2_discard_type type, bool full_discard,
                       struct blk_error *err)
{
    uint64_t end = off + len;

    while (off < end) {
        uint64_t i, n;
        void *slice;
        int r;

        /* QEMU allocates the L2 table here even when nothing changes. */
        n = qcow2_size_to_clusters(q, end - off);
        r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);
        if (r < 0) {
            return r;
        }
        if (n > q->l2_slice_entries - i) {
            n = q->l2_slice_entries - i;
        }
        for (uint64_t c = 0; c < n; c++) {
            uint64_t old = qcow2_l2_get(q, slice, i + c);
            uint64_t ob = qcow2_l2_get_bitmap(q, slice, i + c);
            enum qcow2_subcluster_type t = qcow2_subcluster_type(q, old, ob, 0);
            bool allocated = (old & QCOW2_OFLAG_COMPRESSED) ||
                             (old & QCOW2_L2E_OFFSET_MASK) ||
                             (has_data_file(q) && (old & QCOW2_OFLAG_COPIED));

            if (!allocated) {
                if (t == QCOW2_SC_ZERO_PLAIN || (q->extended_l2 &&
                                                 ob == QCOW2_BITMAP_ALL_ZERO)) {
                    if (!full_discard) {
                        continue;
                    }
                } else if (full_discard || q->backing == NULL) {
                    continue;
                }
            }
            qcow2_cache_set_dependency(q->l2_cache, q->refcount_cache);
            qcow2_cache_mark_dirty(q->l2_cache, slice);
            if (!full_discard && q->version >= 3) {
                if (q->extended_l2) {
                    qcow2_l2_set(q, slice, i + c, 0);
                    qcow2_l2_set_bitmap(q, slice, i + c, QCOW2_BITMAP_ALL_ZERO);
                } else {
                    qcow2_l2_set(q, slice, i + c, QCOW2_OFLAG_ZERO);
                }
            } else {
                qcow2_l2_set(q, slice, i + c, 0);
                qcow2_l2_set_bitmap(q, slice, i + c, 0);
            }
            if (allocated) {
                qcow2_free_any_cluster(q, old, 1, type);
            }
        }
        qcow2_cache_put(q->l2_cache, &slice);
        off = qcow2_start_of_cluster(q, off) + n * q->cluster_size;
    }
    return 0;
}
