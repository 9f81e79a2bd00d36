/*
 * bitmap-qmp.c - the block-dirty-bitmap-* operations with QEMU 7.2's
 * checks and messages (block/monitor/bitmap-qmp-cmds.c is where QEMU
 * keeps them), used by `blk-img bitmap` and blk-io's monitor commands,
 * and the dirty-extent dump.  Loop thread or an offline tool's thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap-qmp.h"
#include "util/xalloc.h"

/* qcow2 spec, "Bitmaps extension": at most 65535 bitmaps, names 1023 bytes. */
#define QCOW2_MAX_BITMAPS 65535
#define QCOW2_MAGIC 0x514649fbu

struct blk_bitmap *
blk_bitmap_qmp_lookup(struct blk_node *bs, const char *name,
                      struct blk_error *err)
{
    struct blk_bitmap *bm = blk_bitmap_find(bs, name);

    if (bm == NULL) {
        blk_error_set(err, -ENOENT, "Dirty bitmap '%s' not found", name);
    }
    return bm;
}

int
blk_bitmap_qmp_check(struct blk_bitmap *bm, unsigned checks,
                     struct blk_error *err)
{
    const char *name = blk_bitmap_name(bm);

    if ((checks & BLK_BITMAP_CHECK_BUSY) && blk_bitmap_busy(bm)) {
        return blk_error_set(err, -EBUSY, "Bitmap '%s' is currently in use "
                             "by another operation and cannot be used", name);
    }
    /* QEMU marks the bitmaps it loads from a read-only image read-only */
    if ((checks & BLK_BITMAP_CHECK_RO) && blk_bitmap_persistent(bm) &&
        blk_node_is_read_only(blk_bitmap_node(bm))) {
        return blk_error_set(err, -EPERM, "Bitmap '%s' is readonly and "
                             "cannot be modified", name);
    }
    if ((checks & BLK_BITMAP_CHECK_INCONSISTENT) &&
        blk_bitmap_inconsistent(bm)) {
        return blk_error_set(err, -ESTALE, "Bitmap '%s' is inconsistent and "
                             "cannot be used", name);
    }
    return 0;
}

/*
 * The qcow2 version and cluster size of a qcow2 node, read from its
 * header (32 bytes of the file child).  0, or -errno for other nodes.
 */
