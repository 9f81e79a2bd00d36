/*
 * bitmap.c - persistent dirty bitmaps in the qcow2 bitmaps extension
 * (the spec, "Bitmaps"): loading them into the node's blk_bitmaps at
 * open, marking them in_use on disk while the image is open read-write
 * (so a crash leaves them inconsistent, as QEMU does), storing them at
 * close, and describing them for `info`.
 *
 * Choice: bitmaps are stored on close only, not on flush.  A stored
 * bitmap has in_use cleared, so storing on flush would make a crash after
 * the flush look consistent while later writes were never recorded.
 * Single-threaded: called from open, close and get_info.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap.h"
#include "block/qcow2/qcow2-int.h"
#include "keyval/kv.h"
#include "util/xalloc.h"

#define BME_IN_USE (1u << 0)
#define BME_AUTO (1u << 1)
#define BME_EXTRA_DATA_COMPATIBLE (1u << 2)
#define BME_RESERVED_FLAGS (~7u)
#define BME_TYPE_DIRTY 1
#define BME_MIN_GRAN_BITS 9
#define BME_MAX_GRAN_BITS 31
#define BME_MAX_NAME 1023
#define BME_MAX_TABLE_SIZE 0x8000000u           /* entries */
#define BME_TABLE_RESERVED 0xff000000000001feULL
#define BME_TABLE_OFFSET_MASK 0x00fffffffffffe00ULL
#define BME_ENTRY_FIXED 24                      /* bytes before extra data */

struct dir_entry {
    uint64_t table_offset;
    uint32_t table_size;        /* entries */
    uint32_t flags;
    uint8_t type;
    uint8_t gran_bits;
    uint32_t extra_size;
    char *name;                 /* owned */
    const uint8_t *raw;         /* the whole entry inside the directory buffer */
    size_t raw_len;             /* bytes including padding */
};

static uint64_t
round_up8(uint64_t n)
{
    return (n + 7) & ~7ull;
}

/* Bytes of bitmap data for a disk of size bytes at 2^gran_bits granularity. */
static uint64_t
data_bytes(uint64_t size, unsigned gran_bits)
{
    uint64_t units = (size + (1ull << gran_bits) - 1) >> gran_bits;

    return (units + 7) / 8;
}

static void
dir_free(struct dir_entry *e, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(e[i].name);
    }
    free(e);
}

/*
 * Read and validate the bitmap directory.  *buf (owned by the caller)
 * keeps the raw bytes the entries point into.  With check_size, a
 * bitmap not in use must have a table large enough for the image (QEMU's
 * rule: in_use tables may be stale after a resize, larger ones are fine);
 * store reads the old directory without it, since the image may have
 * been resized since the tables were written.
 */
static int
read_directory(struct qcow2 *q, bool check_size, uint8_t **buf,
               struct dir_entry **out, size_t *n_out, struct blk_error *err)
{
    uint64_t size = q->bitmaps.directory_size, pos = 0;
    uint32_t n = q->bitmaps.nb_bitmaps, i;
    int64_t file_len = blk_child_get_length(q->file);
    struct dir_entry *e;
    uint8_t *b;
    int r;

