/*
 * amend.c - `blk-img amend`: change format options of an existing image
 * in place (qcow2: compat up/downgrade, lazy_refcounts, refcount_bits,
 * size, data file).  The -o names are qemu-img's; they become a typed
 * tree of BlockdevCreateOptionsQcow2 member names for the driver's amend.
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

/* Options of create that amend refuses with qemu-img's hint. */
static const char *const create_only[] = {
    "cluster_size", "extended_l2", "compression_type", "preallocation",
    "encryption", "encrypt", NULL,
};

static int
check_opts(const struct kv *opts, const struct img_opt_desc *table)
{
    struct blk_error err = BLK_ERROR_INIT;
    size_t i, j;

    for (i = 0; i < opts->n; i++) {
        for (j = 0; create_only[j] != NULL; j++) {
            if (strcmp(opts->keys[i], create_only[j]) == 0) {
                blk_img_error("Invalid parameter '%s'", opts->keys[i]);
                fprintf(stderr, "This option is only supported for image creation\n");
                return -EINVAL;
            }
        }
    }
    if (img_opts_check(opts, table, NULL, &err) < 0) {
        blk_img_error("%s", err.msg);
        return -EINVAL;
    }
    return 0;
}

/* The typed amend tree; NULL after printing an error. */
static struct kv *
amend_tree(const struct kv *opts, const struct img_qcow2_header *h)
{
    const char *compat = img_opt_str(opts, "compat");
    const char *bfile = img_opt_str(opts, "backing_file");
    const char *bfmt = img_opt_str(opts, "backing_fmt");
    const char *data = img_opt_str(opts, "data_file");
    bool v2 = h->version < 3;
    struct kv *t;
    uint64_t u;

    if (compat != NULL) {
        if (strcmp(compat, "0.10") == 0 || strcmp(compat, "v2") == 0) {
            v2 = true;
        } else if (strcmp(compat, "1.1") == 0 || strcmp(compat, "v3") == 0) {
            v2 = false;
        } else {
            blk_img_error("Invalid compatibility level: '%s'", compat);
            return NULL;
        }
    }
    if ((bfile != NULL && (h->backing_file == NULL || strcmp(bfile, h->backing_file) != 0)) ||
        (bfmt != NULL && (h->backing_fmt == NULL || strcmp(bfmt, h->backing_fmt) != 0))) {
        blk_img_error("Cannot amend the backing file");
        fprintf(stderr, "You can use 'qemu-img rebase' instead.\n");
        return NULL;
    }
    if (data != NULL && h->data_file == NULL) {
        blk_img_error("data-file can only be set for images that use an external "
                      "data file");
        return NULL;
    }
    if (img_opt_u64(opts, "refcount_bits", &u) && u != 16 && v2) {
        blk_img_error("Refcount widths other than 16 bits require compatibility "
                      "level 1.1 or above (use compat=1.1 or greater)");
        return NULL;
    }
    if (img_opt_bool(opts, "lazy_refcounts", false) && v2) {
        blk_img_error("Lazy refcounts only supported with compatibility level 1.1 "
                      "and above (use compat=1.1 or greater)");
        return NULL;
    }
    t = kv_new_object();
    if (compat != NULL) {
        kv_set(t, "version", kv_new_str(v2 ? "v2" : "v3"));
    }
    if (img_opt_u64(opts, "size", &u)) {
        kv_set(t, "size", kv_new_int((int64_t)u));
    }
    if (img_opt_str(opts, "lazy_refcounts") != NULL) {
        kv_set(t, "lazy-refcounts", kv_new_bool(img_opt_bool(opts, "lazy_refcounts", false)));
    }
    if (img_opt_u64(opts, "refcount_bits", &u)) {
        kv_set(t, "refcount-bits", kv_new_int((int64_t)u));
    }
    if (data != NULL) {
        kv_set(t, "data-file", kv_new_str(data));
    }
    if (img_opt_str(opts, "data_file_raw") != NULL) {
        kv_set(t, "data-file-raw", kv_new_bool(img_opt_bool(opts, "data_file_raw", false)));
    }
    return t;
}

static int
do_amend(struct blk_node *bs, const struct kv *opts, bool force)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    const struct img_opt_desc *table = img_amend_opts(drv->name);
    struct blk_error err = BLK_ERROR_INIT;
    struct img_qcow2_header h;
    struct kv *tree;
    int r;

    if (table == NULL || drv->amend == NULL) {
        blk_img_error("Format driver '%s' does not support option amendment",
                      drv->name);
        return 1;
    }
    if (check_opts(opts, table) < 0) {
        return 1;
    }
    if (blk_node_file(bs) == NULL ||
        img_qcow2_read_header(blk_node_file(bs), &h, &err) < 0) {
        blk_img_error("%s", err.msg[0] ? err.msg : "cannot read the image header");
        return 1;
    }
    tree = amend_tree(opts, &h);
    img_qcow2_header_release(&h);
    if (tree == NULL) {
        return 1;
    }
    r = drv->amend(bs, tree, force, &err);
    kv_free(tree);
    if (r < 0) {
        blk_img_error("%s", err.msg);
        return 1;
    }
    return 0;
}

static int
print_help(const char *fmt)
{
    const struct img_opt_desc *t = img_amend_opts(fmt);

    if (t == NULL) {
        blk_img_error("Format driver '%s' does not support option amendment", fmt);
        return 1;
    }
    printf("Amend options for '%s':\n", fmt);
    img_opts_help(t, NULL);
    return 0;
}

int
cmd_amend(int argc, char **argv)
{
    enum { OPT_IMAGE_OPTS = 256, OPT_FORCE };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force", no_argument, NULL, OPT_FORCE },
        { NULL, 0, NULL, 0 },
    };
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf ostr = SBUF_INIT;
    const char *fmt = NULL;
    bool image_opts = false, force = false, help = false;
    struct blk_graph *g = NULL;
    struct blk_node *bs = NULL;
    struct kv *opts = NULL;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (ostr.len > 0) {
                sbuf_addch(&ostr, ',');
            }
            sbuf_adds(&ostr, optarg);
            break;
        case 'f':
            fmt = optarg;
            break;
        case 't':
        case 'p':
        case 'q':
            break;              /* cache mode, progress, quiet: nothing to show */
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case OPT_FORCE:
            force = true;
            break;
        case 'h':
            printf("usage: blk-img amend [--image-opts] [-p] [-q] [-f fmt] [-t cache] "
                   "[--force] -o options filename\n");
            ret = 0;
            goto out;
        default:
            ret = img_getopt_error(c, argv);
            goto out;
        }
    }
    if (ostr.len == 0) {
        img_usage_error("Must specify options (-o)");
        goto out;
    }
    opts = img_opts_parse(ostr.buf, &help, &err);
    if (opts == NULL) {
        blk_img_error("Invalid option list: %s", ostr.buf);
        goto out;
    }
    if (help && fmt != NULL) {
        ret = print_help(fmt);
        goto out;
    }
    if (optind != argc - 1) {
        blk_img_error("Expecting one image file name");
        goto out;
    }
    g = blk_graph_new();
    bs = img_open(g, argv[optind], fmt, image_opts, help ? 0 : BLK_OPEN_RDWR);
    if (bs == NULL) {
        goto out;
    }
    ret = help ? print_help(img_format_name(bs)) : do_amend(bs, opts, force);
out:
    if (bs != NULL) {
        blk_node_unref(bs);
    }
    if (g != NULL) {
        blk_graph_free(g);
    }
    kv_free(opts);
    sbuf_release(&ostr);
    return ret;
}
