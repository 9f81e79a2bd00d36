/*
 * test-cor.c - the copy-on-read filter (block/cor.c) over qcow2 chains:
 * reads copy whole clusters into the top image, zero ranges become zero
 * clusters, concurrent reads of one range copy it once, copies never
 * overwrite a concurrent write, reads straddling allocated clusters keep
 * them, bottom limits the copied layers, and read-only images are refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "util/xalloc.h"

#define MiB (1024 * 1024)
#define KiB 1024

static char dir[] = "/tmp/blk-test-cor-" UNIT_MKTEMP_SUFFIX;

static char *
path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

/* A 1 MiB qcow2 at p (64 KiB clusters) over backing (a qcow2 path) or none. */
static void
create_qcow2(const char *p, const char *backing)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object(), *f = kv_new_object();

    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(p));
    kv_set(f, "size", kv_new_uint(0));
    CHECK(blk_create(f, &err) == 0);
    kv_free(f);
    f = kv_new_object();
    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(p));
    kv_set(o, "driver", kv_new_str("qcow2"));
    kv_set(o, "file", f);
    kv_set(o, "size", kv_new_uint(MiB));
    if (backing != NULL) {
        kv_set(o, "backing-file", kv_new_str(backing));
        kv_set(o, "backing-fmt", kv_new_str("qcow2"));
    }
    CHECK(blk_create(o, &err) == 0);
    kv_free(o);
}

/* Write pattern c over [off, off+len) of the image at p. */
static void
fill(struct blk_graph *g, const char *p, uint64_t off, size_t len, int c)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR,
                                         &err);
    unsigned char *buf = xmalloc(len);

    CHECK(bs != NULL);
    memset(buf, c, len);
    if (bs != NULL) {
        CHECK(blk_node_pwrite(bs, off, buf, len, 0, &err) == 0);
        blk_node_unref(bs);
    }
    free(buf);
}

/* A copy-on-read filter over the node named top (bottom may be NULL). */
static struct blk_node *
open_cor(struct blk_graph *g, const char *top, const char *bottom,
         struct blk_error *err)
{
    struct kv *o = kv_new_object();
    struct blk_node *f;

    kv_set(o, "driver", kv_new_str("copy-on-read"));
    kv_set(o, "node-name", kv_new_str("cor"));
    kv_set(o, "file", kv_new_str(top));
    if (bottom != NULL) {
        kv_set(o, "bottom", kv_new_str(bottom));
    }
    f = blk_node_open(g, o, BLK_OPEN_RDWR, err);
    kv_free(o);
    return f;
}

/* Every byte of [off, off+len) reads as c through bs. */
static bool
reads_as(struct blk_node *bs, uint64_t off, size_t len, int c)
{
    struct blk_error err = BLK_ERROR_INIT;
    unsigned char *buf = xmalloc(len);
    bool ok = blk_node_pread(bs, off, buf, len, &err) == 0;

    for (size_t i = 0; ok && i < len; i++) {
        ok = buf[i] == c;
    }
    free(buf);
    return ok;
}

/* Block status flags of bs at off, and the extent's length in *pnum. */
static unsigned
status_at(struct blk_node *bs, uint64_t off, uint64_t *pnum)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_status st;

    if (blk_node_block_status(bs, off, MiB - off, &st, &err) < 0) {
        return ~0u;
    }
    *pnum = st.pnum;
    return st.flags;
}

/* Whether every byte of [off, off+len) is (or is not) allocated in bs. */
static bool
all_alloc(struct blk_node *bs, uint64_t off, uint64_t len, bool want)
{
    uint64_t end = off + len;

    while (off < end) {
        uint64_t pnum = 0;
        unsigned f = status_at(bs, off, &pnum);

        if (f == ~0u || pnum == 0 || !!(f & BLK_STATUS_ALLOCATED) != want) {
            return false;
        }
        off += pnum;
    }
    return true;
}

static bool
allocated(struct blk_node *bs, uint64_t off, uint64_t len)
{
    return all_alloc(bs, off, len, true);
}

static bool
unallocated(struct blk_node *bs, uint64_t off, uint64_t len)
{
    return all_alloc(bs, off, len, false);
}

/*
 * A filter between the copy-on-read filter and the top image that counts
 * the copies (writes flagged unchanged, and zero writes) and holds each
 * one 20 ms, so racing requests really overlap them.
 */
static unsigned slow_copies;

static int
slow_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    return blk_node_open_child(bs, opts, "file", "file",
                               BLK_ROLE_FILTERED | BLK_ROLE_PRIMARY, false,
                               err) ? 0 : -EINVAL;
}