    *buf = NULL;
    *out = NULL;
    *n_out = 0;
    if (file_len < 0 || q->bitmaps.directory_offset + size > (uint64_t)file_len) {
        return blk_error_set(err, -EINVAL, "bitmaps_ext: bitmap directory "
                             "is beyond the end of the image");
    }
    b = blk_try_malloc(size ? size : 1);
    if (b == NULL) {
        return blk_error_set(err, -ENOMEM, "cannot allocate bitmap directory");
    }
    r = blk_child_pread(q->file, q->bitmaps.directory_offset, b, size, err);
    if (r < 0) {
        free(b);
        return r;
    }
    e = xcalloc(n, sizeof(*e));
    for (i = 0; i < n; i++) {
        const uint8_t *p = b + pos;
        uint16_t name_size;
        uint64_t len, want;

        if (pos + BME_ENTRY_FIXED > size) {
            goto bad_entry;
        }
        e[i].table_offset = qcow2_be64(p);
        e[i].table_size = qcow2_be32(p + 8);
        e[i].flags = qcow2_be32(p + 12);
        e[i].type = p[16];
        e[i].gran_bits = p[17];
        name_size = qcow2_be16(p + 18);
        e[i].extra_size = qcow2_be32(p + 20);
        len = round_up8(BME_ENTRY_FIXED + (uint64_t)e[i].extra_size + name_size);
        if (pos + len > size || name_size == 0 || name_size > BME_MAX_NAME) {
            goto bad_entry;
        }
        e[i].name = xstrndup((const char *)p + BME_ENTRY_FIXED + e[i].extra_size,
                             name_size);
        e[i].raw = p;
        e[i].raw_len = len;
        if (e[i].type != BME_TYPE_DIRTY ||
            e[i].gran_bits < BME_MIN_GRAN_BITS ||
            e[i].gran_bits > BME_MAX_GRAN_BITS ||
            (e[i].flags & BME_RESERVED_FLAGS) ||
            e[i].table_offset == 0 ||
            (e[i].table_offset & (q->cluster_size - 1)) ||
            e[i].table_size > BME_MAX_TABLE_SIZE ||
            e[i].table_offset + (uint64_t)e[i].table_size * 8 >
            (uint64_t)file_len) {
            r = blk_error_set(err, -EINVAL, "Bitmap '%s' doesn't satisfy the "
                              "constraints", e[i].name);
            goto out_free;
        }
        want = qcow2_size_to_clusters(q, data_bytes(q->size, e[i].gran_bits));
        if (check_size && !(e[i].flags & BME_IN_USE) &&
            e[i].table_size < want) {
            r = blk_error_set(err, -EINVAL, "Bitmap '%s' table size %" PRIu32
                              " is too small for the image size (%" PRIu64
                              " entries needed)", e[i].name,
                              e[i].table_size, want);
            goto out_free;
        }
        pos += len;
    }
    *buf = b;
    *out = e;
    *n_out = n;
    return 0;

bad_entry:
    r = blk_error_set(err, -EINVAL, "bitmaps_ext: bitmap directory entry %"
                      PRIu32 " is malformed", i);
out_free:
    dir_free(e, n);
    free(b);
    return r;
}

/* Load the bits of one consistent bitmap from its table and data clusters. */
static int
load_bits(struct qcow2 *q, const struct dir_entry *de, struct blk_bitmap *bm,
          struct blk_error *err)
{
    uint64_t total = data_bytes(q->size, de->gran_bits);
    uint64_t units = (q->size + (1ull << de->gran_bits) - 1) >> de->gran_bits;
    int64_t file_len = blk_child_get_length(q->file);
    uint8_t *tb, *cl;
    uint32_t i;
    int r = 0;

    tb = blk_try_malloc((size_t)de->table_size * 8 + 1);
    cl = blk_try_malloc(q->cluster_size);
    if (tb == NULL || cl == NULL) {
        free(tb);
        free(cl);
        return blk_error_set(err, -ENOMEM, "cannot load bitmap '%s'",
                             de->name);
    }
    r = blk_child_pread(q->file, de->table_offset, tb,
                        (size_t)de->table_size * 8, err);
    /* A table may be longer than the image needs (QEMU accepts it). */
    for (i = 0; r == 0 && i < de->table_size &&
                (uint64_t)i * q->cluster_size < total; i++) {
        uint64_t ent = qcow2_be64(tb + (size_t)i * 8);
        uint64_t off = ent & BME_TABLE_OFFSET_MASK;
        uint64_t first = (uint64_t)i * q->cluster_size;
        uint64_t n = total - first < q->cluster_size ? total - first
                                                      : q->cluster_size;

        if ((ent & BME_TABLE_RESERVED) || (off != 0 && (ent & 1)) ||
            (off & (q->cluster_size - 1)) ||
            off + q->cluster_size > (uint64_t)file_len) {
            r = blk_error_set(err, -EINVAL, "Bitmap '%s': invalid bitmap "
                              "table entry %" PRIu32, de->name, i);
            break;
        }
        if (off == 0) {
            if (ent & 1) {
                uint64_t u = first * 8;

                blk_bitmap_set_units(bm, u, units - u < n * 8 ? units - u
                                                                : n * 8);
            }
            continue;
        }
        r = blk_child_pread(q->file, off, cl, n, err);
        if (r == 0) {
            blk_bitmap_deserialize(bm, first * 8, cl, n);
        }
    }
    free(tb);
    free(cl);
    return r;
}

