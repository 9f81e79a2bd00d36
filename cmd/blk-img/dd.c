/*
 * dd.c - blk-img dd: qemu-img 7.2's dd (if=, of=, bs=, count=, skip=,
 * -f, -O, --image-opts, -U): creates the output image with the size of
 * what is copied and copies every block, zeroes included, as qemu-img
 * does; the copy runs on the convert engine with requests in flight.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/convert-int.h"
#include "keyval/schema.h"
#include "util/size.h"
#include "util/xalloc.h"

enum { OPT_IMAGE_OPTS = 256, OPT_OBJECT };

struct dd_opts {
    const char *in, *out, *fmt, *out_fmt;
    uint64_t bs, count, skip;
    bool has_count, has_skip, image_opts, force_share;
};

static void
suffix_error(const char *what)
{
    blk_img_error("Invalid %s specified. You may use k, M, G, T, P or E "
                  "suffixes for", what);
    fprintf(stderr, "blk-img: kilobytes, megabytes, gigabytes, terabytes, "
            "petabytes and exabytes.\n");
}

/* One KEY=VALUE operand; returns 0 or -1 after printing the error. */
static int
parse_operand(struct dd_opts *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *v = eq ? eq + 1 : "";
    uint64_t n;

    if (eq == NULL) {
        blk_img_error("unrecognized operand %s", arg);
        return -1;
    }
    if (klen == 2 && strncmp(arg, "if", 2) == 0) {
        o->in = v;
    } else if (klen == 2 && strncmp(arg, "of", 2) == 0) {
        o->out = v;
    } else if (klen == 2 && strncmp(arg, "bs", 2) == 0) {
        if (blk_size_parse(v, &n) < 0) {
            suffix_error("bs");
            return -1;
        }
        if (n == 0 || n > INT_MAX) {
            blk_img_error("Invalid bs specified. Must be between 1 and %d.",
                          INT_MAX);
            return -1;
        }
        o->bs = n;
    } else if (klen == 5 && strncmp(arg, "count", 5) == 0) {
        if (blk_size_parse(v, &n) < 0) {
            suffix_error("count");
            return -1;
        }
        o->count = n;
        o->has_count = true;
    } else if (klen == 4 && strncmp(arg, "skip", 4) == 0) {
        if (blk_size_parse(v, &n) < 0) {
            suffix_error("skip");
            return -1;
        }
        o->skip = n;
        o->has_skip = true;
    } else {
        blk_img_error("unrecognized operand %.*s", (int)klen, arg);
        return -1;
    }
    return 0;
}

static int
parse_args(int argc, char **argv, struct dd_opts *o)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, ":hf:O:U", longopts, NULL)) != -1) {
        switch (c) {
        case ':':
            blk_img_error("missing argument for option '%s'", argv[optind - 1]);
            fprintf(stderr, "Try 'blk-img --help' for more information\n");
            return -1;
        case '?':
            blk_img_error("unrecognized option '%s'", argv[optind - 1]);
            fprintf(stderr, "Try 'blk-img --help' for more information\n");
            return -1;
        case 'h':
            printf("usage: blk-img dd [--image-opts] [-U] [-f fmt] "
                   "[-O output_fmt] [bs=block_size] [count=blocks] "
                   "[skip=blocks] if=input of=output\n");
            exit(0);
        case 'f':
            o->fmt = optarg;
            break;
        case 'O':
            o->out_fmt = optarg;
            break;
        case 'U':
            o->force_share = true;
            break;
        case OPT_IMAGE_OPTS:
            o->image_opts = true;
            break;
        case OPT_OBJECT:
            blk_img_error("--object is not supported");
            return -1;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (parse_operand(o, argv[i]) < 0) {
            return -1;
        }
    }
    if (o->in == NULL || o->out == NULL) {
        blk_img_error("Must specify both input and output files");
        return -1;
    }
    return 0;
}

/* Create out as out_fmt (raw or qcow2, default options) of size bytes. */
static int
create_output(const char *out, const char *fmt, uint64_t size,
              struct blk_error *err)
{
    const struct kv_schema_type *t = kv_schema_lookup("BlockdevCreateOptions");
    struct kv *file = kv_new_object(), *q = NULL;
    int r;

