/*
 * resize.c - `blk-img resize`: set an image's virtual size, absolute or
 * relative ("+1G", "-512M"); shrinking needs --shrink, as in qemu-img 7.2,
 * and preallocation applies to growth only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "util/size.h"

static int
parse_prealloc(const char *s, enum blk_prealloc *out)
{
    static const char *const names[] = { "off", "metadata", "falloc", "full" };
    size_t i;

    for (i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum blk_prealloc)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int
do_resize(struct blk_node *bs, int relative, uint64_t n, bool shrink,
          enum blk_prealloc prealloc, bool quiet)
{
    struct blk_error err = BLK_ERROR_INIT;
    int64_t cur = blk_node_get_length(bs);
    int64_t total;

    if (cur < 0) {
        blk_img_error("Failed to inquire current image length: %s", strerror((int)-cur));
        return 1;
    }
    if (relative != 0) {
        total = cur + (int64_t)n * relative;
    } else {
        total = (int64_t)n;
    }
    if (total <= 0) {
        blk_img_error("New image size must be positive");
        return 1;
    }
    if (total <= cur && prealloc != BLK_PREALLOC_OFF) {
        blk_img_error("Preallocation can only be used for growing images");
        return 1;
    }
    if (cur > total && !shrink) {
        blk_img_error("Use the --shrink option to perform a shrink operation.");
        blk_img_error("warning: Shrinking an image will delete all data beyond the "
                      "shrunken image's end. Before performing such an operation, "
                      "make sure there is no important data there.");
        return 1;
    }
    if (blk_node_truncate(bs, (uint64_t)total, false, prealloc, &err) < 0) {
        blk_img_error("%s", err.msg);
        return 1;
    }
    if (!quiet) {
        printf("Image resized.\n");
    }
    return 0;
}

int
cmd_resize(int argc, char **argv)
{
    enum { OPT_PREALLOC = 256, OPT_SHRINK, OPT_IMAGE_OPTS };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "preallocation", required_argument, NULL, OPT_PREALLOC },
        { "shrink", no_argument, NULL, OPT_SHRINK },
        { NULL, 0, NULL, 0 },
    };
    enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
    const char *fmt = NULL, *size;
    bool image_opts = false, quiet = false, shrink = false;
    struct blk_graph *g;
    struct blk_node *bs;
    int relative = 0, c, ret;
    uint64_t n;

    /* the size comes last and may start with '-': take it before getopt */
    if (argc < 3) {
        img_usage_error("Not enough arguments");
        return 1;
    }
    size = argv[--argc];
    while ((c = getopt_long(argc, argv, ":f:hq", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case OPT_PREALLOC:
            if (parse_prealloc(optarg, &prealloc) < 0) {
                blk_img_error("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            break;
        case OPT_SHRINK:
            shrink = true;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img resize [--image-opts] [-f fmt] "
                   "[--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size\n");
            return 0;
        default:
            return img_getopt_error(c, argv);
        }
    }
    if (optind != argc - 1) {
        img_usage_error("Expecting image file name and size");
        return 1;
    }
    if (size[0] == '+' || size[0] == '-') {
        relative = size[0] == '+' ? 1 : -1;
        size++;
    }
    if (blk_size_parse(size, &n) < 0 || n > INT64_MAX) {
        blk_img_error("Parameter 'size' expects a non-negative number below 2^64");
        fprintf(stderr, "Optional suffix k, M, G, T, P or E means kilo-, mega-, "
                "giga-, tera-, peta-\nand exabytes, respectively.\n");
        return 1;
    }
    g = blk_graph_new();
    bs = img_open(g, argv[optind], fmt, image_opts, BLK_OPEN_RDWR);
    if (bs == NULL) {
        blk_graph_free(g);
        return 1;
    }
    ret = do_resize(bs, relative, n, shrink, prealloc, quiet);
    blk_node_unref(bs);
    blk_graph_free(g);
    return ret;
}