/* Write the directory in place with new flags (in_use while open RW). */
static int
rewrite_flags_in_place(struct qcow2 *q, uint8_t *dir, struct dir_entry *e,
                       size_t n, struct blk_error *err)
{
    size_t i;
    int r;

    for (i = 0; i < n; i++) {
        qcow2_put_be32((uint8_t *)e[i].raw + 12, e[i].flags);
    }
    r = qcow2_pre_write_check(q, QCOW2_OL_BITMAP_DIRECTORY,
                              q->bitmaps.directory_offset,
                              q->bitmaps.directory_size, false, err);
    if (r == 0) {
        r = blk_child_pwrite(q->file, q->bitmaps.directory_offset, dir,
                             q->bitmaps.directory_size, 0, err);
    }
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    return r;
}

int
qcow2_bitmaps_load(struct qcow2 *q, struct blk_error *err)
{
    struct dir_entry *e;
    uint8_t *dir;
    size_t n, i;
    bool mark = false;
    int r;

    if (!q->has_bitmaps_ext) {
        return 0;
    }
    r = read_directory(q, true, &dir, &e, &n, err);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < n; i++) {
        struct blk_bitmap *bm;

        bm = blk_bitmap_create(q->bs, e[i].name, 1ull << e[i].gran_bits, err);
        if (bm == NULL) {
            r = -EINVAL;
            break;
        }
        blk_bitmap_set_persistent(bm, true);
        if ((e[i].flags & BME_IN_USE) ||
            (e[i].extra_size != 0 &&
             !(e[i].flags & BME_EXTRA_DATA_COMPATIBLE))) {
            /* Stale after a crash (or unusable): kept, reported, removable. */
            blk_bitmap_set_inconsistent(bm, true);
            blk_bitmap_set_enabled(bm, false);
            continue;
        }
        blk_bitmap_set_enabled(bm, (e[i].flags & BME_AUTO) != 0);
        {
            struct blk_error lerr = BLK_ERROR_INIT;

            /*
             * A damaged bitmap table spoils that bitmap, not the image:
             * QEMU opens such images too.  It stays, inconsistent (it
             * can only be removed), and `check` reports the damage.
             */
            if (load_bits(q, &e[i], bm, &lerr) < 0) {
                blk_bitmap_clear(bm);
                blk_bitmap_set_inconsistent(bm, true);
                blk_bitmap_set_enabled(bm, false);
                continue;
            }
        }
        if (!q->read_only) {
            e[i].flags |= BME_IN_USE;
            mark = true;
        }
    }
    if (r == 0 && mark) {
        r = rewrite_flags_in_place(q, dir, e, n, err);
    }
    if (r < 0) {
        blk_bitmaps_release_all(q->bs);
    }
    dir_free(e, n);
    free(dir);
    return r;
}

/* ---- storing --------------------------------------------------------------- */

struct stored {
    struct blk_bitmap *bm;
    uint64_t table_offset;
    uint32_t table_size;
    uint32_t flags;
    const struct dir_entry *old;        /* kept verbatim (inconsistent) */
};

