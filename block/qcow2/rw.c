/*
 * rw.c - the qcow2 guest I/O path: reads (q->lock only for the lookup),
 * writes (allocating ones under the lock, data of clusters already owned
 * without it), compressed writes, write-zeroes split at the subcluster as
 * QEMU's generic layer does, and discard.  Called on worker threads,
 * except the loop's fast paths (qcow2_try_preadv, qcow2_aio_*), which
 * never wait for q->lock or a table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/qcow2/qcow2-int.h"
#include "util/iov.h"
#include "util/xalloc.h"

/* ---- iovec helpers ------------------------------------------------------- */

/* Build an iovec array for bytes [off, off+len) of iov; caller frees *out. */
static int
iov_slice_alloc(const struct iovec *iov, int cnt, uint64_t off, uint64_t len,
                struct iovec **out)
{
    /* A slice of a list never needs more entries than the list has. */
    *out = xcalloc((size_t)cnt + 1, sizeof(**out));
    return iov_slice(iov, cnt, (size_t)off, (size_t)len, *out, cnt + 1);
}

/* ---- reads -------------------------------------------------------------- */

static int
read_compressed(struct qcow2 *q, uint64_t l2_entry, uint64_t in_cluster,
                uint64_t n, const struct iovec *iov, int cnt, uint64_t pos,
                struct blk_error *err)
{
    uint64_t coff, clen;
    uint8_t *cbuf, *out;
    int64_t flen;
    int r;

    qcow2_parse_compressed(q, l2_entry, &coff, &clen);
    flen = blk_child_get_length(q->file);
    if (flen >= 0 && coff + clen > (uint64_t)flen) {
        /* QEMU pads short reads at the end of the file with zeroes. */
        clen = coff < (uint64_t)flen ? (uint64_t)flen - coff : 0;
    }
    cbuf = blk_try_malloc(clen ? clen : 1);
    out = blk_try_malloc(q->cluster_size);
    if (cbuf == NULL || out == NULL) {
        free(cbuf);
        free(out);
        return blk_error_set(err, -ENOMEM, "cannot allocate compressed "
                             "cluster buffer");
    }
    r = clen ? blk_child_pread(q->file, coff, cbuf, clen, err) : 0;
    if (r == 0 && qcow2_decompress(q->compression_type, out, q->cluster_size,
                                   cbuf, clen) < 0) {
        r = blk_error_set(err, -EIO, "cannot decompress cluster data at host "
                          "offset %#" PRIx64, coff);
    }
    if (r == 0) {
        iov_from_buf(iov, cnt, pos, out + in_cluster, n);
    }
    free(cbuf);
    free(out);
    return r;
}

static int
read_backing(struct qcow2 *q, uint64_t off, uint64_t n, const struct iovec *iov,
             int cnt, uint64_t pos, struct blk_error *err)
{
    int64_t blen;
    uint64_t m = 0;

    if (q->backing != NULL) {
        blen = blk_child_get_length(q->backing);
        if (blen > 0 && off < (uint64_t)blen) {
            struct iovec *v;
            int vc;
            int r;

            m = (uint64_t)blen - off < n ? (uint64_t)blen - off : n;
            vc = iov_slice_alloc(iov, cnt, pos, m, &v);
            r = blk_child_preadv(q->backing, off, m, v, vc, 0, err);
            free(v);
            if (r < 0) {
                return r;
            }
        }
    }
    if (m < n) {
        iov_memset(iov, cnt, pos + m, 0, n - m);
    }
    return 0;
}

