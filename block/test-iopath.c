/*
 * test-iopath.c - edge cases of the blocking request path (block/io.c)
 * and the graph (block/node.c): read-modify-write at request edges,
 * max_transfer splits of many-iovec requests through bounce buffers,
 * the protocol length cache, bitmaps across truncate, and graph cycles.
 * Uses "grow-mem", a growable memory protocol driver that asserts the
 * core's promises (aligned offsets, lengths and memory; max_transfer).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "block/bitmap.h"
#include "block/block.h"
#include "util/xalloc.h"

#define CAP (1u << 20)

struct growmem {
    unsigned char *data;        /* CAP bytes */
    uint64_t length;
};

static int
gm_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    struct growmem *m = blk_node_state(bs);
    struct blk_limits l = { 0 };

    m->data = xzalloc(CAP);
    m->length = (uint64_t)kv_get_int(opts, "size", 0);
    l.request_alignment = (uint32_t)kv_get_int(opts, "align", 1);
    l.max_transfer = (uint64_t)kv_get_int(opts, "max-transfer", 0);
    l.min_mem_alignment = (uint32_t)kv_get_int(opts, "mem-align", 0);
    blk_node_set_limits(bs, &l);
    return 0;
}

static void
gm_close(struct blk_node *bs)
{
    struct growmem *m = blk_node_state(bs);

    free(m->data);
}

static void
gm_check(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
         int iovcnt)
{
    const struct blk_limits *l = blk_node_get_limits(bs);
    uint64_t sum = 0;
    int i;

    assert(off % l->request_alignment == 0);
    assert(len % l->request_alignment == 0);
    assert(l->max_transfer == 0 || len <= l->max_transfer);
    for (i = 0; i < iovcnt; i++) {
        assert(l->min_mem_alignment <= 1 ||
               (((uintptr_t)iov[i].iov_base | iov[i].iov_len) &
                (l->min_mem_alignment - 1)) == 0);
        sum += iov[i].iov_len;
    }
    assert(iov == NULL || sum == len);
}

static int
gm_preadv(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
          int iovcnt, unsigned flags, struct blk_error *err)
{
    struct growmem *m = blk_node_state(bs);
    int i;

    gm_check(bs, off, len, iov, iovcnt);
    if (off > CAP || len > CAP - off) {
        return blk_error_set(err, -EINVAL, "beyond the memory");
    }
    for (i = 0; i < iovcnt; i++) {
        memcpy(iov[i].iov_base, m->data + off, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return 0;
}

static int
gm_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
           struct iovec *iov, int iovcnt, unsigned flags,
           struct blk_error *err)
{
    struct growmem *m = blk_node_state(bs);
    int i;

    gm_check(bs, off, len, iov, iovcnt);
    if (off > CAP || len > CAP - off) {
        return blk_error_set(err, -EINVAL, "beyond the memory");
    }
    if (off + len > m->length) {
        m->length = off + len;
    }
    for (i = 0; i < iovcnt; i++) {
        memcpy(m->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return 0;
}

static int64_t
gm_get_length(struct blk_node *bs)
{
    struct growmem *m = blk_node_state(bs);

    return (int64_t)m->length;
}

static int
gm_truncate(struct blk_node *bs, uint64_t len, bool exact,
            enum blk_prealloc prealloc, struct blk_error *err)
{
    struct growmem *m = blk_node_state(bs);

    if (len > CAP) {
        return blk_error_set(err, -EFBIG, "too big");
    }
    if (len < m->length) {
        memset(m->data + len, 0, m->length - len);
    }
    m->length = len;
    return 0;
}

static const struct blk_driver gm_driver = {
    .name = "grow-mem",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct growmem),
    .open = gm_open,
    .close = gm_close,
    .preadv = gm_preadv,
    .pwritev = gm_pwritev,
    .get_length = gm_get_length,
    .truncate = gm_truncate,
};

static struct blk_node *
open_gm(struct blk_graph *g, unsigned size, unsigned align, unsigned max,
        unsigned mem_align)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *bs;

    kv_set(o, "size", kv_new_int(size));
    kv_set(o, "align", kv_new_int(align));
    kv_set(o, "max-transfer", kv_new_int(max));
    kv_set(o, "mem-align", kv_new_int(mem_align));
    bs = blk_node_open_driver(g, &gm_driver, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    if (bs == NULL) {
        fprintf(stderr, "open: %s\n", err.msg);
    }
    return bs;
}

static unsigned char *
pattern(size_t len, unsigned seed)
{
    unsigned char *p = xmalloc(len ? len : 1);
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 9));
        if (p[i] == 0) {
            p[i] = 1;
        }
    }
    return p;
}

