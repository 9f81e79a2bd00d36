/*
 * driver.h - the one small vtable every block driver implements, and the
 * blocking calls a driver makes on its node and children.  Drivers run on
 * libuv worker threads as plain blocking code (nbdkit-style) and never
 * include <uv.h>; the core (block/io.c) checks every request once before
 * calling in, so drivers may assume their preconditions hold.
 */
#ifndef BLOCK_DRIVER_H
#define BLOCK_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "keyval/kv.h"
#include "util/error.h"

struct blk_node;
struct blk_child;
struct blk_aio;                 /* an asynchronous request (block/uring.h) */

/* How many requests a driver may see at once on one node (enforced by the core). */
enum blk_threads {
    BLK_THREADS_SERIAL,         /* one call at a time per node */
    BLK_THREADS_PARALLEL,       /* any number; the driver locks its own state */
};

/* Permissions a parent takes on a child, and shares with other parents. */
enum {
    BLK_PERM_CONSISTENT_READ = 1 << 0,
    BLK_PERM_WRITE = 1 << 1,
    BLK_PERM_WRITE_UNCHANGED = 1 << 2,
    BLK_PERM_RESIZE = 1 << 3,
    BLK_PERM_ALL = (1 << 4) - 1,
};

/* What a child is to its parent (QEMU's BdrvChildRole, simplified). */
enum {
    BLK_ROLE_DATA = 1 << 0,     /* guest data lives here */
    BLK_ROLE_METADATA = 1 << 1, /* format metadata lives here */
    BLK_ROLE_FILTERED = 1 << 2, /* a filter's only child */
    BLK_ROLE_COW = 1 << 3,      /* a backing file: read-only, unchanged */
    BLK_ROLE_PRIMARY = 1 << 4,  /* the child the node's name/filename comes from */
};

/* Request flags. */
enum {
    BLK_REQ_FUA = 1 << 0,           /* write through to stable storage */
    BLK_REQ_MAY_UNMAP = 1 << 1,     /* zero: may deallocate */
    BLK_REQ_NO_FALLBACK = 1 << 2,   /* zero: fail with -ENOTSUP instead of writing zeroes */
    BLK_REQ_COMPRESSED = 1 << 3,    /* write: store compressed (qcow2) */
    BLK_REQ_UNCHANGED = 1 << 4,     /* write: data is unchanged (copy-on-read, commit) */
    BLK_REQ_ORDERED = 1 << 5,       /* blk_req: runs after the gate's previous one (block.h) */
    BLK_REQ_WRITEBACK = 1 << 6,     /* flush: only start writing cached data back
                                       (drivers' writeback op), wait for nothing */
};

/* Block status flags (QEMU's BDRV_BLOCK_*). */
enum {
    BLK_STATUS_DATA = 1 << 0,       /* reads come from this node's storage */
    BLK_STATUS_ZERO = 1 << 1,       /* reads return zeroes */
    BLK_STATUS_OFFSET_VALID = 1 << 2, /* map is a valid offset in st->file */
    BLK_STATUS_ALLOCATED = 1 << 3,  /* allocated in this layer (not the backing) */
    BLK_STATUS_RECURSE = 1 << 4,    /* ask st->file at map for DATA/ZERO detail */
    BLK_STATUS_COMPRESSED = 1 << 5, /* stored compressed (map is not an offset) */
};

struct blk_status {
    uint64_t pnum;              /* bytes from the offset with the same status, >= 1 */
    unsigned flags;             /* BLK_STATUS_* */
    uint64_t map;               /* host offset in file, if OFFSET_VALID */
    struct blk_node *file;      /* the node map refers to (borrowed) */
};

/* Limits a driver declares in open (blk_node_set_limits); 0 means "none". */
struct blk_limits {
    uint32_t request_alignment; /* bytes, power of two; 1 if unset */
    uint64_t max_transfer;      /* bytes per request */
    uint32_t opt_transfer;
    uint32_t min_mem_alignment; /* buffer alignment for O_DIRECT */
    uint32_t pdiscard_alignment;
    uint32_t pwrite_zeroes_alignment;
};