/* Read [off, off+len) into iov at byte pos; lock as the caller says. */
static int
read_range(struct qcow2 *q, uint64_t off, uint64_t len, const struct iovec *iov,
           int cnt, bool locked, struct blk_error *err)
{
    uint64_t pos = 0;

    while (pos < len) {
        uint64_t n = len - pos, host;
        enum qcow2_subcluster_type t;
        int r;

        if (!locked) {
            pthread_mutex_lock(&q->lock);
        }
        r = qcow2_get_host_offset(q, off + pos, &n, &host, &t, err);
        if (!locked) {
            pthread_mutex_unlock(&q->lock);
        }
        if (r < 0) {
            return r;
        }
        switch (t) {
        case QCOW2_SC_UNALLOCATED_PLAIN:
        case QCOW2_SC_UNALLOCATED_ALLOC:
            r = read_backing(q, off + pos, n, iov, cnt, pos, err);
            break;
        case QCOW2_SC_ZERO_PLAIN:
        case QCOW2_SC_ZERO_ALLOC:
            iov_memset(iov, cnt, pos, 0, n);
            break;
        case QCOW2_SC_COMPRESSED:
            r = read_compressed(q, host, qcow2_offset_into_cluster(q, off + pos),
                                n, iov, cnt, pos, err);
            break;
        case QCOW2_SC_NORMAL: {
            struct iovec *v;
            int vc = iov_slice_alloc(iov, cnt, pos, n, &v);

            r = blk_child_preadv(q->data_file, host, n, v, vc, 0, err);
            free(v);
            break;
        }
        default:
            r = blk_error_set(err, -EIO, "invalid cluster type");
            break;
        }
        if (r < 0) {
            return r;
        }
        pos += n;
    }
    return 0;
}

int
qcow2_read_guest_locked(struct qcow2 *q, uint64_t off, uint64_t len,
                        uint8_t *buf, struct blk_error *err)
{
    struct iovec v = { buf, len };

    return read_range(q, off, len, &v, 1, true, err);
}

int
qcow2_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
             struct iovec *iov, int iovcnt, unsigned flags,
             struct blk_error *err)
{
    return read_range(qcow2_state(bs), off, len, iov, iovcnt, false, err);
}

/*
 * A read mapped to type t that needs no I/O (zeroes) completes here (0);
 * -EINPROGRESS means data to read from the data file; -EAGAIN otherwise.
 */
static int
read_mapped_at_once(struct qcow2 *q, enum qcow2_subcluster_type t,
                    uint64_t len, struct iovec *iov, int iovcnt)
{
    switch (t) {
    case QCOW2_SC_ZERO_PLAIN:
    case QCOW2_SC_ZERO_ALLOC:
        iov_memset(iov, iovcnt, 0, 0, len);
        return 0;
    case QCOW2_SC_UNALLOCATED_PLAIN:
    case QCOW2_SC_UNALLOCATED_ALLOC:
        if (q->backing != NULL || q->data_file != q->file) {
            return -EAGAIN;
        }
        iov_memset(iov, iovcnt, 0, 0, len);
        return 0;
    case QCOW2_SC_NORMAL:
        return -EINPROGRESS;
    default:
        return -EAGAIN;
    }
}

/* See map_on_loop; caller holds q->lock with q->no_io set. */
static int
writable_in_place(struct qcow2 *q, uint64_t off, uint64_t len, uint64_t host,
                  enum qcow2_subcluster_type t, struct blk_error *err)
{
    uint64_t i, c, clusters;
    void *slice;
    bool ok = true;
    int r;

    if (t != QCOW2_SC_NORMAL || q->corrupt ||
        (q->lazy_refcounts && q->version >= 3 && !q->read_only &&
         !(q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY)) ||
        !(q->l1[qcow2_l1_index(q, off)] & QCOW2_OFLAG_COPIED)) {
        return -EAGAIN;
    }
    if (q->data_file == q->file &&
        ((q->overlap_check & QCOW2_OL_INACTIVE_L2) ||
         qcow2_check_metadata_overlap(q, 0, host, len) != 0)) {
        return -EAGAIN;         /* the pool checks (and reports) it */
    }
    r = qcow2_get_l2_slice(q, off, false, &slice, &i, err);
    if (r < 0 || slice == NULL) {
        return -EAGAIN;
    }
    /* One mapping lies inside one L2 slice (qcow2_get_host_offset). */
    clusters = qcow2_size_to_clusters(q, qcow2_offset_into_cluster(q, off) +
                                             len);
    for (c = 0; c < clusters && ok; c++) {
        ok = (qcow2_l2_get(q, slice, i + c) & QCOW2_OFLAG_COPIED) != 0;
    }
    qcow2_cache_put(q->l2_cache, &slice);
    return ok ? 0 : -EAGAIN;
}

