/*
 * commit.c - blk-img commit: write everything allocated above the base
 * (the top image and the intermediate layers) into the base, then empty
 * the top unless -d or -b, with qemu-img 7.2's options and messages.
 *
 * The chain is opened once: the top read-write when it will be emptied
 * (as qemu-img opens it, which also repairs a dirty top), read-only with
 * -d or -b, and every backing file read-only; then the base is reopened
 * read-write in place (blk_node_reopen) before anything is written, so a
 * base or top another process uses fails with nothing changed.  The top is
 * emptied by its driver's make_empty op (qcow2: block/qcow2/empty.c, QEMU
 * 7.2's two ways); a driver without one keeps its data, silently, as
 * qemu-img ignores ENOTSUP there.  The top's header is never rewritten:
 * with -b the layers between top and base are left stale, as in qemu-img.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/convert-int.h"
#include "cmd/blk-img/img-common.h"
#include "util/size.h"
#include "util/xalloc.h"

enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_PROGRESS };

#define MIRROR_BUF_SIZE (16u << 20)     /* QEMU's default mirror buffer */

struct commit {
    const char *filename, *fmt, *base, *cache;
    bool drop, progress, quiet, image_opts;
    enum blk_progress_mode progress_mode;   /* with -p or --progress */
    uint64_t rate;
    struct blk_node *top;                   /* our reference */
    struct blk_node *base_bs;               /* borrowed: in top's chain */
    uint64_t unit;              /* bytes: QEMU's mirror chunk (copy_units) */
    uint64_t align;             /* bytes: zero runs must start and end here */
    uint64_t dirty_end;         /* end of the last unit seen allocated above base */
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

/* The file name of a layer: its protocol node's, else its own. */
static const char *
layer_filename(const struct blk_node *bs)
{
    const struct blk_node *f = blk_node_file(bs);

    return blk_node_get_filename(f ? f : bs);
}

/*
 * Find the base in the chain of c->top: the immediate backing file, or
 * the layer named by -b (QEMU's bdrv_find_backing_image).  -1 after a
 * message.
 */
static int
find_base(struct commit *c)
{
    struct blk_node *bs = blk_node_backing(c->top);

    if (bs == NULL) {
        blk_img_error("Image does not have a backing file");
        return -1;
    }
    if (c->base == NULL) {
        c->base_bs = bs;
        return 0;
    }
    for (; bs != NULL; bs = blk_node_backing(bs)) {
        if (same_file(layer_filename(bs), c->base)) {
            c->base_bs = bs;
            return 0;
        }
    }
    blk_img_error("Did not find '%s' in the backing chain of '%s'", c->base,
                  c->filename);
    return -1;
}

/*
 * Reopen bs read-write in place.  -1 after the reopen's own message, as
 * qemu-img prints it ("Failed to get "write" lock" ...).
 */
static int
make_writable(struct blk_node *bs)
{
    struct blk_error err = BLK_ERROR_INIT;

    if (blk_node_reopen(bs, NULL, false, &err) < 0) {
        blk_img_error("%s", err.msg);
        return -1;
    }
    return 0;
}

/*
 * QEMU's commit is a mirror job: it copies whole chunks of the base's
 * bitmap granularity (its cluster size within 4-64 KiB; 64 KiB for raw)
 * that hold anything above the base, through the chain.  A run of
 * zeroes from a chunk start (at most the 16 MiB buffer, cut to whole
 * chunks) becomes a zero write only if it starts and ends on base
 * clusters; otherwise, and for a run shorter than a chunk, the zeroes
 * are copied as data.  Sets c->unit (chunk) and c->align (base cluster,
 * at least a chunk).
 */
static void
copy_units(struct commit *c)
{
    struct img_qcow2_header h;
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *file = blk_node_file(c->base_bs);
    uint64_t cs = 0;

    c->unit = c->align = 65536;
    if (strcmp(blk_node_driver(c->base_bs)->name, "qcow2") != 0 ||
        file == NULL) {
        return;
    }
    memset(&h, 0, sizeof(h));
    if (img_qcow2_read_header(file, &h, &err) == 0) {
        cs = 1ull << h.cluster_bits;
    }
    img_qcow2_header_release(&h);
    c->unit = cs < 4096 ? 4096 : cs > 65536 ? 65536 : cs;
    c->align = cs > c->unit ? cs : c->unit;
}

/* 1 when anything in [off, off+len) is allocated above the base, else 0. */
static int
alloc_in(struct commit *c, struct blk_node *top, uint64_t off, uint64_t len,
         struct blk_error *err)
{
    while (len > 0) {
        uint64_t n;
        unsigned f;
        bool alloc;
        int r = cv_chain_status(top, c->base_bs, off, len, &f, &alloc, &n,
                                err);

        if (r < 0) {
            return r;
        }
        if (alloc) {
            return 1;
        }
        n = n < len ? n : len;
        off += n;
        len -= n;
    }
    return 0;
}

/*
 * The engine asks in offset order.  Allocated above the base: zeroes
 * stay zeroes over whole units, everything else is copied as data; not
 * allocated: left alone, unless it shares a unit with something that is
 * (then copied through the chain, as QEMU's whole-chunk copy does).
 */
static int
above_base(struct cv_job *j, int part, uint64_t off, uint64_t len,
           enum cv_status *st, uint64_t *pnum, struct blk_error *err)
{
    struct commit *c = j->opaque;
    uint64_t u = c->unit, size = j->parts[part].len, end, head, tail;
    unsigned f;
    bool alloc;
    int r = cv_chain_status(j->parts[part].bs, c->base_bs, off, len, &f,
                            &alloc, pnum, err);

