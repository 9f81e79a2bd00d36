/*
 * block.h - the block layer as tools, shells and jobs see it: a graph of
 * nodes (driver instances) joined by edges, named backends at the roots,
 * and requests admitted on the libuv loop and run on its thread pool.
 * Functions here are for the loop thread unless their comment says
 * otherwise.  Drivers include block/driver.h instead.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "block/driver.h"
#include "keyval/kv.h"
#include "util/error.h"

struct blk_graph;
struct blk_backend;
struct blk_req;

/* ---- the loop ----------------------------------------------------------- */

/*
 * Size the libuv pool (UV_THREADPOOL_SIZE) for `threads` workers; call in
 * main() before any request.  Returns the loop (libuv's default loop).
 */
uv_loop_t *blk_loop_init(unsigned threads);
uv_loop_t *blk_loop(void);
/* Run the loop until *done becomes true or nothing is left to run. */
void blk_loop_run_until(const bool *done);

/*
 * Let small buffered writes (64 KiB or less, not O_DIRECT, not FUA) that
 * would go to the io_uring run as one pwritev on the loop thread instead:
 * ext4 cannot take them without blocking (no RWF_NOWAIT), so the ring
 * hands each to a kernel worker, which costs more than the write itself.
 * Only the first such write of a loop turn runs inline; the others go to
 * the ring, which merges contiguous ones.  Such a write blocks only when the kernel throttles dirty pages; one that
 * takes over 1 ms sends the next 1024 writes to the ring.  For processes
 * whose loop serves one command at a time (blk-img); off by default, and
 * a loop that must stay responsive (blk-io's shell, QMP) leaves it off.
 */
void blk_loop_set_inline_writes(bool on);
/* Writes done inline so far (tests). */
unsigned long blk_loop_inline_writes(void);
/*
 * Whether the loop may make short blocking system calls of its own (the
 * same setting: a loop that serves one command); drivers' ring paths
 * use it, e.g. the file driver's fallocate before a big write.
 */
bool blk_loop_may_block(void);

/* ---- the graph ---------------------------------------------------------- */

struct blk_graph *blk_graph_new(void);
/* Closes every backend and node; the graph must have no request in flight. */
void blk_graph_free(struct blk_graph *g);

/* Open flags for blk_open_image and friends. */
enum {
    BLK_OPEN_RDWR = 1 << 0,
    BLK_OPEN_NO_BACKING = 1 << 1,   /* don't open backing files (-u, info of a broken chain) */
    BLK_OPEN_FORCE_SHARE = 1 << 2,  /* -U */
    BLK_OPEN_NOCACHE = 1 << 3,      /* cache.direct=on */
    BLK_OPEN_NO_FLUSH = 1 << 4,     /* cache.no-flush=on */
    BLK_OPEN_CHECK = 1 << 5,        /* open for check: tolerate some corruption */
    BLK_OPEN_UNMAP = 1 << 6,        /* discard=unmap (qemu-io's default) */
};

/*
 * Open a node from a typed BlockdevOptions tree (see kv_parse_typed).
 * Children given inline are opened too; string children name existing
 * nodes.  The new node's reference belongs to the caller (blk_node_unref).
 */
struct blk_node *blk_node_open(struct blk_graph *g, const struct kv *opts,
                               unsigned flags, struct blk_error *err);

/*
 * Open a node with a driver that need not be in the registry (tests,
 * internal filters).  opts as for blk_node_open.
 */
struct blk_node *blk_node_open_driver(struct blk_graph *g,
                                      const struct blk_driver *drv,
                                      const struct kv *opts, unsigned flags,
                                      struct blk_error *err);

/*
 * Open an image the way qemu-img does: `name` is a filename (format fmt, or
 * probed when fmt is NULL), a `json:{...}` pseudo-filename, or — when
 * image_opts — a keyval/JSON option string (--image-opts).  Caller owns
 * the reference.
 */
struct blk_node *blk_open_image(struct blk_graph *g, const char *name,
                                const char *fmt, bool image_opts,
                                unsigned flags, struct blk_error *err);