/*
 * The loop's lookup: [off, off+len) must be one mapping, found in the
 * cached L2 slice under a free q->lock (never waiting for the lock or
 * for a table).  For a write, that mapping must also be writable in
 * place: a plain data cluster this image owns alone (OFLAG_COPIED in the
 * L1 and L2 entries, as qcow2_prepare_write's in-place case), on an image
 * not marked corrupt and already marked dirty if it uses lazy refcounts,
 * not overlapping metadata.  Then no metadata changes, which is why the
 * pool path may write such data without q->lock too.  -EAGAIN otherwise.
 */
static int
map_on_loop(struct qcow2 *q, uint64_t off, uint64_t len, bool write,
            uint64_t *host, enum qcow2_subcluster_type *t,
            struct blk_error *err)
{
    uint64_t n = len;
    int r;

    if (pthread_mutex_trylock(&q->lock) != 0) {
        return -EAGAIN;
    }
    q->no_io = true;
    r = qcow2_get_host_offset(q, off, &n, host, t, err);
    if (r == 0 && n < len) {
        r = -EAGAIN;            /* several mappings: the pool walks them */
    }
    if (r == 0 && write) {
        r = writable_in_place(q, off, len, *host, *t, err);
    }
    q->no_io = false;
    pthread_mutex_unlock(&q->lock);
    return r;
}

/*
 * The loop's read lookup (map_on_loop): zeroes are filled at once (0);
 * -EINPROGRESS with *host means one read of the data file is left.
 */
static int
read_on_loop(struct qcow2 *q, uint64_t off, uint64_t len, struct iovec *iov,
             int iovcnt, uint64_t *host, struct blk_error *err)
{
    enum qcow2_subcluster_type t;
    int r = map_on_loop(q, off, len, false, host, &t, err);

    return r < 0 ? r : read_mapped_at_once(q, t, len, iov, iovcnt);
}

int
qcow2_try_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t host;
    int r = read_on_loop(q, off, len, iov, iovcnt, &host, err);

    if (r != -EINPROGRESS) {
        return r;
    }
    return blk_child_try_preadv(q->data_file, host, len, iov, iovcnt, 0, err);
}

/*
 * The ring path for reads: zeroes at once, data clusters as one read of
 * the data file on the loop's io_uring.
 */
int
qcow2_aio_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_aio *aio, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t host;
    int r = read_on_loop(q, off, len, iov, iovcnt, &host, err);

    if (r != -EINPROGRESS) {
        return r;
    }
    return blk_child_aio_preadv(q->data_file, host, len, iov, iovcnt, 0, aio,
                                err);
}

static int
zero_span(uint64_t len, const uint8_t **ptr)
{
    const uint8_t *z = blk_map_zeroes(len);

    if (z == NULL) {
        return -EAGAIN;
    }
    *ptr = z;
    return 0;
}

/*
 * Zero-copy reads (a worker: waits for q->lock, may read a table): the
 * range must be one mapping;
 * data clusters are the data file's span at their host offset, a range
 * this image does not allocate is the backing file's span (within the
 * backing file's length), ranges that read as zeroes (zero clusters, no
 * backing file, past its end) a span of zeroes (map.h); compressed
 * clusters and anything else are read instead.
 */
int
qcow2_map_data(struct blk_node *bs, uint64_t off, uint64_t len,
               const uint8_t **ptr)
{
    struct qcow2 *q = qcow2_state(bs);
    struct blk_error err = BLK_ERROR_INIT;
    enum qcow2_subcluster_type t;
    uint64_t host;
    int64_t blen;

    uint64_t n = len;
    int r;

    pthread_mutex_lock(&q->lock);
    r = qcow2_get_host_offset(q, off, &n, &host, &t, &err);
    pthread_mutex_unlock(&q->lock);
    if (r < 0 || n < len) {
        blk_error_clear(&err);
        return -EAGAIN;         /* a read reports the error, or walks them */
    }
    switch (t) {
    case QCOW2_SC_NORMAL:
        return blk_child_map_data(q->data_file, host, len, ptr);
    case QCOW2_SC_ZERO_PLAIN:
    case QCOW2_SC_ZERO_ALLOC:
        return zero_span(len, ptr);
    case QCOW2_SC_UNALLOCATED_PLAIN:
    case QCOW2_SC_UNALLOCATED_ALLOC:
        if (q->data_file != q->file) {
            return -EAGAIN;     /* raw external data: the data file's */
        }
        if (q->backing == NULL) {
            return zero_span(len, ptr);
        }
        blen = blk_child_get_length(q->backing);
        if (blen >= 0 && off >= (uint64_t)blen) {
            return zero_span(len, ptr);         /* past the backing file */
        }
        if (blen < 0 || off + len > (uint64_t)blen) {
            return -EAGAIN;
        }
        return blk_child_map_data(q->backing, off, len, ptr);
    default:
        return -EAGAIN;
    }
}