    kv_set(file, "driver", kv_new_str("file"));
    kv_set(file, "filename", kv_new_str(out));
    if (strcmp(fmt, "qcow2") == 0) {
        q = kv_new_object();
        kv_set(q, "driver", kv_new_str("qcow2"));
        kv_set(q, "file", kv_dup(file));
        kv_set(q, "size", kv_new_uint(size));
        kv_set(file, "size", kv_new_uint(0));
    } else {
        kv_set(file, "size", kv_new_uint(size));
    }
    r = kv_validate(file, t, KV_MODE_JSON, err);
    if (r == 0) {
        r = blk_create(file, err);
    }
    if (r == 0 && q != NULL) {
        r = kv_validate(q, t, KV_MODE_JSON, err);
        if (r == 0) {
            r = blk_create(q, err);
        }
    }
    kv_free(file);
    kv_free(q);
    return r;
}

/* dd has every block written, zeroes too: everything is data. */
static int
all_data(struct cv_job *j, int part, uint64_t off, uint64_t len,
         enum cv_status *st, uint64_t *pnum, struct blk_error *err)
{
    *st = CV_DATA;
    *pnum = len;
    return 0;
}

int
cmd_dd(int argc, char **argv)
{
    struct dd_opts o = { .bs = 512 };
    struct blk_graph *g;
    struct blk_node *in = NULL, *out = NULL;
    struct blk_error err = BLK_ERROR_INIT;
    struct cv_part part;
    struct cv_job j;
    const struct blk_driver *d;
    int64_t in_size;
    uint64_t size, pos = 0;
    bool created = false;
    int ret = 1;

    if (parse_args(argc, argv, &o) < 0) {
        return 1;
    }
    if (o.out_fmt == NULL) {
        o.out_fmt = "raw";
    }
    d = blk_driver_find(o.out_fmt);
    if (d == NULL || !d->is_format) {
        blk_img_error("Unknown file format");
        return 1;
    }
    if (strcmp(o.out_fmt, "raw") != 0 && strcmp(o.out_fmt, "qcow2") != 0) {
        blk_img_error("Format driver '%s' does not support image creation",
                      o.out_fmt);
        return 1;
    }
    blk_loop_init(CV_MAX_IN_FLIGHT + 2);
    g = blk_graph_new();
    in = blk_open_image(g, o.in, o.fmt, o.image_opts,
                        o.force_share ? BLK_OPEN_FORCE_SHARE : 0, &err);
    if (in == NULL) {
        blk_img_error("Could not open '%s': %s", o.in, err.msg);
        goto out;
    }
    in_size = blk_node_get_length(in);
    if (in_size < 0) {
        blk_img_error("Failed to get size for '%s'", o.in);
        goto out;
    }
    size = (uint64_t)in_size;
    if (o.has_count && o.count <= UINT64_MAX / o.bs &&
        o.count * o.bs < size) {
        size = o.count * o.bs;
    }
    if (o.has_skip) {
        /*
         * qemu-img counts the skipped blocks in count=: the output is
         * min(input, count * bs) less the skipped part; skipping past
         * that is reported and leaves an empty output (exit status 0).
         */
        if (o.skip > UINT64_MAX / o.bs || o.skip * o.bs > size) {
            blk_img_error("%s: cannot skip to specified offset", o.in);
            pos = size;
        } else {
            pos = o.skip * o.bs;
        }
        size -= pos;
    }
    created = access(o.out, F_OK) != 0;
    if (create_output(o.out, o.out_fmt, size, &err) < 0) {
        blk_img_error("%s: error while creating output image: %s", o.out,
                      err.msg);
        goto out;
    }
    created = true;
    out = blk_open_image(g, o.out, o.out_fmt, false, BLK_OPEN_RDWR, &err);
    if (out == NULL) {
        blk_img_error("Could not open '%s': %s", o.out, err.msg);
        goto out;
    }
    memset(&j, 0, sizeof(j));
    j.copy_dst_fd = -1;
    part.bs = in;
    part.len = size;
    j.parts = &part;
    j.nparts = 1;
    j.total = size;
    j.src_offset = pos;
    j.target = out;
    j.status = all_data;
    j.in_order = true;
    j.target_backing_len = -1;
    j.min_sparse = 0;
    j.buf_size = o.bs > CV_BUF_SIZE ? o.bs : CV_BUF_SIZE;
    j.in_flight = 8;
    j.err_prefix = NULL;
    if (size > 0 && cv_run(&j) < 0) {
        goto out;
    }
    if (blk_node_flush(out, &err) < 0) {
        blk_img_error("%s", err.msg);
        goto out;
    }
    ret = 0;
out:
    if (out) {
        blk_node_unref(out);
    }
    if (in) {
        blk_node_unref(in);
    }
    blk_graph_free(g);
    if (ret != 0 && created) {
        unlink(o.out);      /* as convert: no partial output left behind */
    }
    return ret;
}