enum blk_prealloc {
    BLK_PREALLOC_OFF,
    BLK_PREALLOC_METADATA,
    BLK_PREALLOC_FALLOC,
    BLK_PREALLOC_FULL,
};

/* Results of a consistency check (qemu-img check's numbers). */
struct blk_check_result {
    int corruptions, leaks, check_errors;
    int corruptions_fixed, leaks_fixed;
    uint64_t image_end_offset;
    uint64_t allocated_clusters, total_clusters;
    uint64_t fragmented_clusters, compressed_clusters;
    bool has_stats;             /* the cluster numbers are meaningful */
    struct sbuf *log;           /* messages printed by check (ERROR/Leaked ...); may be NULL */
};

enum {
    BLK_CHECK_FIX_LEAKS = 1,
    BLK_CHECK_FIX_ERRORS = 2,
};

/* One internal snapshot (qemu-img snapshot -l). */
struct blk_snapshot_info {
    char *id, *name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;            /* UINT64_MAX when absent */
};

struct blk_driver {
    const char *name;           /* as in BlockdevDriver: "qcow2" */
    enum blk_threads threads;
    size_t state_size;          /* zeroed driver state, blk_node_state() */
    bool is_filter;             /* passes I/O to its one filtered child */
    bool is_format;             /* opened over a protocol node via "file" */
    bool has_backing;           /* may have a "backing" child */
    bool compressed_writes;     /* takes BLK_REQ_COMPRESSED (else -ENOTSUP) */
    const char *create_type;    /* schema branch for create, or NULL */

    /* Probe: score 0..100 that buf (the first bytes) is this format. */
    int (*probe)(const uint8_t *buf, size_t len, const char *filename);

    /* opts is the typed BlockdevOptions tree (borrowed, valid during open). */
    int (*open)(struct blk_node *bs, const struct kv *opts, struct blk_error *err);
    void (*close)(struct blk_node *bs);

    int (*preadv)(struct blk_node *bs, uint64_t off, uint64_t len,
                  struct iovec *iov, int iovcnt, unsigned flags,
                  struct blk_error *err);
    int (*pwritev)(struct blk_node *bs, uint64_t off, uint64_t len,
                   struct iovec *iov, int iovcnt, unsigned flags,
                   struct blk_error *err);
    /*
     * Optional fast path, called on the loop thread: the same as
     * preadv/pwritev, but it must never block (RWF_NOWAIT, a trylock, a
     * cache hit).  Return -EAGAIN when the request would block; the core
     * then runs it on the pool.  Any other result completes the request.
     */
    int (*try_preadv)(struct blk_node *bs, uint64_t off, uint64_t len,
                      struct iovec *iov, int iovcnt, unsigned flags,
                      struct blk_error *err);
    int (*try_pwritev)(struct blk_node *bs, uint64_t off, uint64_t len,
                       struct iovec *iov, int iovcnt, unsigned flags,
                       struct blk_error *err);
    /*
     * Optional, loop thread, never blocks: start the same read/write
     * asynchronously on the loop's io_uring.  Return -EINPROGRESS once a
     * leaf I/O is queued (blk_aio_fd_rw, or a child's blk_child_aio_*),
     * -EAGAIN when this request cannot go that way (the core uses the
     * pool; err clear), or the result (0, -errno) if it finished at once.
     */
    int (*aio_preadv)(struct blk_node *bs, uint64_t off, uint64_t len,
                      struct iovec *iov, int iovcnt, unsigned flags,
                      struct blk_aio *aio, struct blk_error *err);
    int (*aio_pwritev)(struct blk_node *bs, uint64_t off, uint64_t len,
                       struct iovec *iov, int iovcnt, unsigned flags,
                       struct blk_aio *aio, struct blk_error *err);
    /*
     * Optional, called on a worker (it may wait for the driver's locks and
     * read metadata, never the data): the node's data at [off, off + len)
     * as one span of read-only memory (a shared mapping of a file's page
     * cache, or blk_map_zeroes) that stays valid until the node closes, or
     * -EAGAIN when it cannot be had so (not one contiguous run, compressed,
     * O_DIRECT, not a regular file, any error).  See blk_node_map_data in
     * block.h.
     */
    int (*map_data)(struct blk_node *bs, uint64_t off, uint64_t len,
                    const uint8_t **ptr);
    int (*zero)(struct blk_node *bs, uint64_t off, uint64_t len,
                unsigned flags, struct blk_error *err);
    int (*discard)(struct blk_node *bs, uint64_t off, uint64_t len,
                   struct blk_error *err);
    int (*flush)(struct blk_node *bs, struct blk_error *err);
    /*
     * A flush with BLK_REQ_WRITEBACK: start writing back what the node
     * caches, without waiting for it or making anything stable (NULL:
     * nothing to do here; the children are asked either way).  Takes no
     * lock a write needs, so writes go on meanwhile.
     */
    int (*writeback)(struct blk_node *bs, struct blk_error *err);
    int (*block_status)(struct blk_node *bs, uint64_t off, uint64_t len,
                        struct blk_status *st, struct blk_error *err);
    /* Bytes, or -errno. */
    int64_t (*get_length)(struct blk_node *bs);
    /* Allocated bytes on the host (qemu-img's "disk size"), or -errno. */
    int64_t (*get_allocated_size)(struct blk_node *bs);
    int (*truncate)(struct blk_node *bs, uint64_t len, bool exact,
                    enum blk_prealloc prealloc, struct blk_error *err);

