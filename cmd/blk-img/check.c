/*
 * check.c - `blk-img check`: run the format driver's consistency check
 * (optionally repairing leaks or everything), print qemu-img 7.2's report
 * or its ImageCheck JSON, and exit 0 clean, 1 check not completed,
 * 2 corruptions, 3 leaks only, 63 format without checks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "util/xalloc.h"

static int
run_check(struct blk_node *bs, unsigned fix, struct blk_check_result *res,
          struct blk_error *err)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    struct sbuf log = SBUF_INIT;
    int r;

    if (drv->check == NULL) {
        return -ENOTSUP;
    }
    memset(res, 0, sizeof(*res));
    res->log = &log;
    r = drv->check(bs, res, fix, err);
    fflush(stdout);
    fputs(log.buf, stderr);
    sbuf_release(&log);
    res->log = NULL;
    return r;
}

static void
dump_human(const struct blk_check_result *r)
{
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image "
                   "may corrupt it.\n", r->corruptions);
        }
        if (r->leaks) {
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   r->leaks);
        }
        if (r->check_errors) {
            printf("\n%d internal errors have occurred during the check.\n",
                   r->check_errors);
        }
    }
    if (r->total_clusters != 0 && r->allocated_clusters != 0) {
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, "
               "%0.2f%% compressed clusters\n",
               r->allocated_clusters, r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    }
    if (r->image_end_offset) {
        printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
    }
}

/* ImageCheck: members in QAPI order, optional ones only when non-zero. */
static void
dump_json(const struct blk_check_result *r, const char *filename,
          const char *format)
{
    struct kv *o = kv_new_object();

    kv_set(o, "filename", kv_new_str(filename));
    kv_set(o, "format", kv_new_str(format));
    kv_set(o, "check-errors", kv_new_int(r->check_errors));
    if (r->image_end_offset) {
        kv_set(o, "image-end-offset", kv_new_int((int64_t)r->image_end_offset));
    }
    if (r->corruptions) {
        kv_set(o, "corruptions", kv_new_int(r->corruptions));
    }
    if (r->leaks) {
        kv_set(o, "leaks", kv_new_int(r->leaks));
    }
    if (r->corruptions_fixed) {
        kv_set(o, "corruptions-fixed", kv_new_int(r->corruptions_fixed));
    }
    if (r->leaks_fixed) {
        kv_set(o, "leaks-fixed", kv_new_int(r->leaks_fixed));
    }
    if (r->total_clusters) {
        kv_set(o, "total-clusters", kv_new_int((int64_t)r->total_clusters));
    }
    if (r->allocated_clusters) {
        kv_set(o, "allocated-clusters", kv_new_int((int64_t)r->allocated_clusters));
    }
    if (r->fragmented_clusters) {
        kv_set(o, "fragmented-clusters", kv_new_int((int64_t)r->fragmented_clusters));
    }
    if (r->compressed_clusters) {
        kv_set(o, "compressed-clusters", kv_new_int((int64_t)r->compressed_clusters));
    }
    img_qdict_order(o);
    img_print_json(o);
    kv_free(o);
}

static int
do_check(struct blk_node *bs, const char *filename, unsigned fix,
         enum img_output of, bool quiet)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_check_result res;
    int r;

    r = run_check(bs, fix, &res, &err);
    if (r == -ENOTSUP) {
        blk_img_error("This image format does not support checks");
        return 63;
    }
    if (r == 0 && (res.corruptions_fixed || res.leaks_fixed)) {
        int leaks_fixed = res.leaks_fixed, corruptions_fixed = res.corruptions_fixed;

        if (of == IMG_OUTPUT_HUMAN && !quiet) {
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %d leaked clusters\n"
                   "    %d corruptions\n\n"
                   "Double checking the fixed image now...\n",
                   leaks_fixed, corruptions_fixed);
        }
        blk_error_clear(&err);
        r = run_check(bs, 0, &res, &err);
        res.leaks_fixed = leaks_fixed;
        res.corruptions_fixed = corruptions_fixed;
    }
    if (r == 0 && !quiet) {
        if (of == IMG_OUTPUT_HUMAN) {
            dump_human(&res);
        } else {
            dump_json(&res, filename, img_format_name(bs));
        }
    }
    fflush(stdout);
    if (r < 0 || res.check_errors) {
        if (r < 0) {
            blk_img_error("Check failed: %s", err.msg[0] ? err.msg : strerror(-r));
        } else {
            blk_img_error("Check failed");
        }
        return 1;
    }
    if (res.corruptions) {
        return 2;
    }
    return res.leaks ? 3 : 0;
}

int
cmd_check(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_IMAGE_OPTS };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = NULL;
    bool image_opts = false, quiet = false;
    unsigned flags = BLK_OPEN_CHECK, fix = 0;
    enum img_output of;
    struct blk_graph *g;
    struct blk_node *bs;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":hf:r:T:qU", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'r':
            flags |= BLK_OPEN_RDWR;
            if (strcmp(optarg, "leaks") == 0) {
                fix = BLK_CHECK_FIX_LEAKS;
            } else if (strcmp(optarg, "all") == 0) {
                fix = BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS;
            } else {
                img_usage_error("Unknown option value for -r "
                                "(expecting 'leaks' or 'all'): %s", optarg);
                return 1;
            }
            break;
        case 'T':
            break;              /* the cache mode does not change a check */
        case 'q':
            quiet = true;
            break;
        case 'U':
            flags |= BLK_OPEN_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img check [--image-opts] [-q] [-f fmt] [--output=ofmt] "
                   "[-r [leaks | all]] [-T src_cache] [-U] filename\n");
            return 0;
        default:
            return img_getopt_error(c, argv);
        }
    }
    if (optind != argc - 1) {
        img_usage_error("Expecting one image file name");
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
    ret = do_check(bs, argv[optind], fix, of, quiet);
    blk_node_unref(bs);
    blk_graph_free(g);
    return ret;
}
