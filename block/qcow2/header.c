/*
 * header.c - qcow2 header: parse and validate the header cluster (fixed
 * fields and extensions), serialise it back (preserving what we don't
 * know), and the feature bits that live in it (dirty, corrupt).
 * The spec: docs/interop/qcow2.txt; messages follow QEMU 7.2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

/* QEMU 7.2's feature name table, in its order (written at create). */
const struct qcow2_feature qcow2_feature_table[] = {
    { QCOW2_FEAT_INCOMPAT, 0, "dirty bit" },
    { QCOW2_FEAT_INCOMPAT, 1, "corrupt bit" },
    { QCOW2_FEAT_INCOMPAT, 2, "external data file" },
    { QCOW2_FEAT_INCOMPAT, 3, "compression type" },
    { QCOW2_FEAT_INCOMPAT, 4, "extended L2 entries" },
    { QCOW2_FEAT_COMPAT, 0, "lazy refcounts" },
    { QCOW2_FEAT_AUTOCLEAR, 0, "bitmaps" },
    { QCOW2_FEAT_AUTOCLEAR, 1, "raw external data" },
};
const size_t qcow2_feature_table_len = ARRAY_SIZE(qcow2_feature_table);

uint64_t
qcow2_l1_entries_for(uint64_t size, unsigned cluster_bits, bool extended_l2)
{
    unsigned l2_bits = cluster_bits - (extended_l2 ? 4 : 3);
    unsigned shift = cluster_bits + l2_bits;
    uint64_t span = 1ULL << shift;

    return size / span + (size % span != 0);
}

static void
ext_free_all(struct qcow2_ext *e)
{
    while (e != NULL) {
        struct qcow2_ext *next = e->next;

        free(e->data);
        free(e);
        e = next;
    }
}

void
qcow2_header_info_release(struct qcow2_header_info *hi)
{
    free(hi->unknown_fields);
    free(hi->backing_format);
    free(hi->data_file);
    free(hi->backing_file);
    free(hi->features);
    ext_free_all(hi->exts);
    memset(hi, 0, sizeof(*hi));
}

/* QEMU's table validation: "<what> too large" / "<what> offset invalid". */
static int
validate_table(uint64_t off, uint64_t entries, uint64_t entry_len,
               uint64_t max_bytes, uint64_t cluster_size, const char *what,
               struct blk_error *err)
{
    uint64_t size;

    if (entries > max_bytes / entry_len) {
        return blk_error_set(err, -EFBIG, "%s too large", what);
    }
    size = entries * entry_len;
    if ((uint64_t)INT64_MAX - size < off || (off & (cluster_size - 1)) != 0) {
        return blk_error_set(err, -EINVAL, "%s offset invalid", what);
    }
    return 0;
}

static void
report_unsupported(const struct qcow2_header_info *hi, uint64_t mask,
                   struct blk_error *err)
{
    struct sbuf sb = SBUF_INIT;

    for (size_t i = 0; i < hi->n_features; i++) {
        const struct qcow2_feature *f = &hi->features[i];

        if (f->type == QCOW2_FEAT_INCOMPAT && f->bit < 64 &&
            (mask & (1ULL << f->bit))) {
            if (sb.len > 0) {
                sbuf_adds(&sb, ", ");
            }
            sbuf_adds(&sb, f->name);
            mask &= ~(1ULL << f->bit);
        }
    }
    if (mask != 0) {
        if (sb.len > 0) {
            sbuf_adds(&sb, ", ");
        }
        sbuf_addf(&sb, "Unknown incompatible feature: %" PRIx64, mask);
    }
    blk_error_set(err, -ENOTSUP, "Unsupported qcow2 feature(s): %s", sb.buf);
    sbuf_release(&sb);
}

static void
ext_append(struct qcow2_ext **list, uint32_t magic, const uint8_t *data,
           uint32_t len)
{
    struct qcow2_ext *e = xzalloc(sizeof(*e));

    e->magic = magic;
    e->len = len;
    e->data = xmemdup(data, len ? len : 1);
    while (*list != NULL) {
        list = &(*list)->next;
    }
    *list = e;
}

static int
parse_bitmaps_ext(struct qcow2_header_info *hi, const uint8_t *p, uint32_t len,
                  struct blk_error *err)
{
    uint64_t cluster_size = 1ULL << hi->h.cluster_bits;
    struct qcow2_bitmaps_ext *b = &hi->bitmaps;

