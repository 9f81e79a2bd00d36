/*
 * test-bitmap.c - persistent dirty bitmaps in qcow2, both ways with QEMU
 * 7.2: bitmaps added by `qemu-img bitmap` and dirtied by qemu-io load in
 * blk with the right extents; bitmaps made and dirtied by blk show in
 * `qemu-img info` and pass `qemu-img check`; a process that dies with
 * the image open read-write leaves the bitmaps in_use (inconsistent).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/bitmap.h"
#include "block/block.h"

static char dir[] = "/tmp/blk-test-bitmap-" UNIT_MKTEMP_SUFFIX;
static char img[256];

static int
sh(const char *fmt, const char *arg)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg);
    return system(cmd);
}

static char *
extents(struct blk_bitmap *bm)
{
    static char buf[4096];
    uint64_t off = 0, s, l;
    size_t n = 0;

    buf[0] = '\0';
    while (blk_bitmap_next_dirty_area(bm, off, UINT64_MAX, &s, &l)) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%llu+%llu,",
                              (unsigned long long)s, (unsigned long long)l);
        off = s + l;
    }
    return buf;
}

static struct blk_node *
open_img(struct blk_graph *g, unsigned flags)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs = blk_open_image(g, img, "qcow2", false, flags, &err);

    if (bs == NULL) {
        fprintf(stderr, "open %s: %s\n", img, err.msg);
    }
    return bs;
}

static bool
have_qemu(void)
{
    return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static void
test_qemu_to_blk(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs;
    struct blk_bitmap *b0, *b1;

    CHECK(sh("qemu-img create -q -f qcow2 %s 64M", img) == 0);
    CHECK(sh("qemu-img bitmap --add %s b0", img) == 0);
    CHECK(sh("qemu-img bitmap --add -g 4096 --disable %s b1", img) == 0);
    CHECK(sh("qemu-io -c 'write 0 64k' -c 'write 1048576 10' %s >/dev/null",
             img) == 0);
    bs = open_img(g, 0);
    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        return;
    }
    b0 = blk_bitmap_find(bs, "b0");
    b1 = blk_bitmap_find(bs, "b1");
    CHECK(b0 != NULL && b1 != NULL);
    if (b0 != NULL && b1 != NULL) {
        CHECK(blk_bitmap_persistent(b0) && blk_bitmap_enabled(b0));
        CHECK(!blk_bitmap_enabled(b1) && !blk_bitmap_inconsistent(b1));
        CHECK_INT(blk_bitmap_granularity(b1), 4096);
        CHECK_STR(extents(b0), "0+65536,1048576+65536,");
        CHECK_STR(extents(b1), "");
    }
    blk_node_unref(bs);
    blk_graph_free(g);
}

static void
test_blk_to_qemu(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    struct blk_bitmap *b2;
    unsigned char buf[100];

    bs = open_img(g, BLK_OPEN_RDWR);
    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        return;
    }
    b2 = blk_bitmap_create(bs, "b2", 512, &err);
    CHECK(b2 != NULL);
    blk_bitmap_set_persistent(b2, true);
    memset(buf, 0xab, sizeof(buf));
    CHECK(blk_node_pwrite(bs, 2 << 20, buf, sizeof(buf), 0, &err) == 0);
    CHECK(blk_node_pwrite(bs, 40 << 20, buf, sizeof(buf), 0, &err) == 0);
    /* While open read-write, QEMU sees the loaded bitmaps in use. */
    CHECK(sh("qemu-img info -U --output=json %s | grep -q in-use", img) == 0);
    blk_node_unref(bs);
    blk_graph_free(g);

    CHECK(sh("qemu-img check -q %s", img) == 0);
    CHECK(sh("qemu-img info --output=json %s | grep -q '\"b2\"'", img) == 0);
    CHECK(sh("qemu-img info --output=json %s | grep -q in-use", img) != 0);
    /* QEMU merges our bitmap into a new one and reads what we wrote. */
    CHECK(sh("qemu-img bitmap --add %s m && "
             "qemu-img bitmap --merge b2 %s m", img) == 0);
    CHECK(sh("qemu-io -r -c 'read -P 0xab 41943040 100' %s | grep -q 'read 100/100'",
             img) == 0);

    g = blk_graph_new();
    bs = open_img(g, 0);
    if (bs != NULL) {
        CHECK_STR(extents(blk_bitmap_find(bs, "b0")),
                  "0+65536,1048576+65536,2097152+65536,41943040+65536,");
        CHECK_STR(extents(blk_bitmap_find(bs, "b1")), "");
        CHECK_STR(extents(blk_bitmap_find(bs, "b2")), "2097152+512,41943040+512,");
        CHECK_STR(extents(blk_bitmap_find(bs, "m")), "2097152+65536,41943040+65536,");
        blk_node_unref(bs);
    }
    blk_graph_free(g);

    /* Removing every bitmap drops the extension; QEMU agrees. */
    g = blk_graph_new();
    bs = open_img(g, BLK_OPEN_RDWR);
    if (bs != NULL) {
        while (blk_bitmap_next(bs, NULL) != NULL) {
            blk_bitmap_release(blk_bitmap_next(bs, NULL));
        }
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    CHECK(sh("qemu-img check -q %s", img) == 0);
    CHECK(sh("qemu-img info %s | grep -q bitmaps", img) != 0);
}

