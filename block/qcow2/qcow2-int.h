/*
 * qcow2-int.h - the qcow2 driver's private state and the contracts between
 * its files (header, cluster, refcount, cache, overlap, compress, create,
 * and check/snapshot/amend built on top).  On-disk facts follow
 * docs/interop/qcow2.txt ("the spec"); behaviour follows QEMU 7.2.
 * Unless a comment says otherwise, functions run on a worker thread with
 * q->lock held (or single-threaded during open/close/create).
 */
#ifndef BLOCK_QCOW2_INT_H
#define BLOCK_QCOW2_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/driver.h"
#include "util/error.h"

/* ---- on-disk constants (the spec) --------------------------------------- */

#define QCOW2_MAGIC 0x514649fbU                 /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_DEFAULT_CLUSTER_SIZE 65536
#define QCOW2_V2_HEADER_SIZE 72                 /* bytes, fixed part of v2 */
#define QCOW2_V3_HEADER_SIZE 104                /* bytes, v3 up to header_length */
#define QCOW2_HEADER_SIZE 112                   /* what we write: + compression_type + pad */

/* Limits on image-controlled sizes (QEMU 7.2's, so the same images open). */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOTS_BYTES (1024u * QCOW2_MAX_SNAPSHOTS)
#define QCOW2_MAX_SNAPSHOT_EXTRA_DATA 1024
#define QCOW2_MAX_BITMAPS 65535
#define QCOW2_MAX_BITMAP_DIRECTORY_BYTES (1024u * QCOW2_MAX_BITMAPS)
#define QCOW2_MAX_CLUSTER_OFFSET ((1ULL << 56) - 1)
#define QCOW2_MAX_BACKING_NAME 1023

/* Header extension magics. */
#define QCOW2_EXT_END 0x00000000U
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857U
#define QCOW2_EXT_CRYPTO 0x0537be77U
#define QCOW2_EXT_BITMAPS 0x23852875U
#define QCOW2_EXT_DATA_FILE 0x44415441U

/* Feature bits. */
enum {
    QCOW2_INCOMPAT_DIRTY = 1u << 0,
    QCOW2_INCOMPAT_CORRUPT = 1u << 1,
    QCOW2_INCOMPAT_DATA_FILE = 1u << 2,
    QCOW2_INCOMPAT_COMPRESSION = 1u << 3,
    QCOW2_INCOMPAT_EXTL2 = 1u << 4,
    QCOW2_INCOMPAT_MASK = (1u << 5) - 1,

    QCOW2_COMPAT_LAZY_REFCOUNTS = 1u << 0,
    QCOW2_COMPAT_MASK = 1u << 0,

    QCOW2_AUTOCLEAR_BITMAPS = 1u << 0,
    QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1u << 1,
    QCOW2_AUTOCLEAR_MASK = (1u << 2) - 1,
};

/* Feature name table entry types. */
enum {
    QCOW2_FEAT_INCOMPAT = 0,
    QCOW2_FEAT_COMPAT = 1,
    QCOW2_FEAT_AUTOCLEAR = 2,
};

enum qcow2_compression {
    QCOW2_COMPRESSION_ZLIB = 0,
    QCOW2_COMPRESSION_ZSTD = 1,
};

/* L1/L2/refcount-table entry bits. */
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO (1ULL << 0)
#define QCOW2_L1E_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_L2E_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ULL
#define QCOW2_L1E_RESERVED_MASK 0x7f000000000001ffULL
#define QCOW2_L2E_STD_RESERVED_MASK 0x3f000000000001feULL
#define QCOW2_COMPRESSED_SECTOR 512u

/* Extended L2: 32 subclusters; bitmap word = alloc bits 0-31, zero bits 32-63. */
#define QCOW2_EXTL2_SUBCLUSTERS 32
#define QCOW2_SUB_ALLOC(x) (1ULL << (x))
#define QCOW2_SUB_ZERO(x) (QCOW2_SUB_ALLOC(x) << 32)
#define QCOW2_SUB_ALLOC_RANGE(x, y) (QCOW2_SUB_ALLOC(y) - QCOW2_SUB_ALLOC(x))
#define QCOW2_SUB_ZERO_RANGE(x, y) (QCOW2_SUB_ALLOC_RANGE(x, y) << 32)
#define QCOW2_BITMAP_ALL_ALLOC QCOW2_SUB_ALLOC_RANGE(0, 32)
#define QCOW2_BITMAP_ALL_ZERO QCOW2_SUB_ZERO_RANGE(0, 32)

/* ---- the header, as parsed (host byte order) ---------------------------- */

