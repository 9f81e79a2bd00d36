/*
 * convert-int.h - the copy engine behind convert, commit and rebase:
 * plans the image in status runs (data / zero / leave alone), keeps up to
 * 16 chunks in flight as requests on the libuv loop, detects zeroes in
 * the data read, and writes in order of offset unless told otherwise.
 * Loop thread (blk-img's main thread) only.
 */
#ifndef CMD_BLK_IMG_CONVERT_INT_H
#define CMD_BLK_IMG_CONVERT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "util/progress.h"

#define CV_MAX_IN_FLIGHT 16
#define CV_BUF_SIZE (2u << 20)          /* bytes per chunk (qemu-img's) */
#define CV_FLUSH_EVERY (32u << 20)      /* bytes between writeback starts */

/* What to do with a run of the source. */
enum cv_status {
    CV_DATA,        /* read and write (zero detection may still skip it) */
    CV_ZERO,        /* reads as zeroes: zero the target unless it is zero already */
    CV_SKIP,        /* leave the target alone (its backing file shows through) */
};

/* One source image; several are concatenated. */
struct cv_part {
    struct blk_node *bs;        /* borrowed */
    uint64_t len;               /* bytes */
};

struct cv_job;

/*
 * Status of part `part` of the source at off (relative to the part),
 * len bytes at most: *st and *pnum (>= 1, <= len).  0 or -errno.
 */
typedef int cv_status_fn(struct cv_job *j, int part, uint64_t off,
                         uint64_t len, enum cv_status *st, uint64_t *pnum,
                         struct blk_error *err);

struct cv_job {
    /* in */
    struct cv_part *parts;
    int nparts;
    uint64_t total;             /* bytes, sum of the parts */
    uint64_t src_offset;        /* dd skip=: added to every source offset (one part) */
    struct blk_node *target;    /* borrowed */
    /*
     * rebase: read the same range from here too and write only the
     * sectors that differ (past its end it reads as zeroes; NULL means
     * all zeroes, i.e. -b "").
     */
    bool compare;
    struct blk_node *compare_bs;
    uint64_t compare_len;
    cv_status_fn *status;       /* NULL: cv_status_chain */
    void *opaque;
    bool compressed;            /* whole clusters with BLK_REQ_COMPRESSED */
    bool issue_order;           /* in_order: writes need only be issued in
                                   order (a raw target allocates nothing) */
    bool in_order;              /* write chunks in offset order (no -W) */
    bool has_zero_init;         /* target already reads as zeroes */
    bool salvage;               /* read errors become zeroes (--salvage) */
    /*
     * Data chunks the source files hold contiguously in their page cache
     * are used where they are (block.h blk_node_map_data) instead of read
     * into buffers; cv_run sets it unless BLK_MAP=0.
     */
    bool map_source;
    bool quiet;
    bool target_has_backing;    /* convert -B: unallocated source runs are SKIP */
    int64_t target_backing_len; /* -1 unknown; past it, ZERO becomes SKIP */
    uint64_t min_sparse;        /* bytes; 0 writes everything (-S 0) */
    bool keep_data;             /* write data read as is (commit): no zero detection */
    uint64_t alignment;         /* bytes, power of two: zero-detection grain */
    uint64_t cluster_size;      /* target's, for compressed writes */
    uint64_t buf_size;          /* bytes per data chunk */
    unsigned in_flight;         /* 1..16 (-m) */
    unsigned write_flags;       /* BLK_REQ_FUA for writethrough caches */
    uint64_t rate_limit;        /* bytes/s, 0: none (-r) */
    /*
     * For jobs whose caller flushes the target at the end: after this
     * many bytes written since the last time, start the target's
     * writeback (a BLK_REQ_WRITEBACK flush) while the copy goes on, so
     * the disk writes the data during the copy instead of all of it in
     * the final flush; 0: never.
     */
    uint64_t flush_every;
    struct blk_progress *progress;  /* may be NULL */
    /*
     * -C: data chunks are copied with copy_file_range(2) from
     * copy_src_fd[part] (the part's file, same offsets) to copy_dst_fd
     * (the target's file); -1 disables.  The first failure that means
     * "not possible here" turns it off for the rest of the job and the
     * chunk is read and written instead, as qemu-img falls back.  The
     * engine only reads these; they stay the caller's to close.
     */
    int *copy_src_fd;
    int copy_dst_fd;
    /* error messages: "error while reading at byte ..." etc. (convert's) */
    const char *err_prefix;     /* prepended to every message, or NULL */

    /* out */
    uint64_t bytes_read, bytes_written, bytes_copied;
};

/*
 * Run the copy to the end or the first error.  Prints one message on
 * error (qemu-img convert's wording) and returns -errno; 0 on success.
 * Drives the loop until done.
 */
int cv_run(struct cv_job *j);

/*
 * The default status function: block status through the source's whole
 * backing chain (qemu-img's bdrv_block_status_above(bs, NULL)), or of
 * the top layer only when j->target_has_backing.
 */
int cv_status_chain(struct cv_job *j, int part, uint64_t off, uint64_t len,
                    enum cv_status *st, uint64_t *pnum,
                    struct blk_error *err);

/*
 * Block status of bs alone at [off, off+len) with RECURSE resolved
 * against the file node: flags BLK_STATUS_DATA / ZERO / ALLOCATED.
 * raw-like nodes that report no ALLOCATED are treated as allocated.
 */
int cv_layer_status(struct blk_node *bs, uint64_t off, uint64_t len,
                    unsigned *flags, uint64_t *pnum, struct blk_error *err);

/*
 * Status through the chain from top down to (not including) base (NULL:
 * the whole chain): *allocated when some layer above base has the range;
 * *flags the DATA/ZERO of the layer that answered (ZERO when none did).
 */
int cv_chain_status(struct blk_node *top, struct blk_node *base,
                    uint64_t off, uint64_t len, unsigned *flags,
                    bool *allocated, uint64_t *pnum, struct blk_error *err);

/* qemu-img's cache mode names -> BLK_OPEN_* flags and writethrough. */
int cv_parse_cache(const char *mode, unsigned *open_flags, bool *writethrough);

/*
 * cv_job.flush_every for a target opened with these flags (as from
 * cv_parse_cache): CV_FLUSH_EVERY for the page cache with a flush at the
 * end (writeback), 0 when nothing would be flushed (unsafe), every write
 * is stable already (writethrough) or the page cache is bypassed (none).
 */
uint64_t cv_flush_every(unsigned open_flags, bool writethrough);

#endif