static void
test_crash_leaves_in_use(void)
{
    pid_t pid;
    int status;

    CHECK(sh("rm -f %s && qemu-img create -q -f qcow2 %s 16M", img) == 0);
    CHECK(sh("qemu-img bitmap --add %s c0", img) == 0);
    pid = fork();
    if (pid == 0) {
        struct blk_graph *g = blk_graph_new();
        struct blk_error err = BLK_ERROR_INIT;
        struct blk_node *bs = open_img(g, BLK_OPEN_RDWR);
        unsigned char buf[512] = { 1 };

        if (bs != NULL) {
            blk_node_pwrite(bs, 0, buf, sizeof(buf), 0, &err);
            blk_node_flush(bs, &err);
        }
        _exit(bs != NULL ? 0 : 1);      /* dies without closing */
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(sh("qemu-img info --output=json %s | grep -q in-use", img) == 0);
    {
        struct blk_graph *g = blk_graph_new();
        struct blk_node *bs = open_img(g, 0);
        struct blk_bitmap *c0 = bs ? blk_bitmap_find(bs, "c0") : NULL;

        CHECK(c0 != NULL && blk_bitmap_inconsistent(c0));
        if (bs != NULL) {
            blk_node_unref(bs);
        }
        blk_graph_free(g);
    }
    /* The data written before the crash is there. */
    CHECK(sh("qemu-io -r -U -c 'read -P 1 0 1' %s | grep -q 'read 1/1'", img) == 0);
}

/* Read-only -> read-write -> read-only through reopen, QEMU watching. */
static void
test_reopen(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    unsigned char buf[4096];

    CHECK(sh("rm -f %s && qemu-img create -q -f qcow2 %s 16M", img) == 0);
    CHECK(sh("qemu-img bitmap --add %s r0", img) == 0);
    bs = open_img(g, 0);
    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        return;
    }
    memset(buf, 0x77, sizeof(buf));
    CHECK_INT(blk_node_pwrite(bs, 0, buf, sizeof(buf), 0, &err), -EPERM);
    blk_error_clear(&err);
    /* A reader that does not share write (qemu-io -r) blocks the reopen... */
    CHECK(sh("(qemu-io -r -c 'sleep 1500' %s >/dev/null 2>&1 &) ; sleep 0.5",
             img) == 0);
    CHECK_INT(blk_node_reopen(bs, NULL, false, &err), -EAGAIN);
    CHECK(strstr(err.msg, "Failed to get \"write\" lock") != NULL);
    CHECK(strstr(err.msg, "qemu-io") != NULL);
    /* ...and nothing changed: still read-only, still no in_use on disk. */
    CHECK(blk_node_is_read_only(bs));
    CHECK(sh("qemu-img info -U --output=json %s | grep -q in-use", img) != 0);
    blk_error_clear(&err);
    CHECK(sh("sleep 1.2", "") == 0);
    CHECK_INT(blk_node_reopen(bs, NULL, false, &err), 0);
    if (err.code < 0) {
        fprintf(stderr, "    reopen: %s\n", err.msg);
    }
    CHECK_INT(blk_node_pwrite(bs, 8 << 20, buf, sizeof(buf), 0, &err), 0);
    CHECK(sh("qemu-img info -U --output=json %s | grep -q in-use", img) == 0);
    /* Another writer is locked out while we write. */
    CHECK(sh("qemu-io -c 'read 0 512' %s >/dev/null 2>&1", img) != 0);
    CHECK_INT(blk_node_reopen(bs, NULL, true, &err), 0);
    CHECK(sh("qemu-img info --output=json %s | grep -q in-use", img) != 0);
    CHECK(sh("qemu-img check -q %s", img) == 0);
    CHECK_STR(extents(blk_bitmap_find(bs, "r0")), "8388608+65536,");
    CHECK(sh("qemu-io -r -c 'read -P 0x77 8388608 4096' %s | grep -q 'read 4096/4096'",
             img) == 0);
    blk_node_unref(bs);
    blk_graph_free(g);
}

