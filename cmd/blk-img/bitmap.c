/*
 * bitmap.c - `blk-img bitmap`: add, remove, clear, enable, disable and
 * merge persistent dirty bitmaps of an image, several operations in one
 * call applied in order, as qemu-img 7.2 does (same options, messages and
 * exit codes); and `blk-img bitmap dump`: the dirty extents of a bitmap
 * as JSON or a table.  The qcow2 driver stores the bitmaps at close.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap-qmp.h"
#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "util/size.h"
#include "util/xalloc.h"

enum bitmap_op { OP_ADD, OP_REMOVE, OP_CLEAR, OP_ENABLE, OP_DISABLE, OP_MERGE };

static const char *const op_names[] = {
    "add", "remove", "clear", "enable", "disable", "merge",
};

struct action {
    enum bitmap_op op;
    const char *src;            /* --merge SOURCE (borrowed from argv) */
};

/*
 * qemu-img's cvtnum for a command-line size: the two-line suffix message
 * for a malformed value, the range message above INT64_MAX.
 */
static int
parse_size_arg(const char *what, const char *s, uint64_t *out)
{
    int r = blk_size_parse(s, out);

    if (r == -EINVAL) {
        img_size_error(what);
        return -1;
    }
    if (r < 0 || *out > INT64_MAX) {
        blk_img_error("Invalid %s specified. Must be between 0 and "
                      "%" PRId64 ".", what, INT64_MAX);
        return -1;
    }
    return 0;
}

/* One operation; prints qemu-img's "Operation X on bitmap Y failed: ..." */
static int
run_action(const struct action *a, struct blk_node *bs, struct blk_node *src_bs,
           const char *name, uint64_t granularity)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *dst, *src;
    int r = 0;

    switch (a->op) {
    case OP_ADD:
        r = blk_bitmap_qmp_add(bs, name, granularity != 0, granularity, true,
                               false, &err) == NULL ? err.code : 0;
        break;
    case OP_REMOVE:
        r = blk_bitmap_qmp_remove(bs, name, &err);
        break;
    case OP_CLEAR:
        r = blk_bitmap_qmp_clear(bs, name, &err);
        break;
    case OP_ENABLE:
    case OP_DISABLE:
        r = blk_bitmap_qmp_enable(bs, name, a->op == OP_ENABLE, &err);
        break;
    case OP_MERGE:
        dst = blk_bitmap_qmp_lookup(bs, name, &err);
        if (dst == NULL ||
            blk_bitmap_qmp_check(dst, BLK_BITMAP_CHECK_DEFAULT, &err) < 0) {
            r = err.code;
            break;
        }
        src = blk_bitmap_qmp_lookup(src_bs, a->src, &err);
        r = src == NULL ? err.code : blk_bitmap_qmp_merge(dst, &src, 1, &err);
        break;
    }
    if (r < 0) {
        blk_img_error("Operation %s on bitmap %s failed: %s", op_names[a->op],
                      name, err.msg);
        if (r == -ESTALE) {
            fprintf(stderr, "%s\n", BLK_BITMAP_INCONSISTENT_HINT);
        }
        return -1;
    }
    return 0;
}

/* Open the image (and the merge source), run every action, close. */
static int
do_bitmap(const char *filename, const char *fmt, bool image_opts,
          const char *src_filename, const char *src_fmt, const char *name,
          const struct action *actions, size_t n, uint64_t granularity)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs, *src_bs = NULL;
    int ret = 0;
    size_t i;

    bs = img_open(g, filename, fmt, image_opts, BLK_OPEN_RDWR);
    if (bs == NULL) {
        blk_graph_free(g);
        return 1;
    }
    if (src_filename != NULL) {
        src_bs = img_open(g, src_filename, src_fmt, false, 0);
        if (src_bs == NULL) {
            ret = 1;
            goto out;
        }
    }
    for (i = 0; i < n && ret == 0; i++) {
        if (run_action(&actions[i], bs, src_bs != NULL ? src_bs : bs, name,
                       granularity) < 0) {
            ret = 1;
        }
    }
out:
    if (src_bs != NULL) {
        blk_node_unref(src_bs);
    }
    blk_node_unref(bs);         /* qcow2 stores its persistent bitmaps here */
    blk_graph_free(g);
    return ret;
}

static void
bitmap_usage(void)
{
    printf("usage: blk-img bitmap (--merge SOURCE | --add | --remove | "
           "--clear |\n"
           "         --enable | --disable)... [-b source_file [-F source_fmt]] "
           "[-g granularity]\n"
           "         [--image-opts | -f fmt] filename bitmap\n"
           "       blk-img bitmap dump [--output human|json] "
           "[--start-offset N] [--max-length N]\n"
           "         [--image-opts | -f fmt] [-U] filename bitmap\n");
}