static int
slow_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
             struct iovec *iov, int iovcnt, unsigned flags,
             struct blk_error *err)
{
    if (flags & BLK_REQ_UNCHANGED) {
        __atomic_add_fetch(&slow_copies, 1, __ATOMIC_RELAXED);
        usleep(20000);
    }
    return blk_child_pwritev(blk_node_get_child(bs, "file"), off, len, iov,
                             iovcnt, flags, err);
}

static int
slow_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
          struct blk_error *err)
{
    __atomic_add_fetch(&slow_copies, 1, __ATOMIC_RELAXED);
    return blk_child_zero(blk_node_get_child(bs, "file"), off, len, flags,
                          err);
}

static const struct blk_driver slow_driver = {
    .name = "test-slow",
    .threads = BLK_THREADS_PARALLEL,
    .is_filter = true,
    .open = slow_open,
    .pwritev = slow_pwritev,
    .zero = slow_zero,
};

/* The top image, its filter and the graph of one test. */
struct chain {
    struct blk_graph *g;
    struct blk_node *top, *slow, *cor;
    char *base, *mid, *topp;
};

/*
 * base (1 MiB of 0x11, a hole at 768k..832k), optionally mid (0x22 at
 * 256k..512k), and an empty top; the filter over top.
 */
static void
chain_open_slow(struct chain *c, bool with_mid, const char *bottom, bool slow)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object(), *f = kv_new_object();

    memset(c, 0, sizeof(*c));
    c->g = blk_graph_new();
    c->base = path("base.qcow2");
    c->mid = path("mid.qcow2");
    c->topp = path("top.qcow2");
    create_qcow2(c->base, NULL);
    fill(c->g, c->base, 0, 768 * KiB, 0x11);
    fill(c->g, c->base, 832 * KiB, 192 * KiB, 0x11);
    if (with_mid) {
        create_qcow2(c->mid, c->base);
        fill(c->g, c->mid, 256 * KiB, 256 * KiB, 0x22);
    }
    create_qcow2(c->topp, with_mid ? c->mid : c->base);

    /* Open the chain with node names, as blockdev-add would. */
    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(c->topp));
    kv_set(o, "driver", kv_new_str("qcow2"));
    kv_set(o, "node-name", kv_new_str("top"));
    kv_set(o, "file", f);
    if (with_mid) {
        struct kv *b = kv_new_object(), *bf = kv_new_object();

        kv_set(bf, "driver", kv_new_str("file"));
        kv_set(bf, "filename", kv_new_str(c->mid));
        kv_set(b, "driver", kv_new_str("qcow2"));
        kv_set(b, "node-name", kv_new_str("mid"));
        kv_set(b, "file", bf);
        kv_set(o, "backing", b);
    }
    c->top = blk_node_open(c->g, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    CHECK(c->top != NULL);
    if (c->top != NULL && slow) {
        o = kv_new_object();
        kv_set(o, "node-name", kv_new_str("slow"));
        kv_set(o, "file", kv_new_str("top"));
        c->slow = blk_node_open_driver(c->g, &slow_driver, o, BLK_OPEN_RDWR,
                                       &err);
        kv_free(o);
        CHECK(c->slow != NULL);
    }
    c->cor = c->top != NULL ? open_cor(c->g, slow ? "slow" : "top", bottom,
                                       &err) : NULL;
    CHECK(c->cor != NULL);
}

static void
chain_open(struct chain *c, bool with_mid, const char *bottom)
{
    chain_open_slow(c, with_mid, bottom, false);
}

static void
chain_close(struct chain *c)
{
    if (c->cor != NULL) {
        blk_node_unref(c->cor);
    }
    if (c->slow != NULL) {
        blk_node_unref(c->slow);
    }
    if (c->top != NULL) {
        blk_node_unref(c->top);
    }
    blk_graph_free(c->g);
    unlink(c->base);
    unlink(c->mid);
    unlink(c->topp);
    free(c->base);
    free(c->mid);
    free(c->topp);
}

/* A small read copies its whole cluster; the next read finds it allocated. */
static void
test_copies_whole_cluster(void)
{
    struct chain c;

    chain_open(&c, false, NULL);
    CHECK(unallocated(c.top, 0, MiB));
    CHECK(reads_as(c.cor, 1 * KiB, 2 * KiB, 0x11));
    CHECK(allocated(c.top, 0, 64 * KiB));
    CHECK(unallocated(c.top, 64 * KiB, 960 * KiB));
    CHECK(reads_as(c.top, 0, 64 * KiB, 0x11));
    /* Reads of the top image itself copy nothing. */
    CHECK(reads_as(c.top, 128 * KiB, 4 * KiB, 0x11));
    CHECK(unallocated(c.top, 64 * KiB, 960 * KiB));
    chain_close(&c);
}