/* The whole disk reads back as the model. */
static bool
matches(struct blk_node *bs, const unsigned char *model, size_t size)
{
    unsigned char *buf = xmalloc(size);
    struct blk_error err = BLK_ERROR_INIT;
    bool ok;

    ok = blk_node_pread(bs, 0, buf, size, &err) == 0 &&
         memcmp(buf, model, size) == 0;
    free(buf);
    return ok;
}

/* Unaligned writes, zeroes and reads at every kind of request edge. */
static void
test_rmw_edges(void)
{
    static const struct { uint64_t off, len; } cases[] = {
        { 100, 50 },            /* head and tail in the same block */
        { 0, 1 },
        { 511, 1 },
        { 511, 2 },             /* crosses one boundary, len < align */
        { 1000, 3000 },         /* head, middle, tail */
        { 512, 100 },           /* aligned head, short tail */
        { 700, 1348 },          /* unaligned head, aligned end */
        { 3, 20000 },           /* many blocks */
        { 65535, 1 },           /* last byte of the disk */
    };
    const size_t size = 65536;
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_gm(g, size, 512, 0, 0);
    struct blk_error err = BLK_ERROR_INIT;
    unsigned char *model = pattern(size, 1);
    size_t i;

    CHECK(blk_node_pwrite(bs, 0, model, size, 0, &err) == 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t off = cases[i].off, len = cases[i].len;
        unsigned char *p = pattern(len, (unsigned)i + 7);
        unsigned char *r = xmalloc(len);

        CHECK(blk_node_pwrite(bs, off, p, len, 0, &err) == 0);
        memcpy(model + off, p, len);
        CHECK(matches(bs, model, size));
        CHECK(blk_node_pread(bs, off, r, len, &err) == 0);
        CHECK(memcmp(r, p, len) == 0);
        /* Zero a range shifted by a few bytes, so edges differ. */
        off = off + 3 < size ? off + 3 : off;
        len = off + len <= size ? len : size - off;
        CHECK(blk_node_zero(bs, off, len, 0, &err) == 0);
        memset(model + off, 0, len);
        CHECK(matches(bs, model, size));
        free(p);
        free(r);
    }
    free(model);
    blk_node_unref(bs);
    blk_graph_free(g);
}

/*
 * A request in many odd-sized iovecs, in misaligned memory, longer than
 * max_transfer: split and bounced without losing or moving a byte.
 */
static void
test_split_iovecs(void)
{
    const size_t size = 262144;
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_gm(g, size, 512, 4096, 512);
    struct blk_error err = BLK_ERROR_INIT;
    unsigned char *model = xzalloc(size);
    unsigned char *mem = xmalloc(size + 64);
    static const size_t cuts[] = { 1, 511, 513, 4095, 4097, 3, 10000, 1000 };
    struct iovec iov[16];
    uint64_t off = 1536, len = 0;
    int n = 0, k;

    /* Memory starts 1 byte off any alignment. */
    for (k = 0; k < (int)(sizeof(cuts) / sizeof(cuts[0])); k++) {
        iov[n].iov_base = mem + 1 + len;
        iov[n].iov_len = cuts[k];
        len += cuts[k];
        n++;
    }
    /* An aligned length: trim the last iovec. */
    iov[n - 1].iov_len -= len % 512;
    len -= len % 512;
    {
        unsigned char *p = pattern(len, 3);

        memcpy(mem + 1, p, len);
        memcpy(model + off, p, len);
        free(p);
    }
    CHECK(blk_node_pwritev(bs, off, len, iov, n, 0, &err) == 0);
    CHECK(matches(bs, model, size));
    memset(mem, 0xee, size + 64);
    CHECK(blk_node_preadv(bs, off, len, iov, n, 0, &err) == 0);
    CHECK(memcmp(mem + 1, model + off, len) == 0);
    CHECK(mem[0] == 0xee && mem[1 + len] == 0xee);

    /* Unaligned offset too: RMW on top of the split. */
    off = 777;
    memset(mem, 0x42, size + 64);
    CHECK(blk_node_pwritev(bs, off, len, iov, n, 0, &err) == 0);
    memset(model + off, 0x42, len);
    CHECK(matches(bs, model, size));
    /* Zeroes over many max_transfer chunks, unaligned at both ends. */
    CHECK(blk_node_zero(bs, 100, 50000, 0, &err) == 0);
    memset(model + 100, 0, 50000);
    CHECK(matches(bs, model, size));
    free(mem);
    free(model);
    blk_node_unref(bs);
    blk_graph_free(g);
}

