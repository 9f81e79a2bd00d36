/*
 * hbitmap.h - a hierarchical bitmap: a flat array of bits plus summary
 * levels (one bit per non-zero word below), so that finding the next set
 * bit skips clean regions 64x per level.  Used by dirty bitmaps.
 * Not thread-safe: callers lock.
 */
#ifndef UTIL_HBITMAP_H
#define UTIL_HBITMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define HBITMAP_LEVELS 6        /* 64^6 words: 2^42 bits at the bottom */

/*
 * Invariants: level[0] holds nbits bits, bits past nbits are 0; for every
 * l >= 1, bit i of level[l] is set iff word i of level[l-1] is non-zero;
 * count is the number of set bits in level[0].
 */
struct hbitmap {
    uint64_t nbits;
    uint64_t count;
    unsigned nlevels;                   /* levels in use, >= 1 */
    uint64_t nwords[HBITMAP_LEVELS];
    uint64_t *level[HBITMAP_LEVELS];    /* owned */
};

/* Returns 0 or -ENOMEM (nbits is image-controlled). */
int hbitmap_init(struct hbitmap *hb, uint64_t nbits);
void hbitmap_release(struct hbitmap *hb);
/* Grow or shrink to nbits, keeping the bits that remain; 0 or -ENOMEM. */
int hbitmap_resize(struct hbitmap *hb, uint64_t nbits);

void hbitmap_set(struct hbitmap *hb, uint64_t first, uint64_t n);
void hbitmap_reset(struct hbitmap *hb, uint64_t first, uint64_t n);
void hbitmap_reset_all(struct hbitmap *hb);
bool hbitmap_get(const struct hbitmap *hb, uint64_t bit);

/* The first set bit in [from, nbits), or -1. */
int64_t hbitmap_next_set(const struct hbitmap *hb, uint64_t from);
/* The first clear bit in [from, nbits), or -1. */
int64_t hbitmap_next_clear(const struct hbitmap *hb, uint64_t from);

/* Copy level-0 words [first_word, first_word + n) out or in (in keeps the summaries right). */
void hbitmap_get_words(const struct hbitmap *hb, uint64_t first_word, uint64_t n,
                       uint64_t *out);
void hbitmap_set_words(struct hbitmap *hb, uint64_t first_word, uint64_t n,
                       const uint64_t *in);

/* Assert-only check of the invariants (SQLite's *Sanity style); true if sound. */
bool hbitmap_check(const struct hbitmap *hb);

#endif