/*
 * Growing an image grows its bitmaps' tables: the bitmap stays consistent
 * and records writes past the old end (as QEMU's resize); a crash after
 * the resize leaves an in_use bitmap with the old table, which still opens.
 */
static void
test_resize(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    unsigned char buf[4096];
    pid_t pid;
    int status;

    CHECK(sh("rm -f %s && qemu-img create -q -f qcow2 %s 1M", img) == 0);
    CHECK(sh("qemu-img bitmap --add -g 512 %s g0", img) == 0);
    CHECK(sh("qemu-io -c 'write 0 64k' %s >/dev/null", img) == 0);
    bs = open_img(g, BLK_OPEN_RDWR);
    CHECK(bs != NULL);
    if (bs == NULL) {
        blk_graph_free(g);
        return;
    }
    CHECK_INT(blk_node_truncate(bs, 1 << 30, false, BLK_PREALLOC_OFF, &err), 0);
    memset(buf, 0x33, sizeof(buf));
    CHECK_INT(blk_node_pwrite(bs, 900 << 20, buf, sizeof(buf), 0, &err), 0);
    blk_node_unref(bs);
    blk_graph_free(g);
    CHECK(sh("qemu-img check -q %s", img) == 0);
    CHECK(sh("qemu-img info --output=json %s | grep -q in-use", img) != 0);
    g = blk_graph_new();
    bs = open_img(g, 0);
    CHECK(bs != NULL);
    if (bs != NULL) {
        struct blk_bitmap *g0 = blk_bitmap_find(bs, "g0");

        CHECK(g0 != NULL && !blk_bitmap_inconsistent(g0));
        CHECK_STR(g0 ? extents(g0) : "", "0+65536,943718400+4096,");
        blk_node_unref(bs);
    }
    blk_graph_free(g);

    CHECK(sh("rm -f %s && qemu-img create -q -f qcow2 %s 1M", img) == 0);
    CHECK(sh("qemu-img bitmap --add -g 512 %s g1", img) == 0);
    pid = fork();
    if (pid == 0) {
        struct blk_graph *g2 = blk_graph_new();
        struct blk_error e2 = BLK_ERROR_INIT;
        struct blk_node *b2 = open_img(g2, BLK_OPEN_RDWR);

        if (b2 == NULL ||
            blk_node_truncate(b2, 1 << 30, false, BLK_PREALLOC_OFF, &e2) < 0 ||
            blk_node_flush(b2, &e2) < 0) {
            _exit(1);
        }
        _exit(0);                       /* dies without closing */
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(sh("qemu-img info --output=json %s | grep -q in-use", img) == 0);
    g = blk_graph_new();
    bs = open_img(g, 0);
    CHECK(bs != NULL);
    if (bs != NULL) {
        struct blk_bitmap *g1 = blk_bitmap_find(bs, "g1");

        CHECK(g1 != NULL && blk_bitmap_inconsistent(g1));
        blk_node_unref(bs);
    }
    blk_graph_free(g);
}

int
main(void)
{
    if (!have_qemu()) {
        fprintf(stderr, "qemu-img is not installed: cannot run\n");
        return 1;
    }
    CHECK(mkdtemp(dir) != NULL);
    snprintf(img, sizeof(img), "%s/a.qcow2", dir);
    blk_loop_init(4);
    test_qemu_to_blk();
    test_blk_to_qemu();
    test_crash_leaves_in_use();
    test_reopen();
    test_resize();
    sh("rm -rf %s", dir);
    return unit_done();
}
