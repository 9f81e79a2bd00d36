/*
 * uring.h - the loop's io_uring: one ring (the engine has one loop),
 * created on first use with raw syscalls, that runs file reads and writes
 * without handing them to a pool thread.  Submissions collect
 * during a loop turn and go to the kernel in one io_uring_enter before the
 * loop polls; completions come back through a uv_poll on the ring's fd.
 * Loop thread only.  BLK_URING=0 in the environment turns it off.
 */
#ifndef BLOCK_URING_H
#define BLOCK_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"

struct blk_uring_op;

/* Called once, on the loop, with the completion's result (bytes or -errno). */
typedef void blk_uring_cb(struct blk_uring_op *op, int res);

/* One operation in the ring; the caller embeds and owns it until cb. */
struct blk_uring_op {
    blk_uring_cb *cb;
    /* private to uring.c: the operation until it is in an SQE */
    uint8_t opcode;             /* IORING_OP_READV or _WRITEV */
    bool solo;                  /* never merged with its neighbours */
    int fd;
    int rw_flags;               /* RWF_* */
    const struct iovec *iov;
    int iovcnt;
    uint64_t off, len;          /* bytes */
    struct blk_uring_op *next;  /* queued, or the next member of a group */
};

/*
 * True if the ring exists or could be created now.  Creation is tried
 * once: a kernel without io_uring (ENOSYS), one that refuses it
 * (EPERM, io_uring_disabled) or BLK_URING=0 leaves it off, and callers
 * keep using the thread pool.
 */
bool blk_uring_ready(void);

/*
 * Queue a readv (write false) or writev of iov at off on fd, with
 * RWF_* rw_flags.  op, iov and the buffers stay borrowed until op->cb
 * runs.  Contiguous transfers queued in one loop turn may reach the
 * kernel as one; each op still gets its own result.  Returns 0, or
 * -EAGAIN when the ring is full or off (nothing was queued; op->cb will
 * not run).
 */
int blk_uring_rw(struct blk_uring_op *op, int fd, bool write,
                 const struct iovec *iov, int iovcnt, uint64_t off,
                 int rw_flags);

/* Operations queued or in the kernel whose callback has not run. */
unsigned blk_uring_in_flight(void);

/* Operations that reached the kernel merged with a neighbour (tests). */
unsigned long blk_uring_merged(void);

/*
 * Close the ring (tests switch paths with it): the next blk_uring_ready
 * reads BLK_URING again and creates a new one.  Nothing may be in flight.
 */
void blk_uring_shutdown(void);

/* ---- asynchronous requests through the ring (the core: req.c, io.c) ---- */

struct blk_node;
struct blk_req;
struct blk_track;

#define BLK_AIO_LEVELS 8        /* nodes a request may pass on this path */

/*
 * One request on the ring path.  Each node it passes (format, raw,
 * file) leaves a level: its track stays registered, and its bitmaps and
 * length are updated, until the leaf's I/O completes.  The leaf is one
 * read or write of a protocol node's fd, continued after short
 * transfers.  Allocated by req.c per request, loop thread only.
 */
struct blk_aio {
    struct blk_uring_op op;     /* the leaf's ring operation */
    struct blk_req *req;        /* the request this serves */
    struct {
        struct blk_node *bs;
        struct blk_track *t;
        int op;                 /* enum blk_op */
        uint64_t off, len;
    } lv[BLK_AIO_LEVELS];
    int nlv;
    /* the leaf */
    struct blk_node *leaf;
    int fd;
    bool write;
    bool direct;                /* O_DIRECT: the loop polls for it a while */
    uint64_t off, len, done;    /* bytes; done so far */
    struct iovec *iov;          /* borrowed from the request */
    int iovcnt;
    struct iovec *rest;         /* owned: the remainder after a short transfer */
    struct blk_aio *next_free;
};

/* req.c: the node bs registered track t for [off, off+len); false if full. */
bool blk_aio_push(struct blk_aio *aio, struct blk_node *bs,
                  struct blk_track *t, int op, uint64_t off, uint64_t len);

/*
 * io.c: the request through bs on the ring path, as blk_io_try (the same
 * checks, a track held until completion): -EINPROGRESS once the leaf is
 * queued, -EAGAIN (err clear) if some node on the way cannot, or the
 * request's result when it finished at once (0 or -errno with err set).
 */
int blk_io_aio(struct blk_node *bs, int op, uint64_t off, uint64_t len,
               struct iovec *iov, int iovcnt, unsigned flags, bool top,
               struct blk_aio *aio, struct blk_error *err);
/* io.c: level done with result r: bitmaps and length on success, track end. */
void blk_io_aio_finish(struct blk_node *bs, struct blk_track *t, int op,
                       uint64_t off, uint64_t len, int r);

#endif
