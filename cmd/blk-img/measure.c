/*
 * measure.c - `blk-img measure`: how big a new image of format -O would
 * be for --size N or for the contents of an existing image.  For qcow2
 * this is the layout arithmetic of the qcow2 spec (header, L1 and L2
 * tables, refcount table and blocks, bitmaps); raw needs the virtual size.
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

#define L1E_SIZE 8
#define REFTABLE_ENTRY_SIZE 8
#define QCOW_MAX_L1_SIZE (32 * 1024 * 1024)

struct measure {
    uint64_t required, fully_allocated, bitmaps;
    bool has_bitmaps;
};

static uint64_t
round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static uint64_t
div_round_up(uint64_t v, uint64_t d)
{
    return (v + d - 1) / d;
}

/*
 * Refcount metadata for `clusters` host clusters: the smallest number of
 * refcount blocks and table clusters that also count themselves.
 */
static uint64_t
refcount_metadata_size(uint64_t clusters, uint64_t cs, unsigned refcount_order)
{
    uint64_t per_table = cs / REFTABLE_ENTRY_SIZE;
    uint64_t per_block = cs * 8 / (1ULL << refcount_order);
    uint64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = div_round_up(clusters + table + blocks, per_block);
        table = div_round_up(blocks, per_table);
        n = clusters + blocks + table;
    } while (n != last);
    return (blocks + table) * cs;
}

/* Size of a fully allocated qcow2 image: data plus all metadata. */
static uint64_t
qcow2_full_size(uint64_t size, uint64_t cs, unsigned refcount_order, bool ext_l2)
{
    uint64_t l2e = ext_l2 ? 16 : 8;
    uint64_t aligned = round_up(size, cs);
    uint64_t meta = cs;         /* the header cluster */
    uint64_t nl2e, nl1e;

    nl2e = round_up(aligned / cs, cs / l2e);
    meta += nl2e * l2e;
    nl1e = round_up(nl2e * l2e / cs, cs / L1E_SIZE);
    meta += nl1e * L1E_SIZE;
    meta += refcount_metadata_size((meta + aligned) / cs, cs, refcount_order);
    return meta + aligned;
}

/* Persistent bitmaps of a source image (from its format-specific info). */
static uint64_t
bitmaps_size(const struct kv *bitmaps, uint64_t vsize, uint64_t cs)
{
    uint64_t total = 0, dir = 0;
    size_t i;

    for (i = 0; bitmaps != NULL && i < bitmaps->n; i++) {
        const struct kv *b = bitmaps->vals[i];
        uint64_t gran = (uint64_t)kv_get_int(b, "granularity", 65536);
        const char *name = kv_get_str(b, "name", "");
        uint64_t bytes = div_round_up(div_round_up(vsize, gran), 8);
        uint64_t clusters = div_round_up(bytes, cs);

        total += clusters * cs;
        total += round_up(clusters * 8, cs);       /* bitmap table */
        dir += round_up(24 + strlen(name), 8);     /* directory entry */
    }
    return total + round_up(dir, cs);
}

static const struct kv *
source_bitmaps(struct blk_node *bs, struct kv **owned)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    struct kv *info;

    *owned = NULL;
    if (drv->get_info == NULL) {
        return NULL;
    }
    info = kv_new_object();
    if (drv->get_info(bs, info, NULL) < 0) {
        kv_free(info);
        return NULL;
    }
    *owned = info;
    if (kv_get(info, "data") != NULL) {
        return kv_get(kv_get(info, "data"), "bitmaps");
    }
    return kv_get(info, "bitmaps");
}

/* Bytes of bs that a copy without backing file must hold, per cluster. */
static int
allocated_clusters_bytes(struct blk_node *bs, uint64_t ssize, uint64_t cs,
                         uint64_t *out)
{
    struct blk_error err = BLK_ERROR_INIT;
    uint64_t off, required = 0;
    struct blk_status st;

    for (off = 0; off < ssize; off += st.pnum) {
        if (img_block_status_chain(bs, off, ssize - off, &st, NULL, &err) < 0) {
            blk_img_error("Unable to get block status: %s", err.msg);
            return -EIO;
        }
        if (st.flags & BLK_STATUS_ZERO) {
            continue;
        }
        if ((st.flags & (BLK_STATUS_DATA | BLK_STATUS_ALLOCATED)) ==
            (BLK_STATUS_DATA | BLK_STATUS_ALLOCATED)) {
            st.pnum = round_up(off + st.pnum, cs) - off;
            required += off % cs + st.pnum;
        }
    }
    *out = required;
    return 0;
}