/*
 * The cached length of a protocol node follows what the driver really
 * wrote: an unaligned write past the end writes (and so extends the file
 * to) whole blocks.
 */
static void
test_length_cache(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_gm(g, 0, 512, 0, 0);
    struct blk_node *f;
    struct blk_error err = BLK_ERROR_INIT;
    unsigned char buf[100];

    memset(buf, 9, sizeof(buf));
    CHECK(blk_node_get_length(bs) == 0);            /* now cached */
    CHECK(blk_create_pwrite(bs, 0, buf, sizeof(buf), &err) == 0);
    CHECK_INT(gm_get_length(bs), 512);
    CHECK_INT(blk_node_get_length(bs), 512);
    CHECK(blk_create_pwrite(bs, 1000, buf, sizeof(buf), &err) == 0);
    CHECK_INT(blk_node_get_length(bs), gm_get_length(bs));
    CHECK(blk_node_truncate(bs, 4096, true, BLK_PREALLOC_OFF, &err) == 0);
    CHECK_INT(blk_node_get_length(bs), 4096);
    /* Through a filter: the filter has no cache, the protocol node does. */
    {
        struct kv *o = kv_new_object();

        kv_set(o, "driver", kv_new_str("raw"));
        kv_set(o, "file", kv_new_str(blk_node_get_name(bs)));
        f = blk_node_open(g, o, BLK_OPEN_RDWR, &err);
        kv_free(o);
    }
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(blk_node_truncate(f, 8192, true, BLK_PREALLOC_OFF, &err) == 0);
        CHECK_INT(blk_node_get_length(f), 8192);
        CHECK_INT(blk_node_get_length(bs), 8192);
        blk_node_unref(f);
    }
    blk_node_unref(bs);
    blk_graph_free(g);
}

/* Bitmaps follow the node's size across truncate, and record past the old end. */
static void
test_bitmap_truncate(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_gm(g, 65536, 1, 0, 0);
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *bm;
    unsigned char buf[512];

    memset(buf, 1, sizeof(buf));
    bm = blk_bitmap_create(bs, "b0", 512, &err);
    CHECK(bm != NULL);
    CHECK(blk_node_truncate(bs, 131072, true, BLK_PREALLOC_OFF, &err) == 0);
    CHECK_INT(blk_bitmap_size(bm), 131072);
    CHECK(blk_node_pwrite(bs, 100000, buf, sizeof(buf), 0, &err) == 0);
    CHECK(blk_bitmap_get(bm, 100000));
    CHECK(blk_bitmap_count(bm) >= 512);
    CHECK(blk_node_truncate(bs, 4096, true, BLK_PREALLOC_OFF, &err) == 0);
    CHECK_INT(blk_bitmap_size(bm), 4096);
    CHECK_INT(blk_bitmap_count(bm), 0);
    blk_node_unref(bs);
    blk_graph_free(g);
}

/* A filter that opens its "file" child (any driver) and nothing else. */
static int
filt_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    return blk_node_open_child(bs, opts, "file", "file", BLK_ROLE_FILTERED,
                               false, err) ? 0 : -EINVAL;
}

/* A size of its own, as a format knows before its children are attached. */
static int64_t
filt_get_length(struct blk_node *bs)
{
    return 4096;
}

static const struct blk_driver filt_driver = {
    .name = "test-filter",
    .threads = BLK_THREADS_PARALLEL,
    .is_filter = true,
    .open = filt_open,
    .get_length = filt_get_length,
};

/*
 * A child naming its own parent (the node being opened is already in the
 * graph) or an edge closing a loop is refused: a cycle would recurse
 * forever and leak every node on it.
 */
