/*
 * bitmap.h - dirty bitmaps: named per node, addressed by (node, name),
 * never moved by graph changes.  Every write, write-zeroes and discard
 * that reaches a node marks each recording (enabled) bitmap on it.
 * Drivers with persistent storage (qcow2) create bitmaps at open and
 * store them on flush/close.  Marking runs on workers; everything else
 * on the loop thread (or an offline tool's thread).  Each node's bitmaps
 * are guarded by one mutex inside this module.
 */
#ifndef BLOCK_BITMAP_H
#define BLOCK_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

struct blk_bitmap;

#define BLK_BITMAP_MIN_GRANULARITY 512ull
#define BLK_BITMAP_MAX_GRANULARITY (2ull << 30)
#define BLK_BITMAP_NAME_MAX 1023

/*
 * Create an empty, enabled bitmap covering the node's current length.
 * granularity: a power of two in [512 B, 2 GiB] (0 picks QEMU's default:
 * the cluster size of a format, else 64 KiB).  Errors: a name already on
 * the node, a bad granularity, a name too long.
 */
struct blk_bitmap *blk_bitmap_create(struct blk_node *bs, const char *name,
                                     uint64_t granularity,
                                     struct blk_error *err);
/* Remove the bitmap from its node and free it. */
void blk_bitmap_release(struct blk_bitmap *bm);

struct blk_bitmap *blk_bitmap_find(struct blk_node *bs, const char *name);
/* Iterate over a node's bitmaps in creation order; NULL after the last. */
struct blk_bitmap *blk_bitmap_next(struct blk_node *bs, struct blk_bitmap *prev);

const char *blk_bitmap_name(const struct blk_bitmap *bm);
struct blk_node *blk_bitmap_node(const struct blk_bitmap *bm);
uint64_t blk_bitmap_granularity(const struct blk_bitmap *bm);
uint64_t blk_bitmap_size(const struct blk_bitmap *bm);         /* bytes covered */
uint64_t blk_bitmap_count(struct blk_bitmap *bm);              /* dirty bytes */

bool blk_bitmap_enabled(const struct blk_bitmap *bm);          /* recording */
void blk_bitmap_set_enabled(struct blk_bitmap *bm, bool on);
bool blk_bitmap_busy(const struct blk_bitmap *bm);             /* used by a job/export */
void blk_bitmap_set_busy(struct blk_bitmap *bm, bool on);
bool blk_bitmap_inconsistent(const struct blk_bitmap *bm);     /* stale after a crash */
void blk_bitmap_set_inconsistent(struct blk_bitmap *bm, bool on);
bool blk_bitmap_persistent(const struct blk_bitmap *bm);
void blk_bitmap_set_persistent(struct blk_bitmap *bm, bool on);

/* Dirty or clean bytes [off, off+len), rounded out to the granularity. */
void blk_bitmap_set(struct blk_bitmap *bm, uint64_t off, uint64_t len);
void blk_bitmap_reset(struct blk_bitmap *bm, uint64_t off, uint64_t len);
void blk_bitmap_clear(struct blk_bitmap *bm);
bool blk_bitmap_get(struct blk_bitmap *bm, uint64_t off);

/*
 * The next dirty extent starting at or after off and before end: returns
 * true and sets *start and *len (granularity-aligned, clipped to [off, end)),
 * or false when none.  Fast on huge, mostly clean bitmaps.
 */
bool blk_bitmap_next_dirty_area(struct blk_bitmap *bm, uint64_t off,
                                uint64_t end, uint64_t *start, uint64_t *len);

/* dst |= src (any granularities).  Errors for busy/inconsistent/read-only. */
int blk_bitmap_merge(struct blk_bitmap *dst, struct blk_bitmap *src,
                     struct blk_error *err);

/*
 * Serialised form (QEMU's, for the qcow2 bitmaps extension): bit i of the
 * bitmap is bit (i % 8) of byte i / 8; one bit per granularity unit.
 * Copies the bytes covering units [first_unit, first_unit + 8*n).
 * first_unit must be a multiple of 64.
 */
void blk_bitmap_serialize(struct blk_bitmap *bm, uint64_t first_unit,
                          uint8_t *buf, size_t n);
void blk_bitmap_deserialize(struct blk_bitmap *bm, uint64_t first_unit,
                            const uint8_t *buf, size_t n);
/* Mark units [first_unit, first_unit + n) dirty (all-ones table entries). */
void blk_bitmap_set_units(struct blk_bitmap *bm, uint64_t first_unit,
                          uint64_t n);

/* The node grew or shrank: resize all its bitmaps. */
int blk_bitmaps_resize(struct blk_node *bs, uint64_t bytes,
                       struct blk_error *err);

/* Called by the I/O path after data changed on bs (worker threads). */
void blk_bitmaps_mark(struct blk_node *bs, uint64_t off, uint64_t len);

/* Free every bitmap of bs (node close). */
void blk_bitmaps_release_all(struct blk_node *bs);

#endif
