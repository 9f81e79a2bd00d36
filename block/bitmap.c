/*
 * bitmap.c - dirty bitmaps on nodes, one hierarchical bitmap each, in
 * granularity units.  A node's list and every bitmap on it are guarded
 * by the node's bitmap_lock, because workers mark while the loop queries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap.h"
#include "block/node-int.h"
#include "util/hbitmap.h"
#include "util/xalloc.h"

struct blk_bitmap {
    struct blk_node *bs;        /* the node it lives on, for its whole life */
    char *name;
    uint64_t granularity;       /* bytes per bit, power of two */
    uint64_t size;              /* bytes covered */
    bool enabled, busy, inconsistent, persistent;
    struct hbitmap hb;
    struct blk_bitmap *next;
};

static void
lock(struct blk_node *bs)
{
    pthread_mutex_lock(&bs->bitmap_lock);
}

static void
unlock(struct blk_node *bs)
{
    pthread_mutex_unlock(&bs->bitmap_lock);
}

static uint64_t
units_for(uint64_t bytes, uint64_t granularity)
{
    return bytes / granularity + (bytes % granularity != 0);
}

struct blk_bitmap *
blk_bitmap_create(struct blk_node *bs, const char *name, uint64_t granularity,
                  struct blk_error *err)
{
    struct blk_bitmap *bm, **pp;
    int64_t size = blk_node_get_length(bs);

    if (granularity == 0) {
        granularity = 65536;
    }
    if (granularity < BLK_BITMAP_MIN_GRANULARITY ||
        granularity > BLK_BITMAP_MAX_GRANULARITY ||
        (granularity & (granularity - 1)) != 0) {
        blk_error_set(err, -EINVAL, "Granularity must be power of 2 between "
                      "512 and 2147483648");
        return NULL;
    }
    if (name[0] == '\0') {
        blk_error_set(err, -EINVAL, "Bitmap name cannot be empty");
        return NULL;
    }
    if (strlen(name) > BLK_BITMAP_NAME_MAX) {
        blk_error_set(err, -EINVAL, "Bitmap name is too long");
        return NULL;
    }
    if (size < 0) {
        blk_error_set(err, (int)size, "cannot get length of '%s'",
                      blk_node_get_name(bs));
        return NULL;
    }
    if (blk_bitmap_find(bs, name) != NULL) {
        blk_error_set(err, -EEXIST, "Bitmap already exists: %s", name);
        return NULL;
    }
    bm = xzalloc(sizeof(*bm));
    if (hbitmap_init(&bm->hb, units_for((uint64_t)size, granularity)) < 0) {
        free(bm);
        blk_error_set(err, -ENOMEM, "cannot allocate bitmap '%s'", name);
        return NULL;
    }
    bm->bs = bs;
    bm->name = xstrdup(name);
    bm->granularity = granularity;
    bm->size = (uint64_t)size;
    bm->enabled = true;
    lock(bs);
    for (pp = &bs->bitmaps; *pp != NULL; pp = &(*pp)->next) {
    }
    /* Published atomically: blk_bitmaps_mark peeks at the head unlocked. */
    __atomic_store_n(pp, bm, __ATOMIC_RELEASE);
    unlock(bs);
    return bm;
}

void
blk_bitmap_release(struct blk_bitmap *bm)
{
    struct blk_node *bs = bm->bs;
    struct blk_bitmap **pp;

    lock(bs);
    for (pp = &bs->bitmaps; *pp != bm; pp = &(*pp)->next) {
    }
    __atomic_store_n(pp, bm->next, __ATOMIC_RELEASE);
    unlock(bs);
    hbitmap_release(&bm->hb);
    free(bm->name);
    free(bm);
}

void
blk_bitmaps_release_all(struct blk_node *bs)
{
    while (bs->bitmaps != NULL) {
        blk_bitmap_release(bs->bitmaps);
    }
}

