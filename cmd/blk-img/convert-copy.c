/*
 * convert-copy.c - the copy engine of convert, commit and rebase
 * (convert-int.h).  A planner walks the source in status runs, as
 * qemu-img does; each of up to 16 slots takes the next chunk, gets it
 * as a span of the source file's page cache (map_work, on a worker) or
 * else reads it with requests on the libuv loop, finds zeroes in it, and
 * writes data and zero ranges to the target.  Without -W a chunk issues
 * its writes only after the chunk before it in offset order has issued
 * its own, while reads and zero detection of the following chunks go on;
 * the pool (FIFO) and the ring start them in that order, and writes into
 * a qcow2 target also pass an ordering gate, so clusters are allocated
 * in guest order as by qemu-img (issue_writes says more).  Compressed
 * writes skip the gate, so their compression runs on every core at once.
 * Loop thread, except map_work and copy_work, which run on the pool and
 * touch only their slot.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/convert-int.h"
#include "util/iov.h"
#include "util/xalloc.h"

#define SECTOR 512u
#define MAX_STATUS_LEN (1ull << 30)     /* ask block status 1 GiB at a time */

enum slot_state { S_IDLE, S_READ, S_WAIT, S_WRITE };

enum piece_kind { P_DATA, P_ZERO };

struct piece {
    uint64_t off, len;          /* bytes, image offsets */
    enum piece_kind kind;
};

struct slot {
    struct engine *e;
    enum slot_state state;
    uint8_t *buf, *cmp;         /* buf_size bytes each (cmp: rebase only) */
    /*
     * The chunk's data and (rebase) the new backing's: buf and cmp when
     * read, or spans of the source files' page cache (blk_node_map_data)
     * when mapped; then faults0 is blk_map_faults() before they were read.
     */
    const uint8_t *data, *cdata;
    bool mapped;
    uint64_t faults0;
    uint64_t off, len;          /* the chunk */
    enum cv_status st;
    uint64_t pos;               /* bytes of the chunk read so far */
    uint64_t salvage_until;     /* read sector by sector below this offset */
    uint64_t cur_len;           /* length of the read in flight */
    struct blk_req req;         /* the read in flight */
    struct iovec iov;
    struct blk_req creq;        /* rebase: the read of the new backing */
    struct iovec ciov;
    int reads_out;              /* main read chain + compare read not done */
    struct piece *pieces;
    struct blk_req *wreq;
    struct iovec *wiov;
    int npieces, cap, pending;
    bool copy;                  /* -C: this chunk goes by copy_file_range */
    /*
     * -C could not copy the chunk: it is read and written instead, and
     * its turn to write (in_order) was taken when the copy was issued
     */
    bool copy_failed;
    int copy_part, copy_ret;
    /*
     * The copy's descriptors and source offset, taken on the loop when
     * the chunk starts: the worker reads only these, never the job.
     */
    int copy_src_fd, copy_dst_fd;
    uint64_t copy_in;
    uv_work_t work;
};

struct engine {
    struct cv_job *j;
    struct slot slots[CV_MAX_IN_FLIGHT];
    unsigned nslots;
    /* planner */
    uint64_t next_off;
    enum cv_status cur_status;
    uint64_t status_end;
    /* in-order writes: offset of the next chunk allowed to write */
    uint64_t wr_offs;
    /* in-order writes to a format that allocates: run in issue order */
    struct blk_order_gate gate;
    bool use_gate;
    /* writeback started during the copy (j->flush_every) */
    uint64_t since_flush;
    struct blk_req flush_req;
    bool flush_busy;
    /* progress */
    uint64_t alloc_total, alloc_done;
    /* -C: a copy was found impossible here; read and write from now on */
    bool copy_off;
    /* rate limit */
    double start;
    uint64_t issued;
    uv_timer_t timer;
    bool timer_armed, timer_init;
    int ret;
    bool done;
    bool in_kick, kick_again;
    /*
     * The one error line, printed when the copy ends: chunks in flight
     * fail in any order, and the message of the lowest offset is the one
     * qemu-img (which reports the first chunk to fail in offset order)
     * prints.  err_key is that offset (UINT64_MAX: no offset).
     */
    bool err_set;
    uint64_t err_key;
    char err_msg[512];
};

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Keep pre + the formatted message as the error line if key is the
 * lowest yet.
 */
static void
keep_error(struct engine *e, uint64_t key, const char *pre, const char *fmt,
           va_list ap)
{
    size_t n;

    if (e->err_set && key >= e->err_key) {
        return;
    }
    e->err_set = true;
    e->err_key = key;
    n = (size_t)snprintf(e->err_msg, sizeof(e->err_msg), "%s", pre);
    if (n < sizeof(e->err_msg)) {
        vsnprintf(e->err_msg + n, sizeof(e->err_msg) - n, fmt, ap);
    }
}