struct qcow2_header {
    uint32_t magic;
    uint32_t version;                   /* 2 or 3 */
    uint64_t backing_file_offset;       /* bytes into the image file; 0: none */
    uint32_t backing_file_size;         /* bytes, no NUL */
    uint32_t cluster_bits;
    uint64_t size;                      /* virtual disk size, bytes */
    uint32_t crypt_method;              /* must be 0 for us */
    uint32_t l1_size;                   /* entries */
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* v3 (v2: zero / defaults) */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;            /* v2: 4 */
    uint32_t header_length;             /* v2: 72 */
    uint8_t compression_type;           /* only if header_length > 104 */
};

/* A header extension we keep verbatim (unknown ones, and bitmaps). */
struct qcow2_ext {
    uint32_t magic;
    uint32_t len;                       /* bytes of data, before padding */
    uint8_t *data;                      /* owned */
    struct qcow2_ext *next;
};

/* One entry of the feature name table extension. */
struct qcow2_feature {
    uint8_t type;                       /* QCOW2_FEAT_* */
    uint8_t bit;
    char name[47];                      /* NUL-terminated copy of 46 bytes */
};

/* The bitmaps extension's fields (validated, kept for overlap checks). */
struct qcow2_bitmaps_ext {
    uint32_t nb_bitmaps;
    uint64_t directory_size;
    uint64_t directory_offset;
};

/*
 * Everything the header cluster says, parsed from a buffer by
 * qcow2_parse_header_cluster (pure: no I/O, used by unit tests).
 */
struct qcow2_header_info {
    bool check_mode;                    /* in: relax checks like QEMU's BDRV_O_CHECK */
    struct qcow2_header h;
    uint8_t *unknown_fields;            /* bytes 104+ (or 112+) up to header_length we don't know; owned */
    size_t unknown_fields_len;
    char *backing_format;               /* owned or NULL */
    char *data_file;                    /* owned or NULL */
    char *backing_file;                 /* owned or NULL */
    bool bitmaps_stale;                 /* bitmaps ext without its autoclear bit: dropped */
    bool has_bitmaps_ext;
    struct qcow2_bitmaps_ext bitmaps;
    bool has_crypto_ext;
    struct qcow2_feature *features;     /* owned, n_features */
    size_t n_features;
    struct qcow2_ext *exts;             /* unknown + bitmaps, in file order; owned */
};

/* ---- metadata caches (cache.c) ------------------------------------------ */

struct qcow2_cache;

/* ---- snapshots (table parsed at open; managed in snapshot.c) ------------- */

struct qcow2_snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;                   /* entries */
    char *id_str;                       /* owned */
    char *name;                         /* owned */
    uint64_t disk_size;                 /* bytes; image size when absent */
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;                    /* UINT64_MAX when absent */
    uint32_t extra_data_size;           /* all extra data, bytes */
    uint8_t *unknown_extra_data;        /* bytes beyond the known 24, owned or NULL */
};

/* ---- discard types and overlap kinds ------------------------------------ */

enum qcow2_discard_type {
    QCOW2_DISCARD_NEVER = 0,
    QCOW2_DISCARD_ALWAYS,
    QCOW2_DISCARD_REQUEST,
    QCOW2_DISCARD_SNAPSHOT,
    QCOW2_DISCARD_OTHER,
    QCOW2_DISCARD_MAX,
};

/* Metadata kinds for overlap checks (bit masks). */
enum {
    QCOW2_OL_MAIN_HEADER = 1 << 0,
    QCOW2_OL_ACTIVE_L1 = 1 << 1,
    QCOW2_OL_ACTIVE_L2 = 1 << 2,
    QCOW2_OL_REFCOUNT_TABLE = 1 << 3,
    QCOW2_OL_REFCOUNT_BLOCK = 1 << 4,
    QCOW2_OL_SNAPSHOT_TABLE = 1 << 5,
    QCOW2_OL_INACTIVE_L1 = 1 << 6,
    QCOW2_OL_INACTIVE_L2 = 1 << 7,
    QCOW2_OL_BITMAP_DIRECTORY = 1 << 8,
    QCOW2_OL_MAX_BITNR = 9,

    QCOW2_OL_NONE = 0,
    /* templates (overlap-check=...) */
    QCOW2_OL_CONSTANT = QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1 |
                        QCOW2_OL_REFCOUNT_TABLE | QCOW2_OL_SNAPSHOT_TABLE |
                        QCOW2_OL_BITMAP_DIRECTORY,
    QCOW2_OL_CACHED = QCOW2_OL_CONSTANT | QCOW2_OL_ACTIVE_L2 |
                      QCOW2_OL_REFCOUNT_BLOCK | QCOW2_OL_INACTIVE_L1,
    QCOW2_OL_ALL = (1 << 9) - 1,
};