/*
 * Before validating an --image-opts or json: option tree (not -blockdev):
 * convert, in opts and every object below it, the string values of the
 * options QEMU 7.2's drivers read as QemuOpts sizes (raw offset/size,
 * qcow2 cache sizes, null size) to integers, suffixes allowed ("4M",
 * "1.5k", util/size.h).  Non-string values are left to the validator.
 * Fails with QEMU's message for a malformed or out-of-range value, opts
 * then partly converted.  Any thread.
 */
int blk_image_opts_sizes(struct kv *opts, struct blk_error *err);

void blk_node_ref(struct blk_node *bs);
/* Drops a reference; the last one closes the node and its children. */
void blk_node_unref(struct blk_node *bs);

struct blk_node *blk_graph_find_node(struct blk_graph *g, const char *node_name);
/* Iterate over all named nodes; returns NULL after the last. */
struct blk_node *blk_graph_next_node(struct blk_graph *g, struct blk_node *prev);

int64_t blk_node_get_length(struct blk_node *bs);
int64_t blk_node_get_allocated_size(struct blk_node *bs);
/* The backing node, or NULL (through the "backing" child). */
struct blk_node *blk_node_backing(const struct blk_node *bs);
/* The node holding the data: the "file" child, or the filtered child. */
struct blk_node *blk_node_file(const struct blk_node *bs);
/* Iterate a node's children; NULL after the last. */
struct blk_child *blk_node_next_child(const struct blk_node *bs, struct blk_child *prev);
/* The options the node was opened with (typed BlockdevOptions tree, borrowed). */
const struct kv *blk_node_options(const struct blk_node *bs);
/* The cumulative permissions its parents take and share. */
void blk_node_get_perm(const struct blk_node *bs, unsigned *perm, unsigned *shared);

/*
 * Reopen bs with changed options (a typed object whose members replace the
 * node's; NULL for none) and a new read-only state, as one transaction
 * with the children that hold its data (not backing files): all drivers
 * prepare, the new permissions and image locks are taken, then all
 * commit; on any failure nothing changed.  The nodes must be drained.
 */
int blk_node_reopen(struct blk_node *bs, const struct kv *changes,
                    bool read_only, struct blk_error *err);

/*
 * Zero-copy reads, on a worker thread (it may wait for drivers' locks and
 * read their metadata): the data of bs at [off, off + len) as one span of
 * read-only memory, a shared mapping of the page cache of the file
 * underneath (or of zeroes), valid until bs closes; 0 and *ptr, or
 * -EAGAIN when it cannot be had so (then read it).  Reading the span may
 * fault pages in from the disk.  The caller keeps writes to the range out
 * while it reads.  If the file shrinks under the mapping
 * (another process truncating it), the pages past its end read as zeroes
 * instead of raising SIGBUS, and blk_map_faults() grows: a caller that
 * used a span compares it before and after and fails the job.
 */
int blk_node_map_data(struct blk_node *bs, uint64_t off, uint64_t len,
                      const uint8_t **ptr);
uint64_t blk_map_faults(void);
/*
 * len bytes of zeroes that stay valid for the life of the process (one
 * anonymous read-only mapping: every page is the kernel's zero page), for
 * spans of ranges that read as zeroes; NULL when len is over 16 MiB.
 */
const uint8_t *blk_map_zeroes(size_t len);

/* ---- backends: named root attachments ------------------------------------ */

struct blk_backend *blk_backend_new(struct blk_graph *g, const char *name,
                                    struct blk_node *root, unsigned perm,
                                    unsigned shared, struct blk_error *err);
void blk_backend_free(struct blk_backend *be);
struct blk_node *blk_backend_root(const struct blk_backend *be);
struct blk_backend *blk_graph_find_backend(struct blk_graph *g, const char *name);

/* ---- requests -------------------------------------------------------------- */

enum blk_op {
    BLK_OP_READ,
    BLK_OP_WRITE,
    BLK_OP_ZERO,
    BLK_OP_DISCARD,
    BLK_OP_FLUSH,
    BLK_OP_BLOCK_STATUS,
};

typedef void blk_req_cb(struct blk_req *req);

/*
 * One request.  The submitter allocates and owns it; the block layer never
 * frees it.  cb runs exactly once, on the loop thread, after the request
 * completed, failed or was cancelled; the memory may be reused once cb has
 * started.
 */
