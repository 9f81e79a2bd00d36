/*
 * test-reopen.c - reopen as a transaction: raw over file goes read-only ->
 * read-write -> read-only, with the image locks following (a second writer
 * is refused exactly while we write); option changes are merged; a driver
 * without reopen support refuses and nothing changes.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "tests/unit/memdrv.h"
#include "block/block.h"

static char path[] = "/tmp/blk-test-reopen-" UNIT_MKTEMP_SUFFIX;

static struct blk_node *
open_raw(struct blk_graph *g, unsigned flags, struct blk_error *err)
{
    return blk_open_image(g, path, "raw", false, flags, err);
}

static void
test_raw_file(void)
{
    struct blk_graph *g = blk_graph_new(), *g2 = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs = open_raw(g, 0, &err), *other;
    struct kv *ch;
    unsigned char buf[512];

    CHECK(bs != NULL);
    if (bs == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    memset(buf, 0x11, sizeof(buf));
    CHECK_INT(blk_node_pwrite(bs, 0, buf, sizeof(buf), 0, &err), -EPERM);
    blk_error_clear(&err);

    CHECK_INT(blk_node_reopen(bs, NULL, false, &err), 0);
    CHECK(!blk_node_is_read_only(bs) && !blk_node_is_read_only(blk_node_file(bs)));
    CHECK_INT(blk_node_pwrite(bs, 0, buf, sizeof(buf), 0, &err), 0);
    /*
     * We hold the write lock now (QEMU's raw takes bytes 100-101 and shares
     * everything): a reader that does not share write is refused.
     */
    {
        unsigned perm, shared;

        blk_node_get_perm(blk_node_file(bs), &perm, &shared);
        CHECK(perm & BLK_PERM_WRITE);
    }
    other = open_raw(g2, 0, &err);
    CHECK(other != NULL);
    if (other != NULL) {
        CHECK(blk_backend_new(g2, NULL, other, BLK_PERM_CONSISTENT_READ,
                              BLK_PERM_CONSISTENT_READ |
                              BLK_PERM_WRITE_UNCHANGED, &err) == NULL);
        CHECK(strstr(err.msg, "Failed to get shared \"write\" lock") != NULL);
        blk_error_clear(&err);
        blk_node_unref(other);
    }

    /* Changed options are merged over the node's. */
    ch = kv_new_object();
    kv_set(ch, "discard", kv_new_str("unmap"));
    CHECK_INT(blk_node_reopen(bs, ch, true, &err), 0);
    kv_free(ch);
    CHECK_STR(kv_get_str(blk_node_options(bs), "discard", ""), "unmap");
    CHECK_STR(kv_get_str(blk_node_options(bs), "driver", ""), "raw");
    /* The generic options take effect, not only the option tree. */
    CHECK(blk_node_discard_unmap(bs));
    CHECK(blk_node_discard_unmap(blk_node_file(bs)));    /* inherited */
    ch = kv_new_object();
    kv_set(ch, "discard", kv_new_str("ignore"));
    kv_set(ch, "detect-zeroes", kv_new_str("unmap"));
    CHECK_INT(blk_node_reopen(bs, ch, true, &err), -EINVAL);
    CHECK(strstr(err.msg, "detect-zeroes") != NULL);
    blk_error_clear(&err);
    kv_free(ch);
    CHECK(blk_node_discard_unmap(bs));
    CHECK_STR(kv_get_str(blk_node_options(bs), "discard", ""), "unmap");
    ch = kv_new_object();
    kv_set(ch, "node-name", kv_new_str("renamed"));
    CHECK_INT(blk_node_reopen(bs, ch, true, &err), -EINVAL);
    CHECK(strstr(err.msg, "node-name") != NULL);
    blk_error_clear(&err);
    kv_free(ch);
    CHECK(blk_node_is_read_only(bs));
    CHECK_INT(blk_node_pwrite(bs, 0, buf, sizeof(buf), 0, &err), -EPERM);
    blk_error_clear(&err);
    /* Read-only again: the write lock is gone. */
    {
        unsigned perm, shared;

        blk_node_get_perm(blk_node_file(bs), &perm, &shared);
        CHECK(!(perm & BLK_PERM_WRITE));
    }
    other = open_raw(g2, 0, &err);
    CHECK(other != NULL);
    if (other != NULL) {
        struct blk_backend *be;

        be = blk_backend_new(g2, NULL, other, BLK_PERM_CONSISTENT_READ,
                             BLK_PERM_CONSISTENT_READ |
                             BLK_PERM_WRITE_UNCHANGED, &err);
        CHECK(be != NULL);
        blk_backend_free(be);
        blk_node_unref(other);
    }
    blk_node_unref(bs);
    blk_graph_free(g);
    blk_graph_free(g2);
}

static void
test_unsupported(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *o = kv_new_object();
    struct blk_node *bs;

    kv_set(o, "delay", kv_new_int(0));
    bs = blk_node_open_driver(g, &memdrv_driver, o, 0, &err);
    kv_free(o);
    CHECK(bs != NULL);
    CHECK(blk_node_reopen(bs, NULL, false, &err) == -ENOTSUP);
    CHECK(strstr(err.msg, "does not support reopening") != NULL);
    CHECK(blk_node_is_read_only(bs));
    /* Same state again needs no driver support. */
    blk_error_clear(&err);
    CHECK_INT(blk_node_reopen(bs, NULL, true, &err), 0);
    blk_node_unref(bs);
    blk_graph_free(g);
}

/* A node a writer still uses does not become read-only; nothing changes. */
static void
test_read_only_under_writer(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs = open_raw(g, BLK_OPEN_RDWR, &err);
    struct blk_backend *be;
    unsigned char buf[512];

    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        return;
    }
    be = blk_backend_new(g, "w", bs, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                         BLK_PERM_ALL, &err);
    CHECK(be != NULL);
    CHECK_INT(blk_node_reopen(bs, NULL, true, &err), -EPERM);
    CHECK(strstr(err.msg, "read-only") != NULL);
    blk_error_clear(&err);
    CHECK(!blk_node_is_read_only(bs) && !blk_node_is_read_only(blk_node_file(bs)));
    memset(buf, 0x22, sizeof(buf));
    CHECK_INT(blk_node_pwrite(bs, 0, buf, sizeof(buf), 0, &err), 0);
    blk_backend_free(be);
    CHECK_INT(blk_node_reopen(bs, NULL, true, &err), 0);
    CHECK(blk_node_is_read_only(bs));
    blk_node_unref(bs);
    blk_graph_free(g);
}

int
main(void)
{
    int fd = mkstemp(path);

    CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
    close(fd);
    test_raw_file();
    test_unsupported();
    test_read_only_under_writer();
    unlink(path);
    return unit_done();
}