    if (len != 24) {
        return blk_error_set(err, -EINVAL,
                             "bitmaps_ext: Invalid extension length");
    }
    if (!(hi->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        /* Someone without bitmap support wrote the image: the bitmaps are
         * stale, and QEMU drops the extension on the next header update. */
        hi->bitmaps_stale = true;
        return 0;
    }
    if (qcow2_be32(p + 4) != 0) {
        return blk_error_set(err, -EINVAL,
                             "bitmaps_ext: Reserved field is not zero");
    }
    b->nb_bitmaps = qcow2_be32(p);
    b->directory_size = qcow2_be64(p + 8);
    b->directory_offset = qcow2_be64(p + 16);
    if (b->nb_bitmaps > QCOW2_MAX_BITMAPS) {
        return blk_error_set(err, -EINVAL, "bitmaps_ext: Image has %" PRIu32
                             " bitmaps, exceeding the QEMU supported maximum "
                             "of %d", b->nb_bitmaps, QCOW2_MAX_BITMAPS);
    }
    if (b->nb_bitmaps == 0) {
        return blk_error_set(err, -EINVAL,
                             "found bitmaps extension with zero bitmaps");
    }
    if (b->directory_offset & (cluster_size - 1)) {
        return blk_error_set(err, -EINVAL,
                             "bitmaps_ext: invalid bitmap directory offset");
    }
    if (b->directory_size > QCOW2_MAX_BITMAP_DIRECTORY_BYTES) {
        return blk_error_set(err, -EINVAL, "bitmaps_ext: bitmap directory "
                             "size (%" PRIu64 ") exceeds the maximum "
                             "supported size (%u)", b->directory_size,
                             QCOW2_MAX_BITMAP_DIRECTORY_BYTES);
    }
    hi->has_bitmaps_ext = true;
    ext_append(&hi->exts, QCOW2_EXT_BITMAPS, p, len);
    return 0;
}

static void
parse_feature_table(struct qcow2_header_info *hi, const uint8_t *p,
                    uint32_t len)
{
    size_t n = len / 48;

    free(hi->features);
    hi->features = xcalloc(n ? n : 1, sizeof(*hi->features));
    hi->n_features = 0;
    for (size_t i = 0; i < n; i++) {
        struct qcow2_feature *f = &hi->features[hi->n_features];

        f->type = p[i * 48];
        f->bit = p[i * 48 + 1];
        memcpy(f->name, p + i * 48 + 2, 46);
        f->name[46] = '\0';
        if (f->name[0] == '\0') {
            break;
        }
        hi->n_features++;
    }
}

/*
 * Walk the extensions in buf[start, end).  only_features: just collect the
 * feature table (used for the unsupported-feature message).
 */
static int
parse_extensions(struct qcow2_header_info *hi, const uint8_t *buf,
                 uint64_t start, uint64_t end, bool only_features,
                 struct blk_error *err)
{
    uint64_t off = start;
    int r;

