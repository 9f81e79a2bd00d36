/*
 * commit.c - blk-img commit: write everything allocated above the base
 * (the top image and the intermediate layers) into the base, then empty
 * the top unless -d or -b, with qemu-img 7.2's options and messages.
 *
 * blk has no reopen yet, so the chain is opened twice: once read-only to
 * learn its files, then bottom-up with the base read-write and every
 * layer above it naming the node below as its "backing" (so reads go
 * through the chain and the single read-write open holds the base's
 * write lock).  Emptying the top re-creates it with the same header
 * options and backing file, as QEMU's fast make_empty path does; a top
 * with internal snapshots, bitmaps or an external data file is left
 * as it is (its data is in the base too, so reads are unchanged).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/convert-int.h"
#include "cmd/blk-img/img-common.h"
#include "keyval/schema.h"
#include "util/size.h"
#include "util/xalloc.h"

enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_PROGRESS };

#define MAX_LAYERS 256

struct layer {
    char *filename;             /* the image file (resolved path) */
    char *fmt;                  /* its driver */
};

struct commit {
    const char *filename, *fmt, *base, *cache;
    bool drop, progress, quiet, image_opts;
    enum blk_progress_mode progress_mode;   /* with -p or --progress */
    uint64_t rate;
    struct layer layers[MAX_LAYERS];
    int nlayers, base_index;
    struct blk_node *top, *base_bs;
    struct blk_node *opened[MAX_LAYERS];    /* our references, base first */
    int nopened;
};

static int
parse_args(int argc, char **argv, struct commit *c)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "progress", required_argument, NULL, OPT_PROGRESS },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    while ((ch = getopt_long(argc, argv, ":f:ht:b:dpqr:", longopts,
                             NULL)) != -1) {
        switch (ch) {
        case ':':
        case '?':
            img_getopt_error(ch, argv);
            return -1;
        case 'h':
            printf("usage: blk-img commit [--image-opts] [-q] [-f fmt] "
                   "[-t cache] [-b base] [-r rate_limit] [-d] [-p] filename\n");
            exit(0);
        case 'f':
            c->fmt = optarg;
            break;
        case 't':
            c->cache = optarg;
            break;
        case 'b':
            c->base = optarg;
            c->drop = true;     /* -b implies -d, as in qemu-img */
            break;
        case 'd':
            c->drop = true;
            break;
        case 'p':
            c->progress = true;
            break;
        case 'q':
            c->quiet = true;
            break;
        case 'r':
            if (blk_size_parse(optarg, &c->rate) < 0) {
                blk_img_error("Invalid rate limit specified. You may use k, "
                              "M, G, T, P or E suffixes for");
                fprintf(stderr, "blk-img: kilobytes, megabytes, gigabytes, "
                        "terabytes, petabytes and exabytes.\n");
                return -1;
            }
            break;
        case OPT_OBJECT:
            blk_img_error("--object is not supported");
            return -1;
        case OPT_IMAGE_OPTS:
            c->image_opts = true;
            break;
        case OPT_PROGRESS:
            if (blk_progress_parse_mode(optarg, &c->progress_mode) < 0) {
                blk_img_error("--progress must be json, plain or bar");
                return -1;
            }
            c->progress = true;
            break;
        }
    }
    if (optind != argc - 1) {
        img_usage_error("Expecting one image file name");
        return -1;
    }
    c->filename = argv[optind];
    if (c->quiet) {
        c->progress = false;
    }
    return 0;
}

/* Same file?  Names as given, or the same inode. */
static bool
same_file(const char *a, const char *b)
{
    char *ra, *rb;
    bool same;

    if (strcmp(a, b) == 0) {
        return true;
    }
    ra = realpath(a, NULL);
    rb = realpath(b, NULL);
    same = ra != NULL && rb != NULL && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

/* Open the chain read-only once to learn each layer's file and format. */
static int
discover(struct commit *c)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *top = img_open(g, c->filename, c->fmt, c->image_opts, 0);
    struct blk_node *bs;
    int ret = -1;

    if (top == NULL) {
        blk_graph_free(g);
        return -1;
    }
    for (bs = top; bs != NULL && c->nlayers < MAX_LAYERS;
         bs = blk_node_backing(bs)) {
        struct blk_node *f = blk_node_file(bs);

        c->layers[c->nlayers].filename =
            xstrdup(blk_node_get_filename(f ? f : bs));
        c->layers[c->nlayers].fmt = xstrdup(blk_node_driver(bs)->name);
        c->nlayers++;
    }
    if (c->nlayers < 2) {
        blk_img_error("Image does not have a backing file");
        goto out;
    }
    c->base_index = 1;
    if (c->base != NULL) {
        int i;

        for (i = 1; i < c->nlayers; i++) {
            if (same_file(c->layers[i].filename, c->base)) {
                break;
            }
        }
        if (i == c->nlayers) {
            blk_img_error("Did not find '%s' in the backing chain of '%s'",
                          c->base, c->filename);
            goto out;
        }
        c->base_index = i;
    }
    ret = 0;
out:
    blk_node_unref(top);
    blk_graph_free(g);
    return ret;
}