/* qemu-img's checks after option parsing, in its order. */
static int
check_usage(size_t nactions, bool bad_granularity, bool bad_src_fmt,
            bool bad_src_file, bool bad_argc)
{
    if (nactions == 0) {
        blk_img_error("Need at least one of --add, --remove, --clear, "
                      "--enable, --disable, or --merge");
    } else if (bad_granularity) {
        blk_img_error("granularity only supported with --add");
    } else if (bad_src_fmt) {
        blk_img_error("-F only supported with -b");
    } else if (bad_src_file) {
        blk_img_error("Merge bitmap source file only supported with --merge");
    } else if (bad_argc) {
        blk_img_error("Expecting filename and bitmap name");
    } else {
        return 0;
    }
    return -1;
}

static int cmd_bitmap_dump(int argc, char **argv);

int
cmd_bitmap(int argc, char **argv)
{
    enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_ADD, OPT_REMOVE, OPT_CLEAR,
           OPT_ENABLE, OPT_DISABLE, OPT_MERGE };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "add", no_argument, NULL, OPT_ADD },
        { "remove", no_argument, NULL, OPT_REMOVE },
        { "clear", no_argument, NULL, OPT_CLEAR },
        { "enable", no_argument, NULL, OPT_ENABLE },
        { "disable", no_argument, NULL, OPT_DISABLE },
        { "merge", required_argument, NULL, OPT_MERGE },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *src_filename = NULL, *src_fmt = NULL;
    bool image_opts = false, add = false, merge = false;
    uint64_t granularity = 0;
    struct action *actions = NULL;
    size_t n = 0;
    int c, ret;

    if (argc >= 2 && strcmp(argv[1], "dump") == 0) {
        return cmd_bitmap_dump(argc - 1, argv + 1);
    }
    actions = xcalloc((size_t)argc, sizeof(*actions));
    while ((c = getopt_long(argc, argv, ":b:f:F:g:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            bitmap_usage();
            free(actions);
            return 0;
        case 'b':
            src_filename = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'F':
            src_fmt = optarg;
            break;
        case 'g':
            if (parse_size_arg("granularity", optarg, &granularity) < 0) {
                free(actions);
                return 1;
            }
            break;
        case OPT_OBJECT:
            /* Limitation: no --object (secrets, throttle groups) in blk. */
            blk_img_error("--object is not supported");
            free(actions);
            return 1;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case OPT_ADD: case OPT_REMOVE: case OPT_CLEAR: case OPT_ENABLE:
        case OPT_DISABLE: case OPT_MERGE:
            actions[n].op = (enum bitmap_op)(c - OPT_ADD);
            actions[n].src = c == OPT_MERGE ? optarg : NULL;
            add = add || c == OPT_ADD;
            merge = merge || c == OPT_MERGE;
            n++;
            break;
        default:
            free(actions);
            return img_getopt_error(c, argv);
        }
    }
    ret = 1;
    if (check_usage(n, granularity != 0 && !add, src_fmt != NULL &&
                    src_filename == NULL, src_filename != NULL && !merge,
                    optind != argc - 2) == 0) {
        ret = do_bitmap(argv[optind], fmt, image_opts, src_filename, src_fmt,
                        argv[optind + 1], actions, n, granularity);
    }
    free(actions);
    return ret;
}

/* ---- bitmap dump --------------------------------------------------------- */

static int
cmd_bitmap_dump(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_START, OPT_MAXLEN, OPT_IMAGE_OPTS };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "start-offset", required_argument, NULL, OPT_START },
        { "max-length", required_argument, NULL, OPT_MAXLEN },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct blk_error err = BLK_ERROR_INIT;
    const char *fmt = NULL, *output = NULL;
    bool image_opts = false;
    uint64_t start = 0, max_len = UINT64_MAX;
    unsigned flags = 0;
    enum img_output of;
    struct blk_graph *g;
    struct blk_node *bs;
    struct blk_bitmap *bm;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'U':
            flags |= BLK_OPEN_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_START:
            if (parse_size_arg("start offset", optarg, &start) < 0) {
                return 1;
            }
            break;
        case OPT_MAXLEN:
            if (parse_size_arg("max length", optarg, &max_len) < 0) {
                return 1;
            }
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            bitmap_usage();
            return 0;
        default:
            return img_getopt_error(c, argv);
        }
    }
    if (optind != argc - 2) {
        img_usage_error("Expecting filename and bitmap name");
        return 1;
    }
    if (img_parse_output(output, &of) < 0) {
        return 1;
    }
    g = blk_graph_new();
    bs = img_open(g, argv[optind], fmt, image_opts, flags);
    if (bs == NULL) {
        blk_graph_free(g);
        return 1;
    }
    bm = blk_bitmap_qmp_lookup(bs, argv[optind + 1], &err);
    if (bm != NULL &&
        blk_bitmap_qmp_check(bm, BLK_BITMAP_CHECK_INCONSISTENT, &err) == 0) {
        blk_bitmap_dump(bm, start, max_len, of == IMG_OUTPUT_JSON, stdout);
        ret = 0;
    } else {
        blk_img_error("%s", err.msg);
    }
    blk_node_unref(bs);
    blk_graph_free(g);
    return ret;
}