    while (off < end) {
        uint32_t magic, len;

        if (end - off < 8) {
            return blk_error_set(err, -EINVAL, "Header extension too large");
        }
        magic = qcow2_be32(buf + off);
        len = qcow2_be32(buf + off + 4);
        off += 8;
        if (len > end - off) {
            return blk_error_set(err, -EINVAL, "Header extension too large");
        }
        if (magic == QCOW2_EXT_END) {
            return 0;
        }
        if (only_features) {
            if (magic == QCOW2_EXT_FEATURE_TABLE) {
                parse_feature_table(hi, buf + off, len);
            }
            off += (len + 7ULL) & ~7ULL;
            continue;
        }
        switch (magic) {
        case QCOW2_EXT_BACKING_FORMAT:
            if (len >= 16) {
                return blk_error_set(err, -EINVAL, "ERROR: ext_backing_format: "
                                     "len=%" PRIu32 " too large (>=16)", len);
            }
            free(hi->backing_format);
            hi->backing_format = xstrndup((const char *)buf + off, len);
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            parse_feature_table(hi, buf + off, len);
            break;
        case QCOW2_EXT_CRYPTO:
            if (hi->h.crypt_method != 2) {
                return blk_error_set(err, -EINVAL, "CRYPTO header extension "
                                     "only expected with LUKS encryption "
                                     "method");
            }
            hi->has_crypto_ext = true;
            break;
        case QCOW2_EXT_BITMAPS:
            r = parse_bitmaps_ext(hi, buf + off, len, err);
            if (r < 0) {
                return r;
            }
            break;
        case QCOW2_EXT_DATA_FILE:
            free(hi->data_file);
            hi->data_file = xstrndup((const char *)buf + off, len);
            break;
        default:
            ext_append(&hi->exts, magic, buf + off, len);
            break;
        }
        off += (len + 7ULL) & ~7ULL;
    }
    return 0;
}

static int
check_compression(const struct qcow2_header *h, struct blk_error *err)
{
    bool bit = h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION;

    if (h->compression_type > QCOW2_COMPRESSION_ZSTD) {
        return blk_error_set(err, -ENOTSUP, "qcow2: unknown compression type: "
                             "%u", h->compression_type);
    }
    if (h->compression_type != QCOW2_COMPRESSION_ZLIB && !bit) {
        return blk_error_set(err, -EINVAL, "qcow2: Compression type incompatible "
                             "feature bit must be set");
    }
    if (h->compression_type == QCOW2_COMPRESSION_ZLIB && bit) {
        return blk_error_set(err, -EINVAL, "qcow2: Compression type incompatible "
                             "feature bit must not be set");
    }
    return 0;
}

static void
read_fixed(const uint8_t *buf, struct qcow2_header *h)
{
    h->magic = qcow2_be32(buf);
    h->version = qcow2_be32(buf + 4);
    h->backing_file_offset = qcow2_be64(buf + 8);
    h->backing_file_size = qcow2_be32(buf + 16);
    h->cluster_bits = qcow2_be32(buf + 20);
    h->size = qcow2_be64(buf + 24);
    h->crypt_method = qcow2_be32(buf + 32);
    h->l1_size = qcow2_be32(buf + 36);
    h->l1_table_offset = qcow2_be64(buf + 40);
    h->refcount_table_offset = qcow2_be64(buf + 48);
    h->refcount_table_clusters = qcow2_be32(buf + 56);
    h->nb_snapshots = qcow2_be32(buf + 60);
    h->snapshots_offset = qcow2_be64(buf + 64);
    if (h->version == 2) {
        h->incompatible_features = 0;
        h->compatible_features = 0;
        h->autoclear_features = 0;
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_SIZE;
        h->compression_type = 0;
    } else {
        h->incompatible_features = qcow2_be64(buf + 72);
        h->compatible_features = qcow2_be64(buf + 80);
        h->autoclear_features = qcow2_be64(buf + 88);
        h->refcount_order = qcow2_be32(buf + 96);
        h->header_length = qcow2_be32(buf + 100);
        h->compression_type = 0;
    }
}

/* Checks on the fixed fields that come after the feature bits. */
static int
check_tables(const struct qcow2_header_info *hi, struct blk_error *err)
{
    const struct qcow2_header *h = &hi->h;
    uint64_t cluster_size = 1ULL << h->cluster_bits;
    bool ext_l2 = h->incompatible_features & QCOW2_INCOMPAT_EXTL2;
    uint64_t vm_state_index;
    int r;

    if (h->refcount_order > 6) {
        return blk_error_set(err, -EINVAL, "Reference count entry width too "
                             "large; may not exceed 64 bits");
    }
    if (h->crypt_method > 2) {
        return blk_error_set(err, -EINVAL, "Unsupported encryption method %"
                             PRIu32, h->crypt_method);
    }
    if (h->crypt_method != 0) {
        return blk_error_set(err, -ENOTSUP, "encrypted qcow2 images are not "
                             "supported");
    }
    if (h->refcount_table_clusters == 0 && !hi->check_mode) {
        return blk_error_set(err, -EINVAL, "Image does not contain a reference "
                             "count table");
    }
    r = validate_table(h->refcount_table_offset, h->refcount_table_clusters,
                       cluster_size, QCOW2_MAX_REFTABLE_BYTES, cluster_size,
                       "Reference count table", err);
    if (r < 0) {
        return r;
    }
    if (!hi->check_mode) {
        r = validate_table(h->snapshots_offset, h->nb_snapshots, 40,
                           40ULL * QCOW2_MAX_SNAPSHOTS, cluster_size,
                           "Snapshot table", err);
        if (r < 0) {
            return r;
        }
    }
    r = validate_table(h->l1_table_offset, h->l1_size, 8, QCOW2_MAX_L1_BYTES,
                       cluster_size, "Active L1 table", err);
    if (r < 0) {
        return r;
    }
    if (ext_l2 && h->cluster_bits < 14) {
        return blk_error_set(err, -EINVAL, "Extended L2 entries are only "
                             "supported with cluster sizes of at least 16384 "
                             "bytes");
    }
    vm_state_index = qcow2_l1_entries_for(h->size, h->cluster_bits, ext_l2);
    if (vm_state_index > INT32_MAX) {
        return blk_error_set(err, -EFBIG, "Image is too big");
    }
    if (h->l1_size < vm_state_index) {
        return blk_error_set(err, -EINVAL, "L1 table is too small");
    }
    return 0;
}

int
qcow2_parse_header_cluster(const uint8_t *buf, size_t len,
                           struct qcow2_header_info *hi, struct blk_error *err)
{
    struct qcow2_header *h = &hi->h;
    uint64_t cluster_size, ext_end;
    int r;

