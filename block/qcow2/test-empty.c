/*
 * test-empty.c - the qcow2 make_empty op (both of QEMU 7.2's ways: the
 * rewrite of an image without snapshots, and the full discard that keeps
 * what snapshots share) and snapshot_load_tmp, on images made by
 * qemu-img 7.2, checked with qemu-img check afterwards.
 * Tests needing QEMU are skipped (counted as passes) when it is missing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

static char dir[] = "/tmp/blk-test-empty-" UNIT_MKTEMP_SUFFIX;
static bool have_qemu;

static bool
qemu_clean(const char *p)
{
    return unit_sh("qemu-img check -q %s >/dev/null 2>&1", p) == 0;
}

/* Nothing allocated in the top layer (qemu-img map: no depth 0). */
static bool
qemu_top_empty(const char *p)
{
    return unit_sh("qemu-img map --output=json %s | grep -q '\"depth\": 0'", p) != 0;
}

/* The image reads back as byte v over [off, off+len). */
static bool
reads_as(struct blk_node *bs, uint64_t off, size_t len, uint8_t v)
{
    struct blk_error err = BLK_ERROR_INIT;
    uint8_t *buf = xmalloc(len);
    bool ok = blk_node_pread(bs, off, buf, len, &err) == 0;

    for (size_t i = 0; ok && i < len; i++) {
        ok = buf[i] == v;
    }
    free(buf);
    return ok;
}

static long long
file_size(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* base (4M of 1s) <- top with data, zeroes and a compressed cluster. */
static char *
make_chain(const char *name, const char *top_opts)
{
    char *top = xasprintf("%s/%s.qcow2", dir, name);

    unit_sh("cd %s && qemu-img create -q -f qcow2 %s-base.qcow2 4M && "
       "qemu-io -c 'write -P 1 0 4M' %s-base.qcow2 >/dev/null && "
       "qemu-img create -q -f qcow2 %s -b %s-base.qcow2 -F qcow2 %s.qcow2 && "
       "qemu-io -c 'write -P 2 0 1M' -c 'write -z 1M 256k' "
       "-c 'write -c -P 3 2M 64k' %s.qcow2 >/dev/null",
       dir, name, name, top_opts, name, name, name);
    return top;
}

static void
test_rewrite_empty(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = make_chain("fast", "");
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        struct qcow2 *q = qcow2_state(bs);

        CHECK_INT(blk_node_driver(bs)->make_empty(bs, &err), 0);
        CHECK_INT(q->l1_offset, 3 * 65536);
        CHECK_INT(q->reftable_offset, 65536);
        CHECK(reads_as(bs, 0, 4 << 20, 1));     /* all from the base */
        /* and it stays usable */
        CHECK_INT(blk_node_pwrite(bs, 65536, "x", 1, 0, &err), 0);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(qemu_clean(p));
    /* header, refcount table, refcount block, L1, one L2 and the data */
    CHECK_INT(file_size(p), 6 * 65536);
    free(p);
}

static void
test_rewrite_file_size(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = make_chain("size", "-o lazy_refcounts=on");
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_driver(bs)->make_empty(bs, &err), 0);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK_INT(file_size(p), 4 * 65536);
    CHECK(qemu_clean(p));
    CHECK(qemu_top_empty(p));
    free(p);
}

static void
test_discard_keeps_snapshot(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = make_chain("snap", "");
    unit_sh("qemu-img snapshot -c s1 %s && "
       "qemu-io -c 'write -P 4 3M 512k' %s >/dev/null", p, p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_driver(bs)->make_empty(bs, &err), 0);
        CHECK(reads_as(bs, 0, 4 << 20, 1));
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(qemu_clean(p));
    CHECK(qemu_top_empty(p));
    /* what the snapshot holds is still there */
    CHECK(unit_sh("qemu-img snapshot -a s1 %s && qemu-io -r -c 'read -P 2 0 1M' "
             "-c 'read -P 3 2M 64k' %s | grep -q Pattern", p, p) != 0);
    CHECK(qemu_clean(p));
    free(p);
}

static void
test_v2_discards(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = make_chain("v2", "-o compat=0.10");
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_driver(bs)->make_empty(bs, &err), 0);
        CHECK(reads_as(bs, 0, 4 << 20, 1));
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(qemu_clean(p));
    CHECK(qemu_top_empty(p));
    free(p);
}

static void
test_read_only_refused(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *p;

    if (!have_qemu) {
        CHECK(1);
        return;
    }
    p = make_chain("ro", "");
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_driver(bs)->make_empty(bs, &err), -EACCES);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(!qemu_top_empty(p));
    free(p);
}

static void
test_load_tmp(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    const struct blk_driver *drv;
    char *p = xasprintf("%s/tmp.qcow2", dir);

    if (!have_qemu) {
        CHECK(1);
        free(p);
        return;
    }
    unit_sh("qemu-img create -q -f qcow2 %s 1M && qemu-io -c 'write -P 1 0 1M' %s "
       ">/dev/null && qemu-img snapshot -c one %s && qemu-io -c 'write -P 2 0 "
       "64k' %s >/dev/null && qemu-img snapshot -c two %s && qemu-io -c "
       "'write -P 3 0 1M' %s >/dev/null", p, p, p, p, p, p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        drv = blk_node_driver(bs);
        CHECK_INT(drv->snapshot_load_tmp(bs, "1", NULL, &err), -EINVAL);
        CHECK_STR(err.msg, "Device is not readonly");
        blk_node_unref(bs);
    }
    blk_error_clear(&err);
    bs = blk_open_image(g, p, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        drv = blk_node_driver(bs);
        CHECK_INT(drv->snapshot_load_tmp(bs, "nope", NULL, &err), -ENOENT);
        CHECK_STR(err.msg, "Can't find snapshot");
        blk_error_clear(&err);
        CHECK_INT(drv->snapshot_load_tmp(bs, "1", "two", &err), -ENOENT);
        blk_error_clear(&err);
        CHECK(reads_as(bs, 0, 1 << 20, 3));
        CHECK_INT(drv->snapshot_load_tmp(bs, NULL, "two", &err), 0);
        CHECK(reads_as(bs, 0, 65536, 2) && reads_as(bs, 65536, 983040, 1));
        CHECK_INT(drv->snapshot_load_tmp(bs, "1", "one", &err), 0);
        CHECK(reads_as(bs, 0, 1 << 20, 1));
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    /* nothing was written */
    CHECK(qemu_clean(p));
    CHECK(unit_sh("qemu-io -r -c 'read -P 3 0 1M' %s | grep -q Pattern", p) != 0);
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
    test_rewrite_empty();
    test_rewrite_file_size();
    test_discard_keeps_snapshot();
    test_v2_discards();
    test_read_only_refused();
    test_load_tmp();
    unit_sh("rm -rf %s", dir);
    return unit_done();
}