/*
 * An ordering gate.  Requests submitted with BLK_REQ_ORDERED and the same
 * gate run their driver chains one after another, in submission order:
 * each starts on its worker as soon as the one before it has returned
 * from its driver, with no round trip through the loop.  For writes whose
 * order decides where a format allocates (convert, commit and rebase into
 * qcow2 keep clusters in guest order this way while several chunks are in
 * flight).  Ordered requests always run on the pool.  A request that
 * fails admission passes the gate at once.
 */
#define BLK_ORDER_GATE_CONDS 16
struct blk_order_gate {
    pthread_mutex_t lock;
    /* a waiter with sequence s sleeps on cond[s % BLK_ORDER_GATE_CONDS],
     * so passing the gate wakes the next request, not every waiter */
    pthread_cond_t cond[BLK_ORDER_GATE_CONDS];
    uint64_t issued;            /* loop: sequence numbers handed out */
    uint64_t passed;            /* highest sequence done with its drivers */
};

/* Initialise / release a gate (no ordered request may be in flight). */
void blk_order_gate_init(struct blk_order_gate *g);
void blk_order_gate_destroy(struct blk_order_gate *g);

struct blk_req {
    /* in: set by the submitter */
    enum blk_op op;
    uint64_t offset, length;    /* bytes */
    struct iovec *iov;          /* READ/WRITE: borrowed until cb */
    int iovcnt;
    unsigned flags;             /* BLK_REQ_* */
    blk_req_cb *cb;
    void *opaque;
    struct blk_order_gate *gate;    /* with BLK_REQ_ORDERED only */

    /* out: valid in cb */
    int ret;                    /* 0 or -errno */
    struct blk_error err;
    struct blk_status status;   /* BLOCK_STATUS */

    /* private to block/req.c */
    struct blk_node *node;
    uv_work_t work;
    struct blk_track *track;    /* overlap tracking, registered at dispatch */
    struct blk_req *next_held;  /* drain-gate or throttle queue */
    uint64_t gate_seq;          /* BLK_REQ_ORDERED: place in gate's order */
};

/*
 * Admit req on bs: checks (bounds, read-only, permissions), then the hold
 * gate (drained nodes queue it), throttle admission, and finally queues the
 * driver chain on the thread pool.  Never blocks; a request that fails its
 * checks still gets its callback (on the loop, later, not re-entrantly).
 */
void blk_req_submit(struct blk_node *bs, struct blk_req *req);
/* Same, on a backend's root node. */
void blk_backend_submit(struct blk_backend *be, struct blk_req *req);

/* Requests in flight on bs (admitted, not yet called back), held included. */
unsigned blk_node_in_flight(const struct blk_node *bs);

/*
 * Drain: new requests on bs are held at admission; cb(opaque) runs on the
 * loop once no request is in flight on bs.  blk_node_drain_end releases
 * the held requests.  Drains nest.
 */
void blk_node_drain_begin(struct blk_node *bs, void (*cb)(void *), void *opaque);
void blk_node_drain_end(struct blk_node *bs);

/*
 * Synchronous I/O through the same checks and drivers, in the calling
 * thread.  For offline tools outside the loop and for worker code.
 */
int blk_node_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                    struct iovec *iov, int iovcnt, unsigned flags,
                    struct blk_error *err);
int blk_node_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                     struct iovec *iov, int iovcnt, unsigned flags,
                     struct blk_error *err);
int blk_node_pread(struct blk_node *bs, uint64_t off, void *buf, size_t len,
                   struct blk_error *err);
int blk_node_pwrite(struct blk_node *bs, uint64_t off, const void *buf,
                    size_t len, unsigned flags, struct blk_error *err);
int blk_node_zero(struct blk_node *bs, uint64_t off, uint64_t len,
                  unsigned flags, struct blk_error *err);
int blk_node_discard(struct blk_node *bs, uint64_t off, uint64_t len,
                     struct blk_error *err);
int blk_node_flush(struct blk_node *bs, struct blk_error *err);
int blk_node_block_status(struct blk_node *bs, uint64_t off, uint64_t len,
                          struct blk_status *st, struct blk_error *err);
int blk_node_truncate(struct blk_node *bs, uint64_t len, bool exact,
                      enum blk_prealloc prealloc, struct blk_error *err);

/* ---- images --------------------------------------------------------------- */

/* Create an image from a typed BlockdevCreateOptions tree. */
int blk_create(const struct kv *opts, struct blk_error *err);

#endif
