/*
 * test-uring.c - the io_uring path of the engine (block/uring.c, the aio
 * ops of file, raw and qcow2) against the thread pool (BLK_URING=0): the
 * same random, overlapping mix of reads and writes with many requests in
 * flight must give every read what a sequential model says and leave the
 * same bytes, buffered and O_DIRECT, aligned and unaligned; contiguous
 * requests the ring merges, short reads at end of file, I/O errors and
 * drain behave the same on both paths.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "block/uring.h"
#include "util/xalloc.h"

#define IMG_SIZE (1024 * 1024)
#define HOT (256 * 1024)        /* requests crowd here, so they overlap */
#define NREQ 3000
#define DEPTH 48

static char dir[] = "/var/tmp/blk-test-uring-" UNIT_MKTEMP_SUFFIX;
static bool have_uring;

/* Switch paths: the ring is closed and the environment read again. */
static void
use_uring(bool on)
{
    blk_uring_shutdown();
    setenv("BLK_URING", on ? "1" : "0", 1);
}

static uint64_t rng_state;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static struct blk_node *
open_img(struct blk_graph *g, const char *p, const char *fmt, bool direct)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;

    bs = blk_open_image(g, p, fmt, false,
                        BLK_OPEN_RDWR | (direct ? BLK_OPEN_NOCACHE : 0), &err);
    if (bs == NULL) {
        fprintf(stderr, "open %s: %s\n", p, err.msg);
    }
    return bs;
}

static int
create_qcow2(const char *p, uint64_t size)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct kv *f = kv_new_object();
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    int r;

    if (fd >= 0) {
        close(fd);
    }
    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(p));
    kv_set(o, "driver", kv_new_str("qcow2"));
    kv_set(o, "file", f);
    kv_set(o, "size", kv_new_uint(size));
    r = blk_create(o, &err);
    if (r < 0) {
        fprintf(stderr, "create %s: %s\n", p, err.msg);
    }
    kv_free(o);
    return r;
}

static int
create_raw(const char *p, uint64_t size, unsigned char fill)
{
    unsigned char *buf = xmalloc(size);
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ssize_t n;

    memset(buf, fill, size);
    n = fd >= 0 ? write(fd, buf, size) : -1;
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    return n == (ssize_t)size ? 0 : -EIO;
}

/* ---- the random workload ------------------------------------------------- */

struct treq {
    struct blk_req req;
    struct iovec iov;
    unsigned char *mem;         /* allocation; buf may sit 1 byte into it */
    unsigned char *expect;      /* reads: the model at submission */
    struct run *run;
};

struct run {
    unsigned char *model;
    unsigned in_flight, done, bad_reads, failed;
    unsigned max_uring;         /* most ring operations seen in flight */
};

static void
treq_cb(struct blk_req *r)
{
    struct treq *t = container_of(r, struct treq, req);
    struct run *run = t->run;

    if (r->ret < 0) {
        fprintf(stderr, "request failed: %s\n", r->err.msg);
        run->failed++;
    } else if (r->op == BLK_OP_READ &&
               memcmp(t->iov.iov_base, t->expect, r->length) != 0) {
        run->bad_reads++;
    }
    run->in_flight--;
    run->done++;
    free(t->mem);
    free(t->expect);
    free(t);
}

/*
 * One request: mostly aligned 4 KiB multiples in the hot area, some at
 * 512-byte or byte granularity, some from a misaligned buffer (O_DIRECT
 * bounces those).  Writes go into the model at submission: overlapping
 * requests run in submission order, so reads must see exactly that.
 */