/*
 * The ring path for writes into clusters writable in place (see
 * map_on_loop): one write of the data file on the loop's io_uring.  The
 * core's track on this node keeps overlapping guest requests out until it
 * completes, exactly as while the pool path writes without q->lock.
 * Allocating writes, COW, FUA (a metadata flush) go to the pool.
 */
int
qcow2_aio_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                  struct iovec *iov, int iovcnt, unsigned flags,
                  struct blk_aio *aio, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    enum qcow2_subcluster_type t;
    uint64_t host;
    int r;

    if (flags & (BLK_REQ_FUA | BLK_REQ_COMPRESSED)) {
        return -EAGAIN;
    }
    r = map_on_loop(q, off, len, true, &host, &t, err);
    if (r < 0) {
        return r;
    }
    return blk_child_aio_pwritev(q->data_file, host, len, iov, iovcnt, 0, aio,
                                 err);
}

/* ---- writes ---------------------------------------------------------------- */

static int
check_writable(struct qcow2 *q, struct blk_error *err)
{
    if (q->corrupt) {
        return blk_error_set(err, -EIO, "qcow2 image is corrupt; writes are "
                             "refused");
    }
    return 0;
}

static int
prepare_write(struct qcow2 *q, struct blk_error *err)
{
    int r = check_writable(q, err);

    if (r == 0 && q->lazy_refcounts) {
        r = qcow2_mark_dirty(q, err);
    }
    return r;
}

static int
write_range(struct qcow2 *q, uint64_t off, uint64_t len,
            const struct iovec *iov, int cnt, unsigned flags, bool unlock_ok,
            struct blk_error *err)
{
    uint64_t pos = 0;
    int r = prepare_write(q, err);

    while (r == 0 && pos < len) {
        uint64_t n = len - pos, host;
        bool in_place;
        struct iovec *v;
        int vc;

        r = qcow2_prepare_write(q, off + pos, &n, &host, &in_place, err);
        if (r < 0) {
            break;
        }
        vc = iov_slice_alloc(iov, cnt, pos, n, &v);
        /*
         * Data of clusters we own (refcount 1, mapped) needs no metadata:
         * let other requests run meanwhile.  Overlapping guest requests
         * are serialised by the core, and nothing frees a cluster a
         * non-overlapping request could be writing in place.
         */
        if (in_place && unlock_ok) {
            pthread_mutex_unlock(&q->lock);
        }
        r = blk_child_pwritev(q->data_file, host, n, v, vc,
                              flags & BLK_REQ_FUA, err);
        if (in_place && unlock_ok) {
            pthread_mutex_lock(&q->lock);
        }
        free(v);
        pos += n;
    }
    return r;
}

/* Write with q->lock held throughout (zero fallback, compressed fallback). */
static int
write_locked(struct qcow2 *q, uint64_t off, uint64_t len,
             const struct iovec *iov, int cnt, unsigned flags,
             struct blk_error *err)
{
    return write_range(q, off, len, iov, cnt, flags, false, err);
}

/* Clusters compressed per batch: bounds the buffers of one request. */
#define COMPRESS_BATCH 32

/* One cluster of a compressed write. */
struct zcluster {
    const uint8_t *data;        /* the cluster's input (cluster_size bytes) */
    int64_t clen;               /* compressed length, or -ENOSPC: store it */
    uint64_t host;              /* where its bytes went */
};