/* keep_error with the job's prefix (err_prefix). */
static void __attribute__((format(printf, 3, 4)))
defer_error(struct engine *e, uint64_t key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    keep_error(e, key, e->j->err_prefix ? e->j->err_prefix : "", fmt, ap);
    va_end(ap);
}

/* keep_error without a prefix (qemu-img's rebase line has none). */
static void __attribute__((format(printf, 3, 4)))
defer_bare_error(struct engine *e, uint64_t key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    keep_error(e, key, "", fmt, ap);
    va_end(ap);
}

static void
report(struct engine *e, const char *fmt, uint64_t off, int r)
{
    defer_error(e, off, "%s%llu: %s", fmt, (unsigned long long)off,
                strerror(-r));
}

static void
fail(struct engine *e, int r)
{
    if (e->ret == 0) {
        e->ret = r;
    }
}

/* ---- block status ---------------------------------------------------------- */

int
cv_layer_status(struct blk_node *bs, uint64_t off, uint64_t len,
                unsigned *flags, uint64_t *pnum, struct blk_error *err)
{
    struct blk_status st;
    int r = blk_node_block_status(bs, off, len, &st, err);

    if (r < 0) {
        return r;
    }
    *pnum = st.pnum;
    *flags = st.flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO |
                         BLK_STATUS_ALLOCATED);
    if ((st.flags & BLK_STATUS_RECURSE) && st.file != NULL) {
        struct blk_status fst;

        r = blk_node_block_status(st.file, st.map, st.pnum, &fst, err);
        if (r < 0) {
            return r;
        }
        if (fst.pnum < *pnum) {
            *pnum = fst.pnum;
        }
        if (fst.flags & BLK_STATUS_ZERO) {
            *flags |= BLK_STATUS_ZERO;
        } else if (fst.flags & BLK_STATUS_DATA) {
            *flags |= BLK_STATUS_DATA;
        }
        /* A node that maps everything to its file (raw) has it all. */
        if (!(st.flags & BLK_STATUS_ALLOCATED) && blk_node_backing(bs) == NULL) {
            *flags |= BLK_STATUS_ALLOCATED;
        }
    }
    if (*flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO)) {
        *flags |= BLK_STATUS_ALLOCATED;
    }
    return 0;
}

int
cv_chain_status(struct blk_node *top, struct blk_node *base, uint64_t off,
                uint64_t len, unsigned *flags, bool *allocated, uint64_t *pnum,
                struct blk_error *err)
{
    struct blk_node *bs;
    uint64_t n = len;

    for (bs = top; bs != NULL && bs != base; bs = blk_node_backing(bs)) {
        int64_t blen = blk_node_get_length(bs);
        unsigned f;
        uint64_t p;
        int r;

        if (blen >= 0 && off >= (uint64_t)blen) {
            /* Past the end of a shorter backing file: zeroes. */
            *flags = BLK_STATUS_ZERO;
            *allocated = bs != top;
            *pnum = n;
            return 0;
        }
        if (blen >= 0 && off + n > (uint64_t)blen) {
            n = (uint64_t)blen - off;
        }
        r = cv_layer_status(bs, off, n, &f, &p, err);
        if (r < 0) {
            return r;
        }
        if (p < n) {
            n = p;
        }
        if (f & BLK_STATUS_ALLOCATED) {
            *flags = f & (BLK_STATUS_DATA | BLK_STATUS_ZERO);
            *allocated = true;
            *pnum = n;
            return 0;
        }
    }
    *flags = BLK_STATUS_ZERO;
    *allocated = false;
    *pnum = n;
    /* Below base the data may be anything: the caller decides. */
    if (bs != NULL && bs == base) {
        *flags = 0;
    }
    return 0;
}

int
cv_status_chain(struct cv_job *j, int part, uint64_t off, uint64_t len,
                enum cv_status *st, uint64_t *pnum, struct blk_error *err)
{
    struct blk_node *bs = j->parts[part].bs;
    unsigned f;
    bool alloc;
    int r;

    if (j->target_has_backing) {
        r = cv_layer_status(bs, off, len, &f, pnum, err);
        alloc = (f & BLK_STATUS_ALLOCATED) != 0;
    } else {
        r = cv_chain_status(bs, NULL, off, len, &f, &alloc, pnum, err);
    }
    if (r < 0) {
        return r;
    }
    if (f & BLK_STATUS_ZERO) {
        *st = CV_ZERO;
    } else if (f & BLK_STATUS_DATA) {
        *st = CV_DATA;
    } else {
        *st = j->target_has_backing ? CV_SKIP : CV_DATA;
    }
    (void)alloc;
    return 0;
}

/* ---- the planner (qemu-img's convert_iteration_sectors) ------------------- */