static void
submit_one(struct blk_node *bs, struct run *run)
{
    struct treq *t = xzalloc(sizeof(*t));
    unsigned kind = (unsigned)(rng() % 10);
    uint64_t off, len;
    unsigned char *buf;

    if (kind < 7) {
        len = 4096 * (1 + rng() % 4);
        off = 4096 * (rng() % ((HOT - len) / 4096 + 1));
    } else if (kind < 9) {
        len = 512 * (1 + rng() % 16);
        off = 512 * (rng() % ((HOT - len) / 512 + 1));
    } else {
        len = 1 + rng() % 9000;
        off = rng() % (HOT - len);
    }
    t->mem = blk_try_memalign(4096, len + 4096);
    buf = t->mem + ((rng() % 8) == 0 ? 1 : 0);
    t->iov.iov_base = buf;
    t->iov.iov_len = len;
    t->run = run;
    t->req.op = rng() % 10 < 6 ? BLK_OP_WRITE : BLK_OP_READ;
    t->req.offset = off;
    t->req.length = len;
    t->req.iov = &t->iov;
    t->req.iovcnt = 1;
    t->req.cb = treq_cb;
    if (t->req.op == BLK_OP_WRITE) {
        for (uint64_t i = 0; i < len; i++) {
            buf[i] = (unsigned char)(rng() >> 24);
        }
        memcpy(run->model + off, buf, len);
    } else {
        memset(buf, 0xee, len);
        t->expect = xmalloc(len);
        memcpy(t->expect, run->model + off, len);
    }
    run->in_flight++;
    blk_req_submit(bs, &t->req);
    if (blk_uring_in_flight() > run->max_uring) {
        run->max_uring = blk_uring_in_flight();
    }
}

/*
 * Run the workload on image p (fmt) with the given seed; the final bytes
 * (read back synchronously) go to out.  Returns false if anything failed.
 */
static bool
workload(const char *p, const char *fmt, bool direct, unsigned seed,
         unsigned char *out, unsigned *max_uring)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_img(g, p, fmt, direct);
    struct run run = { 0 };
    unsigned submitted = 0;
    bool ok;

    if (bs == NULL) {
        blk_graph_free(g);
        return false;
    }
    run.model = xmalloc(IMG_SIZE);
    CHECK_INT(blk_node_pread(bs, 0, run.model, IMG_SIZE, &err), 0);
    rng_state = 0x9e3779b97f4a7c15ULL ^ seed;
    while (submitted < NREQ || run.in_flight > 0) {
        while (submitted < NREQ && run.in_flight < DEPTH) {
            submit_one(bs, &run);
            submitted++;
        }
        uv_run(blk_loop(), UV_RUN_ONCE);
    }
    CHECK_INT(run.failed, 0);
    CHECK_INT(run.bad_reads, 0);
    CHECK_INT(blk_uring_in_flight(), 0);
    CHECK_INT(blk_node_pread(bs, 0, out, IMG_SIZE, &err), 0);
    CHECK(memcmp(out, run.model, IMG_SIZE) == 0);
    ok = run.failed == 0 && run.bad_reads == 0 &&
         memcmp(out, run.model, IMG_SIZE) == 0;
    *max_uring = run.max_uring;
    free(run.model);
    blk_node_unref(bs);
    blk_graph_free(g);
    return ok;
}

/*
 * The same workload on two copies of one image, through the ring and
 * through the pool: both match the model and each other byte for byte.
 */