static int
measure_qcow2(const struct kv *opts, struct blk_node *in, uint64_t size,
              struct measure *m)
{
    uint64_t cs = 65536, rb = 16, vsize, required = 0;
    const char *compat = img_opt_str(opts, "compat");
    const char *prealloc = img_opt_str(opts, "preallocation");
    bool ext = img_opt_bool(opts, "extended_l2", false);
    bool v2 = compat != NULL && (strcmp(compat, "0.10") == 0 || strcmp(compat, "v2") == 0);
    unsigned order = 0;

    img_opt_u64(opts, "cluster_size", &cs);
    img_opt_u64(opts, "refcount_bits", &rb);
    if (compat != NULL && !v2 && strcmp(compat, "1.1") != 0 && strcmp(compat, "v3") != 0) {
        blk_img_error("Invalid parameter value for 'compat': %s", compat);
        return -EINVAL;
    }
    if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1)) != 0) {
        blk_img_error("Cluster size must be a power of two between 512 and 2048k");
        return -EINVAL;
    }
    if (ext && cs < 16384) {
        blk_img_error("Extended L2 entries are only supported with cluster sizes "
                      "of at least 16384 bytes");
        return -EINVAL;
    }
    if (rb > 64 || rb == 0 || (rb & (rb - 1)) != 0) {
        blk_img_error("Refcount width must be a power of two and may not exceed 64 bits");
        return -EINVAL;
    }
    if (v2 && rb != 16) {
        blk_img_error("Different refcount widths than 16 bits require compatibility "
                      "level 1.1 or above (use version=v3 or greater)");
        return -EINVAL;
    }
    while ((1ULL << order) < rb) {
        order++;
    }
    vsize = round_up(size, cs);
    if (div_round_up(vsize / cs, cs / (ext ? 16 : 8)) * L1E_SIZE > QCOW_MAX_L1_SIZE) {
        blk_img_error("The image size is too large (try using a larger cluster size)");
        return -EINVAL;
    }
    if (in != NULL) {
        int64_t ssize = blk_node_get_length(in);

        if (ssize < 0) {
            blk_img_error("Unable to get image virtual_size: %s", strerror((int)-ssize));
            return (int)ssize;
        }
        vsize = round_up((uint64_t)ssize, cs);
        if (img_opt_str(opts, "backing_file") != NULL) {
            required = vsize;   /* the backing may share nothing with the input */
        } else if (allocated_clusters_bytes(in, (uint64_t)ssize, cs, &required) < 0) {
            return -EIO;
        }
    }
    if (prealloc != NULL && (strcmp(prealloc, "full") == 0 ||
                             strcmp(prealloc, "falloc") == 0)) {
        required = vsize;
    }
    m->fully_allocated = qcow2_full_size(vsize, cs, order, ext);
    m->required = m->fully_allocated - vsize + required;
    if (!v2 && in != NULL && strcmp(img_format_name(in), "qcow2") == 0) {
        struct img_qcow2_header h;
        struct kv *owned;

        if (blk_node_file(in) != NULL &&
            img_qcow2_read_header(blk_node_file(in), &h, NULL) == 0) {
            m->has_bitmaps = h.version >= 3;
            img_qcow2_header_release(&h);
        }
        if (m->has_bitmaps) {
            m->bitmaps = bitmaps_size(source_bitmaps(in, &owned),
                                      (uint64_t)blk_node_get_length(in), cs);
            kv_free(owned);
        }
    }
    return 0;
}

static int
measure_raw(struct blk_node *in, uint64_t size, struct measure *m)
{
    if (in != NULL) {
        int64_t len = blk_node_get_length(in);

        if (len < 0) {
            blk_img_error("Unable to get image virtual_size: %s", strerror((int)-len));
            return (int)len;
        }
        m->required = (uint64_t)len;
    } else {
        m->required = round_up(size, 512);
    }
    m->fully_allocated = m->required;
    return 0;
}