/* What a guest range maps to (cluster.c lookup). */
enum qcow2_subcluster_type {
    QCOW2_SC_UNALLOCATED_PLAIN,         /* read from backing / zeroes */
    QCOW2_SC_UNALLOCATED_ALLOC,         /* ext-l2: cluster allocated, subcluster not */
    QCOW2_SC_ZERO_PLAIN,                /* zero, no host cluster */
    QCOW2_SC_ZERO_ALLOC,                /* zero, host cluster kept */
    QCOW2_SC_NORMAL,                    /* data at host offset */
    QCOW2_SC_COMPRESSED,
    QCOW2_SC_INVALID,                   /* reserved bits / bad combination */
};

/* ---- the driver state ---------------------------------------------------- */

/*
 * Invariants (outside q->lock only the read-only fields below are read):
 * - cluster_size == 1 << cluster_bits; l2_entries == cluster_size / l2_entry_size;
 *   l2_slice_entries divides l2_entries.
 * - l1[] and reftable[] are host-order copies of what is on disk (after
 *   every successful metadata write); l1_size / reftable_size entries.
 * - refcount_bits == 1 << refcount_order; refcount_max == 2^bits - 1.
 * - free_cluster_index: no free cluster below it (a search hint; QEMU's).
 * - corrupt => the node behaves read-only (writes fail with -EIO).
 */
struct qcow2 {
    struct blk_node *bs;                /* borrowed: our node */
    struct blk_child *file;             /* metadata (and data unless data_file) */
    struct blk_child *data_file;        /* == file when no external data file */
    pthread_mutex_t lock;               /* guards all metadata state below */
    bool read_only;                     /* opened read-only: never write anything */

    /* header (host order), kept current by qcow2_write_header */
    struct qcow2_header h;
    uint8_t *unknown_header_fields;     /* owned, preserved on rewrite */
    size_t unknown_header_fields_len;
    struct qcow2_ext *exts;             /* unknown + bitmaps extensions, preserved; owned */
    char *backing_file;                 /* name stored in the image, owned or NULL */
    char *backing_format;               /* owned or NULL */
    char *data_file_name;               /* external data file ext, owned or NULL */
    bool has_bitmaps_ext;
    struct qcow2_bitmaps_ext bitmaps;

    /* geometry (read-only after open) */
    int version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    bool extended_l2;
    unsigned l2_entry_size;             /* 8 or 16 bytes */
    unsigned l2_bits;                   /* log2(l2_entries) */
    uint64_t l2_entries;                /* entries per L2 table */
    uint64_t l2_slice_entries;          /* entries per cached slice (l2-cache-entry-size) */
    unsigned subclusters_per_cluster;   /* 1 or 32 */
    unsigned subcluster_bits;
    uint64_t subcluster_size;
    unsigned refcount_order;
    unsigned refcount_bits;
    uint64_t refcount_max;
    unsigned refcount_block_bits;       /* log2(entries per refcount block) */
    uint64_t refcount_block_entries;
    unsigned csize_shift;               /* compressed descriptor: sectors field position */
    uint64_t csize_mask;
    uint64_t cluster_offset_mask;       /* compressed descriptor: host offset bits */
    uint64_t size;                      /* virtual size, bytes */
    enum qcow2_compression compression_type;
    bool data_file_raw;                 /* autoclear bit: data file is a raw image */
    uint64_t l1_vm_state_index;         /* first L1 index past the disk */

    /* active L1 table */
    uint64_t *l1;                       /* host order, l1_size entries; owned */
    uint32_t l1_size;
    uint64_t l1_offset;

    /* refcounts */
    uint64_t *reftable;                 /* host order; owned */
    uint32_t reftable_size;             /* entries */
    uint64_t reftable_offset;
    uint32_t max_reftable_index;        /* last used entry */
    uint64_t free_cluster_index;        /* clusters; search hint */
    uint64_t free_byte_offset;          /* compressed data packing, 0 when none */

    /* caches */
    struct qcow2_cache *l2_cache;
    struct qcow2_cache *refcount_cache;
    uint64_t cache_clean_interval;      /* seconds; 0 = never */

    /* snapshots */
    struct qcow2_snapshot *snapshots;   /* owned, nb_snapshots entries */
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;            /* bytes of the table on disk */

    /* options */
    bool lazy_refcounts;                /* use lazy refcounts (needs compat bit) */
    bool discard_passthrough[QCOW2_DISCARD_MAX];
    int overlap_check;                  /* QCOW2_OL_* mask */

    /* state */
    bool dirty_marked;                  /* we set the dirty bit this session */
    bool corrupt;                       /* corruption found: no more writes */
    bool check_mode;                    /* opened for check: tolerate corruption */
    bool no_io;                         /* q->lock: cache misses fail -EAGAIN (loop fast path) */
    struct blk_child *backing;          /* borrowed child; NULL when none */
    bool in_prealloc;                   /* metadata preallocation: no COW, no data */
    bool prealloc_checked;              /* metadata_prealloc is known */
    bool metadata_prealloc;             /* far more clusters referenced than stored */
};