/* A hole in the chain is copied as a zero cluster, data as data. */
static void
test_zero_ranges(void)
{
    struct chain c;
    uint64_t pnum = 0;
    unsigned f;

    chain_open(&c, false, NULL);
    CHECK(reads_as(c.cor, 770 * KiB, 8 * KiB, 0));
    f = status_at(c.top, 768 * KiB, &pnum);
    CHECK(f != ~0u && (f & BLK_STATUS_ZERO) && (f & BLK_STATUS_ALLOCATED));
    CHECK_INT(pnum, 64 * KiB);
    CHECK(reads_as(c.cor, 832 * KiB, 4 * KiB, 0x11));
    f = status_at(c.top, 832 * KiB, &pnum);
    CHECK(f != ~0u && (f & BLK_STATUS_DATA) && !(f & BLK_STATUS_ZERO));
    chain_close(&c);
}

/* Reads over allocated and unallocated clusters keep what the top has. */
static void
test_straddling_read(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    unsigned char buf[8 * KiB];
    struct chain c;

    chain_open(&c, false, NULL);
    memset(buf, 0x33, sizeof(buf));
    CHECK(blk_node_pwrite(c.cor, 260 * KiB, buf, sizeof(buf), 0, &err) == 0);
    CHECK(allocated(c.top, 256 * KiB, 64 * KiB));
    CHECK(unallocated(c.top, 192 * KiB, 64 * KiB));
    CHECK(reads_as(c.cor, 200 * KiB, 56 * KiB, 0x11));
    CHECK(reads_as(c.cor, 256 * KiB, 4 * KiB, 0x11));
    CHECK(reads_as(c.cor, 260 * KiB, 8 * KiB, 0x33));
    CHECK(reads_as(c.cor, 268 * KiB, 120 * KiB, 0x11));
    CHECK(allocated(c.top, 192 * KiB, 192 * KiB));
    CHECK(reads_as(c.top, 260 * KiB, 8 * KiB, 0x33));
    CHECK(reads_as(c.top, 192 * KiB, 68 * KiB, 0x11));
    chain_close(&c);
}

/* ---- concurrency through the engine ------------------------------------------ */

struct treq {
    struct blk_req req;
    struct iovec iov;
    unsigned char buf[64 * KiB];
};

static unsigned completed, want, failed;
static bool all_done;

static void
treq_cb(struct blk_req *r)
{
    failed += r->ret < 0;
    if (++completed == want) {
        all_done = true;
    }
}

static void
treq_submit(struct treq *t, struct blk_node *bs, enum blk_op op, uint64_t off,
            size_t len)
{
    memset(&t->req, 0, sizeof(t->req));
    t->iov.iov_base = t->buf;
    t->iov.iov_len = len;
    t->req.op = op;
    t->req.offset = off;
    t->req.length = len;
    t->req.iov = &t->iov;
    t->req.iovcnt = 1;
    t->req.cb = treq_cb;
    blk_req_submit(bs, &t->req);
}

static int64_t
file_length(const char *p)
{
    struct stat sb;

    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* Eight reads of one unallocated cluster at once: one copy, right data. */
static void
test_concurrent_reads(void)
{
    enum { N = 8 };
    struct treq *t = xcalloc(N, sizeof(*t));
    struct chain c;
    int64_t before;
    bool ok = true;

    chain_open_slow(&c, false, NULL, true);
    CHECK(reads_as(c.cor, 0, 4 * KiB, 0x11));   /* L2 table allocated now */
    slow_copies = 0;
    blk_node_flush(c.top, NULL);
    before = file_length(c.topp);
    completed = failed = 0;
    want = N;
    all_done = false;
    for (int i = 0; i < N; i++) {
        treq_submit(&t[i], c.cor, BLK_OP_READ, 128 * KiB, 64 * KiB);
    }
    blk_loop_run_until(&all_done);
    CHECK_INT(failed, 0);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < 64 * KiB; j++) {
            ok = ok && t[i].buf[j] == 0x11;
        }
    }
    CHECK(ok);
    CHECK(allocated(c.top, 128 * KiB, 64 * KiB));
    CHECK_INT(slow_copies, 1);
    blk_node_flush(c.top, NULL);
    /* One data cluster more, not one per read. */
    CHECK_INT(file_length(c.topp), before + 64 * KiB);
    chain_close(&c);
    free(t);
}