/* Check that the cluster at guest offset @off is unallocated (QEMU's rule). */
static int
compressed_target_free(struct qcow2 *q, uint64_t off, struct blk_error *err)
{
    uint64_t i, e;
    void *slice;
    int r = qcow2_get_l2_slice(q, off, true, &slice, &i, err);

    if (r < 0) {
        return r;
    }
    e = qcow2_l2_get(q, slice, i);
    qcow2_cache_put(q->l2_cache, &slice);
    if (e & QCOW2_L2E_OFFSET_MASK) {
        return blk_error_set(err, -EIO, "compressed writes can only go to "
                             "unallocated clusters");
    }
    return 0;
}

/*
 * Place a batch of compressed clusters, q->lock held: allocate their bytes
 * in guest order (the allocator packs them back to back), write each run
 * of adjacent bytes with one request, then point the L2 entries at them.
 * Clusters that did not compress are written as normal clusters.
 */
static int
place_compressed(struct qcow2 *q, uint64_t off, struct zcluster *zc,
                 uint8_t *const *out, unsigned n, struct blk_error *err)
{
    struct iovec v[COMPRESS_BATCH];
    unsigned i = 0;
    int r = prepare_write(q, err);

    while (r == 0 && i < n) {
        uint64_t coff = off + (uint64_t)i * q->cluster_size;
        uint64_t run_host = 0, run_len = 0;
        unsigned first = i, nv = 0;

        if (zc[i].clen < 0) {
            uint64_t len = q->cluster_size;
            struct iovec pv;

            if (coff + len > q->size) {
                len = q->size - coff;
            }
            pv.iov_base = (void *)zc[i].data;
            pv.iov_len = len;
            r = write_locked(q, coff, len, &pv, 1, 0, err);
            i++;
            continue;
        }
        /*
         * Collect the run of compressed clusters whose bytes are adjacent.
         * A cluster allocated where the run cannot go on starts the next
         * run (host != 0: already allocated).
         */
        while (i < n && zc[i].clen >= 0) {
            if (zc[i].host == 0) {
                int64_t host;

                r = compressed_target_free(q, off + (uint64_t)i *
                                           q->cluster_size, err);
                if (r < 0) {
                    break;
                }
                host = qcow2_alloc_bytes(q, (uint64_t)zc[i].clen, err);
                if (host < 0) {
                    r = (int)host;
                    break;
                }
                zc[i].host = (uint64_t)host;
            }
            if (nv > 0 && zc[i].host != run_host + run_len) {
                break;
            }
            if (nv == 0) {
                run_host = zc[i].host;
            }
            v[nv].iov_base = out[i];
            v[nv].iov_len = (size_t)zc[i].clen;
            nv++;
            run_len += (uint64_t)zc[i].clen;
            i++;
        }
        if (nv > 0 && r == 0) {
            r = qcow2_pre_write_check(q, 0, run_host, run_len, true, err);
            if (r == 0) {
                r = blk_child_pwritev(q->file, run_host, run_len, v, (int)nv,
                                      0, err);
            }
            for (unsigned k = first; r == 0 && k < first + nv; k++) {
                r = qcow2_set_compressed(q, off + (uint64_t)k * q->cluster_size,
                                         zc[k].host, (uint64_t)zc[k].clen,
                                         err);
            }
        }
    }
    return r;
}

/*
 * Compressed write of whole clusters (the last one may end at the image
 * end).  Each batch is compressed without the lock, so requests on other
 * threads compress at the same time; only the placement takes the lock.
 */