    /* Create an image from a typed BlockdevCreateOptions tree. */
    int (*create)(const struct kv *opts, struct blk_error *err);
    int (*check)(struct blk_node *bs, struct blk_check_result *res,
                 unsigned fix, struct blk_error *err);
    /* Format-specific facts for `info` (an object of QEMU's ImageInfoSpecific). */
    int (*get_info)(struct blk_node *bs, struct kv *info, struct blk_error *err);
    /* Change format options in place (qemu-img amend); opts is typed create options. */
    int (*amend)(struct blk_node *bs, const struct kv *opts, bool force,
                 struct blk_error *err);

    int (*snapshot_list)(struct blk_node *bs, struct blk_snapshot_info **list,
                         size_t *n, struct blk_error *err);
    int (*snapshot_create)(struct blk_node *bs, const char *name,
                           struct blk_error *err);
    int (*snapshot_goto)(struct blk_node *bs, const char *name,
                         struct blk_error *err);
    int (*snapshot_delete)(struct blk_node *bs, const char *name,
                           struct blk_error *err);
    /*
     * Read-only node: make the snapshot matching id and name (NULL
     * matches any; one must be given) the active state until close,
     * writing nothing (qemu-img convert -l).  -ENOENT when none matches.
     */
    int (*snapshot_load_tmp)(struct blk_node *bs, const char *id,
                             const char *name, struct blk_error *err);
    /*
     * Read-write node: drop everything allocated in this layer, so reads
     * fall through to the backing file (qemu-img commit empties the top).
     */
    int (*make_empty)(struct blk_node *bs, struct blk_error *err);

    /*
     * The VM state area (qemu-io read -b / write -b): len bytes at byte
     * pos of it.  Absent: blk_node_{load,save}_vmstate ask the filtered
     * or primary child instead.
     */
    int (*load_vmstate)(struct blk_node *bs, uint64_t pos, uint64_t len,
                        struct iovec *iov, int iovcnt, struct blk_error *err);
    int (*save_vmstate)(struct blk_node *bs, uint64_t pos, uint64_t len,
                        struct iovec *iov, int iovcnt, struct blk_error *err);

    /* Reopen with new options (typed tree) / read-only state: prepare, then commit or abort. */
    int (*reopen_prepare)(struct blk_node *bs, const struct kv *opts,
                          bool read_only, void **state, struct blk_error *err);
    void (*reopen_commit)(struct blk_node *bs, void *state);
    void (*reopen_abort)(struct blk_node *bs, void *state);

    /*
     * The permissions all parents now take (perm) and share (shared) on
     * this node changed; protocol drivers lock the image accordingly.
     * Called on the loop thread while the node is drained.
     */
    int (*set_perm)(struct blk_node *bs, unsigned perm, unsigned shared,
                    struct blk_error *err);