static inline struct qcow2 *
qcow2_state(struct blk_node *bs)
{
    return (struct qcow2 *)blk_node_state(bs);
}

/* Geometry helpers. */
static inline uint64_t
qcow2_start_of_cluster(const struct qcow2 *q, uint64_t off)
{
    return off & ~(q->cluster_size - 1);
}

static inline uint64_t
qcow2_offset_into_cluster(const struct qcow2 *q, uint64_t off)
{
    return off & (q->cluster_size - 1);
}

static inline uint64_t
qcow2_size_to_clusters(const struct qcow2 *q, uint64_t size)
{
    return (size + q->cluster_size - 1) >> q->cluster_bits;
}

static inline uint64_t
qcow2_l1_index(const struct qcow2 *q, uint64_t guest)
{
    return guest >> (q->l2_bits + q->cluster_bits);
}

static inline uint64_t
qcow2_l2_index(const struct qcow2 *q, uint64_t guest)
{
    return (guest >> q->cluster_bits) & (q->l2_entries - 1);
}

/* Entries needed in the L1 table for a virtual size. */
uint64_t qcow2_l1_entries_for(uint64_t size, unsigned cluster_bits,
                              bool extended_l2);

/* Big-endian helpers. */
static inline uint64_t
qcow2_be64(const uint8_t *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) |
           ((uint64_t)p[2] << 40) | ((uint64_t)p[3] << 32) |
           ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | p[7];
}

static inline uint32_t
qcow2_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t
qcow2_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void
qcow2_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline void
qcow2_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
qcow2_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ---- header.c -------------------------------------------------------------- */

/*
 * Parse and validate the header cluster in buf (len bytes, at least the
 * whole header and its extensions; normally one cluster), with file_size
 * the image file's length (for offset sanity checks; 0 skips them).
 * Fills *hi (caller releases it with qcow2_header_info_release).  Fails
 * with -EINVAL/-ENOTSUP/-EFBIG and QEMU 7.2's message where it has one
 * ("Image is not in qcow2 format", "Unsupported qcow2 version 4", ...).
 * Pure; any thread.
 */
int qcow2_parse_header_cluster(const uint8_t *buf, size_t len,
                               struct qcow2_header_info *hi,
                               struct blk_error *err);
void qcow2_header_info_release(struct qcow2_header_info *hi);

/*
 * Serialise the header cluster for q's state (fixed header, then the
 * extensions in QEMU's order: backing format, data file, feature table
 * when v3, bitmaps/unknown extensions preserved, end marker; then the
 * backing file name).  buf is cluster_size bytes, zero-filled by the
 * function.  Fails with -ENOSPC if it does not fit in a cluster.
 * Pure; any thread.
 */
int qcow2_build_header_cluster(const struct qcow2 *q, uint8_t *buf,
                               size_t len, struct blk_error *err);

/* Write the header cluster (after an overlap-free check). */
int qcow2_write_header(struct qcow2 *q, struct blk_error *err);

/* Rewrite only the three feature words at offsets 72..95 (v3). */
int qcow2_write_features(struct qcow2 *q, struct blk_error *err);

/*
 * Set the dirty bit (lazy refcounts) on disk before the first write that
 * relies on it; flushes first.  No-op if already set or v2/read-only.
 */
int qcow2_mark_dirty(struct qcow2 *q, struct blk_error *err);
/* Flush everything, then clear the dirty bit.  No-op if not set. */
int qcow2_mark_clean(struct qcow2 *q, struct blk_error *err);

/*
 * Corruption found at run time: print/record "Marking image as corrupt:
 * <what>; further corruption events will be suppressed" (QEMU's style),
 * set the corrupt bit on disk (unless read-only or check mode), and make
 * q refuse further writes.  Returns -EIO with err set to the message.
 */
