/*
 * cache.c - qcow2 metadata cache: L2 table slices and refcount blocks,
 * write-back, pinned while in use, found by a hash of the host offset
 * (O(1) hits), evicted least-recently-used.  Called under q->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

struct cache_entry {
    uint64_t offset;            /* host offset; UINT64_MAX when empty */
    unsigned ref;               /* pins */
    bool dirty;
    uint64_t lru;               /* tick of the last use */
    uint64_t used_sec;          /* monotonic seconds of the last use */
    int hnext;                  /* next entry in the hash chain, -1 ends */
};

struct qcow2_cache {
    struct qcow2 *q;
    unsigned n;
    size_t table_size;          /* bytes per entry */
    int overlap_kind;           /* QCOW2_OL_* the tables themselves are */
    uint8_t *mem;               /* n * table_size */
    struct cache_entry *e;
    int *bucket;                /* nbuckets heads, -1 when empty */
    unsigned nbuckets;          /* power of two */
    uint64_t tick;
    struct qcow2_cache *depends;
    uint64_t clean_interval;    /* seconds, 0 = never */
    uint64_t last_clean_sec;
};

static uint64_t
now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static unsigned
hash_off(const struct qcow2_cache *c, uint64_t off)
{
    uint64_t h = off / c->table_size;

    h *= 0x9e3779b97f4a7c15ULL;
    return (unsigned)(h >> 32) & (c->nbuckets - 1);
}

static void *
table_of(const struct qcow2_cache *c, int i)
{
    return c->mem + (size_t)i * c->table_size;
}

static int
index_of(const struct qcow2_cache *c, const void *table)
{
    size_t d = (size_t)((const uint8_t *)table - c->mem);

    return (int)(d / c->table_size);
}

struct qcow2_cache *
qcow2_cache_new(struct qcow2 *q, unsigned entries, size_t table_size,
                int overlap_kind)
{
    struct qcow2_cache *c = xzalloc(sizeof(*c));

    c->q = q;
    c->n = entries;
    c->table_size = table_size;
    c->overlap_kind = overlap_kind;
    c->mem = blk_try_memalign(4096, (size_t)entries * table_size);
    if (c->mem == NULL) {
        free(c);
        return NULL;
    }
    c->e = xcalloc(entries, sizeof(*c->e));
    c->nbuckets = 1;
    while (c->nbuckets < entries * 2) {
        c->nbuckets <<= 1;
    }
    c->bucket = xmalloc(c->nbuckets * sizeof(int));
    for (unsigned i = 0; i < c->nbuckets; i++) {
        c->bucket[i] = -1;
    }
    for (unsigned i = 0; i < entries; i++) {
        c->e[i].offset = UINT64_MAX;
        c->e[i].hnext = -1;
    }
    c->last_clean_sec = now_sec();
    return c;
}

void
qcow2_cache_free(struct qcow2_cache *c)
{
    if (c == NULL) {
        return;
    }
    free(c->mem);
    free(c->e);
    free(c->bucket);
    free(c);
}

static int
lookup(const struct qcow2_cache *c, uint64_t off)
{
    for (int i = c->bucket[hash_off(c, off)]; i >= 0; i = c->e[i].hnext) {
        if (c->e[i].offset == off) {
            return i;
        }
    }
    return -1;
}

static void
unhash(struct qcow2_cache *c, int i)
{
    int *pp;

    if (c->e[i].offset == UINT64_MAX) {
        return;
    }
    pp = &c->bucket[hash_off(c, c->e[i].offset)];
    while (*pp != i) {
        pp = &c->e[*pp].hnext;
    }
    *pp = c->e[i].hnext;
    c->e[i].hnext = -1;
    c->e[i].offset = UINT64_MAX;
}

static void
rehash(struct qcow2_cache *c, int i, uint64_t off)
{
    unsigned b = hash_off(c, off);

    c->e[i].offset = off;
    c->e[i].hnext = c->bucket[b];
    c->bucket[b] = i;
}

static int
write_entry(struct qcow2 *q, struct qcow2_cache *c, int i,
            struct blk_error *err)
{
    int r;

    if (!c->e[i].dirty || c->e[i].offset == UINT64_MAX) {
        return 0;
    }
    if (c->depends != NULL) {
        /* Cleared first: two caches may depend on each other. */
        struct qcow2_cache *dep = c->depends;

        c->depends = NULL;
        r = qcow2_cache_flush(q, dep, err);
        if (r < 0) {
            c->depends = dep;
            return r;
        }
    }
    r = qcow2_pre_write_check(q, c->overlap_kind, c->e[i].offset,
                              c->table_size, false, err);
    if (r < 0) {
        return r;
    }
    r = blk_child_pwrite(q->file, c->e[i].offset, table_of(c, i),
                         c->table_size, 0, err);
    if (r < 0) {
        return r;
    }
    c->e[i].dirty = false;
    return 0;
}

