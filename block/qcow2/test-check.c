/*
 * test-check.c - the qcow2 check, amend and get_info ops on images made
 * by qemu-img 7.2 and then damaged: counts and QEMU's messages, repairs
 * that qemu-img check accepts, no writes without fix, refcount width
 * changes, and the format-specific info object.
 * Tests needing QEMU are skipped (counted as passes) when it is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

static char dir[] = "/tmp/blk-test-check-" UNIT_MKTEMP_SUFFIX;
static bool have_qemu;

static char *
path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

/* Overwrite bytes of a file at off. */
static void
poke(const char *p, long off, const void *buf, size_t n)
{
    int fd = open(p, O_WRONLY);

    assert(fd >= 0);
    assert(pwrite(fd, buf, n, off) == (ssize_t)n);
    close(fd);
}

static void
poke16(const char *p, long off, unsigned v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    poke(p, off, b, 2);
}

/* A small image like the corpus' good one: data at clusters 5 and 6. */
static char *
good_image(const char *name)
{
    char *p = path(name);

    unit_sh("rm -f %s && qemu-img create -q -f qcow2 %s 1M && "
       "qemu-io -c 'write -P 0x11 0 128k' %s >/dev/null", p, p, p);
    return p;
}

struct checked {
    struct blk_check_result res;
    struct sbuf log;
    int ret;
    struct blk_error err;
};

/* Open p (read-write when fix) for check and run the check op. */
static void
run_check(const char *p, unsigned fix, struct checked *c)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs;

    memset(c, 0, sizeof(*c));
    sbuf_init(&c->log);
    bs = blk_open_image(g, p, "qcow2", false,
                        BLK_OPEN_CHECK | (fix ? BLK_OPEN_RDWR : 0), &c->err);
    if (bs == NULL) {
        c->ret = c->err.code;
        blk_graph_free(g);
        return;
    }
    c->res.log = &c->log;
    c->ret = blk_node_driver(bs)->check(bs, &c->res, fix, &c->err);
    blk_node_unref(bs);
    blk_graph_free(g);
}

static void
release(struct checked *c)
{
    sbuf_release(&c->log);
}

static bool
qemu_clean(const char *p)
{
    return unit_sh("qemu-img check -q %s >/dev/null 2>&1", p) == 0;
}

static void
test_clean(void)
{
    struct checked c;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = good_image("clean.qcow2");
    run_check(p, 0, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.corruptions, 0);
    CHECK_INT(c.res.leaks, 0);
    CHECK_INT(c.res.check_errors, 0);
    CHECK(c.res.has_stats);
    CHECK_INT(c.res.allocated_clusters, 2);
    CHECK_INT(c.res.total_clusters, 16);
    CHECK_INT(c.res.fragmented_clusters, 0);
    CHECK_INT(c.res.image_end_offset, 7 * 65536);
    CHECK_STR(c.log.buf, "");
    release(&c);
    free(p);
}

static void
test_leak(void)
{
    struct checked c;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = good_image("leak.qcow2");
    unit_sh("truncate -s 512k %s", p);
    poke16(p, 0x20000 + 2 * 7, 1);
    run_check(p, 0, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.leaks, 1);
    CHECK_INT(c.res.corruptions, 0);
    CHECK_STR(c.log.buf, "Leaked cluster 7 refcount=1 reference=0\n");
    CHECK_INT(c.res.image_end_offset, 8 * 65536);
    release(&c);

    run_check(p, BLK_CHECK_FIX_LEAKS, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.leaks, 0);
    CHECK_INT(c.res.leaks_fixed, 1);
    CHECK_STR(c.log.buf, "Leaked cluster 7 refcount=1 reference=0\n"
              "Repairing cluster 7 refcount=1 reference=0\n");
    release(&c);
    CHECK(qemu_clean(p));
    free(p);
}

static void
test_rebuild(void)
{
    struct checked c;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = good_image("zero.qcow2");
    poke16(p, 0x20000 + 2 * 5, 0);
    run_check(p, 0, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.corruptions, 2);
    CHECK_STR(c.log.buf, "ERROR cluster 5 refcount=0 reference=1\n"
              "ERROR OFLAG_COPIED data cluster: l2_entry=8000000000050000 "
              "refcount=0\n");
    release(&c);

    /* Leak repair cannot fix a missing reference. */
    run_check(p, BLK_CHECK_FIX_LEAKS, &c);
    CHECK_INT(c.ret, -EIO);
    CHECK_INT(c.res.check_errors, 1);
    CHECK(strstr(c.log.buf, "ERROR need to rebuild refcount structures\n"));
    release(&c);

    run_check(p, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.corruptions, 0);
    CHECK_INT(c.res.corruptions_fixed, 1);
    CHECK_STR(c.log.buf, "ERROR cluster 5 refcount=0 reference=1\n"
              "Rebuilding refcount structure\n"
              "Repairing cluster 1 refcount=1 reference=0\n"
              "Repairing cluster 2 refcount=1 reference=0\n");
    release(&c);
    CHECK(qemu_clean(p));
    run_check(p, 0, &c);
    CHECK_INT(c.res.corruptions + c.res.leaks + c.res.check_errors, 0);
    release(&c);
    free(p);
}