int qcow2_signal_corruption(struct qcow2 *q, struct blk_error *err,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The feature name table we write at create (QEMU 7.2's entries). */
extern const struct qcow2_feature qcow2_feature_table[];
extern const size_t qcow2_feature_table_len;

/* ---- cache.c ---------------------------------------------------------------- */

/*
 * A write-back cache of metadata tables (L2 slices or refcount blocks) of
 * table_size bytes each, read from and written to q->file.  Lookups hash
 * the host offset (O(1)).  Entries are pinned between get and put.
 * Limitation: drivers have no timers, so cache-clean-interval is applied
 * lazily: each get first drops clean unpinned entries unused for longer
 * than the interval.
 */
struct qcow2_cache *qcow2_cache_new(struct qcow2 *q, unsigned entries,
                                    size_t table_size, int overlap_kind);
/* Frees; dirty entries are dropped (flush first). */
void qcow2_cache_free(struct qcow2_cache *c);
/*
 * Pin the table at host offset off, reading it if not cached; *table
 * points at table_size bytes (on-disk byte order).  Fails if all entries
 * are pinned (-ENOSPC) or the read fails.
 */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off,
                    void **table, struct blk_error *err);
/* Same, but don't read: the table is zero-filled (new allocation). */
int qcow2_cache_get_empty(struct qcow2 *q, struct qcow2_cache *c,
                          uint64_t off, void **table, struct blk_error *err);
/* Unpin; *table becomes NULL. */
void qcow2_cache_put(struct qcow2_cache *c, void **table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
/*
 * Write dirty entries of c (after flushing c's dependency, if set), then
 * flush q->file.  qcow2_cache_write skips the file flush.
 */
int qcow2_cache_flush(struct qcow2 *q, struct qcow2_cache *c,
                      struct blk_error *err);
int qcow2_cache_write(struct qcow2 *q, struct qcow2_cache *c,
                      struct blk_error *err);
/* c must not be written before dep is (dep gets flushed first). */
void qcow2_cache_set_dependency(struct qcow2_cache *c, struct qcow2_cache *dep);
/* Forget a cached table at off (freed cluster); it must not be pinned. */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t off);
/* Drop every clean unpinned entry (cache-clean-interval; reopen). */
void qcow2_cache_clean(struct qcow2_cache *c);
/* Is off in c? (overlap checks of cached tables). */
bool qcow2_cache_contains(struct qcow2_cache *c, uint64_t off);
unsigned qcow2_cache_entries(const struct qcow2_cache *c);
size_t qcow2_cache_table_size(const struct qcow2_cache *c);
void qcow2_cache_set_clean_interval(struct qcow2_cache *c, uint64_t seconds);

/* ---- refcount.c ---------------------------------------------------------- */

/* Get/set entry index of a refcount block of 2^order-bit entries (pure). */
uint64_t qcow2_refblock_get(const void *block, uint64_t index, unsigned order);
void qcow2_refblock_set(void *block, uint64_t index, unsigned order,
                        uint64_t value);

/* Read the refcount table at open (validated, size-limited). */
int qcow2_refcount_init(struct qcow2 *q, struct blk_error *err);
void qcow2_refcount_close(struct qcow2 *q);

/* Refcount of host cluster index (0 when its block is unallocated). */
int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster_index,
                       uint64_t *refcount, struct blk_error *err);

/*
 * Allocate size bytes of contiguous host clusters (first fit from
 * free_cluster_index, growing refcount structures as QEMU does) and set
 * their refcounts to 1.  Returns the host offset or -errno.
 */
int64_t qcow2_alloc_clusters(struct qcow2 *q, uint64_t size,
                             struct blk_error *err);
/*
 * Try to allocate n clusters at exactly host offset off: allocates the
 * longest free prefix; returns how many clusters it got (0..n) or -errno.
 */
int64_t qcow2_alloc_clusters_at(struct qcow2 *q, uint64_t off, uint64_t n,
                                struct blk_error *err);
/* Allocate size bytes for compressed data (packing like QEMU). */
int64_t qcow2_alloc_bytes(struct qcow2 *q, uint64_t size,
                          struct blk_error *err);
/*
 * Add addend to the refcounts of every cluster touching [off, off+len).
 * Clusters that reach 0 are discarded on the file if
 * discard_passthrough[type], dropped from caches, and lower
 * free_cluster_index.  Refuses overflow/underflow with -EINVAL.
 */
int qcow2_update_refcount(struct qcow2 *q, uint64_t off, uint64_t len,
                          int64_t addend, enum qcow2_discard_type type,
                          struct blk_error *err);
/* Decrement, logging failures (leaks are harmless). */
void qcow2_free_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
                         enum qcow2_discard_type type);
/* Free what an L2 entry points to (normal or compressed), n clusters. */
void qcow2_free_any_cluster(struct qcow2 *q, uint64_t l2_entry, uint64_t n,
                            enum qcow2_discard_type type);
/*
 * QEMU's refcount "area": a new refcount table plus self-describing
 * refcount blocks placed at start (cluster aligned, free space beyond it),
 * covering additional clusters more; switches the header to the new table
 * and frees the old one.  Returns the end offset of the new structures.
 */
int64_t qcow2_refcount_area(struct qcow2 *q, uint64_t start,
                            uint64_t additional, bool exact,
                            uint64_t new_index, uint64_t new_block,
                            struct blk_error *err);
/* Write the in-memory reftable entry i to disk. */
int qcow2_write_reftable_entry(struct qcow2 *q, uint32_t i,
                               struct blk_error *err);

/* ---- cluster.c ------------------------------------------------------------- */

/* L2 entry accessors on a cached slice (on-disk big-endian). */
uint64_t qcow2_l2_get(const struct qcow2 *q, const void *slice, uint64_t i);
uint64_t qcow2_l2_get_bitmap(const struct qcow2 *q, const void *slice,
                             uint64_t i);