    /*
     * Loop side, never blocks: how many nanoseconds to hold a request of
     * bytes (is_write) before it may run; 0 admits it now.  Throttle only.
     */
    uint64_t (*admit)(struct blk_node *bs, uint64_t bytes, bool is_write);
};

/* ---- node accessors for drivers (any thread) ---------------------------- */

void *blk_node_state(struct blk_node *bs);
const char *blk_node_get_name(const struct blk_node *bs);      /* node-name */
/* The filename shown in messages and `info` ("a.qcow2"); set by protocol drivers. */
const char *blk_node_get_filename(const struct blk_node *bs);
void blk_node_set_filename(struct blk_node *bs, const char *filename);
bool blk_node_is_read_only(const struct blk_node *bs);
bool blk_node_cache_direct(const struct blk_node *bs);
bool blk_node_cache_no_flush(const struct blk_node *bs);
bool blk_node_force_share(const struct blk_node *bs);
bool blk_node_discard_unmap(const struct blk_node *bs);        /* discard=unmap */
void blk_node_set_limits(struct blk_node *bs, const struct blk_limits *l);
const struct blk_limits *blk_node_get_limits(const struct blk_node *bs);
const struct blk_driver *blk_node_driver(const struct blk_node *bs);

/*
 * Open the child described by opts[key] (an inline options object, or a
 * node-name string) and attach it under child_name with role.  Read-only,
 * cache and force-share are inherited unless the child options say
 * otherwise.  Returns NULL with err set; if key is absent and allow_none,
 * returns NULL with err clear.  Loop thread (during open).
 */
struct blk_child *blk_node_open_child(struct blk_node *parent,
                                      const struct kv *opts, const char *key,
                                      const char *child_name, unsigned role,
                                      bool allow_none, struct blk_error *err);

/*
 * Open a backing file named inside an image: name is a plain path
 * (relative to the directory of the image's filename), never json: or a
 * protocol prefix; fmt is the recorded backing format, or NULL to probe
 * (a probed raw image never becomes writable).  Attaches it as "backing".
 */
struct blk_child *blk_node_open_backing(struct blk_node *parent,
                                        const char *name, const char *fmt,
                                        struct blk_error *err);

/* The BLK_OPEN_* flags (block.h) the node was opened with. */
unsigned blk_node_open_flags(const struct blk_node *bs);

/*
 * For create(): open the node a BlockdevCreateOptions member refers to
 * (an inline options object, or a filename string) read-write, for the
 * creating driver to write with blk_node_pwrite & co (declared here for
 * drivers: see blk_create_node_* below).  Caller releases it with
 * blk_create_close_child.
 */
struct blk_node *blk_create_open_child(const struct kv *ref,
                                       struct blk_error *err);
void blk_create_close_child(struct blk_node *bs);
int blk_create_pwrite(struct blk_node *bs, uint64_t off, const void *buf,
                      size_t len, struct blk_error *err);
int blk_create_pread(struct blk_node *bs, uint64_t off, void *buf,
                     size_t len, struct blk_error *err);
int blk_create_truncate(struct blk_node *bs, uint64_t len,
                        enum blk_prealloc prealloc, struct blk_error *err);
int blk_create_flush(struct blk_node *bs, struct blk_error *err);

/* Attach an already-open node as a child (takes a new reference). */
struct blk_child *blk_node_attach_child(struct blk_node *parent,
                                        struct blk_node *child,
                                        const char *child_name, unsigned role,
                                        struct blk_error *err);
void blk_node_detach_child(struct blk_node *parent, struct blk_child *c);

struct blk_child *blk_node_get_child(const struct blk_node *bs, const char *name);
struct blk_node *blk_child_node(const struct blk_child *c);
const char *blk_child_name(const struct blk_child *c);

/* ---- blocking I/O on a child (worker threads, or offline tools) ---------- */
/*
 * Each goes through the core's checks for the child node (bounds,
 * alignment with read-modify-write, overlapping-request serialisation,
 * thread model) and then its driver.  Return 0 or -errno with err set.
 */