static int
qcow2_facts(struct blk_node *bs, uint32_t *version, uint64_t *cluster_size)
{
    struct blk_node *file = blk_node_file(bs);
    uint8_t h[24];
    uint32_t magic, bits;

    if (strcmp(blk_node_driver(bs)->name, "qcow2") != 0 || file == NULL ||
        blk_node_pread(file, 0, h, sizeof(h), NULL) < 0) {
        return -ENOTSUP;
    }
    magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | h[2] << 8 | h[3];
    *version = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | h[6] << 8 | h[7];
    bits = (uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 | h[22] << 8 | h[23];
    if (magic != QCOW2_MAGIC || bits < 9 || bits > 21) {
        return -EINVAL;
    }
    *cluster_size = 1ull << bits;
    return 0;
}

/* QEMU's bdrv_get_default_bitmap_granularity. */
static uint64_t
default_granularity(struct blk_node *bs)
{
    uint32_t version;
    uint64_t cs;

    if (qcow2_facts(bs, &version, &cs) < 0) {
        return 65536;
    }
    return cs < 4096 ? 4096 : cs > 65536 ? 65536 : cs;
}

static unsigned
count_persistent(struct blk_node *bs)
{
    struct blk_bitmap *bm = NULL;
    unsigned n = 0;

    while ((bm = blk_bitmap_next(bs, bm)) != NULL) {
        n += blk_bitmap_persistent(bm);
    }
    return n;
}

/* QEMU's bdrv_can_store_new_dirty_bitmap (qcow2's checks for qcow2). */
static int
can_store(struct blk_node *bs, const char *name, struct blk_error *err)
{
    const char *node = blk_node_get_name(bs);
    uint32_t version;
    uint64_t cs;

    if (qcow2_facts(bs, &version, &cs) < 0) {
        return blk_error_set(err, -ENOTSUP, "Can't store persistent bitmaps "
                             "to %s: Operation not supported", node);
    }
    if (version < 3) {
        return blk_error_set(err, -ENOTSUP, "Can't make bitmap '%s' "
                             "persistent in '%s': Cannot store dirty bitmaps "
                             "in qcow2 v2 files", name, node);
    }
    if (count_persistent(bs) >= QCOW2_MAX_BITMAPS) {
        return blk_error_set(err, -EOVERFLOW, "Can't make bitmap '%s' "
                             "persistent in '%s': Maximum number of persistent "
                             "bitmaps is already reached", name, node);
    }
    if (strlen(name) > BLK_BITMAP_NAME_MAX) {
        return blk_error_set(err, -EINVAL, "Can't make bitmap '%s' "
                             "persistent in '%s': Name length exceeds maximum "
                             "(%u characters)", name, node,
                             (unsigned)BLK_BITMAP_NAME_MAX);
    }
    return 0;
}

struct blk_bitmap *
blk_bitmap_qmp_add(struct blk_node *bs, const char *name, bool has_granularity,
                   uint64_t granularity, bool persistent, bool disabled,
                   struct blk_error *err)
{
    struct blk_bitmap *bm;

    if (name[0] == '\0') {
        blk_error_set(err, -EINVAL, "Bitmap name cannot be empty");
        return NULL;
    }
    if (has_granularity) {
        if (granularity < BLK_BITMAP_MIN_GRANULARITY ||
            granularity > BLK_BITMAP_MAX_GRANULARITY ||
            (granularity & (granularity - 1)) != 0) {
            blk_error_set(err, -EINVAL, "Granularity must be power of 2 and "
                          "at least 512");
            return NULL;
        }
    } else {
        granularity = default_granularity(bs);
    }
    if (blk_bitmap_find(bs, name) != NULL) {
        blk_error_set(err, -EEXIST, "Bitmap already exists: %s", name);
        return NULL;
    }
    if (persistent && can_store(bs, name, err) < 0) {
        return NULL;
    }
    bm = blk_bitmap_create(bs, name, granularity, err);
    if (bm == NULL) {
        return NULL;
    }
    blk_bitmap_set_persistent(bm, persistent);
    blk_bitmap_set_enabled(bm, !disabled);
    return bm;
}

int
blk_bitmap_qmp_remove(struct blk_node *bs, const char *name,
                      struct blk_error *err)
{
    struct blk_bitmap *bm = blk_bitmap_qmp_lookup(bs, name, err);
    int r;

    if (bm == NULL) {
        return -ENOENT;
    }
    r = blk_bitmap_qmp_check(bm, BLK_BITMAP_CHECK_BUSY | BLK_BITMAP_CHECK_RO,
                             err);
    if (r < 0) {
        return r;
    }
    blk_bitmap_release(bm);
    return 0;
}

int
blk_bitmap_qmp_clear(struct blk_node *bs, const char *name,
                     struct blk_error *err)
{
    struct blk_bitmap *bm = blk_bitmap_qmp_lookup(bs, name, err);
    int r;

    if (bm == NULL) {
        return -ENOENT;
    }
    r = blk_bitmap_qmp_check(bm, BLK_BITMAP_CHECK_DEFAULT, err);
    if (r < 0) {
        return r;
    }
    blk_bitmap_clear(bm);
    return 0;
}

int
blk_bitmap_qmp_enable(struct blk_node *bs, const char *name, bool on,
                      struct blk_error *err)
{
    struct blk_bitmap *bm = blk_bitmap_qmp_lookup(bs, name, err);
    int r;

    if (bm == NULL) {
        return -ENOENT;
    }
    r = blk_bitmap_qmp_check(bm, BLK_BITMAP_CHECK_ALLOW_RO, err);
    if (r < 0) {
        return r;
    }
    blk_bitmap_set_enabled(bm, on);
    return 0;
}

int
blk_bitmap_qmp_merge(struct blk_bitmap *dst, struct blk_bitmap *const *srcs,
                     size_t n, struct blk_error *err)
{
    size_t i;
    int r;

    r = blk_bitmap_qmp_check(dst, BLK_BITMAP_CHECK_DEFAULT, err);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < n; i++) {
        r = blk_bitmap_qmp_check(srcs[i], BLK_BITMAP_CHECK_ALLOW_RO, err);
        if (r < 0) {
            return r;
        }
        if (blk_bitmap_size(srcs[i]) != blk_bitmap_size(dst)) {
            return blk_error_set(err, -EINVAL, "Bitmaps are of different "
                                 "sizes (destination size is %" PRIu64 ", "
                                 "source size is %" PRIu64 ") and can't be "
                                 "merged", blk_bitmap_size(dst),
                                 blk_bitmap_size(srcs[i]));
        }
    }
    for (i = 0; i < n; i++) {
        r = blk_bitmap_merge(dst, srcs[i], err);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static void
dump_extent(bool json, FILE *out, bool first, uint64_t start, uint64_t len,
            bool dirty)
{
    char a[24], b[24];

    if (json) {
        fprintf(out, "%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
                ", \"dirty\": %s}", first ? "" : ",\n", start, len,
                dirty ? "true" : "false");
        return;
    }
    snprintf(a, sizeof(a), "%#" PRIx64, start);
    snprintf(b, sizeof(b), "%#" PRIx64, len);
    fprintf(out, "%-16s%-16s%s\n", a, b, dirty ? "yes" : "no");
}

void
blk_bitmap_dump(struct blk_bitmap *bm, uint64_t off, uint64_t len, bool json,
                FILE *out)
{
    uint64_t size = blk_bitmap_size(bm), end, pos, ds, dl;
    bool first = true;

    end = off >= size ? off : len > size - off ? size : off + len;
    if (json) {
        fputc('[', out);
    } else {
        fprintf(out, "%-16s%-16s%s\n", "Start", "Length", "Dirty");
    }
    for (pos = off; pos < end; pos = ds + dl) {
        if (!blk_bitmap_next_dirty_area(bm, pos, end, &ds, &dl)) {
            ds = end;
            dl = 0;
        }
        if (ds > pos) {
            dump_extent(json, out, first, pos, ds - pos, false);
            first = false;
        }
        if (dl > 0) {
            dump_extent(json, out, first, ds, dl, true);
            first = false;
        }
    }
    if (json) {
        fputs("]\n", out);
    }
}