void qcow2_l2_set(const struct qcow2 *q, void *slice, uint64_t i, uint64_t e);
void qcow2_l2_set_bitmap(const struct qcow2 *q, void *slice, uint64_t i,
                         uint64_t b);

/* Classify subcluster sc of an L2 entry + bitmap. */
enum qcow2_subcluster_type qcow2_subcluster_type(const struct qcow2 *q,
                                                 uint64_t entry,
                                                 uint64_t bitmap, unsigned sc);

/*
 * Look up guest offset off: *bytes in: max length, out: length (>0) with the
 * same type and contiguous host mapping; *host: host offset (for NORMAL /
 * ZERO_ALLOC / UNALLOCATED_ALLOC) or the compressed descriptor (entry)
 * for COMPRESSED.  Validates entries (alignment, reserved bits, offset in
 * range) and signals corruption for bad ones.
 */
int qcow2_get_host_offset(struct qcow2 *q, uint64_t off, uint64_t *bytes,
                          uint64_t *host, enum qcow2_subcluster_type *type,
                          struct blk_error *err);

/* Compressed descriptor -> host offset and byte count to read. */
void qcow2_parse_compressed(const struct qcow2 *q, uint64_t l2_entry,
                            uint64_t *host, uint64_t *bytes);

/* Make l1 hold at least min entries (new table, QEMU's growth rule). */
int qcow2_grow_l1(struct qcow2 *q, uint64_t min, bool exact,
                  struct blk_error *err);
/* Write L1 entries [first, first+n) to disk (overlap-checked). */
int qcow2_write_l1_entries(struct qcow2 *q, uint64_t first, uint64_t n,
                           struct blk_error *err);

/*
 * Pin the L2 slice covering guest offset off, allocating (and COW-ing)
 * the L2 table if needed when for_write.  *slice_index is the entry index
 * of off in the slice.  Returns 0 with *slice NULL when !for_write and
 * the L1 entry is empty.
 */
int qcow2_get_l2_slice(struct qcow2 *q, uint64_t off, bool for_write,
                       void **slice, uint64_t *slice_index,
                       struct blk_error *err);

/*
 * Prepare a write of [off, off+*bytes): make the clusters writable
 * (allocating or COW-ing; copying partial-cluster data from the old
 * location/backing/zeroes into the new cluster), update L2 entries.
 * Returns the host offset for off and trims *bytes to a contiguous
 * range.  Caller holds q->lock.
 */
int qcow2_alloc_for_write(struct qcow2 *q, uint64_t off, uint64_t *bytes,
                          uint64_t *host, struct blk_error *err);

/*
 * As qcow2_alloc_for_write; *in_place (may be NULL) says the range was
 * already allocated and writable in place (no metadata changed), so the
 * caller may drop q->lock while it writes the data.
 */
int qcow2_prepare_write(struct qcow2 *q, uint64_t off, uint64_t *bytes,
                        uint64_t *host, bool *in_place, struct blk_error *err);

/* Zero (v3 flag / ext-l2 bits) or discard guest clusters [off, off+len). */
int qcow2_zero_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
                        unsigned flags, struct blk_error *err);
int qcow2_discard_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
                           enum qcow2_discard_type type, bool full_discard,
                           struct blk_error *err);

/*
 * Ext-l2: mark subclusters [off, off+len) (subcluster aligned, inside one
 * cluster) as zero.  -ENOTSUP for a compressed cluster.
 */
int qcow2_zero_subclusters(struct qcow2 *q, uint64_t off, uint64_t len,
                           struct blk_error *err);

/*
 * Read guest bytes [off, off+len) into buf through the current mapping
 * (backing, zeroes, compressed...), with q->lock already held (COW).
 */
int qcow2_read_guest_locked(struct qcow2 *q, uint64_t off, uint64_t len,
                            uint8_t *buf, struct blk_error *err);

/*
 * Does guest [off, off+len) already read as zeroes (zero clusters, or
 * unallocated over nothing or over a backing range that says zero)?
 * Conservative: false when unsure.  Lock held.
 */
bool qcow2_range_reads_zero(struct qcow2 *q, uint64_t off, uint64_t len);

/* Point guest cluster off at a compressed descriptor (must be unallocated). */
int qcow2_set_compressed(struct qcow2 *q, uint64_t off, uint64_t host,
                         uint64_t csize, struct blk_error *err);

/* ---- overlap.c ------------------------------------------------------------- */

/*
 * Which metadata kinds (in q->overlap_check, minus ignore) overlap
 * [off, off+len) in the image file: a QCOW2_OL_* bit of the first one, or 0.
 */
int qcow2_check_metadata_overlap(struct qcow2 *q, int ignore, uint64_t off,
                                 uint64_t len);
/*
 * Before writing [off, off+len) of the image file: fails with -EIO and
 * marks the image corrupt ("Preventing invalid write on metadata
 * (overlaps with <kind>)") on overlap.
 */