    if (len < QCOW2_V2_HEADER_SIZE || qcow2_be32(buf) != QCOW2_MAGIC) {
        return blk_error_set(err, -EINVAL, "Image is not in qcow2 format");
    }
    read_fixed(buf, h);
    if (h->version < 2 || h->version > 3) {
        return blk_error_set(err, -ENOTSUP, "Unsupported qcow2 version %" PRIu32,
                             h->version);
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return blk_error_set(err, -EINVAL, "Unsupported cluster size: 2^%" PRIu32,
                             h->cluster_bits);
    }
    cluster_size = 1ULL << h->cluster_bits;
    if (h->version == 3 && h->header_length < QCOW2_V3_HEADER_SIZE) {
        return blk_error_set(err, -EINVAL, "qcow2 header too short");
    }
    if (h->header_length > cluster_size) {
        return blk_error_set(err, -EINVAL, "qcow2 header exceeds cluster size");
    }
    if (h->header_length > len) {
        return blk_error_set(err, -EINVAL, "qcow2 header is truncated");
    }
    if (h->header_length > QCOW2_V3_HEADER_SIZE) {
        h->compression_type = buf[QCOW2_V3_HEADER_SIZE];
    }
    if (h->header_length > QCOW2_HEADER_SIZE) {
        hi->unknown_fields_len = h->header_length - QCOW2_HEADER_SIZE;
        hi->unknown_fields = xmemdup(buf + QCOW2_HEADER_SIZE,
                                     hi->unknown_fields_len);
    }
    if (h->backing_file_offset > cluster_size) {
        return blk_error_set(err, -EINVAL, "Invalid backing file offset");
    }
    ext_end = h->backing_file_offset ? h->backing_file_offset : cluster_size;
    if (ext_end > len) {
        ext_end = len;
    }
    r = check_compression(h, err);
    if (r < 0) {
        return r;
    }
    if (h->incompatible_features & ~(uint64_t)QCOW2_INCOMPAT_MASK) {
        struct blk_error ignored = BLK_ERROR_INIT;

        parse_extensions(hi, buf, h->header_length, ext_end, true, &ignored);
        report_unsupported(hi, h->incompatible_features &
                           ~(uint64_t)QCOW2_INCOMPAT_MASK, err);
        return -ENOTSUP;
    }
    r = check_tables(hi, err);
    if (r < 0) {
        return r;
    }
    r = parse_extensions(hi, buf, h->header_length, ext_end, false, err);
    if (r < 0) {
        return r;
    }
    if (h->backing_file_offset != 0) {
        uint64_t blen = h->backing_file_size;

        if (blen > QCOW2_MAX_BACKING_NAME ||
            blen > cluster_size - h->backing_file_offset) {
            return blk_error_set(err, -EINVAL, "Backing file name too long");
        }
        if (h->backing_file_offset + blen > len) {
            return blk_error_set(err, -EINVAL, "Could not read backing file "
                                 "name: beyond the end of the image");
        }
        hi->backing_file = xstrndup((const char *)buf + h->backing_file_offset,
                                    blen);
    }
    return 0;
}

/* Append one extension (header + data padded to 8) at *pos. */
static int
put_ext(uint8_t *buf, size_t len, size_t *pos, uint32_t magic,
        const void *data, uint32_t dlen, struct blk_error *err)
{
    size_t padded = ((size_t)dlen + 7) & ~(size_t)7;

    if (*pos + 8 + padded > len) {
        return blk_error_set(err, -ENOSPC, "header extensions do not fit "
                             "into the first cluster");
    }
    qcow2_put_be32(buf + *pos, magic);
    qcow2_put_be32(buf + *pos + 4, dlen);
    if (dlen > 0) {
        memcpy(buf + *pos + 8, data, dlen);
    }
    *pos += 8 + padded;
    return 0;
}

static int
put_unknown_reversed(const struct qcow2_ext *e, uint8_t *buf, size_t len,
                     size_t *pos, struct blk_error *err)
{
    int r;

    if (e == NULL) {
        return 0;
    }
    r = put_unknown_reversed(e->next, buf, len, pos, err);
    if (r < 0 || e->magic == QCOW2_EXT_BITMAPS) {
        return r;
    }
    return put_ext(buf, len, pos, e->magic, e->data, e->len, err);
}

static int
put_feature_table(uint8_t *buf, size_t len, size_t *pos, struct blk_error *err)
{
    uint8_t tbl[48 * 8];

    memset(tbl, 0, sizeof(tbl));
    for (size_t i = 0; i < qcow2_feature_table_len; i++) {
        tbl[i * 48] = qcow2_feature_table[i].type;
        tbl[i * 48 + 1] = qcow2_feature_table[i].bit;
        memcpy(tbl + i * 48 + 2, qcow2_feature_table[i].name,
               strlen(qcow2_feature_table[i].name));
    }
    return put_ext(buf, len, pos, QCOW2_EXT_FEATURE_TABLE, tbl,
                   (uint32_t)(qcow2_feature_table_len * 48), err);
}

int
qcow2_build_header_cluster(const struct qcow2 *q, uint8_t *buf, size_t len,
                           struct blk_error *err)
{
    const struct qcow2_header *h = &q->h;
    size_t pos;
    int r;