static int
write_compressed(struct qcow2 *q, uint64_t off, uint64_t len,
                 const struct iovec *iov, int cnt, struct blk_error *err)
{
    uint64_t cs = q->cluster_size, nclusters, pos = 0;
    uint8_t *in = NULL, *outbuf = NULL;
    bool flat = cnt == 1 && qcow2_offset_into_cluster(q, len) == 0;
    int r = 0;

    if (q->data_file != q->file) {
        return blk_error_set(err, -ENOTSUP, "compressed writes are not "
                             "supported with an external data file");
    }
    if (qcow2_offset_into_cluster(q, off) != 0 ||
        (qcow2_offset_into_cluster(q, len) != 0 && off + len != q->size)) {
        return blk_error_set(err, -EINVAL, "compressed writes must cover "
                             "whole clusters");
    }
    nclusters = (len + cs - 1) / cs;
    {
        uint64_t batch = nclusters < COMPRESS_BATCH ? nclusters
                                                    : COMPRESS_BATCH;

        outbuf = blk_try_malloc(batch * cs);
        if (!flat) {
            in = blk_try_malloc(batch * cs);
        }
        if (outbuf == NULL || (!flat && in == NULL)) {
            free(outbuf);
            free(in);
            return blk_error_set(err, -ENOMEM, "cannot allocate compression "
                                 "buffers");
        }
    }
    while (r == 0 && pos < len) {
        struct zcluster zc[COMPRESS_BATCH];
        uint8_t *out[COMPRESS_BATCH];
        uint64_t blen = len - pos;
        unsigned n;

        if (blen > COMPRESS_BATCH * cs) {
            blen = COMPRESS_BATCH * cs;
        }
        n = (unsigned)((blen + cs - 1) / cs);
        if (!flat) {
            /* Gather (and zero-pad a short last cluster). */
            iov_to_buf(iov, cnt, pos, in, blen);
            if (blen < (uint64_t)n * cs) {
                memset(in + blen, 0, (uint64_t)n * cs - blen);
            }
        }
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *src = flat ? (const uint8_t *)iov[0].iov_base + pos +
                                        (uint64_t)i * cs
                                      : in + (uint64_t)i * cs;

            out[i] = outbuf + (uint64_t)i * cs;
            zc[i].data = src;
            zc[i].host = 0;
            zc[i].clen = qcow2_compress(q->compression_type, out[i], cs - 1,
                                        src, cs);
            if (zc[i].clen < 0 && zc[i].clen != -ENOSPC) {
                r = blk_error_set(err, -EIO, "cannot compress cluster data");
                break;
            }
        }
        if (r == 0) {
            pthread_mutex_lock(&q->lock);
            r = place_compressed(q, off + pos, zc, out, n, err);
            pthread_mutex_unlock(&q->lock);
        }
        pos += blen;
    }
    free(outbuf);
    free(in);
    return r;
}

/*
 * FUA: the data and the metadata that maps it must be stable before the
 * request completes (QEMU emulates FUA on qcow2 with a flush, too).
 */
static int
fua_flush(struct qcow2 *q, unsigned flags, struct blk_error *err)
{
    int r;

    if (!(flags & BLK_REQ_FUA)) {
        return 0;
    }
    pthread_mutex_lock(&q->lock);
    r = qcow2_flush_locked(q, err);
    pthread_mutex_unlock(&q->lock);
    if (r == 0 && q->data_file != q->file) {
        r = blk_child_flush(q->data_file, err);
    }
    return r;
}

int
qcow2_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
              struct iovec *iov, int iovcnt, unsigned flags,
              struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    int r;

    if (flags & BLK_REQ_COMPRESSED) {
        r = write_compressed(q, off, len, iov, iovcnt, err);
    } else {
        pthread_mutex_lock(&q->lock);
        r = write_range(q, off, len, iov, iovcnt, flags, true, err);
        pthread_mutex_unlock(&q->lock);
    }
    return r == 0 ? fua_flush(q, flags, err) : r;
}

/* ---- zero, discard ----------------------------------------------------------- */

/* Zero one piece: subcluster-aligned (or reaching the image end). */
static int
zeroize(struct qcow2 *q, uint64_t off, uint64_t len, unsigned flags,
        struct blk_error *err)
{
    uint64_t end = off + len;
    uint64_t head, tail;
    int r = 0;

    if (q->data_file_raw) {
        r = blk_child_zero(q->data_file, off, len, flags, err);
        if (r < 0) {
            return r;
        }
    }
    if (q->version < 3) {
        /* No zero flag in v2; without a backing file, discard reads zero. */
        if (q->backing == NULL) {
            return qcow2_discard_clusters(q, off, len, QCOW2_DISCARD_REQUEST,
                                          false, err);
        }
        return -ENOTSUP;
    }
    head = (end < ((off + q->cluster_size - 1) & ~(q->cluster_size - 1)) ?
            end : ((off + q->cluster_size - 1) & ~(q->cluster_size - 1))) - off;
    off += head;
    tail = end >= q->size ? 0 :
           end - (off > qcow2_start_of_cluster(q, end) ? off :
                  qcow2_start_of_cluster(q, end));
    end -= tail;
    if (head) {
        r = qcow2_zero_subclusters(q, off - head, head, err);
        if (r < 0) {
            return r;
        }
    }
    if (end > off) {
        r = qcow2_zero_clusters(q, off, end - off, flags, err);
        if (r < 0) {
            return r;
        }
    }
    if (tail) {
        r = qcow2_zero_subclusters(q, end, tail, err);
    }
    return r;
}