int blk_child_preadv(struct blk_child *c, uint64_t off, uint64_t len,
                     struct iovec *iov, int iovcnt, unsigned flags,
                     struct blk_error *err);
int blk_child_pwritev(struct blk_child *c, uint64_t off, uint64_t len,
                      struct iovec *iov, int iovcnt, unsigned flags,
                      struct blk_error *err);
int blk_child_pread(struct blk_child *c, uint64_t off, void *buf, size_t len,
                    struct blk_error *err);
/*
 * The fast path on a child (loop thread, from a driver's try_* op): the
 * core's checks, then the child's try op; -EAGAIN (with err clear) when
 * it would block or the request needs the slow path's care.
 */
/* The child's map_data (block.h blk_node_map_data), -EAGAIN without one. */
int blk_child_map_data(struct blk_child *c, uint64_t off, uint64_t len,
                       const uint8_t **ptr);
int blk_child_try_preadv(struct blk_child *c, uint64_t off, uint64_t len,
                         struct iovec *iov, int iovcnt, unsigned flags,
                         struct blk_error *err);
int blk_child_try_pwritev(struct blk_child *c, uint64_t off, uint64_t len,
                          struct iovec *iov, int iovcnt, unsigned flags,
                          struct blk_error *err);
/*
 * The ring path on a child (loop thread, from a driver's aio_* op): the
 * core's checks, then the child's aio op; the same results as the op.
 */
int blk_child_aio_preadv(struct blk_child *c, uint64_t off, uint64_t len,
                         struct iovec *iov, int iovcnt, unsigned flags,
                         struct blk_aio *aio, struct blk_error *err);
int blk_child_aio_pwritev(struct blk_child *c, uint64_t off, uint64_t len,
                          struct iovec *iov, int iovcnt, unsigned flags,
                          struct blk_aio *aio, struct blk_error *err);
/*
 * The leaf of the ring path, for a protocol driver's aio op: queue a read
 * (or write) of len bytes of iov at off on fd, with RWF_* rw_flags.
 * Short transfers are continued; a read that reaches end of file fills
 * the rest with zeroes; a failure is reported as "reading/writing
 * '<filename>' failed".  direct says fd is O_DIRECT (the transfer waits
 * for the device): the loop then polls for the completion for a while
 * rather than sleeping.  Returns -EINPROGRESS, or -EAGAIN if the ring
 * cannot take it now.  Loop thread.
 */
int blk_aio_fd_rw(struct blk_aio *aio, struct blk_node *bs, int fd,
                  bool write, bool direct, uint64_t off, uint64_t len,
                  struct iovec *iov, int iovcnt, int rw_flags);
int blk_child_pwrite(struct blk_child *c, uint64_t off, const void *buf,
                     size_t len, unsigned flags, struct blk_error *err);
int blk_child_zero(struct blk_child *c, uint64_t off, uint64_t len,
                   unsigned flags, struct blk_error *err);
int blk_child_discard(struct blk_child *c, uint64_t off, uint64_t len,
                      struct blk_error *err);
int blk_child_flush(struct blk_child *c, struct blk_error *err);
int blk_child_block_status(struct blk_child *c, uint64_t off, uint64_t len,
                           struct blk_status *st, struct blk_error *err);
int64_t blk_child_get_length(struct blk_child *c);
int blk_child_truncate(struct blk_child *c, uint64_t len, bool exact,
                       enum blk_prealloc prealloc, struct blk_error *err);

/*
 * VM state I/O (block/vmstate.c): on bs, or on the first node down its
 * filtered/primary children whose driver has the op (QEMU's rule);
 * -ENOTSUP where none has it.  Blocking; a worker or an offline tool.
 */
int blk_node_load_vmstate(struct blk_node *bs, uint64_t pos, void *buf,
                          size_t len, struct blk_error *err);
int blk_node_save_vmstate(struct blk_node *bs, uint64_t pos, const void *buf,
                          size_t len, struct blk_error *err);

/* The registry: a plain array of drivers (block/drivers.c). */
const struct blk_driver *blk_driver_find(const char *name);
extern const struct blk_driver *const blk_drivers[];

#endif