static bool
all_zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

static int
write_meta(struct qcow2 *q, uint64_t off, const void *buf, size_t len,
           struct blk_error *err)
{
    int r = qcow2_pre_write_check(q, 0, off, len, false, err);

    return r < 0 ? r : blk_child_pwrite(q->file, off, buf, len, 0, err);
}

/* Write one bitmap's data clusters and table; QEMU's order: data, then table. */
static int
store_bits(struct qcow2 *q, struct stored *s, struct blk_error *err)
{
    uint64_t gran = blk_bitmap_granularity(s->bm);
    unsigned gran_bits = (unsigned)__builtin_ctzll(gran);
    uint64_t total = data_bytes(q->size, gran_bits);
    uint32_t nt = (uint32_t)qcow2_size_to_clusters(q, total), i;
    uint8_t *tb = xzalloc((size_t)nt * 8 + 1);
    uint8_t *cl = xmalloc(q->cluster_size);
    int64_t off;
    int r = 0;

    for (i = 0; i < nt && r == 0; i++) {
        uint64_t first = (uint64_t)i * q->cluster_size;
        uint64_t n = total - first < q->cluster_size ? total - first
                                                      : q->cluster_size;
        uint64_t start = first * 8 * gran, len = n * 8 * gran;

        /* Skip clean clusters without serialising them. */
        {
            uint64_t ds, dl;

            if (!blk_bitmap_next_dirty_area(s->bm, start, start + len, &ds,
                                            &dl)) {
                continue;
            }
        }
        memset(cl, 0, q->cluster_size);
        blk_bitmap_serialize(s->bm, first * 8, cl, n);
        if (all_zero(cl, n)) {
            continue;
        }
        off = qcow2_alloc_clusters(q, q->cluster_size, err);
        if (off < 0) {
            r = (int)off;
            break;
        }
        r = write_meta(q, (uint64_t)off, cl, q->cluster_size, err);
        qcow2_put_be64(tb + (size_t)i * 8, (uint64_t)off);
    }
    if (r == 0) {
        off = qcow2_alloc_clusters(q, (uint64_t)nt * 8, err);
        if (off < 0) {
            r = (int)off;
        } else {
            s->table_offset = (uint64_t)off;
            s->table_size = nt;
            r = write_meta(q, (uint64_t)off, tb, (size_t)nt * 8, err);
        }
    }
    free(tb);
    free(cl);
    return r;
}

/* Free a bitmap's table and data clusters, as described by a directory entry. */
static void
free_bitmap_clusters(struct qcow2 *q, const struct dir_entry *de)
{
    uint8_t *tb = blk_try_malloc((size_t)de->table_size * 8 + 1);
    struct blk_error err = BLK_ERROR_INIT;
    uint32_t i;

    if (tb != NULL && blk_child_pread(q->file, de->table_offset, tb,
                                      (size_t)de->table_size * 8, &err) == 0) {
        for (i = 0; i < de->table_size; i++) {
            uint64_t off = qcow2_be64(tb + (size_t)i * 8) & BME_TABLE_OFFSET_MASK;

            if (off != 0) {
                qcow2_free_clusters(q, off, q->cluster_size,
                                    QCOW2_DISCARD_ALWAYS);
            }
        }
    }
    free(tb);
    qcow2_free_clusters(q, de->table_offset, (uint64_t)de->table_size * 8,
                        QCOW2_DISCARD_ALWAYS);
}

static struct qcow2_ext *
bitmaps_ext(struct qcow2 *q)
{
    struct qcow2_ext *e, **pp;

    for (e = q->exts; e != NULL; e = e->next) {
        if (e->magic == QCOW2_EXT_BITMAPS) {
            return e;
        }
    }
    e = xzalloc(sizeof(*e));
    e->magic = QCOW2_EXT_BITMAPS;
    for (pp = &q->exts; *pp != NULL; pp = &(*pp)->next) {
    }
    *pp = e;
    return e;
}