/*
 * Open base..top bottom-up: the base read-write (with its own backing
 * chain read-only), every layer above it with "backing" naming the node
 * below.  Returns the top node (the graph holds the others) or NULL.
 */
static struct blk_node *
open_chain(struct commit *c, struct blk_graph *g, unsigned cache_flags)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *below, *bs = NULL;
    int i;

    below = blk_open_image(g, c->layers[c->base_index].filename,
                           c->layers[c->base_index].fmt, false,
                           BLK_OPEN_RDWR | cache_flags, &err);
    if (below == NULL) {
        blk_img_error("Could not open '%s': %s",
                      c->layers[c->base_index].filename, err.msg);
        return NULL;
    }
    c->base_bs = below;
    c->opened[c->nopened++] = below;
    for (i = c->base_index - 1; i >= 0; i--) {
        struct kv *o = kv_new_object(), *f = kv_new_object();

        kv_set(o, "driver", kv_new_str(c->layers[i].fmt));
        kv_set(f, "driver", kv_new_str("file"));
        kv_set(f, "filename", kv_new_str(c->layers[i].filename));
        kv_set(o, "file", f);
        kv_set(o, "backing", kv_new_str(blk_node_get_name(below)));
        kv_set(o, "read-only", kv_new_bool(true));
        if (kv_validate(o, kv_schema_lookup("BlockdevOptions"), KV_MODE_JSON,
                        &err) == 0) {
            bs = blk_node_open(g, o, 0, &err);
        }
        kv_free(o);
        if (bs == NULL) {
            blk_img_error("Could not open '%s': %s", c->layers[i].filename,
                          err.msg);
            return NULL;
        }
        c->opened[c->nopened++] = bs;
        below = bs;
    }
    return bs;
}

/* Allocated above the base: copy (data, or zeroes); below: leave alone. */
static int
above_base(struct cv_job *j, int part, uint64_t off, uint64_t len,
           enum cv_status *st, uint64_t *pnum, struct blk_error *err)
{
    struct commit *c = j->opaque;
    unsigned f;
    bool alloc;
    int r = cv_chain_status(j->parts[part].bs, c->base_bs, off, len, &f,
                            &alloc, pnum, err);

    if (r < 0) {
        return r;
    }
    *st = !alloc ? CV_SKIP : (f & BLK_STATUS_ZERO) ? CV_ZERO : CV_DATA;
    return 0;
}

/*
 * Empty the committed top image: re-create it with the same header
 * options and backing file.  Returns 0, or 1 when it must stay as it is.
 */
static int
make_empty(struct commit *c)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct img_qcow2_header h;
    struct blk_node *top, *file;
    struct blk_snapshot_info *sn = NULL;
    size_t nsn = 0;
    struct kv *fo, *q;
    int r;

    memset(&h, 0, sizeof(h));
    if (strcmp(c->layers[0].fmt, "qcow2") != 0) {
        blk_graph_free(g);
        return 1;
    }
    top = blk_open_image(g, c->layers[0].filename, "qcow2", false,
                         BLK_OPEN_NO_BACKING, &err);
    if (top == NULL) {
        blk_graph_free(g);
        return 1;
    }
    file = blk_node_file(top);
    r = img_qcow2_read_header(file, &h, &err);
    if (r == 0 && blk_node_driver(top)->snapshot_list != NULL) {
        r = blk_node_driver(top)->snapshot_list(top, &sn, &nsn, &err);
    }
    blk_node_unref(top);
    blk_graph_free(g);
    img_snapshots_free(sn, nsn);
    if (r < 0 || nsn > 0 || h.data_file != NULL || (h.autoclear & 1)) {
        img_qcow2_header_release(&h);
        return 1;
    }
    fo = kv_new_object();
    kv_set(fo, "driver", kv_new_str("file"));
    kv_set(fo, "filename", kv_new_str(c->layers[0].filename));
    q = kv_new_object();
    kv_set(q, "driver", kv_new_str("qcow2"));
    kv_set(q, "file", kv_dup(fo));
    kv_set(fo, "size", kv_new_uint(0));
    kv_set(q, "size", kv_new_uint(h.size));
    kv_set(q, "version", kv_new_str(h.version >= 3 ? "v3" : "v2"));
    kv_set(q, "cluster-size", kv_new_uint(1ull << h.cluster_bits));
    kv_set(q, "refcount-bits", kv_new_int(1ll << h.refcount_order));
    kv_set(q, "lazy-refcounts", kv_new_bool(h.compatible & 1));
    kv_set(q, "extended-l2", kv_new_bool((h.incompatible & (1u << 4)) != 0));
    kv_set(q, "compression-type",
           kv_new_str(h.compression_type == 1 ? "zstd" : "zlib"));
    if (h.backing_file != NULL) {
        kv_set(q, "backing-file", kv_new_str(h.backing_file));
    }
    if (h.backing_fmt != NULL) {
        kv_set(q, "backing-fmt", kv_new_str(h.backing_fmt));
    }
    r = kv_validate(fo, kv_schema_lookup("BlockdevCreateOptions"),
                    KV_MODE_JSON, &err);
    if (r == 0) {
        r = kv_validate(q, kv_schema_lookup("BlockdevCreateOptions"),
                        KV_MODE_JSON, &err);
    }
    if (r == 0) {
        r = blk_create(fo, &err);
    }
    if (r == 0) {
        r = blk_create(q, &err);
    }
    if (r < 0) {
        blk_img_error("error while emptying '%s': %s", c->layers[0].filename,
                      err.msg);
    }
    kv_free(fo);
    kv_free(q);
    img_qcow2_header_release(&h);
    return r < 0 ? -1 : 0;
}