static void
test_workload(const char *fmt, bool direct, bool fresh_qcow2)
{
    char *a = xasprintf("%s/a.%s", dir, fmt);
    char *b = xasprintf("%s/b.%s", dir, fmt);
    unsigned char *out_a = xmalloc(IMG_SIZE), *out_b = xmalloc(IMG_SIZE);
    unsigned max_a = 0, max_b = 0;

    fprintf(stderr, "workload %s %s%s\n", fmt, direct ? "O_DIRECT" : "buffered",
            fresh_qcow2 ? " (allocating)" : "");
    if (strcmp(fmt, "qcow2") == 0) {
        CHECK_INT(create_qcow2(a, IMG_SIZE), 0);
        CHECK_INT(create_qcow2(b, IMG_SIZE), 0);
        if (!fresh_qcow2) {
            /* Every cluster allocated: writes go in place. */
            struct blk_error err = BLK_ERROR_INIT;
            struct blk_graph *g = blk_graph_new();
            unsigned char *fill = xmalloc(IMG_SIZE);

            memset(fill, 0x5a, IMG_SIZE);
            for (int i = 0; i < 2; i++) {
                struct blk_node *bs = open_img(g, i ? b : a, fmt, false);

                CHECK(bs != NULL);
                if (bs != NULL) {
                    CHECK_INT(blk_node_pwrite(bs, 0, fill, IMG_SIZE, 0, &err), 0);
                    blk_node_unref(bs);
                }
            }
            free(fill);
            blk_graph_free(g);
        }
    } else {
        CHECK_INT(create_raw(a, IMG_SIZE, 0x5a), 0);
        CHECK_INT(create_raw(b, IMG_SIZE, 0x5a), 0);
    }
    use_uring(true);
    CHECK(workload(a, fmt, direct, 7, out_a, &max_a));
    use_uring(false);
    CHECK(workload(b, fmt, direct, 7, out_b, &max_b));
    CHECK(memcmp(out_a, out_b, IMG_SIZE) == 0);
    CHECK_INT(max_b, 0);                /* the pool path never used it */
    if (have_uring) {
        CHECK(max_a > 1);               /* several on the ring at once */
    }
    unlink(a);
    unlink(b);
    free(out_a);
    free(out_b);
    free(a);
    free(b);
}

/* ---- one request at a time ------------------------------------------------ */

static bool one_done;

static void
one_cb(struct blk_req *r)
{
    one_done = true;
}

/* Run one request to completion; returns its result, message in msg. */
static int
run_one(struct blk_node *bs, enum blk_op op, uint64_t off, void *buf,
        uint64_t len, char *msg, size_t msglen)
{
    struct blk_req req = { 0 };
    struct iovec iov = { buf, len };

    req.op = op;
    req.offset = off;
    req.length = len;
    req.iov = &iov;
    req.iovcnt = 1;
    req.cb = one_cb;
    one_done = false;
    blk_req_submit(bs, &req);
    CHECK(!one_done);                   /* never called back inside submit */
    blk_loop_run_until(&one_done);
    if (msg != NULL) {
        snprintf(msg, msglen, "%s", req.ret < 0 ? req.err.msg : "");
    }
    return req.ret;
}

/*
 * The file shrinks under an open node (its cached length stays): a read
 * across the new end gets the data then zeroes, and one past it zeroes,
 * on both paths, buffered and O_DIRECT.
 */
static void
test_short_read_at_eof(bool uring, bool direct)
{
    char *p = xasprintf("%s/eof.raw", dir);
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs;
    unsigned char *buf = blk_try_memalign(4096, 8192);
    unsigned char want[8192];

    CHECK_INT(create_raw(p, IMG_SIZE, 0x3c), 0);
    use_uring(uring);
    bs = open_img(g, p, "raw", direct);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(truncate(p, IMG_SIZE - 2048), 0);
        memset(want, 0x3c, 2048);
        memset(want + 2048, 0, sizeof(want) - 2048);
        memset(buf, 0xee, 8192);
        CHECK_INT(run_one(bs, BLK_OP_READ, IMG_SIZE - 4096, buf, 4096, NULL, 0),
                  0);
        CHECK(memcmp(buf, want, 4096) == 0);
        CHECK_INT(truncate(p, IMG_SIZE - 8192), 0);
        memset(buf, 0xee, 8192);
        CHECK_INT(run_one(bs, BLK_OP_READ, IMG_SIZE - 4096, buf, 4096, NULL, 0),
                  0);
        CHECK(memcmp(buf, want + 4096, 4096) == 0);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    unlink(p);
    free(buf);
    free(p);
}

/*
 * What the pool path refuses stays refused: a compressed write to raw is
 * -ENOTSUP on both paths, and leaves the data alone.
 */