static void
drop_bitmaps_ext(struct qcow2 *q)
{
    struct qcow2_ext **pp, *e;

    for (pp = &q->exts; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->magic == QCOW2_EXT_BITMAPS) {
            e = *pp;
            *pp = e->next;
            free(e->data);
            free(e);
            break;
        }
    }
    q->has_bitmaps_ext = false;
    memset(&q->bitmaps, 0, sizeof(q->bitmaps));
    q->h.autoclear_features &= ~(uint64_t)QCOW2_AUTOCLEAR_BITMAPS;
}

/* Build and write the new directory; point the header extension at it. */
static int
write_directory(struct qcow2 *q, struct stored *s, size_t n,
                struct blk_error *err)
{
    struct sbuf dir = SBUF_INIT;
    struct qcow2_ext *ext;
    int64_t off;
    size_t i;
    int r;

    for (i = 0; i < n; i++) {
        uint8_t fixed[BME_ENTRY_FIXED];
        const char *name = blk_bitmap_name(s[i].bm);
        size_t name_len = strlen(name);
        static const uint8_t zeros[8];
        size_t len;

        if (s[i].old != NULL) {
            sbuf_add(&dir, s[i].old->raw, s[i].old->raw_len);
            continue;
        }
        memset(fixed, 0, sizeof(fixed));
        qcow2_put_be64(fixed, s[i].table_offset);
        qcow2_put_be32(fixed + 8, s[i].table_size);
        qcow2_put_be32(fixed + 12, s[i].flags);
        fixed[16] = BME_TYPE_DIRTY;
        fixed[17] = (uint8_t)__builtin_ctzll(blk_bitmap_granularity(s[i].bm));
        qcow2_put_be16(fixed + 18, (uint16_t)name_len);
        sbuf_add(&dir, fixed, sizeof(fixed));
        sbuf_add(&dir, name, name_len);
        len = BME_ENTRY_FIXED + name_len;
        sbuf_add(&dir, zeros, round_up8(len) - len);
    }
    off = qcow2_alloc_clusters(q, dir.len, err);
    if (off < 0) {
        sbuf_release(&dir);
        return (int)off;
    }
    r = write_meta(q, (uint64_t)off, dir.buf, dir.len, err);
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r == 0) {
        ext = bitmaps_ext(q);
        free(ext->data);
        ext->len = 24;
        ext->data = xzalloc(24);
        qcow2_put_be32(ext->data, (uint32_t)n);
        qcow2_put_be64(ext->data + 8, dir.len);
        qcow2_put_be64(ext->data + 16, (uint64_t)off);
        q->has_bitmaps_ext = true;
        q->bitmaps.nb_bitmaps = (uint32_t)n;
        q->bitmaps.directory_size = dir.len;
        q->bitmaps.directory_offset = (uint64_t)off;
        q->h.autoclear_features |= QCOW2_AUTOCLEAR_BITMAPS;
    }
    sbuf_release(&dir);
    return r;
}

