/*
 * bitmap-qmp.h - dirty bitmap operations as QEMU 7.2's monitor commands
 * (block-dirty-bitmap-add/remove/clear/enable/disable/merge) and
 * `qemu-img bitmap` perform them: the same checks in the same order and
 * the same messages; plus the dirty-extent dump of `bitmap dump`.
 * Shared by blk-img and blk-io.  Loop thread (or an offline tool's thread).
 */
#ifndef BLOCK_BITMAP_QMP_H
#define BLOCK_BITMAP_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block/bitmap.h"
#include "block/block.h"

/* What QEMU appends (as a hint line) to an inconsistent-bitmap error. */
#define BLK_BITMAP_INCONSISTENT_HINT \
    "Try block-dirty-bitmap-remove to delete this bitmap from disk"

/* Checks of blk_bitmap_qmp_check (QEMU's BDRV_BITMAP_* check flags). */
enum {
    BLK_BITMAP_CHECK_BUSY = 1 << 0,
    BLK_BITMAP_CHECK_RO = 1 << 1,
    BLK_BITMAP_CHECK_INCONSISTENT = 1 << 2,
    BLK_BITMAP_CHECK_DEFAULT = 7,
    BLK_BITMAP_CHECK_ALLOW_RO = 5,
};

/*
 * The bitmap called name on bs, or NULL with "Dirty bitmap 'NAME' not
 * found" (-ENOENT).
 */
struct blk_bitmap *blk_bitmap_qmp_lookup(struct blk_node *bs, const char *name,
                                         struct blk_error *err);

/*
 * Check that bm may be used: busy ("... is currently in use by another
 * operation and cannot be used", -EBUSY), read-only (a persistent bitmap
 * of a read-only node, as QEMU marks those it loads from a read-only
 * image: "... is readonly and cannot be modified", -EPERM), inconsistent
 * ("Bitmap 'X' is inconsistent and cannot be used", -ESTALE: callers that
 * speak for qemu-img print BLK_BITMAP_INCONSISTENT_HINT on the next line).
 */
int blk_bitmap_qmp_check(struct blk_bitmap *bm, unsigned checks,
                         struct blk_error *err);

/*
 * block-dirty-bitmap-add on bs: name not empty, granularity (when
 * has_granularity) a power of two in [512, 2 GiB] ("Granularity must be
 * power of 2 and at least 512"; QEMU's uint32 cannot hold more), name
 * unused, and for persistent bitmaps a node that can store them (qcow2
 * v3; "Can't store persistent bitmaps to NODE: Operation not supported"
 * otherwise).  The default granularity is QEMU's: the qcow2 cluster size
 * clamped to [4 KiB, 64 KiB], else 64 KiB.  Returns the new bitmap (owned
 * by bs) or NULL with err set.
 */
struct blk_bitmap *blk_bitmap_qmp_add(struct blk_node *bs, const char *name,
                                      bool has_granularity,
                                      uint64_t granularity, bool persistent,
                                      bool disabled, struct blk_error *err);

/* block-dirty-bitmap-remove: lookup, busy and read-only checks, release. */
int blk_bitmap_qmp_remove(struct blk_node *bs, const char *name,
                          struct blk_error *err);
/* block-dirty-bitmap-clear: lookup, all checks, clear. */
int blk_bitmap_qmp_clear(struct blk_node *bs, const char *name,
                         struct blk_error *err);
/* block-dirty-bitmap-enable/-disable: lookup, busy and inconsistent checks. */
int blk_bitmap_qmp_enable(struct blk_node *bs, const char *name, bool on,
                          struct blk_error *err);

/*
 * Merge srcs[0..n) into dst (block-dirty-bitmap-merge): dst passes all
 * checks, every source the busy and inconsistent checks and has dst's
 * size ("Bitmaps are of different sizes (destination size is D, source
 * size is S) and can't be merged"); all sources are checked before dst
 * changes, so a failure leaves dst as it was.  Sources may live on other
 * nodes and have other granularities.
 */
int blk_bitmap_qmp_merge(struct blk_bitmap *dst, struct blk_bitmap *const *srcs,
                         size_t n, struct blk_error *err);

/*
 * Print the extents of bm over [off, off + len) clipped to the bitmap's
 * size, dirty and clean alternating, each dirty one granularity-aligned
 * except where clipped.  json: qemu-img map's layout,
 *   [{ "start": 0, "length": 65536, "dirty": true},
 *   { "start": 65536, ...}]
 * ("[]" for an empty range); human: a header line "Start  Length  Dirty"
 * and one row per extent with hex offsets in 16-wide columns and "yes" or
 * "no".  Uses blk_bitmap_next_dirty_area only, so the cost follows the
 * number of extents, not the size.  The caller checks consistency first.
 */
void blk_bitmap_dump(struct blk_bitmap *bm, uint64_t off, uint64_t len,
                     bool json, FILE *out);

#endif