static void
select_part(struct cv_job *j, uint64_t off, int *part, uint64_t *part_off)
{
    *part = 0;
    *part_off = 0;
    while (*part < j->nparts - 1 && off - *part_off >= j->parts[*part].len) {
        *part_off += j->parts[*part].len;
        (*part)++;
    }
}

/* Length of the next chunk at off (> 0), with its status in e->cur_status. */
static int64_t
plan(struct engine *e, uint64_t off)
{
    struct cv_job *j = e->j;
    uint64_t n = j->total - off;
    bool post_backing_zero = false;
    int part;
    uint64_t part_off;

    if (n > MAX_STATUS_LEN) {
        n = MAX_STATUS_LEN;
    }
    if (j->target_backing_len >= 0) {
        uint64_t bl = (uint64_t)j->target_backing_len;

        if (off >= bl) {
            post_backing_zero = true;
        } else if (off + n > bl) {
            n = bl - off;
        }
    }
    if (e->status_end <= off) {
        struct blk_error err = BLK_ERROR_INIT;
        uint64_t rel, count = 0;
        enum cv_status st = CV_DATA;
        int r;

        select_part(j, off, &part, &part_off);
        rel = off - part_off;
        if (n > j->parts[part].len - rel) {
            n = j->parts[part].len - rel;
        }
        for (;;) {
            r = (j->status ? j->status : cv_status_chain)(j, part,
                                                          rel + j->src_offset,
                                                          n, &st, &count, &err);
            if (r >= 0) {
                break;
            }
            if (!j->salvage) {
                report(e, "error while reading block status at offset ",
                       rel, r);
                return r;
            }
            if (n <= SECTOR) {
                if (!j->quiet) {
                    fprintf(stderr, "blk-img: warning: error while reading "
                            "block status at offset %llu: %s\n",
                            (unsigned long long)rel, strerror(-r));
                }
                st = CV_DATA;
                count = SECTOR;
                break;
            }
            n = (n + 3) / 4;
            n = (n + SECTOR - 1) / SECTOR * SECTOR;
            blk_error_clear(&err);
        }
        if (count == 0) {
            count = n;
        }
        if (st == CV_ZERO && post_backing_zero) {
            st = CV_SKIP;
        }
        e->cur_status = st;
        e->status_end = off + count;
    }
    n = e->status_end - off;
    if (e->cur_status == CV_DATA && n > j->buf_size) {
        n = j->buf_size;
    }
    if (j->compressed) {
        uint64_t cs = j->cluster_size;

        if (n < cs) {
            n = cs < j->total - off ? cs : j->total - off;
            e->cur_status = CV_DATA;
        } else {
            n -= n % cs;
        }
    }
    if (j->min_sparse == 0 && e->cur_status == CV_ZERO && n > j->buf_size) {
        n = j->buf_size;
    }
    return (int64_t)n;
}

static bool
counts_for_progress(const struct engine *e, enum cv_status st)
{
    return st == CV_DATA || (e->j->min_sparse == 0 && st == CV_ZERO);
}

/* ---- the write plan ---------------------------------------------------------- */

static void
add_piece(struct slot *s, uint64_t off, uint64_t len, enum piece_kind kind)
{
    if (len == 0) {
        return;
    }
    if (s->npieces > 0) {
        struct piece *last = &s->pieces[s->npieces - 1];

        if (last->kind == kind && last->off + last->len == off) {
            last->len += len;
            return;
        }
    }
    if (s->npieces == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->pieces = xrealloc(s->pieces, s->cap * sizeof(*s->pieces));
        s->wreq = xrealloc(s->wreq, s->cap * sizeof(*s->wreq));
        s->wiov = xrealloc(s->wiov, s->cap * sizeof(*s->wiov));
    }
    s->pieces[s->npieces].off = off;
    s->pieces[s->npieces].len = len;
    s->pieces[s->npieces].kind = kind;
    s->npieces++;
}

static void
add_zero(struct slot *s, uint64_t off, uint64_t len)
{
    if (!s->e->j->has_zero_init) {
        add_piece(s, off, len, P_ZERO);
    }
}

/*
 * The chunk's data (s->data): split it in alignment-sized grains into data
 * and zero runs; zero runs shorter than -S stay data.
 */