static void
print_result(const struct measure *m, enum img_output of)
{
    struct kv *o;

    if (of == IMG_OUTPUT_HUMAN) {
        printf("required size: %" PRIu64 "\n", m->required);
        printf("fully allocated size: %" PRIu64 "\n", m->fully_allocated);
        if (m->has_bitmaps) {
            printf("bitmaps size: %" PRIu64 "\n", m->bitmaps);
        }
        return;
    }
    o = kv_new_object();
    kv_set(o, "required", kv_new_int((int64_t)m->required));
    kv_set(o, "fully-allocated", kv_new_int((int64_t)m->fully_allocated));
    if (m->has_bitmaps) {
        kv_set(o, "bitmaps", kv_new_int((int64_t)m->bitmaps));
    }
    img_qdict_order(o);
    img_print_json(o);
    kv_free(o);
}

/* Open the source (if any), measure for out_fmt, print.  The exit status. */
static int
measure_image(const char *filename, const char *fmt, bool image_opts,
              unsigned flags, const char *out_fmt, const struct kv *opts,
              uint64_t size, enum img_output of)
{
    struct measure m = { 0 };
    struct blk_graph *g = NULL;
    struct blk_node *bs = NULL;
    int r;

    if (filename != NULL) {
        g = blk_graph_new();
        bs = img_open(g, filename, fmt, image_opts, flags);
        if (bs == NULL) {
            blk_graph_free(g);
            return 1;
        }
    }
    if (strcmp(out_fmt, "qcow2") == 0) {
        r = measure_qcow2(opts, bs, size, &m);
    } else {
        r = measure_raw(bs, size, &m);
    }
    if (r == 0) {
        print_result(&m, of);
    }
    if (bs != NULL) {
        blk_node_unref(bs);
        blk_graph_free(g);
    }
    return r < 0 ? 1 : 0;
}

int
cmd_measure(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_SIZE, OPT_IMAGE_OPTS };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "size", required_argument, NULL, OPT_SIZE },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *out_fmt = "raw", *output = NULL, *filename = NULL;
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf ostr = SBUF_INIT;
    bool image_opts = false, have_size = false, help = false;
    struct kv *opts = NULL;
    unsigned flags = 0;
    enum img_output of;
    uint64_t size = 0;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hf:O:o:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'O':
            out_fmt = optarg;
            break;
        case 'o':
            if (ostr.len > 0) {
                sbuf_addch(&ostr, ',');
            }
            sbuf_adds(&ostr, optarg);
            break;
        case 'U':
            flags |= BLK_OPEN_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_SIZE:
            if (img_parse_size(optarg, &size) < 0) {
                img_size_error("image size");
                goto out;
            }
            have_size = true;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img measure [--output=ofmt] [-O output_fmt] [-o options] "
                   "[--size N | [--image-opts] [-f fmt] filename]\n");
            ret = 0;
            goto out;
        default:
            ret = img_getopt_error(c, argv);
            goto out;
        }
    }
    if (optind < argc) {
        filename = argv[optind++];
    }
    if (optind < argc) {
        img_usage_error("Unexpected argument: %s", argv[optind]);
        goto out;
    }
    if (img_parse_output(output, &of) < 0) {
        goto out;
    }
    if (filename != NULL && have_size) {
        blk_img_error("--size N cannot be used together with a filename.");
        goto out;
    }
    if (filename == NULL && !have_size) {
        blk_img_error("Either --size N or one filename must be specified.");
        goto out;
    }
    if (strcmp(out_fmt, "qcow2") != 0 && strcmp(out_fmt, "raw") != 0) {
        blk_img_error("Block driver '%s' does not support size measurement", out_fmt);
        goto out;
    }
    opts = ostr.len > 0 ? img_opts_parse(ostr.buf, &help, &err) : kv_new_object();
    if (opts == NULL) {
        blk_img_error("Invalid option list: %s", ostr.buf);
        goto out;
    }
    if (help) {
        printf("Supported %s options:\n", out_fmt);
        img_opts_help(img_create_opts(out_fmt), NULL);
        ret = 0;
        goto out;
    }
    if (img_opts_check(opts, img_create_opts(out_fmt), img_protocol_opts(), &err) < 0) {
        blk_img_error("%s", err.msg);
        blk_img_error("Invalid options for file format '%s'", out_fmt);
        goto out;
    }
    ret = measure_image(filename, fmt, image_opts, flags, out_fmt, opts, size, of);
out:
    kv_free(opts);
    sbuf_release(&ostr);
    return ret;
}