/* One piece inside a subcluster (unaligned) or aligned. */
static int
zero_piece(struct qcow2 *q, uint64_t off, uint64_t len, unsigned flags,
           struct blk_error *err)
{
    uint64_t sc = q->subcluster_size;
    uint64_t head = off & (sc - 1);
    uint64_t end = off + len;
    uint64_t tail = ((end + sc - 1) & ~(sc - 1)) - end;
    int r = 0;

    if (end == q->size) {
        tail = 0;
    }
    if (head || tail) {
        uint64_t n, host;
        enum qcow2_subcluster_type t;
        struct blk_error ignored = BLK_ERROR_INIT;

        if (!qcow2_range_reads_zero(q, off - head, head) || !qcow2_range_reads_zero(q, end, tail)) {
            return -ENOTSUP;
        }
        off -= head;
        len = sc;
        if (off + len > q->size) {
            len = q->size - off;
        }
        n = len;
        r = qcow2_get_host_offset(q, off, &n, &host, &t, &ignored);
        if (r < 0 || (t != QCOW2_SC_UNALLOCATED_PLAIN &&
                      t != QCOW2_SC_UNALLOCATED_ALLOC &&
                      t != QCOW2_SC_ZERO_PLAIN && t != QCOW2_SC_ZERO_ALLOC)) {
            return -ENOTSUP;
        }
    }
    return zeroize(q, off, len, flags, err);
}

int
qcow2_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
           struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t end = off + len;
    int r = 0;

    pthread_mutex_lock(&q->lock);
    r = prepare_write(q, err);
    /*
     * Split like QEMU's generic layer with its zeroing alignment (the
     * subcluster): unaligned head, aligned middle, unaligned tail.
     */
    while (r == 0 && off < end) {
        uint64_t sc = q->subcluster_size;
        uint64_t next = (off & ~(sc - 1)) + sc;
        uint64_t n;

        if ((off & (sc - 1)) == 0 && end - off >= sc) {
            n = (end & ~(sc - 1)) - off;
        } else {
            n = (next < end ? next : end) - off;
        }
        r = zero_piece(q, off, n, flags, err);
        if (r == -ENOTSUP) {
            if (flags & BLK_REQ_NO_FALLBACK) {
                r = blk_error_set(err, -ENOTSUP, "efficient zeroing is not "
                                  "possible here");
                break;
            }
            {
                uint8_t *zbuf = blk_try_zalloc(n);
                struct iovec v = { zbuf, n };

                if (zbuf == NULL) {
                    r = blk_error_set(err, -ENOMEM, "cannot allocate zero "
                                      "buffer");
                    break;
                }
                r = write_locked(q, off, n, &v, 1, flags & BLK_REQ_FUA, err);
                free(zbuf);
            }
        }
        off += n;
    }
    pthread_mutex_unlock(&q->lock);
    return r == 0 ? fua_flush(q, flags, err) : r;
}

int
qcow2_discard(struct blk_node *bs, uint64_t off, uint64_t len,
              struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t start = (off + q->cluster_size - 1) & ~(q->cluster_size - 1);
    uint64_t end = off + len;
    int r;

    /* Only whole clusters (or the partial last one) are discarded. */
    if (end != q->size) {
        end = qcow2_start_of_cluster(q, end);
    }
    if (end <= start) {
        return 0;
    }
    pthread_mutex_lock(&q->lock);
    r = prepare_write(q, err);
    if (r == 0) {
        r = qcow2_discard_clusters(q, start, end - start, QCOW2_DISCARD_REQUEST,
                                   false, err);
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

