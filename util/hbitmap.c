/*
 * hbitmap.c - hierarchical bitmap.  Setting a range touches each bottom
 * word once and then propagates "word became non-zero" upwards; finding
 * the next set bit descends from the top level, so clean stretches cost
 * one word test per 64^level bits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hbitmap.h"

static uint64_t
words_for(uint64_t bits)
{
    return (bits + 63) / 64;
}

int
hbitmap_init(struct hbitmap *hb, uint64_t nbits)
{
    uint64_t bits = nbits;
    unsigned l;

    memset(hb, 0, sizeof(*hb));
    hb->nbits = nbits;
    for (l = 0; l < HBITMAP_LEVELS; l++) {
        uint64_t w = words_for(bits);

        if (w == 0) {
            w = 1;
        }
        hb->nwords[l] = w;
        hb->level[l] = calloc(w, sizeof(uint64_t));
        if (hb->level[l] == NULL) {
            hbitmap_release(hb);
            return -ENOMEM;
        }
        hb->nlevels = l + 1;
        if (w == 1) {
            break;
        }
        bits = w;
    }
    return 0;
}

void
hbitmap_release(struct hbitmap *hb)
{
    unsigned l;

    for (l = 0; l < HBITMAP_LEVELS; l++) {
        free(hb->level[l]);
        hb->level[l] = NULL;
    }
    hb->nlevels = 0;
    hb->nbits = 0;
    hb->count = 0;
}

/* Word w of level l changed from old to new: fix the summaries above. */
static void
propagate(struct hbitmap *hb, unsigned l, uint64_t w, uint64_t old,
          uint64_t now)
{
    while (l + 1 < hb->nlevels && (old != 0) != (now != 0)) {
        uint64_t *up = &hb->level[l + 1][w / 64];
        uint64_t mask = 1ull << (w % 64);

        old = *up;
        if (now != 0) {
            *up |= mask;
        } else {
            *up &= ~mask;
        }
        now = *up;
        w /= 64;
        l++;
    }
}

static void
update_range(struct hbitmap *hb, uint64_t first, uint64_t n, bool set)
{
    uint64_t end, w;

    if (first >= hb->nbits || n == 0) {
        return;
    }
    end = first + n < first || first + n > hb->nbits ? hb->nbits : first + n;
    for (w = first / 64; w * 64 < end; w++) {
        uint64_t lo = w * 64 > first ? 0 : first % 64;
        uint64_t hi = (w + 1) * 64 <= end ? 64 : end % 64;
        uint64_t mask = (hi == 64 ? ~0ull : (1ull << hi) - 1) &
                        ~((1ull << lo) - 1);
        uint64_t old = hb->level[0][w];
        uint64_t now = set ? old | mask : old & ~mask;

        if (now == old) {
            continue;
        }
        hb->count += __builtin_popcountll(now) - __builtin_popcountll(old);
        hb->level[0][w] = now;
        propagate(hb, 0, w, old, now);
    }
}

void
hbitmap_set(struct hbitmap *hb, uint64_t first, uint64_t n)
{
    update_range(hb, first, n, true);
}

void
hbitmap_reset(struct hbitmap *hb, uint64_t first, uint64_t n)
{
    update_range(hb, first, n, false);
}

void
hbitmap_reset_all(struct hbitmap *hb)
{
    unsigned l;

    for (l = 0; l < hb->nlevels; l++) {
        memset(hb->level[l], 0, hb->nwords[l] * sizeof(uint64_t));
    }
    hb->count = 0;
}

bool
hbitmap_get(const struct hbitmap *hb, uint64_t bit)
{
    if (bit >= hb->nbits) {
        return false;
    }
    return (hb->level[0][bit / 64] >> (bit % 64)) & 1;
}

/*
 * The first set bit of level l at or after position pos, or -1: test the
 * rest of pos's word, otherwise ask the level above for the next
 * non-zero word.
 */