int qcow2_pre_write_check(struct qcow2 *q, int ignore, uint64_t off,
                          uint64_t len, bool data_file, struct blk_error *err);
/* Parse overlap-check options (template + booleans) into a mask. */
int qcow2_parse_overlap_opts(const struct kv *opts, int *mask,
                             struct blk_error *err);
const char *qcow2_overlap_name(int kind);

/* ---- compress.c ------------------------------------------------------------ */

/*
 * Compress src (one cluster) into dst (dst_len bytes) with q's type.
 * Returns the compressed length, -ENOSPC if it would not be smaller than
 * dst_len, or -EIO.  Pure; any thread, no lock needed.
 */
int64_t qcow2_compress(enum qcow2_compression type, void *dst, size_t dst_len,
                       const void *src, size_t src_len);
/*
 * Decompress src (src_len bytes, possibly followed by slack) into exactly
 * dst_len bytes.  Returns 0 or -EIO.  Pure; any thread.
 */
int qcow2_decompress(enum qcow2_compression type, void *dst, size_t dst_len,
                     const void *src, size_t src_len);

/* ---- snapshots (parsing at open: header side) ------------------------------ */

/* Read and validate the snapshot table (q->h.nb_snapshots etc.). */
int qcow2_read_snapshots(struct qcow2 *q, struct blk_error *err);
void qcow2_free_snapshots(struct qcow2 *q);

/* ---- rw.c: the vtable I/O ops (worker threads; they take q->lock) ---------- */

int qcow2_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_error *err);
int qcow2_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                  struct iovec *iov, int iovcnt, unsigned flags,
                  struct blk_error *err);
int qcow2_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
               struct blk_error *err);
int qcow2_discard(struct blk_node *bs, uint64_t off, uint64_t len,
                  struct blk_error *err);

/* ---- vmstate.c: the VM state area past the disk (worker threads) ---------- */

int qcow2_load_vmstate(struct blk_node *bs, uint64_t pos, uint64_t len,
                       struct iovec *iov, int iovcnt, struct blk_error *err);
int qcow2_save_vmstate(struct blk_node *bs, uint64_t pos, uint64_t len,
                       struct iovec *iov, int iovcnt, struct blk_error *err);

/* ---- qcow2.c -------------------------------------------------------------- */

/* Flush caches and the file (under the lock). */
int qcow2_flush_locked(struct qcow2 *q, struct blk_error *err);

/* create.c: the vtable create op. */
int qcow2_create(const struct kv *opts, struct blk_error *err);
/*
 * Metadata preallocation of guest [from, to) (L2 tables and data clusters
 * linked, no data written), then grow the data file to cover it with mode
 * (metadata: plain growth).  Lock held.
 */
int qcow2_preallocate(struct qcow2 *q, uint64_t from, uint64_t to,
                      enum blk_prealloc mode, struct blk_error *err);
/*
 * falloc/full preallocation of guest [from, to) after growth: QEMU's
 * scheme (new refcount structures at the end of the file, then the data
 * area, then L2 entries).  Lock held.
 */
int qcow2_preallocate_data(struct qcow2 *q, uint64_t from, uint64_t to,
                           enum blk_prealloc mode, struct blk_error *err);

/* The driver (for create, which opens the new image through the graph). */
extern const struct blk_driver blk_driver_qcow2;

/* ---- bitmap.c: persistent dirty bitmaps (the bitmaps extension) ----------- */

/*
 * At open, after the refcounts are ready: create a persistent blk_bitmap
 * on q->bs for every directory entry (inconsistent if in_use was set,
 * enabled if 'auto'), and when read-write mark them in_use on disk.
 */
int qcow2_bitmaps_load(struct qcow2 *q, struct blk_error *err);
/*
 * At close, before the final flush: write every persistent bitmap of
 * q->bs (data, table, directory, header extension), in_use cleared, and
 * free the old structures.  No-op on read-only or corrupt images.
 */
int qcow2_bitmaps_store(struct qcow2 *q, struct blk_error *err);
/* Append QEMU's info entries ({"flags", "name", "granularity"}) to list. */
int qcow2_bitmaps_info(struct qcow2 *q, struct kv *list, struct blk_error *err);
/* Set in_use on disk for every consistent persistent bitmap (now read-write). */
int qcow2_bitmaps_set_in_use(struct qcow2 *q, struct blk_error *err);

/*
 * rw.c, the loop's fast path: a read that needs no I/O but the data's own
 * (the L2 slice cached, the metadata lock free, one mapping), else -EAGAIN.
 */
int qcow2_try_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                     struct iovec *iov, int iovcnt, unsigned flags,
                     struct blk_error *err);
/*
 * The vtable aio ops (loop thread, block/uring.h): the same lookup, then
 * one read or write of the data file on the loop's io_uring; writes only
 * into clusters writable in place.  -EAGAIN sends a request to the pool.
 */
