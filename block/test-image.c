/*
 * test-image.c - backing files named inside images (block/image.c): plain
 * paths resolved next to the image, never json: or a protocol, a probed
 * raw backing file never writable, and a backing chain that loops back on
 * itself refused instead of opened without end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "util/xalloc.h"

static char dir[] = "/tmp/blk-test-image-" UNIT_MKTEMP_SUFFIX;

static int
create_file(const char *filename, uint64_t size, struct blk_error *err)
{
    struct kv *o = kv_new_object();
    int r;

    kv_set(o, "driver", kv_new_str("file"));
    kv_set(o, "filename", kv_new_str(filename));
    kv_set(o, "size", kv_new_uint(size));
    r = blk_create(o, err);
    kv_free(o);
    return r;
}

/* A 1 MiB qcow2 at p whose header names backing (with format bfmt, or none). */
static int
create_qcow2(const char *p, const char *backing, const char *bfmt,
             struct blk_error *err)
{
    struct kv *o = kv_new_object();
    struct kv *f = kv_new_object();
    int r;

    r = create_file(p, 0, err);
    if (r < 0) {
        kv_free(o);
        kv_free(f);
        return r;
    }
    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(p));
    kv_set(o, "driver", kv_new_str("qcow2"));
    kv_set(o, "file", f);
    kv_set(o, "size", kv_new_uint(1 << 20));
    if (backing != NULL) {
        kv_set(o, "backing-file", kv_new_str(backing));
    }
    if (bfmt != NULL) {
        kv_set(o, "backing-fmt", kv_new_str(bfmt));
    }
    r = blk_create(o, err);
    kv_free(o);
    return r;
}

static char *
path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

/* a -> b -> a: the open fails with a clear message, promptly. */
static void
test_backing_loop(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    char *a = path("a.qcow2"), *b = path("b.qcow2"), *s = path("s.qcow2");
    struct blk_node *bs;

    CHECK(create_qcow2(b, NULL, NULL, &err) == 0);
    CHECK(create_qcow2(a, "b.qcow2", "qcow2", &err) == 0);
    CHECK(create_qcow2(b, "a.qcow2", "qcow2", &err) == 0);
    bs = blk_open_image(g, a, "qcow2", false, 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "loop") != NULL);
    blk_error_clear(&err);
    blk_node_unref(bs);

    /* Itself, by an absolute name. */
    CHECK(create_qcow2(s, NULL, NULL, &err) == 0);
    CHECK(create_qcow2(s, s, "qcow2", &err) == 0);
    bs = blk_open_image(g, s, "qcow2", false, 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "loop") != NULL);
    blk_error_clear(&err);
    CHECK(blk_graph_next_node(g, NULL) == NULL);

    blk_graph_free(g);
    free(a);
    free(b);
    free(s);
}

/* Names are paths next to the image; json: is refused; protocols are just paths. */
static void
test_backing_names(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    char *base = path("base.raw"), *sub = path("sub"), *top = path("sub/t.qcow2");
    char *j = path("j.qcow2"), *n = path("n.qcow2");
    struct blk_node *bs;

    CHECK(create_file(base, 65536, &err) == 0);
    CHECK(mkdir(sub, 0700) == 0);
    CHECK(create_qcow2(top, "../base.raw", "raw", &err) == 0);
    bs = blk_open_image(g, top, "qcow2", false, 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK(blk_node_backing(bs) != NULL);
        CHECK(strstr(blk_node_get_filename(blk_node_backing(bs)),
                     "sub/../base.raw") != NULL);
        blk_node_unref(bs);
    }

    CHECK(create_qcow2(j, "json:{\"driver\":\"null-co\"}", "raw", &err) == 0);
    bs = blk_open_image(g, j, "qcow2", false, 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "not a plain file name") != NULL);
    blk_error_clear(&err);

    CHECK(create_qcow2(n, "null-co://", "raw", &err) == 0);
    bs = blk_open_image(g, n, "qcow2", false, 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "null-co:") != NULL);     /* tried as a file */
    blk_error_clear(&err);
    blk_node_unref(bs);
    CHECK(blk_graph_next_node(g, NULL) == NULL);
    blk_graph_free(g);
    free(base);
    free(sub);
    free(top);
    free(j);
    free(n);
}

/* A backing file without a recorded format is probed, read-only for good. */
static void
test_probed_raw_backing(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    char *base = path("praw.img"), *top = path("ptop.qcow2");
    struct blk_node *bs, *back;

    CHECK(create_file(base, 65536, &err) == 0);
    CHECK(create_qcow2(top, "praw.img", NULL, &err) == 0);
    bs = blk_open_image(g, top, "qcow2", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        back = blk_node_backing(bs);
        CHECK(back != NULL && blk_node_is_read_only(back));
        CHECK(back != NULL &&
              blk_node_reopen(back, NULL, false, &err) == -EPERM);
        CHECK(back != NULL && blk_node_is_read_only(back));
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    free(base);
    free(top);
}

/* A protocol filename takes the format given on the command line. */
static void
test_protocol_with_format(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;

    bs = blk_open_image(g, "null-co://", NULL, false, 0, &err);
    CHECK(bs != NULL && strcmp(blk_node_driver(bs)->name, "null-co") == 0);
    blk_node_unref(bs);
    bs = blk_open_image(g, "null-co://", "raw", false, 0, &err);
    CHECK(bs != NULL && strcmp(blk_node_driver(bs)->name, "raw") == 0);
    CHECK(bs != NULL && blk_node_get_length(bs) == 1 << 30);
    blk_node_unref(bs);
    bs = blk_open_image(g, "null-co://", "qcow2", false, 0, &err);
    CHECK(bs == NULL);
    blk_error_clear(&err);
    bs = blk_open_image(g, "null-co://", "null-co", false, 0, &err);
    CHECK(bs != NULL && strcmp(blk_node_driver(bs)->name, "null-co") == 0);
    blk_node_unref(bs);
    CHECK(blk_graph_next_node(g, NULL) == NULL);
    blk_graph_free(g);
}

int
main(void)
{
    char *cmd;

    CHECK(mkdtemp(dir) != NULL);
    blk_loop_init(2);
    test_backing_loop();
    test_backing_names();
    test_probed_raw_backing();
    test_protocol_with_format();
    cmd = xasprintf("rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    return unit_done();
}