static void
plan_sparse(struct slot *s)
{
    struct cv_job *j = s->e->j;
    uint64_t a = j->alignment, pos = 0, run = 0;
    bool run_zero = false;

    while (pos < s->len) {
        uint64_t g = a - ((s->off + pos) & (a - 1));
        bool z;

        if (g > s->len - pos) {
            g = s->len - pos;
        }
        z = buffer_is_zero(s->data + pos, g);
        if (pos > 0 && z != run_zero) {
            if (run_zero && run < j->min_sparse) {
                add_piece(s, s->off + pos - run, run, P_DATA);
            } else if (run_zero) {
                add_zero(s, s->off + pos - run, run);
            } else {
                add_piece(s, s->off + pos - run, run, P_DATA);
            }
            run = 0;
        }
        run_zero = z;
        run += g;
        pos += g;
    }
    if (run_zero && run < j->min_sparse) {
        add_piece(s, s->off + pos - run, run, P_DATA);
    } else if (run_zero) {
        add_zero(s, s->off + pos - run, run);
    } else {
        add_piece(s, s->off + pos - run, run, P_DATA);
    }
}

/* rebase: write the sectors where the old backing (buf) differs from cmp. */
static void
plan_compare(struct slot *s)
{
    uint64_t pos = 0, block = 64 * 1024;

    while (pos < s->len) {
        uint64_t b = s->len - pos < block ? s->len - pos : block, end;

        /* Most blocks are equal: one call each; sectors only where not. */
        if (memcmp(s->data + pos, s->cdata + pos, b) == 0) {
            pos += b;
            continue;
        }
        for (end = pos + b; pos < end;) {
            uint64_t g = end - pos < SECTOR ? end - pos : SECTOR;

            if (memcmp(s->data + pos, s->cdata + pos, g) != 0) {
                add_piece(s, s->off + pos, g, P_DATA);
            }
            pos += g;
        }
    }
}

static void
plan_writes(struct slot *s)
{
    struct cv_job *j = s->e->j;

    s->npieces = 0;
    switch (s->st) {
    case CV_SKIP:
        break;
    case CV_ZERO:
        if (j->min_sparse == 0) {
            memset(s->buf, 0, s->len);
            add_piece(s, s->off, s->len, P_DATA);
        } else {
            add_zero(s, s->off, s->len);
        }
        break;
    case CV_DATA:
        if (j->compare) {
            plan_compare(s);
        } else if (j->min_sparse == 0 || j->keep_data) {
            add_piece(s, s->off, s->len, P_DATA);
        } else if (j->compressed) {
            if (buffer_is_zero(s->data, s->len)) {
                add_zero(s, s->off, s->len);
            } else {
                add_piece(s, s->off, s->len, P_DATA);
            }
        } else {
            plan_sparse(s);
        }
        break;
    }
}

/* ---- slots -------------------------------------------------------------------- */

static void kick(struct engine *e);
static void start_read(struct slot *s);

static void try_write(struct slot *s);

static void
finish_slot(struct slot *s)
{
    struct engine *e = s->e;

    s->state = S_IDLE;
    kick(e);
}

/* The one error line of a chunk whose span could not be read. */
static void
span_failed(struct slot *s)
{
    struct engine *e = s->e;

    defer_error(e, s->off, "error while reading at byte %llu: the source "
                "file shrank or could not be read",
                (unsigned long long)s->off);
    fail(e, -EIO);
}

/*
 * A chunk that used spans of the source's page cache: if any mapped page
 * faulted since it started (a source file shrank under us, or its page
 * could not be read), its data may have been zeroes instead: fail the job.
 */
static void
check_mapped(struct slot *s)
{
    if (s->mapped && blk_map_faults() != s->faults0) {
        span_failed(s);
    }
}

static void
flush_cb(struct blk_req *req)
{
    struct engine *e = req->opaque;

    e->flush_busy = false;
    if (req->ret < 0) {
        defer_error(e, UINT64_MAX, "error while writing back the target: %s",
                    strerror(-req->ret));
        fail(e, req->ret);
    }
    kick(e);
}

/*
 * j->flush_every: once enough was written since the last time, ask the
 * target to start writing its cached data back (a flush with
 * BLK_REQ_WRITEBACK, which waits for nothing and takes no lock writes
 * need), so the disk works during the copy and the caller's final flush
 * finds less to write.
 */
static void
maybe_flush(struct engine *e, uint64_t written)
{
    struct cv_job *j = e->j;

    e->since_flush += written;
    if (j->flush_every == 0 || e->flush_busy ||
        e->since_flush < j->flush_every || e->ret < 0) {
        return;
    }
    e->since_flush = 0;
    e->flush_busy = true;
    memset(&e->flush_req, 0, sizeof(e->flush_req));
    e->flush_req.op = BLK_OP_FLUSH;
    e->flush_req.flags = BLK_REQ_WRITEBACK;
    e->flush_req.cb = flush_cb;
    e->flush_req.opaque = e;
    blk_req_submit(j->target, &e->flush_req);
}