int qcow2_aio_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                     struct iovec *iov, int iovcnt, unsigned flags,
                     struct blk_aio *aio, struct blk_error *err);
int qcow2_aio_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                      struct iovec *iov, int iovcnt, unsigned flags,
                      struct blk_aio *aio, struct blk_error *err);
/* The vtable map_data (block.h blk_node_map_data): the same lookup. */
int qcow2_map_data(struct blk_node *bs, uint64_t off, uint64_t len,
                   const uint8_t **ptr);

/* ---- reopen.c: the vtable reopen ops ---------------------------------------- */
int qcow2_reopen_prepare(struct blk_node *bs, const struct kv *opts,
                         bool read_only, void **state, struct blk_error *err);
void qcow2_reopen_commit(struct blk_node *bs, void *state);
void qcow2_reopen_abort(struct blk_node *bs, void *state);

/* ---- check.c, snapshot.c, amend.c, info.c -------------------------------- */

/*
 * The vtable check op (qemu-img check): rebuild every cluster's refcount
 * in memory (memory follows the image file's size, not the virtual
 * size), compare with the refcounts on disk, log QEMU 7.2's messages to
 * res->log, and with fix (BLK_CHECK_FIX_*) repair leaks, wrong counts,
 * OFLAG_COPIED, or rebuild the refcount structure.  Writes nothing unless
 * fix != 0 (which needs a read-write node).  Takes q->lock.
 */
int qcow2_check(struct blk_node *bs, struct blk_check_result *res,
                unsigned fix, struct blk_error *err);
/*
 * Rewrite the refcount structure with 2^order-bit entries (amend
 * refcount_bits); fails if a refcount does not fit.  Lock held.
 */
int qcow2_change_refcount_order(struct qcow2 *q, unsigned order,
                                struct blk_error *err);

/*
 * Read nb snapshot table entries at off into a new array (*out, caller
 * frees with qcow2_snapshot_free_table) and the table's byte size; past
 * the end of the file reads as zeroes.  Used by check, which does not
 * rely on the table read at open.  With repair_log (may be NULL), extra
 * data over the limit is cut (logged, counted in *dropped) instead of
 * failing.
 */
int qcow2_snapshot_read_table(struct qcow2 *q, uint64_t off, uint32_t nb,
                              struct sbuf *repair_log, uint32_t *dropped,
                              struct qcow2_snapshot **out, uint64_t *size,
                              struct blk_error *err);
void qcow2_snapshot_free_table(struct qcow2_snapshot *sn, uint32_t nb);
/*
 * Write q->snapshots to new clusters, point the header at them and free
 * the old table.  If freeing fails (a leak), *free_failed (may be NULL)
 * gets the -errno.  Lock held.
 */
int qcow2_snapshot_write_table(struct qcow2 *q, int *free_failed,
                               struct blk_error *err);
/*
 * The vtable snapshot ops (each takes q->lock).  list: caller owns the
 * array and its strings.  create: a new snapshot named name with the
 * next free numeric id.  goto: by id, else by name (qemu-img -a).
 * delete: by name (qemu-img -d), -ENOENT "snapshot not found".
 */
int qcow2_snapshot_list(struct blk_node *bs, struct blk_snapshot_info **list,
                        size_t *n, struct blk_error *err);
int qcow2_snapshot_create(struct blk_node *bs, const char *name,
                          struct blk_error *err);
int qcow2_snapshot_goto(struct blk_node *bs, const char *name,
                        struct blk_error *err);
int qcow2_snapshot_delete(struct blk_node *bs, const char *name,
                          struct blk_error *err);
/*
 * The vtable snapshot_load_tmp op: on a read-only node, the snapshot
 * matching id and name (NULL matches any) becomes the active L1 table
 * until close; nothing is written.  -ENOENT "Can't find snapshot".
 */
int qcow2_snapshot_load_tmp(struct blk_node *bs, const char *id,
                            const char *name, struct blk_error *err);

/*
 * empty.c, the vtable make_empty op (QEMU 7.2's two ways: rewrite an
 * image without snapshots, bitmaps or data file to its empty state, or
 * discard every guest cluster in full).  Read-write node; takes q->lock.
 */
int qcow2_make_empty(struct blk_node *bs, struct blk_error *err);

/*
 * The vtable amend op: opts holds BlockdevCreateOptionsQcow2 member names
 * (version, lazy-refcounts, refcount-bits, data-file, data-file-raw,
 * size).  Node must be read-write.
 */
int qcow2_amend(struct blk_node *bs, const struct kv *opts, bool force,
                struct blk_error *err);

/* The vtable get_info op: sets "type" and "data" in info (an object). */
int qcow2_get_info(struct blk_node *bs, struct kv *info,
                   struct blk_error *err);

#endif