int
cmd_commit(int argc, char **argv)
{
    struct commit c = { .cache = "writeback",
                        .progress_mode = BLK_PROGRESS_ON };
    struct blk_graph *g = NULL;
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_progress *prog = NULL;
    struct cv_part part;
    struct cv_job j;
    unsigned cache_flags;
    bool wt;
    int64_t top_len, base_len;
    int ret = 1, i;

    if (parse_args(argc, argv, &c) < 0) {
        return 1;
    }
    if (cv_parse_cache(c.cache, &cache_flags, &wt) < 0) {
        blk_img_error("Invalid cache option: %s", c.cache);
        return 1;
    }
    blk_loop_init(CV_MAX_IN_FLIGHT + 2);
    if (discover(&c) < 0) {
        goto out;
    }
    prog = blk_progress_new(c.progress ? c.progress_mode : BLK_PROGRESS_OFF,
                            1.0f, stdout);
    blk_progress_print(prog, 0, 100);
    g = blk_graph_new();
    c.top = open_chain(&c, g, cache_flags);
    if (c.top == NULL) {
        goto out;
    }
    top_len = blk_node_get_length(c.top);
    base_len = blk_node_get_length(c.base_bs);
    if (top_len < 0 || base_len < 0) {
        blk_img_error("could not get the image sizes");
        goto out;
    }
    if (base_len < top_len &&
        blk_node_truncate(c.base_bs, (uint64_t)top_len, false,
                          BLK_PREALLOC_OFF, &err) < 0) {
        blk_img_error("Top image %s is larger than base image %s, and "
                      "resize of base image failed: %s", c.layers[0].filename,
                      c.layers[c.base_index].filename, err.msg);
        goto out;
    }
    memset(&j, 0, sizeof(j));
    j.copy_dst_fd = -1;
    part.bs = c.top;
    part.len = (uint64_t)top_len;
    j.parts = &part;
    j.nparts = 1;
    j.total = (uint64_t)top_len;
    j.target = c.base_bs;
    j.status = above_base;
    j.opaque = &c;
    j.in_order = true;
    j.target_backing_len = -1;
    j.min_sparse = 4096;
    j.alignment = 4096;
    j.keep_data = true;         /* qemu-img commit keeps written zeroes as data */
    j.in_flight = 8;
    j.write_flags = wt ? BLK_REQ_FUA : 0;
    j.rate_limit = c.rate;
    j.progress = prog;
    j.err_prefix = "Block job failed: ";
    if (cv_run(&j) < 0) {
        goto out;
    }
    if (blk_node_flush(c.base_bs, &err) < 0) {
        blk_img_error("Block job failed: %s", err.msg);
        goto out;
    }
    blk_progress_print(prog, 100, 0);
    ret = 0;
out:
    while (c.nopened > 0) {     /* top first: parents before their children */
        blk_node_unref(c.opened[--c.nopened]);
    }
    if (g) {
        blk_graph_free(g);
    }
    if (ret == 0 && !c.drop && make_empty(&c) < 0) {
        ret = 1;
    }
    blk_progress_end(prog);
    if (ret == 0 && !c.quiet) {
        printf("Image committed.\n");
    }
    for (i = 0; i < c.nlayers; i++) {
        free(c.layers[i].filename);
        free(c.layers[i].fmt);
    }
    return ret;
}