    memset(buf, 0, len);
    qcow2_put_be32(buf, QCOW2_MAGIC);
    qcow2_put_be32(buf + 4, h->version);
    qcow2_put_be32(buf + 20, h->cluster_bits);
    qcow2_put_be64(buf + 24, h->size);
    qcow2_put_be32(buf + 32, h->crypt_method);
    qcow2_put_be32(buf + 36, h->l1_size);
    qcow2_put_be64(buf + 40, h->l1_table_offset);
    qcow2_put_be64(buf + 48, h->refcount_table_offset);
    qcow2_put_be32(buf + 56, h->refcount_table_clusters);
    qcow2_put_be32(buf + 60, h->nb_snapshots);
    qcow2_put_be64(buf + 64, h->snapshots_offset);
    if (h->version >= 3) {
        size_t hl = QCOW2_HEADER_SIZE + q->unknown_header_fields_len;

        qcow2_put_be64(buf + 72, h->incompatible_features);
        qcow2_put_be64(buf + 80, h->compatible_features);
        qcow2_put_be64(buf + 88, h->autoclear_features);
        qcow2_put_be32(buf + 96, h->refcount_order);
        qcow2_put_be32(buf + 100, (uint32_t)hl);
        buf[104] = h->compression_type;
        if (hl > len) {
            return blk_error_set(err, -ENOSPC, "header does not fit into the "
                                 "first cluster");
        }
        if (q->unknown_header_fields_len > 0) {
            memcpy(buf + QCOW2_HEADER_SIZE, q->unknown_header_fields,
                   q->unknown_header_fields_len);
        }
        pos = hl;
    } else {
        pos = QCOW2_V2_HEADER_SIZE;
    }