int
qcow2_bitmaps_store(struct qcow2 *q, struct blk_error *err)
{
    struct dir_entry *old = NULL;
    uint8_t *old_dir = NULL;
    size_t n_old = 0, n = 0, i, j;
    uint64_t old_dir_off = q->bitmaps.directory_offset;
    uint64_t old_dir_size = q->bitmaps.directory_size;
    bool had_ext = q->has_bitmaps_ext;
    struct blk_bitmap *bm;
    struct stored *s;
    int r = 0;

    if (q->read_only || q->corrupt) {
        return 0;
    }
    for (bm = blk_bitmap_next(q->bs, NULL); bm != NULL;
         bm = blk_bitmap_next(q->bs, bm)) {
        n += blk_bitmap_persistent(bm);
    }
    if (n == 0 && !had_ext) {
        return 0;
    }
    if (had_ext) {
        r = read_directory(q, false, &old_dir, &old, &n_old, err);
        if (r < 0) {
            return r;
        }
    }
    if (q->version < 3 && n > 0) {
        r = blk_error_set(err, -ENOTSUP, "Cannot store persistent bitmaps in "
                          "qcow2 v2 files");
        goto out;
    }
    s = xcalloc(n + 1, sizeof(*s));
    n = 0;
    for (bm = blk_bitmap_next(q->bs, NULL); bm != NULL && r == 0;
         bm = blk_bitmap_next(q->bs, bm)) {
        if (!blk_bitmap_persistent(bm)) {
            continue;
        }
        s[n].bm = bm;
        if (blk_bitmap_inconsistent(bm)) {
            for (j = 0; j < n_old; j++) {
                if (strcmp(old[j].name, blk_bitmap_name(bm)) == 0) {
                    s[n].old = &old[j];
                }
            }
            if (s[n].old == NULL) {
                continue;       /* nothing on disk to keep */
            }
        } else {
            s[n].flags = blk_bitmap_enabled(bm) ? BME_AUTO : 0;
            r = store_bits(q, &s[n], err);
        }
        n++;
    }
    if (r == 0) {
        if (n > 0) {
            r = write_directory(q, s, n, err);
        } else {
            drop_bitmaps_ext(q);
        }
    }
    if (r == 0) {
        r = qcow2_write_header(q, err);
    }
    if (r == 0) {
        r = blk_child_flush(q->file, err);
    }
    if (r == 0) {
        /* The old directory and the tables of rewritten bitmaps are free now. */
        for (i = 0; i < n_old; i++) {
            bool kept = false;

            for (j = 0; j < n; j++) {
                kept |= s[j].old == &old[i];
            }
            if (!kept) {
                free_bitmap_clusters(q, &old[i]);
            }
        }
        if (had_ext) {
            qcow2_free_clusters(q, old_dir_off, old_dir_size,
                                QCOW2_DISCARD_ALWAYS);
        }
    }
    free(s);
out:
    dir_free(old, n_old);
    free(old_dir);
    return r;
}

int
qcow2_bitmaps_info(struct qcow2 *q, struct kv *list, struct blk_error *err)
{
    struct dir_entry *e;
    uint8_t *dir;
    size_t n, i;
    int r;

    if (!q->has_bitmaps_ext) {
        return 0;
    }
    r = read_directory(q, true, &dir, &e, &n, err);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < n; i++) {
        struct kv *b = kv_new_object(), *flags = kv_new_list();

        if (e[i].flags & BME_IN_USE) {
            kv_append(flags, kv_new_str("in-use"));
        }
        if (e[i].flags & BME_AUTO) {
            kv_append(flags, kv_new_str("auto"));
        }
        kv_set(b, "flags", flags);
        kv_set(b, "name", kv_new_str(e[i].name));
        kv_set(b, "granularity", kv_new_int((int64_t)1 << e[i].gran_bits));
        kv_append(list, b);
    }
    dir_free(e, n);
    free(dir);
    return 0;
}

int
qcow2_bitmaps_set_in_use(struct qcow2 *q, struct blk_error *err)
{
    struct dir_entry *e;
    uint8_t *dir;
    size_t n, i;
    bool any = false;
    int r;

    if (!q->has_bitmaps_ext || q->read_only) {
        return 0;
    }
    r = read_directory(q, true, &dir, &e, &n, err);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < n; i++) {
        struct blk_bitmap *bm = blk_bitmap_find(q->bs, e[i].name);

        if (bm != NULL && !blk_bitmap_inconsistent(bm)) {
            e[i].flags |= BME_IN_USE;
            any = true;
        }
    }
    if (any) {
        r = rewrite_flags_in_place(q, dir, e, n, err);
    }
    dir_free(e, n);
    free(dir);
    return r;
}