static void
test_compressed_refused(bool uring)
{
    char *p = xasprintf("%s/comp.raw", dir);
    struct blk_graph *g = blk_graph_new();
    unsigned char *buf = blk_try_memalign(4096, 4096);
    struct blk_req req = { 0 };
    struct iovec iov = { buf, 4096 };
    struct blk_node *bs;

    CHECK_INT(create_raw(p, IMG_SIZE, 0x44), 0);
    use_uring(uring);
    bs = open_img(g, p, "raw", true);
    CHECK(bs != NULL);
    if (bs != NULL) {
        memset(buf, 0x55, 4096);
        req.op = BLK_OP_WRITE;
        req.offset = 0;
        req.length = 4096;
        req.iov = &iov;
        req.iovcnt = 1;
        req.flags = BLK_REQ_COMPRESSED;
        req.cb = one_cb;
        one_done = false;
        blk_req_submit(bs, &req);
        blk_loop_run_until(&one_done);
        CHECK_INT(req.ret, -ENOTSUP);
        CHECK_INT(run_one(bs, BLK_OP_READ, 0, buf, 4096, NULL, 0), 0);
        CHECK(buf[0] == 0x44 && buf[4095] == 0x44);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    unlink(p);
    free(buf);
    free(p);
}

/* The node's descriptor for path p (the only one open on it), or -1. */
static int
find_fd(const char *p)
{
    char real[PATH_MAX], link[PATH_MAX], name[300];
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int fd = -1;

    if (d == NULL || realpath(p, real) == NULL) {
        if (d != NULL) {
            closedir(d);
        }
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        ssize_t n;

        snprintf(name, sizeof(name), "/proc/self/fd/%s", e->d_name);
        n = readlink(name, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(link, real) == 0) {
                fd = atoi(e->d_name);
            }
        }
    }
    closedir(d);
    return fd;
}

/*
 * I/O errors from the kernel come back with the same code and message
 * on both paths: writes through a descriptor swapped for a read-only
 * one (EBADF), reads through one swapped for a directory (EISDIR).
 */