    if (q->backing_format != NULL) {
        r = put_ext(buf, len, &pos, QCOW2_EXT_BACKING_FORMAT,
                    q->backing_format, (uint32_t)strlen(q->backing_format),
                    err);
        if (r < 0) {
            return r;
        }
    }
    if (q->data_file_name != NULL) {
        r = put_ext(buf, len, &pos, QCOW2_EXT_DATA_FILE, q->data_file_name,
                    (uint32_t)strlen(q->data_file_name), err);
        if (r < 0) {
            return r;
        }
    }
    /* QEMU 7.2 leaves the table out of header clusters of 4 KiB and less. */
    if (h->version >= 3 && len > 4096) {
        r = put_feature_table(buf, len, &pos, err);
        if (r < 0) {
            return r;
        }
    }
    /* The bitmaps extension, then unknown ones newest-read first (QEMU's order). */
    for (const struct qcow2_ext *e = q->exts; e != NULL; e = e->next) {
        if (e->magic == QCOW2_EXT_BITMAPS && q->has_bitmaps_ext) {
            r = put_ext(buf, len, &pos, e->magic, e->data, e->len, err);
            if (r < 0) {
                return r;
            }
            break;
        }
    }
    r = put_unknown_reversed(q->exts, buf, len, &pos, err);
    if (r < 0) {
        return r;
    }
    /* End marker (already zero) */
    if (pos + 8 > len) {
        return blk_error_set(err, -ENOSPC, "header extensions do not fit "
                             "into the first cluster");
    }
    pos += 8;
    if (q->backing_file != NULL) {
        size_t blen = strlen(q->backing_file);

        if (pos + blen > len) {
            return blk_error_set(err, -ENOSPC, "backing file name does not "
                                 "fit into the first cluster");
        }
        memcpy(buf + pos, q->backing_file, blen);
        qcow2_put_be64(buf + 8, pos);
        qcow2_put_be32(buf + 16, (uint32_t)blen);
    }
    return 0;
}

int
qcow2_write_header(struct qcow2 *q, struct blk_error *err)
{
    uint8_t *buf;
    int r;

    if (q->read_only) {
        return blk_error_set(err, -EACCES, "image is read-only");
    }
    buf = blk_try_malloc(q->cluster_size);
    if (buf == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate header buffer");
    }
    r = qcow2_build_header_cluster(q, buf, q->cluster_size, err);
    if (r == 0) {
        /* Keep backing offsets current in our copy. */
        q->h.backing_file_offset = qcow2_be64(buf + 8);
        q->h.backing_file_size = qcow2_be32(buf + 16);
        q->h.header_length = q->h.version >= 3 ? qcow2_be32(buf + 100)
                                               : QCOW2_V2_HEADER_SIZE;
        r = blk_child_pwrite(q->file, 0, buf, q->cluster_size, 0, err);
    }
    free(buf);
    return r;
}

int
qcow2_write_features(struct qcow2 *q, struct blk_error *err)
{
    uint8_t buf[24];

    if (q->read_only) {
        return blk_error_set(err, -EACCES, "image is read-only");
    }
    qcow2_put_be64(buf, q->h.incompatible_features);
    qcow2_put_be64(buf + 8, q->h.compatible_features);
    qcow2_put_be64(buf + 16, q->h.autoclear_features);
    return blk_child_pwrite(q->file, 72, buf, sizeof(buf), 0, err);
}

int
qcow2_mark_dirty(struct qcow2 *q, struct blk_error *err)
{
    uint8_t buf[8];
    int r;

    if (q->version < 3 || q->read_only ||
        (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        return 0;
    }
    qcow2_put_be64(buf, q->h.incompatible_features | QCOW2_INCOMPAT_DIRTY);
    r = blk_child_pwrite(q->file, 72, buf, 8, 0, err);
    if (r < 0) {
        return r;
    }
    r = blk_child_flush(q->file, err);
    if (r < 0) {
        return r;
    }
    q->h.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    q->dirty_marked = true;
    return 0;
}

int
qcow2_mark_clean(struct qcow2 *q, struct blk_error *err)
{
    int r;

    if (q->read_only || q->corrupt ||
        !(q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        return 0;
    }
    r = qcow2_flush_locked(q, err);
    if (r < 0) {
        return r;
    }
    q->h.incompatible_features &= ~(uint64_t)QCOW2_INCOMPAT_DIRTY;
    r = qcow2_write_features(q, err);
    if (r < 0) {
        return r;
    }
    q->dirty_marked = false;
    return blk_child_flush(q->file, err);
}

int
qcow2_signal_corruption(struct qcow2 *q, struct blk_error *err,
                        const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);

    if (q->corrupt || q->read_only || q->check_mode) {
        /* Already reported, or we may not write: just fail the request. */
        return blk_error_set(err, -EIO, "%s", what);
    }
    fprintf(stderr, "qcow2: Marking image as corrupt: %s; further corruption "
            "events will be suppressed\n", what);
    q->corrupt = true;
    q->h.incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
    {
        struct blk_error ignored = BLK_ERROR_INIT;

        qcow2_write_features(q, &ignored);
        blk_child_flush(q->file, &ignored);
    }
    return blk_error_set(err, -EIO, "Marking image as corrupt: %s", what);
}

/* ---- the snapshot table (read at open; managed by snapshot code) -------- */

void
qcow2_free_snapshots(struct qcow2 *q)
{
    for (uint32_t i = 0; i < q->nb_snapshots && q->snapshots != NULL; i++) {
        free(q->snapshots[i].id_str);
        free(q->snapshots[i].name);
        free(q->snapshots[i].unknown_extra_data);
    }
    free(q->snapshots);
    q->snapshots = NULL;
}

static int
read_at(struct qcow2 *q, uint64_t off, void *buf, size_t len,
        struct blk_error *err)
{
    int r = blk_child_pread(q->file, off, buf, len, err);

    if (r < 0) {
        blk_error_prefix(err, "Failed to read snapshot table: ");
    }
    return r;
}

int
qcow2_read_snapshots(struct qcow2 *q, struct blk_error *err)
{
    uint64_t off = q->snapshots_offset;
    int r;

    q->snapshots = NULL;
    q->snapshots_size = 0;
    if (q->nb_snapshots == 0) {
        return 0;
    }
    q->snapshots = xcalloc(q->nb_snapshots, sizeof(*q->snapshots));
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        struct qcow2_snapshot *sn = &q->snapshots[i];
        uint8_t h[40], extra[QCOW2_MAX_SNAPSHOT_EXTRA_DATA];
        uint16_t id_len, name_len;

        off = (off + 7) & ~7ULL;
        r = read_at(q, off, h, sizeof(h), err);
        if (r < 0) {
            goto out_fail;
        }
        off += sizeof(h);
        sn->l1_table_offset = qcow2_be64(h);
        sn->l1_size = qcow2_be32(h + 8);
        id_len = qcow2_be16(h + 12);
        name_len = qcow2_be16(h + 14);
        sn->date_sec = qcow2_be32(h + 16);
        sn->date_nsec = qcow2_be32(h + 20);
        sn->vm_clock_nsec = qcow2_be64(h + 24);
        sn->vm_state_size = qcow2_be32(h + 32);
        sn->extra_data_size = qcow2_be32(h + 36);
        if (sn->extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA_DATA) {
            r = blk_error_set(err, -EFBIG, "Too much extra metadata in "
                              "snapshot table entry %" PRIu32, i);
            goto out_fail;
        }
        if (sn->extra_data_size > 0) {
            r = read_at(q, off, extra, sn->extra_data_size, err);
            if (r < 0) {
                goto out_fail;
            }
        }
        off += sn->extra_data_size;
        if (sn->extra_data_size >= 8) {
            sn->vm_state_size = qcow2_be64(extra);
        }
        sn->disk_size = sn->extra_data_size >= 16 ? qcow2_be64(extra + 8)
                                                  : q->size;
        sn->icount = sn->extra_data_size >= 24 ? qcow2_be64(extra + 16)
                                               : UINT64_MAX;
        if (sn->extra_data_size > 24) {
            sn->unknown_extra_data = xmemdup(extra + 24,
                                             sn->extra_data_size - 24);
        }
        sn->id_str = xzalloc((size_t)id_len + 1);
        sn->name = xzalloc((size_t)name_len + 1);
        r = id_len ? read_at(q, off, sn->id_str, id_len, err) : 0;
        off += id_len;
        if (r == 0 && name_len) {
            r = read_at(q, off, sn->name, name_len, err);
        }
        off += name_len;
        if (r < 0) {
            goto out_fail;
        }
        if (off - q->snapshots_offset > QCOW2_MAX_SNAPSHOTS_BYTES) {
            r = blk_error_set(err, -EFBIG, "Snapshot table exceeds the maximum "
                              "size");
            goto out_fail;
        }
    }
    q->snapshots_size = off - q->snapshots_offset;
    return 0;

out_fail:
    qcow2_free_snapshots(q);
    return r;
}