static void
write_cb(struct blk_req *req)
{
    struct slot *s = req->opaque;
    struct engine *e = s->e;

    if (req->ret == -EFAULT && s->mapped) {
        /* the kernel could not read the span: its file shrank (no SIGBUS
         * inside a system call, so no fault was counted) */
        span_failed(s);
    } else if (req->ret < 0) {
        report(e, "error while writing at byte ", req->offset, req->ret);
        fail(e, req->ret);
    }
    if (req->ret == 0 && req->op == BLK_OP_WRITE) {
        e->j->bytes_written += req->length;
        maybe_flush(e, req->length);
    }
    if (--s->pending == 0) {
        check_mapped(s);
        finish_slot(s);
    }
}

/* Worker: copy the chunk file to file in the kernel. */
static void
copy_work(uv_work_t *w)
{
    struct slot *s = container_of(w, struct slot, work);
    loff_t in = (loff_t)s->copy_in, out = (loff_t)s->off;
    size_t left = s->len;

    s->copy_ret = 0;
    while (left > 0) {
        ssize_t n = copy_file_range(s->copy_src_fd, &in, s->copy_dst_fd,
                                    &out, left, 0);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            s->copy_ret = n == 0 ? -EIO : -errno;
            return;
        }
        left -= (size_t)n;
    }
}

static void
copy_done(uv_work_t *w, int status)
{
    struct slot *s = container_of(w, struct slot, work);
    struct engine *e = s->e;
    struct cv_job *j = e->j;
    int r = status < 0 ? status : s->copy_ret;

    s->copy = false;
    if (r == 0) {
        j->bytes_copied += s->len;
        j->bytes_written += s->len;
        s->pending = 1;
        s->state = S_WRITE;
        finish_slot(s);
        return;
    }
    if (r == -EXDEV || r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP ||
        r == -EBADF || r == -ETXTBSY) {
        /*
         * Not possible here: read and write from now on (qemu-img does).
         * Copies already issued keep their own descriptors; the job's
         * stay open for the caller to close.
         */
        e->copy_off = true;
        s->copy_failed = true;
        s->reads_out = 1;
        start_read(s);
        return;
    }
    report(e, "error while writing at byte ", s->off, r);
    fail(e, r);
    finish_slot(s);
}

static void
issue_writes(struct slot *s)
{
    struct engine *e = s->e;
    struct cv_job *j = e->j;
    int i;

    s->state = S_WRITE;
    if (s->copy) {
        if (j->in_order) {
            e->wr_offs = s->off + s->len;
        }
        uv_queue_work(blk_loop(), &s->work, copy_work, copy_done);
        return;
    }
    s->pending = s->npieces + 1;    /* +1: none completes before all are issued */
    for (i = 0; i < s->npieces; i++) {
        struct piece *p = &s->pieces[i];
        struct blk_req *r = &s->wreq[i];

        memset(r, 0, sizeof(*r));
        r->offset = p->off;
        r->length = p->len;
        r->cb = write_cb;
        r->opaque = s;
        if (p->kind == P_DATA) {
            s->wiov[i].iov_base = (uint8_t *)s->data + (p->off - s->off);
            s->wiov[i].iov_len = p->len;
            r->op = BLK_OP_WRITE;
            r->iov = &s->wiov[i];
            r->iovcnt = 1;
            r->flags = j->write_flags |
                       (j->compressed ? BLK_REQ_COMPRESSED : 0);
        } else {
            r->op = BLK_OP_ZERO;
            r->flags = BLK_REQ_MAY_UNMAP;
        }
        if (e->use_gate) {
            r->flags |= BLK_REQ_ORDERED;
            r->gate = &e->gate;
        }
        blk_req_submit(j->target, r);
    }
    /*
     * With in_order, the next chunk may issue its writes as soon as these
     * are issued: compressed clusters, so that the workers compress
     * several at once; a raw target has no allocation order to keep, and
     * its writes (started in order) follow each other without a round
     * trip through the loop; other targets (qcow2) get the engine's
     * ordering gate (block.h), so each write starts on its worker when
     * the one before has returned from the driver, and clusters are still
     * allocated strictly in guest order, as in qemu-img.
     */
    if (j->in_order && !s->copy_failed) {
        e->wr_offs = s->off + s->len;
    }
    if (--s->pending == 0) {
        check_mapped(s);
        finish_slot(s);
    } else if (j->in_order) {
        kick(e);
    }
}

static void
try_write(struct slot *s)
{
    struct engine *e = s->e;

    if (e->ret < 0) {
        finish_slot(s);
        return;
    }
    if (e->j->in_order && !s->copy_failed && e->wr_offs != s->off) {
        s->state = S_WAIT;
        return;
    }
    issue_writes(s);
}

/*
 * The main read (all its pieces) and, for rebase, the read of the new
 * backing run at the same time; the chunk goes on when both are done.
 */
static void
read_phase_done(struct slot *s)
{
    if (--s->reads_out > 0) {
        return;
    }
    if (s->e->ret < 0) {
        finish_slot(s);
        return;
    }
    plan_writes(s);
    try_write(s);
}