/* A copy racing a write to the same cluster never undoes the write. */
static void
test_copy_vs_write(void)
{
    enum { ROUNDS = 8 };
    struct treq *t = xcalloc(2 * ROUNDS, sizeof(*t));
    struct chain c;

    chain_open_slow(&c, false, NULL, true);
    completed = failed = 0;
    want = 2 * ROUNDS;
    all_done = false;
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t cl = (uint64_t)i * 64 * KiB;

        treq_submit(&t[2 * i], c.cor, BLK_OP_READ, cl, 4 * KiB);
        memset(t[2 * i + 1].buf, 0x77, 4 * KiB);
        treq_submit(&t[2 * i + 1], c.cor, BLK_OP_WRITE, cl + 32 * KiB,
                    4 * KiB);
    }
    blk_loop_run_until(&all_done);
    CHECK_INT(failed, 0);
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t cl = (uint64_t)i * 64 * KiB;

        CHECK(reads_as(c.top, cl + 32 * KiB, 4 * KiB, 0x77));
        CHECK(reads_as(c.top, cl, 32 * KiB, 0x11));
        CHECK(reads_as(c.top, cl + 36 * KiB, 28 * KiB, 0x11));
    }
    chain_close(&c);
    free(t);
}

/* ---- options ----------------------------------------------------------------- */

/* bottom=mid copies mid's data but not base's; bottom=base copies both. */
static void
test_bottom(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct chain c;

    chain_open(&c, true, "mid");
    CHECK(reads_as(c.cor, 0, 64 * KiB, 0x11));
    CHECK(unallocated(c.top, 0, 64 * KiB));
    CHECK(reads_as(c.cor, 256 * KiB, 64 * KiB, 0x22));
    CHECK(allocated(c.top, 256 * KiB, 64 * KiB));
    /* A read over both kinds: only mid's part lands in top. */
    CHECK(reads_as(c.cor, 192 * KiB, 64 * KiB, 0x11));
    CHECK(reads_as(c.cor, 320 * KiB, 64 * KiB, 0x22));
    CHECK(unallocated(c.top, 64 * KiB, 192 * KiB));
    CHECK(allocated(c.top, 256 * KiB, 128 * KiB));
    blk_node_unref(c.cor);
    c.cor = open_cor(c.g, "top", "nosuch", &err);
    CHECK(c.cor == NULL);
    CHECK(strstr(err.msg, "Bottom node 'nosuch'") != NULL);
    chain_close(&c);

    chain_open(&c, true, NULL);
    blk_node_unref(c.cor);
    c.cor = open_cor(c.g, "top", "top", &err);
    CHECK(c.cor != NULL);
    if (c.cor != NULL) {
        /* bottom is the top image itself: nothing below is copied */
        CHECK(reads_as(c.cor, 0, 64 * KiB, 0x11));
        CHECK(unallocated(c.top, 0, MiB));
    }
    chain_close(&c);
}

/* The filter needs to write into its child: a read-only one is refused. */
static void
test_read_only(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    char *p = path("ro.qcow2");
    struct blk_node *bs, *f;
    struct kv *o = kv_new_object(), *fo = kv_new_object();

    create_qcow2(p, NULL);
    kv_set(fo, "driver", kv_new_str("file"));
    kv_set(fo, "filename", kv_new_str(p));
    kv_set(o, "driver", kv_new_str("qcow2"));
    kv_set(o, "node-name", kv_new_str("ro"));
    kv_set(o, "file", fo);
    bs = blk_node_open(g, o, 0, &err);
    kv_free(o);
    CHECK(bs != NULL);
    f = open_cor(g, "ro", NULL, &err);
    CHECK(f == NULL);
    CHECK(strstr(err.msg, "read-only") != NULL);
    if (f != NULL) {
        blk_node_unref(f);
    }
    blk_node_unref(bs);
    blk_graph_free(g);
    unlink(p);
    free(p);
}

int
main(void)
{
    char *cmd;

    CHECK(mkdtemp(dir) != NULL);
    blk_loop_init(8);
    test_copies_whole_cluster();
    test_zero_ranges();
    test_straddling_read();
    test_concurrent_reads();
    test_copy_vs_write();
    test_bottom();
    test_read_only();
    cmd = xasprintf("rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    return unit_done();
}