struct blk_bitmap *
blk_bitmap_find(struct blk_node *bs, const char *name)
{
    struct blk_bitmap *bm;

    lock(bs);
    for (bm = bs->bitmaps; bm != NULL; bm = bm->next) {
        if (strcmp(bm->name, name) == 0) {
            break;
        }
    }
    unlock(bs);
    return bm;
}

struct blk_bitmap *
blk_bitmap_next(struct blk_node *bs, struct blk_bitmap *prev)
{
    struct blk_bitmap *bm;

    lock(bs);
    bm = prev == NULL ? bs->bitmaps : prev->next;
    unlock(bs);
    return bm;
}

const char *
blk_bitmap_name(const struct blk_bitmap *bm)
{
    return bm->name;
}

struct blk_node *
blk_bitmap_node(const struct blk_bitmap *bm)
{
    return bm->bs;
}

uint64_t
blk_bitmap_granularity(const struct blk_bitmap *bm)
{
    return bm->granularity;
}

uint64_t
blk_bitmap_size(const struct blk_bitmap *bm)
{
    return bm->size;
}

uint64_t
blk_bitmap_count(struct blk_bitmap *bm)
{
    uint64_t units, bytes;

    lock(bm->bs);
    units = bm->hb.count;
    bytes = units * bm->granularity;
    /* The last unit may cover less than a granule. */
    if (units > 0 && hbitmap_get(&bm->hb, bm->hb.nbits - 1) &&
        bm->size % bm->granularity != 0) {
        bytes -= bm->granularity - bm->size % bm->granularity;
    }
    unlock(bm->bs);
    return bytes;
}

#define FLAG_ACCESSORS(field)                                           \
    bool blk_bitmap_##field(const struct blk_bitmap *bm)                \
    {                                                                   \
        return bm->field;                                               \
    }                                                                   \
    void blk_bitmap_set_##field(struct blk_bitmap *bm, bool on)         \
    {                                                                   \
        lock(bm->bs);                                                   \
        bm->field = on;                                                 \
        unlock(bm->bs);                                                 \
    }

FLAG_ACCESSORS(enabled)
FLAG_ACCESSORS(busy)
FLAG_ACCESSORS(inconsistent)
FLAG_ACCESSORS(persistent)

static void
range_units(const struct blk_bitmap *bm, uint64_t off, uint64_t len,
            uint64_t *first, uint64_t *n)
{
    uint64_t end = off + len < off ? UINT64_MAX : off + len;

    *first = off / bm->granularity;
    *n = len == 0 ? 0 : units_for(end, bm->granularity) - *first;
}

void
blk_bitmap_set(struct blk_bitmap *bm, uint64_t off, uint64_t len)
{
    uint64_t first, n;

    range_units(bm, off, len, &first, &n);
    lock(bm->bs);
    hbitmap_set(&bm->hb, first, n);
    unlock(bm->bs);
}

void
blk_bitmap_reset(struct blk_bitmap *bm, uint64_t off, uint64_t len)
{
    uint64_t first, n;

    range_units(bm, off, len, &first, &n);
    lock(bm->bs);
    hbitmap_reset(&bm->hb, first, n);
    unlock(bm->bs);
}

void
blk_bitmap_clear(struct blk_bitmap *bm)
{
    lock(bm->bs);
    hbitmap_reset_all(&bm->hb);
    unlock(bm->bs);
}

bool
blk_bitmap_get(struct blk_bitmap *bm, uint64_t off)
{
    bool r;

    lock(bm->bs);
    r = hbitmap_get(&bm->hb, off / bm->granularity);
    unlock(bm->bs);
    return r;
}

bool
blk_bitmap_next_dirty_area(struct blk_bitmap *bm, uint64_t off, uint64_t end,
                           uint64_t *start, uint64_t *len)
{
    int64_t s, e;
    uint64_t bs, be;

    if (end > bm->size) {
        end = bm->size;
    }
    if (off >= end) {
        return false;
    }
    lock(bm->bs);
    s = hbitmap_next_set(&bm->hb, off / bm->granularity);
    e = s < 0 ? -1 : hbitmap_next_clear(&bm->hb, (uint64_t)s);
    unlock(bm->bs);
    if (s < 0) {
        return false;
    }
    bs = (uint64_t)s * bm->granularity;
    be = e < 0 ? bm->size : (uint64_t)e * bm->granularity;
    if (bs < off) {
        bs = off;
    }
    if (be > end) {
        be = end;
    }
    if (bs >= end) {
        return false;
    }
    *start = bs;
    *len = be - bs;
    return true;
}