int
qcow2_cache_write(struct qcow2 *q, struct qcow2_cache *c,
                  struct blk_error *err)
{
    int ret = 0;

    for (unsigned i = 0; i < c->n; i++) {
        int r = write_entry(q, c, (int)i, err);

        if (r < 0 && ret == 0) {
            ret = r;
        }
    }
    return ret;
}

int
qcow2_cache_flush(struct qcow2 *q, struct qcow2_cache *c,
                  struct blk_error *err)
{
    int r = qcow2_cache_write(q, c, err);

    if (r < 0) {
        return r;
    }
    return blk_child_flush(q->file, err);
}

void
qcow2_cache_set_dependency(struct qcow2_cache *c, struct qcow2_cache *dep)
{
    struct blk_error ignored = BLK_ERROR_INIT;

    /* Never a cycle: settle the other direction first (QEMU's rule). */
    if (dep->depends != NULL) {
        qcow2_cache_flush(c->q, dep, &ignored);
    }
    if (c->depends != NULL && c->depends != dep) {
        qcow2_cache_flush(c->q, c, &ignored);
    }
    c->depends = dep;
}

void
qcow2_cache_set_clean_interval(struct qcow2_cache *c, uint64_t seconds)
{
    c->clean_interval = seconds;
}

static void
drop_entry(struct qcow2_cache *c, int i)
{
    unhash(c, i);
    c->e[i].dirty = false;
    c->e[i].lru = 0;
}

void
qcow2_cache_clean(struct qcow2_cache *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->e[i].ref == 0 && !c->e[i].dirty) {
            drop_entry(c, (int)i);
        }
    }
}

/* cache-clean-interval, applied lazily on access (drivers have no timers). */
static void
maybe_clean(struct qcow2_cache *c)
{
    uint64_t now;

    if (c->clean_interval == 0) {
        return;
    }
    now = now_sec();
    if (now - c->last_clean_sec < c->clean_interval) {
        return;
    }
    for (unsigned i = 0; i < c->n; i++) {
        struct cache_entry *e = &c->e[i];

        if (e->ref == 0 && !e->dirty && e->offset != UINT64_MAX &&
            now - e->used_sec >= c->clean_interval) {
            drop_entry(c, (int)i);
        }
    }
    c->last_clean_sec = now;
}

static int
do_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, bool read,
       void **table, struct blk_error *err)
{
    int i, victim = -1;
    uint64_t best = UINT64_MAX;
    int r;

    maybe_clean(c);
    i = lookup(c, off);
    if (i >= 0) {
        goto found;
    }
    if (q->no_io) {
        return -EAGAIN;         /* the fast path never waits for a table */
    }
    for (unsigned j = 0; j < c->n; j++) {
        if (c->e[j].ref == 0 && c->e[j].lru < best) {
            best = c->e[j].lru;
            victim = (int)j;
            if (c->e[j].offset == UINT64_MAX) {
                break;
            }
        }
    }
    if (victim < 0) {
        return blk_error_set(err, -ENOSPC, "qcow2 metadata cache is full");
    }
    i = victim;
    r = write_entry(q, c, i, err);
    if (r < 0) {
        return r;
    }
    unhash(c, i);
    if (read) {
        r = blk_child_pread(q->file, off, table_of(c, i), c->table_size, err);
        if (r < 0) {
            return r;
        }
    }
    rehash(c, i, off);

found:
    c->e[i].ref++;
    c->e[i].lru = ++c->tick;
    c->e[i].used_sec = c->clean_interval ? now_sec() : 0;
    *table = table_of(c, i);
    return 0;
}

int
qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off,
                void **table, struct blk_error *err)
{
    return do_get(q, c, off, true, table, err);
}

int
qcow2_cache_get_empty(struct qcow2 *q, struct qcow2_cache *c, uint64_t off,
                      void **table, struct blk_error *err)
{
    int r = do_get(q, c, off, false, table, err);

    if (r == 0) {
        memset(*table, 0, c->table_size);
    }
    return r;
}

void
qcow2_cache_put(struct qcow2_cache *c, void **table)
{
    int i;

    if (*table == NULL) {
        return;
    }
    i = index_of(c, *table);
    c->e[i].ref--;
    *table = NULL;
}

void
qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
    c->e[index_of(c, table)].dirty = true;
}

void
qcow2_cache_discard(struct qcow2_cache *c, uint64_t off)
{
    int i = lookup(c, off);

    if (i >= 0 && c->e[i].ref == 0) {
        drop_entry(c, i);
    }
}

bool
qcow2_cache_contains(struct qcow2_cache *c, uint64_t off)
{
    return lookup(c, off) >= 0;
}

unsigned
qcow2_cache_entries(const struct qcow2_cache *c)
{
    return c->n;
}

size_t
qcow2_cache_table_size(const struct qcow2_cache *c)
{
    return c->table_size;
}