static void
test_errors(bool uring, bool direct, char *wmsg, char *rmsg, size_t msglen)
{
    char *p = xasprintf("%s/err.raw", dir);
    struct blk_graph *g = blk_graph_new();
    unsigned char *buf = blk_try_memalign(4096, 4096);
    struct blk_node *bs;
    int fd, saved, other;

    CHECK_INT(create_raw(p, IMG_SIZE, 0x11), 0);
    use_uring(uring);
    bs = open_img(g, p, "raw", direct);
    CHECK(bs != NULL);
    fd = find_fd(p);
    CHECK(fd >= 0);
    if (bs != NULL && fd >= 0) {
        memset(buf, 0x22, 4096);
        saved = dup(fd);
        other = open(p, O_RDONLY);
        dup2(other, fd);
        CHECK_INT(run_one(bs, BLK_OP_WRITE, 8192, buf, 4096, wmsg, msglen),
                  -EBADF);
        close(other);
        other = open(dir, O_RDONLY | O_DIRECTORY);
        dup2(other, fd);
        CHECK_INT(run_one(bs, BLK_OP_READ, 8192, buf, 4096, rmsg, msglen),
                  -EISDIR);
        close(other);
        dup2(saved, fd);
        close(saved);
        /* And the node works again. */
        CHECK_INT(run_one(bs, BLK_OP_READ, 8192, buf, 4096, NULL, 0), 0);
        CHECK(buf[0] == 0x11 && buf[4095] == 0x11);
    }
    if (bs != NULL) {
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    unlink(p);
    free(buf);
    free(p);
}

static void
test_errors_match(bool direct)
{
    char w1[512], r1[512], w2[512], r2[512];

    test_errors(true, direct, w1, r1, sizeof(w1));
    test_errors(false, direct, w2, r2, sizeof(w2));
    CHECK_STR(w1, w2);
    CHECK_STR(r1, r2);
    CHECK(strstr(w1, "writing") != NULL);
    CHECK(strstr(r1, "reading") != NULL);
}

/* ---- contiguous requests: merged on the ring --------------------------------- */

struct seq {
    struct blk_req req;
    struct iovec iov;
    int *left;
};

static void
seq_cb(struct blk_req *r)
{
    struct seq *q = container_of(r, struct seq, req);

    (*q->left)--;
}

/*
 * Submit n contiguous requests of len bytes from off (all in one loop
 * turn), buffers from buf, and run them; results and messages to ret
 * and msg (msg may be NULL).
 */
static void
run_seq(struct blk_node *bs, enum blk_op op, uint64_t off, unsigned char *buf,
        uint64_t len, int n, int *ret, char (*msg)[512])
{
    struct seq *q = xcalloc((size_t)n, sizeof(*q));
    int left = n;

    for (int i = 0; i < n; i++) {
        q[i].iov.iov_base = buf + (uint64_t)i * len;
        q[i].iov.iov_len = len;
        q[i].left = &left;
        q[i].req.op = op;
        q[i].req.offset = off + (uint64_t)i * len;
        q[i].req.length = len;
        q[i].req.iov = &q[i].iov;
        q[i].req.iovcnt = 1;
        q[i].req.cb = seq_cb;
        blk_req_submit(bs, &q[i].req);
    }
    while (left > 0) {
        uv_run(blk_loop(), UV_RUN_ONCE);
    }
    for (int i = 0; i < n; i++) {
        ret[i] = q[i].req.ret;
        if (msg != NULL) {
            snprintf(msg[i], sizeof(msg[i]), "%s", q[i].req.err.msg);
        }
    }
    free(q);
}

/*
 * 256 contiguous 4 KiB writes, then reads, submitted at once: the ring
 * merges them (its counter moves), the bytes are right, and the pool
 * gives the same.  Then a group that fails (a write through a read-only
 * descriptor) gives every member its own error, and a group of reads
 * that crosses the end of the file (which shrank under the node) gives
 * data then zeroes, each as alone.
 */
static void
test_merged(bool uring, bool direct, unsigned char *out)
{
    char *p = xasprintf("%s/seq.raw", dir);
    struct blk_graph *g = blk_graph_new();
    unsigned char *wbuf = blk_try_memalign(4096, IMG_SIZE);
    unsigned char *rbuf = blk_try_memalign(4096, IMG_SIZE);
    unsigned long merged0;
    int ret[256], fd, saved, other;
    char (*msg)[512] = xcalloc(16, sizeof(*msg));
    struct blk_node *bs;

    CHECK_INT(create_raw(p, IMG_SIZE, 0x01), 0);
    use_uring(uring);
    bs = open_img(g, p, "raw", direct);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    for (int i = 0; i < IMG_SIZE; i++) {
        wbuf[i] = (unsigned char)(i * 7 + i / 4096);
    }
    merged0 = blk_uring_merged();
    run_seq(bs, BLK_OP_WRITE, 0, wbuf, 4096, 256, ret, NULL);
    for (int i = 0; i < 256; i++) {
        CHECK_INT(ret[i], 0);
    }
    if (uring && have_uring) {
        CHECK(blk_uring_merged() - merged0 >= 128);
    } else {
        CHECK_INT(blk_uring_merged(), merged0);
    }
    memset(rbuf, 0xee, IMG_SIZE);
    run_seq(bs, BLK_OP_READ, 0, rbuf, 4096, 256, ret, NULL);
    for (int i = 0; i < 256; i++) {
        CHECK_INT(ret[i], 0);
    }
    CHECK(memcmp(rbuf, wbuf, IMG_SIZE) == 0);
    memcpy(out, rbuf, IMG_SIZE);

    /* A failing group: each member reports its own error. */
    fd = find_fd(p);
    CHECK(fd >= 0);
    if (fd >= 0) {
        saved = dup(fd);
        other = open(p, O_RDONLY);
        dup2(other, fd);
        close(other);
        run_seq(bs, BLK_OP_WRITE, 65536, wbuf, 4096, 16, ret, msg);
        for (int i = 0; i < 16; i++) {
            CHECK_INT(ret[i], -EBADF);
            CHECK(strstr(msg[i], "writing") != NULL);
        }
        dup2(saved, fd);
        close(saved);
    }

    /* Reads across the (new) end of the file: data, then zeroes. */
    CHECK_INT(truncate(p, IMG_SIZE - 6144), 0);
    memset(rbuf, 0xee, 16384);
    run_seq(bs, BLK_OP_READ, IMG_SIZE - 16384, rbuf, 4096, 4, ret, NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(ret[i], 0);
    }
    CHECK(memcmp(rbuf, wbuf + IMG_SIZE - 16384, 10240) == 0);
    CHECK(rbuf[10240] == 0 && rbuf[16383] == 0 &&
          memcmp(rbuf + 10240, rbuf + 10241, 6143) == 0);
    memcpy(out + IMG_SIZE - 16384, rbuf, 16384);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    unlink(p);
    free(msg);
    free(wbuf);
    free(rbuf);
    free(p);
}

static void
test_merged_match(bool direct)
{
    unsigned char *a = xmalloc(IMG_SIZE), *b = xmalloc(IMG_SIZE);

    test_merged(true, direct, a);
    test_merged(false, direct, b);
    CHECK(memcmp(a, b, IMG_SIZE) == 0);
    free(a);
    free(b);
}

/* ---- drain ---------------------------------------------------------------- */

struct drain_ctx {
    struct run *run;
    bool called;
    unsigned done_at_cb, uring_at_cb;
};

static void
drain_cb(void *opaque)
{
    struct drain_ctx *c = opaque;

    c->called = true;
    c->done_at_cb = c->run->done;
    c->uring_at_cb = blk_uring_in_flight();
}

/*
 * Drain with ring requests in flight: the callback comes only once all
 * have completed; requests submitted meanwhile wait and then run.
 */
static void
test_drain_in_flight(void)
{
    char *p = xasprintf("%s/drain.raw", dir);
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs;
    struct run run = { 0 };
    struct drain_ctx c = { &run, false, 0, 0 };
    int i;

    CHECK_INT(create_raw(p, IMG_SIZE, 0), 0);
    use_uring(true);
    bs = open_img(g, p, "raw", true);
    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        free(p);
        return;
    }
    run.model = xzalloc(IMG_SIZE);
    rng_state = 42;
    for (i = 0; i < 32; i++) {
        submit_one(bs, &run);
    }
    if (have_uring) {
        CHECK(blk_uring_in_flight() > 0);
    }
    blk_node_drain_begin(bs, drain_cb, &c);
    for (i = 0; i < 8; i++) {
        submit_one(bs, &run);           /* held by the drain */
    }
    blk_loop_run_until(&c.called);
    CHECK(c.called);
    CHECK_INT(c.done_at_cb, 32);
    CHECK_INT(c.uring_at_cb, 0);
    CHECK_INT(blk_node_in_flight(bs), 8);
    blk_node_drain_end(bs);
    while (run.in_flight > 0) {
        uv_run(blk_loop(), UV_RUN_ONCE);
    }
    CHECK_INT(run.done, 40);
    CHECK_INT(run.failed, 0);
    CHECK_INT(run.bad_reads, 0);
    free(run.model);
    blk_node_unref(bs);
    blk_graph_free(g);
    unlink(p);
    free(p);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    blk_loop_init(16);
    use_uring(true);
    have_uring = blk_uring_ready();
    if (!have_uring) {
        fprintf(stderr, "io_uring unavailable: both runs use the pool\n");
    }
    test_workload("raw", false, false);
    test_workload("raw", true, false);
    test_workload("qcow2", false, false);
    test_workload("qcow2", true, false);
    test_workload("qcow2", true, true);
    test_short_read_at_eof(true, false);
    test_short_read_at_eof(true, true);
    test_short_read_at_eof(false, false);
    test_short_read_at_eof(false, true);
    test_errors_match(false);
    test_errors_match(true);
    test_compressed_refused(true);
    test_compressed_refused(false);
    test_merged_match(false);
    test_merged_match(true);
    test_drain_in_flight();
    blk_uring_shutdown();
    uv_run(blk_loop(), UV_RUN_NOWAIT);  /* the ring's handles close */
    rmdir(dir);
    return unit_done();
}