static void
test_double_reference(void)
{
    static const uint8_t into_l1[8] = { 0x80, 0, 0, 0, 0, 3, 0, 0 };
    struct checked c;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = good_image("double.qcow2");
    poke(p, 0x40008, into_l1, 8);
    run_check(p, 0, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.corruptions, 1);
    CHECK_INT(c.res.leaks, 1);
    CHECK(strstr(c.log.buf, "ERROR cluster 3 refcount=1 reference=2\n"));
    CHECK(strstr(c.log.buf, "Leaked cluster 6 refcount=1 reference=0\n"));
    release(&c);
    free(p);
}

/* Without fix, the image file's bytes do not change at all. */
static void
test_no_writes(void)
{
    struct checked c;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = good_image("nowrite.qcow2");
    poke16(p, 0x20000 + 2 * 5, 0);
    unit_sh("sha256sum < %s > %s.sum", p, p);
    run_check(p, 0, &c);
    release(&c);
    CHECK(unit_sh("sha256sum < %s | cmp -s - %s.sum", p, p) == 0);
    free(p);
}

/* A 1 TiB image with a few clusters: memory and time follow the file. */
static void
test_sparse_huge(void)
{
    struct checked c;
    char *p = path("huge.qcow2");

    if (!have_qemu) {
        CHECK(1);
        free(p);
        return;
    }
    unit_sh("qemu-img create -q -f qcow2 %s 1T && qemu-io -c 'write -P 1 0 64k' "
       "-c 'write -P 2 1000G 64k' %s >/dev/null", p, p);
    run_check(p, 0, &c);
    CHECK_INT(c.ret, 0);
    CHECK_INT(c.res.total_clusters, 16777216);
    CHECK_INT(c.res.allocated_clusters, 2);
    CHECK_INT(c.res.corruptions + c.res.leaks, 0);
    release(&c);
    free(p);
}

static struct blk_node *
open_rw(struct blk_graph *g, const char *p)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR,
                                         &err);

    if (bs == NULL) {
        fprintf(stderr, "open %s: %s\n", p, err.msg);
    }
    return bs;
}

static void
test_amend_refcount_bits(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    struct kv *o;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = good_image("amend.qcow2");
    g = blk_graph_new();
    bs = open_rw(g, p);
    CHECK(bs != NULL);
    if (bs != NULL) {
        o = kv_new_object();
        kv_set(o, "refcount-bits", kv_new_int(4));
        CHECK_INT(blk_node_driver(bs)->amend(bs, o, false, &err), 0);
        kv_free(o);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(qemu_clean(p));
    CHECK(unit_sh("qemu-img info %s | grep -q 'refcount bits: 4'", p) == 0);
    CHECK(unit_sh("qemu-io -r -c 'read -P 0x11 0 128k' %s | grep -q Pattern", p)
          != 0);

    /* A refcount of 2 does not fit in one bit: QEMU's message. */
    unit_sh("qemu-img snapshot -c s %s", p);
    g = blk_graph_new();
    bs = open_rw(g, p);
    if (bs != NULL) {
        blk_error_clear(&err);
        o = kv_new_object();
        kv_set(o, "refcount-bits", kv_new_int(1));
        CHECK_INT(blk_node_driver(bs)->amend(bs, o, false, &err), -EINVAL);
        CHECK_STR(err.msg, "Cannot decrease refcount entry width to 1 bits: "
                  "Cluster at offset 0x40000 has a refcount of 2");
        kv_free(o);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(qemu_clean(p));
    free(p);
}

static void
test_info(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    struct sbuf sb = SBUF_INIT;
    struct kv *info;
    char *p = path("info.qcow2");

    if (!have_qemu) {
        CHECK(1);
        free(p);
        return;
    }
    unit_sh("qemu-img create -q -f qcow2 -o lazy_refcounts=on %s 1M", p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        info = kv_new_object();
        CHECK_INT(blk_node_driver(bs)->get_info(bs, info, &err), 0);
        kv_to_json(info, &sb);
        CHECK_STR(sb.buf, "{\"type\":\"qcow2\",\"data\":{\"compat\":\"1.1\","
                  "\"compression-type\":\"zlib\",\"lazy-refcounts\":true,"
                  "\"refcount-bits\":16,\"corrupt\":false,"
                  "\"extended-l2\":false}}");
        kv_free(info);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    sbuf_reset(&sb);

    unit_sh("qemu-img create -q -f qcow2 -o compat=0.10 %s 1M", p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, 0, &err);
    if (bs != NULL) {
        info = kv_new_object();
        CHECK_INT(blk_node_driver(bs)->get_info(bs, info, &err), 0);
        kv_to_json(info, &sb);
        CHECK_STR(sb.buf, "{\"type\":\"qcow2\",\"data\":{\"compat\":\"0.10\","
                  "\"compression-type\":\"zlib\",\"refcount-bits\":16}}");
        kv_free(info);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    sbuf_release(&sb);
    free(p);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    have_qemu = system("qemu-img --version >/dev/null 2>&1") == 0 &&
                system("qemu-io --version >/dev/null 2>&1") == 0;
    test_clean();
    test_leak();
    test_rebuild();
    test_double_reference();
    test_no_writes();
    test_sparse_huge();
    test_amend_refcount_bits();
    test_info();
    unit_sh("rm -rf %s", dir);
    return unit_done();
}