static void
test_graph_cycle(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *a, *b, *m;
    struct kv *o = kv_new_object(), *inner = kv_new_object();

    kv_set(inner, "driver", kv_new_str("raw"));
    kv_set(inner, "file", kv_new_str("a"));
    kv_set(o, "node-name", kv_new_str("a"));
    kv_set(o, "file", inner);
    a = blk_node_open_driver(g, &filt_driver, o, 0, &err);
    kv_free(o);
    CHECK(a == NULL);
    CHECK(strstr(err.msg, "loop") != NULL);
    CHECK(blk_graph_next_node(g, NULL) == NULL);    /* nothing left open */
    blk_error_clear(&err);

    /* Two existing nodes: b over m, then m over b. */
    m = open_gm(g, 4096, 1, 0, 0);
    o = kv_new_object();
    kv_set(o, "node-name", kv_new_str("b"));
    kv_set(o, "file", kv_new_str(blk_node_get_name(m)));
    b = blk_node_open_driver(g, &filt_driver, o, 0, &err);
    kv_free(o);
    CHECK(b != NULL);
    CHECK(blk_node_attach_child(m, b, "x", BLK_ROLE_DATA, &err) == NULL);
    CHECK(strstr(err.msg, "loop") != NULL);
    blk_node_unref(b);
    blk_node_unref(m);
    blk_graph_free(g);
}

/* Nobody may take write permission on a read-only node. */
static void
test_write_perm_on_read_only(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *ro, *raw;
    struct blk_backend *be;

    kv_set(o, "node-name", kv_new_str("ro"));
    kv_set(o, "size", kv_new_int(4096));
    ro = blk_node_open_driver(g, &gm_driver, o, 0, &err);
    kv_free(o);
    CHECK(ro != NULL && blk_node_is_read_only(ro));
    o = kv_new_object();
    kv_set(o, "driver", kv_new_str("raw"));
    kv_set(o, "file", kv_new_str("ro"));
    raw = blk_node_open(g, o, BLK_OPEN_RDWR, &err);
    kv_free(o);
    CHECK(raw == NULL);
    CHECK(strstr(err.msg, "read-only") != NULL);
    blk_error_clear(&err);
    blk_node_unref(raw);
    be = blk_backend_new(g, "w", ro, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                         BLK_PERM_ALL, &err);
    CHECK(be == NULL);
    CHECK(strstr(err.msg, "read-only") != NULL);
    blk_error_clear(&err);
    be = blk_backend_new(g, "r", ro, BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                         &err);
    CHECK(be != NULL);
    blk_backend_free(be);
    blk_node_unref(ro);
    blk_graph_free(g);
}

/* Offsets and lengths near 2^64 fail cleanly, on roots and on children. */
static void
test_overflow(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs = open_gm(g, 65536, 512, 0, 0);
    struct blk_error err = BLK_ERROR_INIT;
    unsigned char buf[64];
    struct iovec v = { buf, sizeof(buf) };

    CHECK_INT(blk_node_pread(bs, UINT64_MAX - 10, buf, 20, &err), -EIO);
    blk_error_clear(&err);
    CHECK_INT(blk_node_pread(bs, INT64_MAX, buf, 1, &err), -EIO);
    blk_error_clear(&err);
    CHECK_INT(blk_node_zero(bs, 512, UINT64_MAX - 100, 0, &err), -EIO);
    blk_error_clear(&err);
    CHECK_INT(blk_node_discard(bs, UINT64_MAX - 511, 512, &err), -EIO);
    blk_error_clear(&err);
    /* Not a root: no size check, but the end must stay within int64. */
    CHECK_INT(blk_create_pread(bs, INT64_MAX - 5, buf, sizeof(buf), &err),
              -EIO);
    blk_error_clear(&err);
    CHECK_INT(blk_create_pwrite(bs, UINT64_MAX - 10, buf, 20, &err), -EIO);
    blk_error_clear(&err);
    CHECK_INT(blk_node_preadv(bs, 0, sizeof(buf), &v, 1, 0, &err), 0);
    blk_node_unref(bs);
    blk_graph_free(g);
}

int
main(void)
{
    blk_loop_init(4);
    test_rmw_edges();
    test_split_iovecs();
    test_length_cache();
    test_bitmap_truncate();
    test_graph_cycle();
    test_write_perm_on_read_only();
    test_overflow();
    uv_loop_close(blk_loop());
    return unit_done();
}
