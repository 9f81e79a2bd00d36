/*
 * node-int.h - the graph's private structures, shared by node.c (graph,
 * edges, permissions), io.c (the blocking request path), req.c (the
 * asynchronous engine on the loop) and image.c (opening images).
 */
#ifndef BLOCK_NODE_INT_H
#define BLOCK_NODE_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "block/block.h"

/* One in-flight byte range on a node, for overlap serialisation. */
struct blk_track {
    uint64_t start, end;        /* bytes, [start, end) */
    bool writes;                /* changes data: write, zero, discard */
    bool serialising;           /* read-modify-write: excludes all overlaps */
    uint64_t seq;               /* admission order on this node */
    struct blk_track *prev, *next;
};

enum blk_detect_zeroes {
    BLK_DZ_OFF,
    BLK_DZ_ON,
    BLK_DZ_UNMAP,
};

/*
 * A node.  Invariants: refcnt > 0 while reachable; children and parents
 * lists agree (every edge is on its parent's children list and its child's
 * parents list); node_name is unique in its graph.  Fields marked "loop"
 * change only on the loop thread; "track_lock" fields under that mutex.
 */
struct blk_node {
    struct blk_graph *g;
    const struct blk_driver *drv;
    void *state;                /* drv->state_size bytes, owned */
    char *node_name;            /* owned; generated "#blockNNN" when not given */
    char *filename;             /* owned; may be NULL */
    struct kv *opts;            /* owned copy of the typed options */
    unsigned open_flags;        /* BLK_OPEN_* */
    unsigned refcnt;            /* loop */
    bool read_only;
    bool cache_direct, no_flush, force_share, discard_unmap;
    bool probed_raw;            /* opened as raw by probing: never writable */
    enum blk_detect_zeroes detect_zeroes;
    struct blk_limits limits;

    struct blk_child *children; /* edges to children, in attach order */
    struct blk_child *parents;  /* edges from parents (and backends) */
    unsigned perm, shared;      /* cumulative over parents (loop) */

    pthread_mutex_t serial_lock;        /* held around calls of SERIAL drivers */
    pthread_mutex_t track_lock;
    pthread_cond_t track_cond;
    struct blk_track *tracks;           /* track_lock: in flight, in seq order */
    struct blk_track *tracks_tail;
    uint64_t track_seq;                 /* track_lock */

    /*
     * Protocol nodes cache their length (QEMU keeps total_sectors): set on
     * first use, raised by writes past it (any thread, atomically),
     * forgotten on truncate.  0 in length_valid means "ask the driver".
     */
    int length_valid;           /* atomic */
    uint64_t length;            /* atomic; bytes */

    /* the asynchronous engine (loop) */
    unsigned try_misses[2];     /* consecutive fast-path misses: read, write */
    unsigned try_skip[2];       /* requests left to send straight to the pool */
    uint64_t fast_read_turn;    /* loop turn of the last fast-path read */
    unsigned running;           /* admitted requests not yet called back */
    unsigned held;              /* requests held by the drain gate */
    unsigned quiesce;           /* drain_begin nesting */
    struct blk_req *held_head, *held_tail;
    struct blk_req *throttled_head, *throttled_tail;
    uv_timer_t *throttle_timer; /* allocated on first use */
    struct blk_drain_wait *drain_waits;

    pthread_mutex_t bitmap_lock;        /* guards bitmaps (bitmap.c) */
    struct blk_bitmap *bitmaps;         /* dirty bitmaps, creation order */

    struct blk_node *next_in_graph;
};

/* An edge, or a backend's root attachment (parent == NULL, be != NULL). */
struct blk_child {
    struct blk_node *parent;
    struct blk_backend *be;
    struct blk_node *child;     /* holds one reference */
    char *name;                 /* "file", "backing", "children.0" */
    unsigned role;              /* BLK_ROLE_* */
    unsigned perm, shared;      /* BLK_PERM_* taken and shared */
    struct blk_child *next;         /* on parent's children list */
    struct blk_child *next_parent;  /* on child's parents list */
};

struct blk_backend {
    struct blk_graph *g;
    char *name;
    struct blk_child root;      /* root.child is the root node */
    struct blk_backend *next;
};

/* A backing file being opened (image.c): the chain so far, for loops. */
struct blk_backing_frame {
    dev_t dev;
    ino_t ino;
    struct blk_backing_frame *up;
};

struct blk_graph {
    struct blk_node *nodes;
    struct blk_backend *backends;
    unsigned next_auto_name;
    struct blk_backing_frame *opening;  /* innermost backing open, or NULL */
};

struct blk_drain_wait {
    void (*cb)(void *);
    void *opaque;
    struct blk_node *node;      /* the node drain_begin was called on */
    struct blk_drain_wait *next;
};

/* node.c */
int blk_node_update_perm(struct blk_node *bs, struct blk_error *err);
void blk_child_default_perm(struct blk_node *parent, unsigned role,
                            unsigned *perm, unsigned *shared);
const char *blk_perm_name(unsigned bit);

/* io.c: the blocking path; top = true applies the bounds checks of a root. */
int blk_io_run(struct blk_node *bs, enum blk_op op, uint64_t off,
               uint64_t len, struct iovec *iov, int iovcnt, unsigned flags,
               struct blk_status *st, bool top, bool tracked,
               struct blk_error *err);
/* blk_io_run on one flat buffer (the p{read,write} helpers). */
int blk_io_buf(struct blk_node *bs, enum blk_op op, uint64_t off,
               const void *buf, size_t len, unsigned flags, bool top,
               struct blk_error *err);
/* The fast path: -EAGAIN when the request must go to the pool. */
int blk_io_try(struct blk_node *bs, enum blk_op op, uint64_t off,
               uint64_t len, struct iovec *iov, int iovcnt, unsigned flags,
               bool top, struct blk_error *err);
struct blk_track *blk_track_begin(struct blk_node *bs, enum blk_op op,
                                  uint64_t off, uint64_t len, bool serialising);
void blk_track_wait(struct blk_node *bs, struct blk_track *t);
void blk_track_end(struct blk_node *bs, struct blk_track *t);

/* image.c */
struct blk_node *blk_probe_open(struct blk_graph *g, struct kv *opts,
                                unsigned flags, struct blk_error *err);

#endif