static void
compare_cb(struct blk_req *req)
{
    struct slot *s = req->opaque;
    struct engine *e = s->e;

    if (req->ret < 0) {
        /* qemu-img's line has neither prefix nor offset; ordered by it */
        defer_bare_error(e, s->off, "error while reading from new backing "
                         "file");
        fail(e, req->ret);
    }
    read_phase_done(s);
}

/* rebase: read the new backing's view of the chunk into s->cmp. */
static void
start_compare(struct slot *s)
{
    struct cv_job *j = s->e->j;
    uint64_t n = 0;

    if (j->compare_bs != NULL && s->off < j->compare_len) {
        n = j->compare_len - s->off < s->len ? j->compare_len - s->off : s->len;
    }
    memset(s->cmp + n, 0, s->len - n);
    if (n == 0) {
        s->reads_out--;
        return;
    }
    memset(&s->creq, 0, sizeof(s->creq));
    s->ciov.iov_base = s->cmp;
    s->ciov.iov_len = n;
    s->creq.op = BLK_OP_READ;
    s->creq.offset = s->off;
    s->creq.length = n;
    s->creq.iov = &s->ciov;
    s->creq.iovcnt = 1;
    s->creq.cb = compare_cb;
    s->creq.opaque = s;
    blk_req_submit(j->compare_bs, &s->creq);
}

static void
read_cb(struct blk_req *req)
{
    struct slot *s = req->opaque;
    struct engine *e = s->e;
    struct cv_job *j = e->j;

    if (req->ret < 0) {
        if (j->salvage && s->cur_len > SECTOR) {
            /* Retry this piece sector by sector. */
            s->salvage_until = s->off + s->pos + s->cur_len;
            start_read(s);
            return;
        }
        if (j->salvage) {
            if (!j->quiet) {
                fprintf(stderr, "blk-img: warning: error while reading "
                        "offset %llu: %s\n", (unsigned long long)req->offset,
                        strerror(-req->ret));
            }
            memset(s->buf + s->pos, 0, s->cur_len);
        } else {
            report(e, "error while reading at byte ", s->off, req->ret);
            fail(e, req->ret);
            read_phase_done(s);
            return;
        }
    } else {
        j->bytes_read += s->cur_len;
    }
    s->pos += s->cur_len;
    if (s->pos < s->len && e->ret == 0) {
        start_read(s);
        return;
    }
    read_phase_done(s);
}

/* Read the next piece of the chunk (one source part, or one sector when salvaging). */
static void
start_read(struct slot *s)
{
    struct cv_job *j = s->e->j;
    uint64_t abs = s->off + s->pos, part_off, n;
    int part;

    s->state = S_READ;
    select_part(j, abs, &part, &part_off);
    n = s->len - s->pos;
    if (n > j->parts[part].len - (abs - part_off)) {
        n = j->parts[part].len - (abs - part_off);
    }
    if (abs < s->salvage_until) {
        n = SECTOR < n ? SECTOR : n;
    }
    s->cur_len = n;
    memset(&s->req, 0, sizeof(s->req));
    s->iov.iov_base = s->buf + s->pos;
    s->iov.iov_len = n;
    s->req.op = BLK_OP_READ;
    s->req.offset = abs - part_off + j->src_offset;
    s->req.length = n;
    s->req.iov = &s->iov;
    s->req.iovcnt = 1;
    s->req.cb = read_cb;
    s->req.opaque = s;
    blk_req_submit(j->parts[part].bs, &s->req);
}

/*
 * A data chunk that lies in one contiguous span of each file it would be
 * read from (the source part and, for rebase, the new backing) is used
 * in place, without reading it into the slot's buffers: the writes take
 * their data from the span.  Worker (finding the spans may wait for a
 * driver's lock).  Not when a span cannot be had (then the chunk is read
 * as usual).
 */
static bool
try_map(struct slot *s)
{
    struct cv_job *j = s->e->j;
    const uint8_t *p, *c = NULL;
    uint64_t part_off;
    int part;

    select_part(j, s->off, &part, &part_off);
    if (s->off + s->len > part_off + j->parts[part].len ||
        blk_node_map_data(j->parts[part].bs, s->off - part_off + j->src_offset,
                          s->len, &p) < 0) {
        return false;
    }
    if (j->compare) {
        if (j->compare_bs == NULL || s->off >= j->compare_len) {
            c = blk_map_zeroes(s->len);     /* -b "", or past its end */
        } else if (s->off + s->len > j->compare_len ||
                   blk_node_map_data(j->compare_bs, s->off, s->len, &c) < 0) {
            c = NULL;
        }
        if (c == NULL) {
            return false;
        }
    }
    s->data = p;
    s->cdata = c;
    s->faults0 = blk_map_faults();
    return true;
}