    if (r < 0) {
        return r;
    }
    end = off + *pnum;
    tail = end - end % u;                       /* last unit boundary */
    if (!alloc) {
        *st = CV_SKIP;
        if (off < c->dirty_end && off >= c->dirty_end - u) {
            /* the unit is shared with data before */
            *st = CV_DATA;
            *pnum = (end < c->dirty_end ? end : c->dirty_end) - off;
        } else if (end < size && end % u != 0) { /* ... or with data after */
            if (tail > off) {
                *pnum = tail - off;
                return 0;
            }
            r = alloc_in(c, j->parts[part].bs, end,
                         (tail + u < size ? tail + u : size) - end, err);
            if (r < 0) {
                return r;
            }
            if (r > 0) {
                *st = CV_DATA;
            }
        }
        return 0;
    }
    head = (off + u - 1) / u * u;               /* first unit boundary */
    c->dirty_end = (end - 1) / u * u + u;       /* end of end's unit */
    *st = CV_DATA;
    if (!(f & BLK_STATUS_ZERO)) {
        return 0;
    }
    if (head > off) {                           /* zeroes up to a unit start */
        *pnum = (head < end ? head : end) - off;
    } else if (tail > off) {                    /* whole units of zeroes */
        uint64_t io = tail - off;

        if (io > MIRROR_BUF_SIZE) {
            io = MIRROR_BUF_SIZE;
        }
        *pnum = io;
        if (off % c->align == 0 && (off + io) % c->align == 0) {
            *st = CV_ZERO;
        }
    }
    return 0;
}

/*
 * Empty the committed top through its driver.  A driver without
 * make_empty keeps its data (qemu-img ignores ENOTSUP there too).
 */
static int
empty_top(struct commit *c)
{
    const struct blk_driver *drv = blk_node_driver(c->top);
    struct blk_error err = BLK_ERROR_INIT;

    if (drv->make_empty == NULL) {
        return 0;
    }
    if (drv->make_empty(c->top, &err) < 0 ||
        blk_node_flush(c->top, &err) < 0) {
        blk_img_error("%s", err.msg);
        return -1;
    }
    return 0;
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
    int ret = 1;

    if (parse_args(argc, argv, &c) < 0) {
        return 1;
    }
    if (cv_parse_cache(c.cache, &cache_flags, &wt) < 0) {
        blk_img_error("Invalid cache option: %s", c.cache);
        return 1;
    }
    blk_loop_init(CV_MAX_IN_FLIGHT + 2);
    g = blk_graph_new();
    /*
     * discard=unmap, as qemu-img commit opens the chain (BDRV_O_UNMAP).
     * A top to be emptied is opened read-write, as qemu-img does, so a
     * dirty one (lazy refcounts) is repaired at open as there.
     */
    c.top = img_open(g, c.filename, c.fmt, c.image_opts,
                     cache_flags | BLK_OPEN_UNMAP |
                     (c.drop ? 0 : BLK_OPEN_RDWR));
    if (c.top == NULL) {
        goto out;
    }
    prog = blk_progress_new(c.progress ? c.progress_mode : BLK_PROGRESS_OFF,
                            1.0f, stdout);
    blk_progress_print(prog, 0, 100);
    if (find_base(&c) < 0 || make_writable(c.base_bs) < 0) {
        goto out;
    }
    copy_units(&c);
    top_len = blk_node_get_length(c.top);
    base_len = blk_node_get_length(c.base_bs);
    if (top_len < 0 || base_len < 0) {
        blk_img_error("could not get the image sizes");
        goto out;
    }
    /* The base grows to the top's size, as QEMU's active commit does. */
    if (base_len < top_len &&
        blk_node_truncate(c.base_bs, (uint64_t)top_len, false,
                          BLK_PREALLOC_OFF, &err) < 0) {
        blk_img_error("Top image %s is larger than base image %s, and "
                      "resize of base image failed: %s", layer_filename(c.top),
                      layer_filename(c.base_bs), err.msg);
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
    j.flush_every = cv_flush_every(cache_flags, wt);
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
    if (!c.drop && empty_top(&c) < 0) {
        goto out;
    }
    blk_progress_print(prog, 100, 0);
    ret = 0;
out:
    if (c.top != NULL) {
        blk_node_unref(c.top);
    }
    blk_graph_free(g);
    blk_progress_end(prog);
    if (ret == 0 && !c.quiet) {
        printf("Image committed.\n");
    }
    return ret;
}
