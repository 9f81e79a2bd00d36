/*
 * test-snapshot.c - the qcow2 snapshot ops through the driver vtable on
 * images made by qemu-img 7.2: the table QEMU writes parses field by
 * field, snapshots blk creates/applies/deletes leave images qemu-img
 * check accepts with the data each snapshot held, and errors.
 * Tests needing QEMU are skipped (counted as passes) when it is missing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

static char dir[] = "/tmp/blk-test-snapshot-" UNIT_MKTEMP_SUFFIX;
static bool have_qemu;

static bool
qemu_clean(const char *p)
{
    return unit_sh("qemu-img check -q %s >/dev/null 2>&1", p) == 0;
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

static void
fill(struct blk_node *bs, uint64_t off, size_t len, uint8_t v)
{
    struct blk_error err = BLK_ERROR_INIT;
    uint8_t *buf = xmalloc(len);

    memset(buf, v, len);
    CHECK_INT(blk_node_pwrite(bs, off, buf, len, 0, &err), 0);
    free(buf);
}

static void
free_list(struct blk_snapshot_info *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].id);
        free(l[i].name);
    }
    free(l);
}

static void
test_list_qemu_table(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    struct blk_snapshot_info *l = NULL;
    size_t n = 0;
    char *p = xasprintf("%s/list.qcow2", dir);

    if (!have_qemu) {
        CHECK(1);
        free(p);
        return;
    }
    unit_sh("qemu-img create -q -f qcow2 %s 1M && qemu-img snapshot -c first %s "
       "&& qemu-img snapshot -c 'second one' %s", p, p, p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        struct qcow2 *q = qcow2_state(bs);

        CHECK_INT(blk_node_driver(bs)->snapshot_list(bs, &l, &n, &err), 0);
        CHECK_INT(n, 2);
        if (n == 2) {
            CHECK_STR(l[0].id, "1");
            CHECK_STR(l[0].name, "first");
            CHECK_STR(l[1].id, "2");
            CHECK_STR(l[1].name, "second one");
            CHECK_INT(l[1].vm_state_size, 0);
            CHECK_INT(l[1].icount, 0);
            CHECK(l[1].date_sec > 1600000000u);
        }
        CHECK_INT(q->snapshots[0].extra_data_size, 24);
        CHECK_INT(q->snapshots[0].disk_size, 1 << 20);
        free_list(l, n);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    free(p);
}

static void
test_create_apply_delete(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    const struct blk_driver *drv;
    char *p = xasprintf("%s/cad.qcow2", dir);

    if (!have_qemu) {
        CHECK(1);
        free(p);
        return;
    }
    unit_sh("qemu-img create -q -f qcow2 %s 4M && qemu-io -c 'write -P 1 0 256k' "
       "%s >/dev/null", p, p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        free(p);
        return;
    }
    drv = blk_node_driver(bs);
    CHECK_INT(drv->snapshot_create(bs, "a", &err), 0);
    fill(bs, 0, 65536, 2);
    CHECK_INT(drv->snapshot_create(bs, "b", &err), 0);
    fill(bs, 65536, 65536, 3);
    CHECK(reads_as(bs, 0, 65536, 2) && reads_as(bs, 65536, 65536, 3));

    CHECK_INT(drv->snapshot_goto(bs, "a", &err), 0);
    CHECK(reads_as(bs, 0, 262144, 1));
    CHECK_INT(drv->snapshot_goto(bs, "2", &err), 0);      /* by id */
    CHECK(reads_as(bs, 0, 65536, 2) && reads_as(bs, 65536, 196608, 1));

    blk_error_clear(&err);
    CHECK_INT(drv->snapshot_goto(bs, "nope", &err), -ENOENT);
    CHECK_STR(err.msg, "Failed to load snapshot: No such file or directory");
    blk_error_clear(&err);
    CHECK_INT(drv->snapshot_delete(bs, "2", &err), -ENOENT);  /* names only */
    CHECK_STR(err.msg, "snapshot not found");
    blk_error_clear(&err);
    CHECK_INT(drv->snapshot_delete(bs, "a", &err), 0);
    blk_node_unref(bs);
    blk_graph_free(g);

    CHECK(qemu_clean(p));
    CHECK(unit_sh("qemu-img snapshot -l %s | grep -q ' b '", p) == 0);
    CHECK(unit_sh("qemu-img snapshot -l %s | grep -q ' a '", p) != 0);
    /* QEMU applies what blk made */
    CHECK(unit_sh("qemu-io -c 'write -P 9 0 1M' %s >/dev/null && "
             "qemu-img snapshot -a b %s && qemu-io -r -c 'read -P 2 0 64k' "
             "-c 'read -P 1 64k 192k' %s | grep -q Pattern", p, p, p) != 0);
    CHECK(qemu_clean(p));
    free(p);
}

static void
test_read_only_refused(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *p = xasprintf("%s/ro.qcow2", dir);

    if (!have_qemu) {
        CHECK(1);
        free(p);
        return;
    }
    unit_sh("qemu-img create -q -f qcow2 %s 1M", p);
    g = blk_graph_new();
    bs = blk_open_image(g, p, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        struct blk_check_result res;

        memset(&res, 0, sizeof(res));
        CHECK_INT(blk_node_driver(bs)->check(bs, &res, BLK_CHECK_FIX_LEAKS,
                                             &err), -EACCES);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
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
    test_list_qemu_table();
    test_create_apply_delete();
    test_read_only_refused();
    unit_sh("rm -rf %s", dir);
    return unit_done();
}