/* Worker: the spans, then zero detection (or the compare) on them. */
static void
map_work(uv_work_t *w)
{
    struct slot *s = container_of(w, struct slot, work);

    s->mapped = try_map(s);
    if (s->mapped) {
        plan_writes(s);
    }
}

static void start_reads(struct slot *s);

static void
map_done(uv_work_t *w, int status)
{
    struct slot *s = container_of(w, struct slot, work);
    struct engine *e = s->e;

    if (e->ret < 0 || status < 0) {
        fail(e, status < 0 ? status : e->ret);
        finish_slot(s);
        return;
    }
    if (!s->mapped) {
        start_reads(s);
        return;
    }
    e->j->bytes_read += s->len;
    try_write(s);
}

/* Read the chunk into the slot's buffers (and the new backing's view). */
static void
start_reads(struct slot *s)
{
    s->data = s->buf;
    s->cdata = s->cmp;
    s->mapped = false;
    s->state = S_READ;
    s->reads_out = 1 + (s->e->j->compare ? 1 : 0);
    if (s->e->j->compare) {
        start_compare(s);
    }
    start_read(s);
}

static void
start_chunk(struct slot *s, uint64_t off, uint64_t len, enum cv_status st)
{
    s->data = s->buf;
    s->cdata = s->cmp;
    s->mapped = false;
    s->off = off;
    s->len = len;
    s->st = st;
    s->pos = 0;
    s->salvage_until = 0;
    s->copy = false;
    s->copy_failed = false;
    if (st == CV_DATA && s->e->j->copy_dst_fd >= 0 && !s->e->copy_off &&
        !s->e->j->compare) {
        struct cv_job *j = s->e->j;
        uint64_t part_off;

        select_part(j, off, &s->copy_part, &part_off);
        s->copy = j->copy_src_fd[s->copy_part] >= 0 &&
                  off + len <= part_off + j->parts[s->copy_part].len;
        s->copy_src_fd = j->copy_src_fd[s->copy_part];
        s->copy_dst_fd = j->copy_dst_fd;
        s->copy_in = off - part_off + j->src_offset;
    }
    if (s->copy) {
        s->state = S_READ;
        try_write(s);
        return;
    }
    if (st == CV_DATA && s->e->j->map_source) {
        /* --salvage never maps: an I/O error would have to become zeroes */
        s->state = S_READ;
        uv_queue_work(blk_loop(), &s->work, map_work, map_done);
    } else if (st == CV_DATA) {
        start_reads(s);
    } else {
        plan_writes(s);
        try_write(s);
    }
}

static void
timer_cb(uv_timer_t *t)
{
    struct engine *e = t->data;

    e->timer_armed = false;
    kick(e);
}

/* -r: hold new chunks while more was issued than the rate allows. */
static bool
rate_wait(struct engine *e)
{
    uint64_t rate = e->j->rate_limit;
    double allowed, wait;

    if (rate == 0) {
        return false;
    }
    allowed = (now() - e->start) * (double)rate;
    if ((double)e->issued <= allowed) {
        return false;
    }
    if (!e->timer_armed) {
        wait = ((double)e->issued - allowed) / (double)rate;
        if (!e->timer_init) {
            uv_timer_init(blk_loop(), &e->timer);
            e->timer.data = e;
            e->timer_init = true;
        }
        uv_timer_start(&e->timer, timer_cb, (uint64_t)(wait * 1000) + 1, 0);
        e->timer_armed = true;
    }
    return true;
}

static bool
all_idle(const struct engine *e)
{
    if (e->flush_busy) {
        return false;
    }
    for (unsigned i = 0; i < e->nslots; i++) {
        if (e->slots[i].state != S_IDLE) {
            return false;
        }
    }
    return true;
}

static void
kick_once(struct engine *e)
{
    struct cv_job *j = e->j;
    unsigned i;

    /* A chunk waiting for its turn to write goes first. */
    if (j->in_order) {
        for (i = 0; i < e->nslots; i++) {
            struct slot *s = &e->slots[i];

            if (s->state == S_WAIT && (s->off == e->wr_offs || e->ret < 0)) {
                try_write(s);
            }
        }
    }
    for (i = 0; i < e->nslots && e->ret == 0; i++) {
        struct slot *s = &e->slots[i];
        int64_t n;

        if (s->state != S_IDLE) {
            continue;
        }
        if (e->next_off >= j->total || e->timer_armed || rate_wait(e)) {
            break;
        }
        n = plan(e, e->next_off);
        if (n < 0) {
            fail(e, (int)n);
            break;
        }
        if (counts_for_progress(e, e->cur_status)) {
            e->alloc_done += (uint64_t)n;
            blk_progress_set_bytes(j->progress, e->alloc_done, e->alloc_total);
            blk_progress_print(j->progress, (float)(100.0 * (double)e->alloc_done /
                                                    (double)e->alloc_total), 0);
        }
        if (e->cur_status == CV_DATA) {
            e->issued += (uint64_t)n;
        }
        e->next_off += (uint64_t)n;
        start_chunk(s, e->next_off - (uint64_t)n, (uint64_t)n, e->cur_status);
    }
    if (all_idle(e) && (e->next_off >= j->total || e->ret < 0)) {
        e->done = true;
    }
}