static int64_t
next_set_at(const struct hbitmap *hb, unsigned l, uint64_t pos)
{
    uint64_t nbits = l == 0 ? hb->nbits : hb->nwords[l - 1];
    uint64_t w, word;
    int64_t up;

    if (pos >= nbits) {
        return -1;
    }
    w = pos / 64;
    word = hb->level[l][w] & (~0ull << (pos % 64));
    if (word != 0) {
        return (int64_t)(w * 64 + __builtin_ctzll(word));
    }
    if (l + 1 >= hb->nlevels) {
        /* Top level: scan (it is a single word). */
        for (w++; w < hb->nwords[l]; w++) {
            if (hb->level[l][w] != 0) {
                return (int64_t)(w * 64 + __builtin_ctzll(hb->level[l][w]));
            }
        }
        return -1;
    }
    up = next_set_at(hb, l + 1, w + 1);
    if (up < 0) {
        return -1;
    }
    return (int64_t)((uint64_t)up * 64 + __builtin_ctzll(hb->level[l][up]));
}

int64_t
hbitmap_next_set(const struct hbitmap *hb, uint64_t from)
{
    return next_set_at(hb, 0, from);
}

int64_t
hbitmap_next_clear(const struct hbitmap *hb, uint64_t from)
{
    uint64_t w;

    if (from >= hb->nbits) {
        return -1;
    }
    for (w = from / 64; w < hb->nwords[0]; w++) {
        uint64_t word = ~hb->level[0][w];

        if (w == from / 64) {
            word &= ~0ull << (from % 64);
        }
        if (word != 0) {
            uint64_t bit = w * 64 + __builtin_ctzll(word);

            return bit < hb->nbits ? (int64_t)bit : -1;
        }
    }
    return -1;
}

void
hbitmap_get_words(const struct hbitmap *hb, uint64_t first_word, uint64_t n,
                  uint64_t *out)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        out[i] = first_word + i < hb->nwords[0] ?
                 hb->level[0][first_word + i] : 0;
    }
}

void
hbitmap_set_words(struct hbitmap *hb, uint64_t first_word, uint64_t n,
                  const uint64_t *in)
{
    uint64_t i;

    for (i = 0; i < n && first_word + i < hb->nwords[0]; i++) {
        uint64_t w = first_word + i;
        uint64_t old = hb->level[0][w];
        uint64_t now = in[i];

        /* No bit past nbits (the one word of an empty bitmap has none). */
        if (w * 64 >= hb->nbits) {
            now = 0;
        } else if (hb->nbits - w * 64 < 64) {
            now &= (1ull << (hb->nbits - w * 64)) - 1;
        }
        if (now == old) {
            continue;
        }
        hb->count += __builtin_popcountll(now) - __builtin_popcountll(old);
        hb->level[0][w] = now;
        propagate(hb, 0, w, old, now);
    }
}

int
hbitmap_resize(struct hbitmap *hb, uint64_t nbits)
{
    struct hbitmap nhb;
    uint64_t n;
    int r;

    r = hbitmap_init(&nhb, nbits);
    if (r < 0) {
        return r;
    }
    n = hb->nwords[0] < nhb.nwords[0] ? hb->nwords[0] : nhb.nwords[0];
    if (hb->nlevels > 0) {
        hbitmap_set_words(&nhb, 0, n, hb->level[0]);
    }
    hbitmap_release(hb);
    *hb = nhb;
    return 0;
}

bool
hbitmap_check(const struct hbitmap *hb)
{
    uint64_t count = 0, w;
    unsigned l;

    for (w = 0; w < hb->nwords[0]; w++) {
        count += __builtin_popcountll(hb->level[0][w]);
    }
    if (count != hb->count) {
        return false;
    }
    if (hb->nbits == 0 && hb->level[0][0] != 0) {
        return false;
    }
    if (hb->nbits % 64 != 0 &&
        (hb->level[0][hb->nwords[0] - 1] >> (hb->nbits % 64)) != 0) {
        return false;
    }
    for (l = 1; l < hb->nlevels; l++) {
        for (w = 0; w < hb->nwords[l - 1]; w++) {
            bool sum = (hb->level[l][w / 64] >> (w % 64)) & 1;

            if (sum != (hb->level[l - 1][w] != 0)) {
                return false;
            }
        }
    }
    return true;
}