int
blk_bitmap_merge(struct blk_bitmap *dst, struct blk_bitmap *src,
                 struct blk_error *err)
{
    uint64_t off = 0, start, len;

    if (dst->busy || src->busy) {
        return blk_error_set(err, -EBUSY, "Bitmap '%s' is currently in use "
                             "by another operation and cannot be used",
                             dst->busy ? dst->name : src->name);
    }
    if (dst->inconsistent || src->inconsistent) {
        return blk_error_set(err, -EINVAL, "Bitmap '%s' is inconsistent and "
                             "cannot be used",
                             dst->inconsistent ? dst->name : src->name);
    }
    if (dst->bs == src->bs && dst == src) {
        return 0;
    }
    while (blk_bitmap_next_dirty_area(src, off, src->size, &start, &len)) {
        blk_bitmap_set(dst, start, len);
        off = start + len;
    }
    return 0;
}

void
blk_bitmap_serialize(struct blk_bitmap *bm, uint64_t first_unit, uint8_t *buf,
                     size_t n)
{
    uint64_t words = (n + 7) / 8, i;
    uint64_t *tmp = xmalloc(words * 8);

    lock(bm->bs);
    hbitmap_get_words(&bm->hb, first_unit / 64, words, tmp);
    unlock(bm->bs);
    for (i = 0; i < n; i++) {
        buf[i] = (uint8_t)(tmp[i / 8] >> (8 * (i % 8)));
    }
    free(tmp);
}

void
blk_bitmap_deserialize(struct blk_bitmap *bm, uint64_t first_unit,
                       const uint8_t *buf, size_t n)
{
    uint64_t words = (n + 7) / 8, i;
    uint64_t *tmp = xzalloc(words * 8);

    for (i = 0; i < n; i++) {
        tmp[i / 8] |= (uint64_t)buf[i] << (8 * (i % 8));
    }
    lock(bm->bs);
    hbitmap_set_words(&bm->hb, first_unit / 64, words, tmp);
    unlock(bm->bs);
    free(tmp);
}

void
blk_bitmap_set_units(struct blk_bitmap *bm, uint64_t first_unit, uint64_t n)
{
    lock(bm->bs);
    hbitmap_set(&bm->hb, first_unit, n);
    unlock(bm->bs);
}

int
blk_bitmaps_resize(struct blk_node *bs, uint64_t bytes, struct blk_error *err)
{
    struct blk_bitmap *bm;
    int r = 0;

    lock(bs);
    for (bm = bs->bitmaps; bm != NULL && r == 0; bm = bm->next) {
        r = hbitmap_resize(&bm->hb, units_for(bytes, bm->granularity));
        if (r == 0) {
            bm->size = bytes;
        }
    }
    unlock(bs);
    if (r < 0) {
        return blk_error_set(err, r, "cannot resize dirty bitmaps of '%s'",
                             blk_node_get_name(bs));
    }
    return 0;
}

void
blk_bitmaps_mark(struct blk_node *bs, uint64_t off, uint64_t len)
{
    struct blk_bitmap *bm;

    /* Unlocked peek: a node without bitmaps pays one load per request. */
    if (__atomic_load_n(&bs->bitmaps, __ATOMIC_ACQUIRE) == NULL || len == 0) {
        return;
    }
    lock(bs);
    for (bm = bs->bitmaps; bm != NULL; bm = bm->next) {
        uint64_t first, n;

        if (!bm->enabled) {
            continue;
        }
        range_units(bm, off, len, &first, &n);
        hbitmap_set(&bm->hb, first, n);
    }
    unlock(bs);
}