/*
 * Completions that need no I/O (a zero chunk on a zeroed target) finish
 * inside kick; loop here instead of recursing once per chunk.
 */
static void
kick(struct engine *e)
{
    if (e->in_kick) {
        e->kick_again = true;
        return;
    }
    e->in_kick = true;
    do {
        e->kick_again = false;
        kick_once(e);
    } while (e->kick_again);
    e->in_kick = false;
}

int
cv_run(struct cv_job *j)
{
    struct engine *e = xzalloc(sizeof(*e));
    uint64_t off = 0;
    int ret = 0;
    unsigned i;

    e->j = j;
    {
        const char *m = getenv("BLK_MAP");

        j->map_source = (m == NULL || strcmp(m, "0") != 0) && !j->salvage;
    }
    e->use_gate = j->in_order && !j->compressed && !j->issue_order;
    if (e->use_gate) {
        blk_order_gate_init(&e->gate);
    }
    if (j->buf_size == 0) {
        j->buf_size = CV_BUF_SIZE;
    }
    if (j->compressed && j->cluster_size > 0) {
        j->buf_size = j->cluster_size;
    }
    if (j->alignment == 0) {
        j->alignment = SECTOR;
    }
    e->nslots = j->in_flight ? j->in_flight : 8;
    if (e->nslots > CV_MAX_IN_FLIGHT) {
        e->nslots = CV_MAX_IN_FLIGHT;
    }

    /* First pass: what the progress counts (qemu-img counts the same). */
    while (off < j->total) {
        int64_t n = plan(e, off);

        if (n < 0) {
            ret = (int)n;
            goto out;
        }
        if (counts_for_progress(e, e->cur_status)) {
            e->alloc_total += (uint64_t)n;
        }
        off += (uint64_t)n;
    }
    e->status_end = 0;

    for (i = 0; i < e->nslots; i++) {
        struct slot *s = &e->slots[i];

        s->e = e;
        s->buf = blk_try_memalign(4096, j->buf_size);
        if (j->compare) {
            s->cmp = blk_try_memalign(4096, j->buf_size);
        }
        if (s->buf == NULL || (j->compare && s->cmp == NULL)) {
            blk_img_error("cannot allocate %llu bytes of buffers",
                          (unsigned long long)j->buf_size);
            ret = -ENOMEM;
            goto out_free;
        }
    }
    e->start = now();
    kick(e);
    blk_loop_run_until(&e->done);
    ret = e->ret;
    if (!e->done && ret == 0) {
        /* the loop ran dry with chunks left: never call that a success */
        defer_error(e, UINT64_MAX, "the copy stopped before its end");
        ret = -EIO;
    }

out_free:
    for (i = 0; i < e->nslots; i++) {
        free(e->slots[i].buf);
        free(e->slots[i].cmp);
        free(e->slots[i].pieces);
        free(e->slots[i].wreq);
        free(e->slots[i].wiov);
    }
    if (e->timer_init) {
        uv_close((uv_handle_t *)&e->timer, NULL);
        uv_run(blk_loop(), UV_RUN_NOWAIT);     /* runs the close */
    }
out:
    if (e->err_set) {
        blk_img_error("%s", e->err_msg);
    }
    if (e->use_gate) {
        blk_order_gate_destroy(&e->gate);
    }
    free(e);
    return ret;
}

int
cv_parse_cache(const char *mode, unsigned *open_flags, bool *writethrough)
{
    *open_flags = 0;
    *writethrough = false;
    if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0) {
        *open_flags = BLK_OPEN_NOCACHE;
    } else if (strcmp(mode, "directsync") == 0) {
        *open_flags = BLK_OPEN_NOCACHE;
        *writethrough = true;
    } else if (strcmp(mode, "writeback") == 0) {
        *open_flags = 0;
    } else if (strcmp(mode, "unsafe") == 0) {
        *open_flags = BLK_OPEN_NO_FLUSH;
    } else if (strcmp(mode, "writethrough") == 0) {
        *writethrough = true;
    } else {
        return -EINVAL;
    }
    return 0;
}

uint64_t
cv_flush_every(unsigned open_flags, bool writethrough)
{
    if (writethrough || (open_flags & (BLK_OPEN_NO_FLUSH | BLK_OPEN_NOCACHE))) {
        return 0;
    }
    return CV_FLUSH_EVERY;
}
