/*
 * convert.c - blk-img convert: qemu-img 7.2's options, messages and exit
 * codes; the copy itself runs on the engine in convert-copy.c with -m
 * requests in flight.  A failed convert removes a target it created, so
 * nothing that looks like a finished image is left behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/bitmap-qmp.h"
#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/convert-int.h"
#include "cmd/blk-img/img-common.h"
#include "keyval/schema.h"
#include "util/sbuf.h"
#include "util/size.h"
#include "util/xalloc.h"

#define MAX_BUF_SIZE (16u << 20)        /* -S limit, qemu-img's MAX_BUF_SECTORS */

#define CONVERT_SYNOPSIS \
    "[--image-opts] [--target-image-opts] [--target-is-zero] [-U] [-C] " \
    "[-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] " \
    "[-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] " \
    "[-r rate_limit] [-m num_requests] [-W] [--salvage] " \
    "[--progress=json|plain|bar] filename [filename2 [...]] output_filename"

enum {
    OPT_OBJECT = 256,
    OPT_IMAGE_OPTS,
    OPT_TARGET_IMAGE_OPTS,
    OPT_SALVAGE,
    OPT_TARGET_IS_ZERO,
    OPT_BITMAPS,
    OPT_SKIP_BROKEN,
    OPT_PROGRESS,
};

struct convert_opts {
    const char *fmt, *out_fmt, *out_base, *out_base_fmt, *snapshot;
    const char *cache, *src_cache;
    char *options;              /* -o, joined with ',' (owned) */
    bool compressed, copy_range, progress, quiet, skip_create, image_opts;
    bool tgt_image_opts, force_share, salvage, target_is_zero, bitmaps;
    bool skip_broken;
    bool explicit_sparse, in_order;
    enum blk_progress_mode progress_mode;
    uint64_t min_sparse;
    long in_flight;
    uint64_t rate;
    bool sn_opts;               /* -l snapshot.id=...,snapshot.name=... */
    char *sn_id, *sn_name;      /* owned; NULL when not given */
};

/*
 * -l snapshot.id=ID,snapshot.name=NAME: qemu-img's QemuOpts syntax (",,"
 * is a comma, a key without "=" is "on", the last of a key wins).  -1
 * after qemu-img's two messages.
 */
static int
parse_snapshot_param(const char *arg, struct convert_opts *o)
{
    const char *p = arg;

    while (*p != '\0') {
        size_t klen = strcspn(p, "=,");
        char *key = xstrndup(p, klen);
        struct sbuf val = SBUF_INIT;
        char **slot;

        p += klen;
        if (*p == '=') {
            for (p++; *p != '\0'; p++) {
                if (*p == ',' && p[1] != ',') {
                    break;
                }
                p += *p == ',';     /* ",," */
                sbuf_addch(&val, *p);
            }
        } else if (strncmp(key, "no", 2) == 0) {
            memmove(key, key + 2, strlen(key + 2) + 1);
            sbuf_adds(&val, "off");
        } else {
            sbuf_adds(&val, "on");
        }
        p += *p == ',';
        slot = strcmp(key, "snapshot.id") == 0 ? &o->sn_id :
               strcmp(key, "snapshot.name") == 0 ? &o->sn_name : NULL;
        if (slot == NULL) {
            blk_img_error("Invalid parameter '%s'", key);
            blk_img_error("Failed in parsing snapshot param '%s'", arg);
            free(key);
            sbuf_release(&val);
            return -1;
        }
        free(*slot);
        *slot = sbuf_detach(&val);
        free(key);
    }
    o->sn_opts = true;
    return 0;
}

/*
 * Make the snapshot -l names the source's active state (qemu-img's
 * bdrv_snapshot_load_tmp, by id then by name for a plain -l argument).
 * The source is read-only, so nothing is written to it.  -1 after a
 * message.
 */
static int
load_snapshot(const struct convert_opts *o, struct cv_job *j)
{
    struct blk_node *bs = j->parts[0].bs;
    const struct blk_driver *drv = blk_node_driver(bs);
    struct blk_error err = BLK_ERROR_INIT;
    int r;

    if (!o->sn_opts && j->nparts > 1) {
        blk_img_error("No support for concatenating multiple snapshot");
        return -1;
    }
    if (o->sn_opts && o->sn_id == NULL && o->sn_name == NULL) {
        blk_img_error("Failed to load snapshot: snapshot_id and name are "
                      "both NULL");
        return -1;
    }
    if (drv->snapshot_load_tmp == NULL) {
        blk_img_error("Failed to load snapshot: Block format '%s' used by "
                      "device '' does not support temporarily loading "
                      "internal snapshots", drv->name);
        return -1;
    }
    if (o->sn_opts) {
        r = drv->snapshot_load_tmp(bs, o->sn_id, o->sn_name, &err);
    } else {
        r = drv->snapshot_load_tmp(bs, o->snapshot, NULL, &err);
        if (r == -ENOENT || r == -EINVAL) {
            blk_error_clear(&err);
            r = drv->snapshot_load_tmp(bs, NULL, o->snapshot, &err);
        }
    }
    if (r < 0) {
        blk_img_error("Failed to load snapshot: %s", err.msg);
        return -1;
    }
    return 0;
}

static void
append_option(char **acc, const char *s)
{
    char *n = *acc ? xasprintf("%s,%s", *acc, s) : xstrdup(s);

    free(*acc);
    *acc = n;
}

/*
 * The BlockdevCreateOptions trees to create out_fmt at filename: the
 * protocol file first (qcow2: empty; raw: the whole image), then as
 * create does, qcow2's data_file (a file of the virtual size, its name
 * as given: relative to the working directory), then the format (qcow2
 * only).  -o names and checks come from img-common's tables (as for
 * create).  *data_made is set to the data file's name when this call
 * made it.  Returns -errno with err set in qemu-img's words, or 1 after
 * printing -o help.
 */
static int
create_target(const struct convert_opts *o, const char *filename,
              uint64_t size, bool *has_backing, bool *created,
              char **data_made, struct blk_error *err)
{
    bool qcow2 = strcmp(o->out_fmt, "qcow2") == 0, help = false;
    const struct img_opt_desc *ft = img_create_opts(o->out_fmt);
    const struct img_opt_desc *pt = img_protocol_opts();
    const struct kv_schema_type *t = kv_schema_lookup("BlockdevCreateOptions");
    struct kv *user = NULL, *file, *fmt = NULL, *data = NULL;
    int r = 0;

    if (o->options != NULL) {
        user = img_opts_parse(o->options, &help, err);
        if (user == NULL) {
            return -EINVAL;
        }
        if (help) {
            img_opts_help(ft, qcow2 ? pt : NULL);
            kv_free(user);
            return 1;
        }
        if (img_opts_check(user, ft, qcow2 ? pt : NULL, err) < 0) {
            kv_free(user);
            return -EINVAL;
        }
    }
    file = kv_new_object();
    kv_set(file, "driver", kv_new_str("file"));
    kv_set(file, "filename", kv_new_str(filename));
    if (qcow2) {
        fmt = kv_new_object();
        kv_set(fmt, "driver", kv_new_str("qcow2"));
        kv_set(fmt, "file", kv_dup(file));
        kv_set(fmt, "size", kv_new_uint(size));
        kv_set(file, "size", kv_new_str("0"));
    } else {
        kv_set(file, "size", kv_new_uint(size));
    }
    for (size_t i = 0; user != NULL && i < user->n; i++) {
        const char *name = user->keys[i], *v = img_opt_str(user, name);
        const struct img_opt_desc *d = img_opt_find(ft, name);
        struct kv *dst = qcow2 ? fmt : file;

        if (d == NULL) {
            d = img_opt_find(pt, name);
            dst = file;
        }
        if (d == NULL || v == NULL || strcmp(name, "size") == 0) {
            continue;           /* size: the sources' sum wins, as in qemu-img */
        }
        if (strcmp(name, "compat") == 0) {
            v = strcmp(v, "0.10") == 0 ? "v2" : strcmp(v, "1.1") == 0 ? "v3" : v;
        }
        if (strcmp(name, "backing_file") == 0) {
            *has_backing = true;
        }
        if (qcow2 && strcmp(name, "data_file") == 0) {
            struct kv *ref = kv_new_object();

            kv_set(ref, "driver", kv_new_str("file"));
            kv_set(ref, "filename", kv_new_str(v));
            kv_set(fmt, d->member, ref);
            data = kv_dup(ref);
            kv_set(data, "size", kv_new_uint(size));
            continue;
        }
        kv_set(dst, d->member, kv_new_str(v));
    }
    /* the data file: the protocol options, and falloc/full as create does */
    for (size_t i = 0; data != NULL && i < file->n; i++) {
        const char *k = file->keys[i];

        if (strcmp(k, "driver") != 0 && strcmp(k, "filename") != 0 &&
            strcmp(k, "size") != 0 && strcmp(k, "preallocation") != 0) {
            kv_set(data, k, kv_dup(file->vals[i]));
        }
    }
    if (data != NULL) {
        const char *pa = kv_get_str(fmt, "preallocation", "off");

        if (strcmp(pa, "falloc") == 0 || strcmp(pa, "full") == 0) {
            kv_set(data, "preallocation", kv_new_str(pa));
        }
    }
    if (o->out_base != NULL) {
        if (!qcow2) {
            r = blk_error_set(err, -EINVAL, "Backing file not supported for "
                              "file format '%s'", o->out_fmt);
            goto out;
        }
        kv_set(fmt, "backing-file", kv_new_str(o->out_base));
        if (o->out_base_fmt) {
            kv_set(fmt, "backing-fmt", kv_new_str(o->out_base_fmt));
        }
        *has_backing = true;
    }
    if (qcow2 && kv_get(fmt, "backing-file") != NULL &&
        kv_get(fmt, "backing-fmt") == NULL) {
        r = blk_error_set(err, -EINVAL, "Use of backing file requires "
                          "explicit backing format");
        goto out;
    }
    if (o->compressed && qcow2 &&
        strcmp(kv_get_str(fmt, "preallocation", "off"), "off") != 0) {
        r = blk_error_set(err, -EINVAL, "Compression and preallocation not "
                          "supported at the same time");
        goto out;
    }
    if (kv_validate(file, t, KV_MODE_KEYVAL, err) < 0 ||
        (data && kv_validate(data, t, KV_MODE_KEYVAL, err) < 0) ||
        (fmt && kv_validate(fmt, t, KV_MODE_KEYVAL, err) < 0)) {
        blk_error_prefix(err, "%s: error while converting %s: ", filename,
                         o->out_fmt);
        r = -EINVAL;
        goto out;
    }
    r = blk_create(file, err);
    *created = r == 0;
    if (r == 0 && data != NULL) {
        const char *dname = kv_get_str(data, "filename", "");
        bool existed = access(dname, F_OK) == 0;

        r = blk_create(data, err);
        if (!existed && access(dname, F_OK) == 0) {
            *data_made = xstrdup(dname);
        }
    }
    if (r == 0 && fmt != NULL) {
        r = blk_create(fmt, err);
    }
    if (r < 0) {
        blk_error_prefix(err, "%s: error while converting %s: ", filename,
                         o->out_fmt);
    }
out:
    kv_free(user);
    kv_free(file);
    kv_free(fmt);
    kv_free(data);
    return r;
}

/* -o help, as qemu-img convert prints it (with or without a target name). */
static int
print_opts_help(const char *fmt, bool with_file)
{
    const struct img_opt_desc *t = img_create_opts(fmt);

    if (t == NULL || strcmp(fmt, "file") == 0) {
        blk_img_error("Unknown file format '%s'", fmt);
        return 1;
    }
    if (with_file) {
        printf("Supported options:\n");
        img_opts_help(t, img_protocol_opts());
        return 0;
    }
    printf("Supported %s options:\n", fmt);
    img_opts_help(t, NULL);
    printf("\nThe protocol level may support further options.\n"
           "Specify the target filename to include those options.\n");
    return 0;
}

/* The target's cluster size (qcow2: from its header), or 0. */
static uint64_t
target_cluster_size(struct blk_node *bs)
{
    const struct blk_driver *d = blk_node_driver(bs);
    struct blk_node *file = blk_node_file(bs);
    uint8_t h[24];
    struct blk_error err = BLK_ERROR_INIT;

    if (strcmp(d->name, "qcow2") != 0 || file == NULL ||
        blk_node_pread(file, 0, h, sizeof(h), &err) < 0) {
        return 0;
    }
    return 1ull << ((uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 |
                    (uint32_t)h[22] << 8 | h[23]);
}

static int
parse_args(int argc, char **argv, struct convert_opts *o)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "target-image-opts", no_argument, NULL, OPT_TARGET_IMAGE_OPTS },
        { "salvage", no_argument, NULL, OPT_SALVAGE },
        { "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
        { "bitmaps", no_argument, NULL, OPT_BITMAPS },
        { "skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN },
        { "progress", required_argument, NULL, OPT_PROGRESS },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:",
                            longopts, NULL)) != -1) {
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
            printf("usage: blk-img convert %s\n", CONVERT_SYNOPSIS);
            exit(0);
        case 'f':
            o->fmt = optarg;
            break;
        case 'O':
            o->out_fmt = optarg;
            break;
        case 'B':
            o->out_base = optarg;
            break;
        case 'F':
            o->out_base_fmt = optarg;
            break;
        case 'C':
            o->copy_range = true;
            break;
        case 'c':
            o->compressed = true;
            break;
        case 'o':
            append_option(&o->options, optarg);
            break;
        case 'l':
            if (strncmp(optarg, "snapshot.", 9) != 0) {
                o->snapshot = optarg;
            } else if (parse_snapshot_param(optarg, o) < 0) {
                return -1;
            }
            break;
        case 'S': {
            uint64_t v;

            if (blk_size_parse(optarg, &v) < 0) {
                blk_img_error("Invalid buffer size for sparse output specified");
                return -1;
            }
            if (v % 512 != 0 || v > MAX_BUF_SIZE) {
                blk_img_error("Invalid buffer size for sparse output specified. "
                              "Valid sizes are multiples of 512 up to %u. "
                              "Select 0 to disable sparse detection (fully "
                              "allocates output).", MAX_BUF_SIZE);
                return -1;
            }
            o->min_sparse = v;
            o->explicit_sparse = true;
            break;
        }
        case 'p':
            o->progress = true;
            break;
        case 't':
            o->cache = optarg;
            break;
        case 'T':
            o->src_cache = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'n':
            o->skip_create = true;
            break;
        case 'm': {
            char *end;

            errno = 0;
            o->in_flight = strtol(optarg, &end, 0);
            if (errno || *end || end == optarg || o->in_flight < 1 ||
                o->in_flight > CV_MAX_IN_FLIGHT) {
                blk_img_error("Invalid number of coroutines. Allowed number of "
                              "coroutines is between 1 and %d",
                              CV_MAX_IN_FLIGHT);
                return -1;
            }
            break;
        }
        case 'W':
            o->in_order = false;
            break;
        case 'U':
            o->force_share = true;
            break;
        case 'r': {
            uint64_t v;

            if (blk_size_parse(optarg, &v) < 0) {
                blk_img_error("Invalid rate limit specified. You may use "
                              "k, M, G, T, P or E suffixes for");
                fprintf(stderr, "blk-img: kilobytes, megabytes, gigabytes, "
                        "terabytes, petabytes and exabytes.\n");
                return -1;
            }
            o->rate = v;
            break;
        }
        case OPT_OBJECT:
            blk_img_error("--object is not supported (no secrets or "
                          "throttle groups are needed by blk-img convert)");
            return -1;
        case OPT_IMAGE_OPTS:
            o->image_opts = true;
            break;
        case OPT_TARGET_IMAGE_OPTS:
            o->tgt_image_opts = true;
            break;
        case OPT_SALVAGE:
            o->salvage = true;
            break;
        case OPT_TARGET_IS_ZERO:
            o->target_is_zero = true;
            break;
        case OPT_BITMAPS:
            o->bitmaps = true;
            break;
        case OPT_SKIP_BROKEN:
            o->skip_broken = true;
            break;
        case OPT_PROGRESS:
            if (blk_progress_parse_mode(optarg, &o->progress_mode) < 0) {
                blk_img_error("--progress must be json, plain or bar");
                return -1;
            }
            o->progress = true;
            break;
        }
    }
    return 0;
}

/* The qemu-img checks on combinations, in its order. */
static int
check_combinations(const struct convert_opts *o, int nsrc)
{
    if (o->compressed && o->copy_range) {
        blk_img_error("Cannot enable copy offloading when -c is used");
    } else if (o->explicit_sparse && o->copy_range) {
        blk_img_error("Cannot enable copy offloading when -S is used");
    } else if (o->copy_range && o->salvage) {
        blk_img_error("Cannot use copy offloading in salvaging mode");
    } else if (o->tgt_image_opts && !o->skip_create) {
        blk_img_error("--target-image-opts requires use of -n flag");
    } else if (o->skip_create && o->options) {
        blk_img_error("-o has no effect when skipping image creation");
    } else if (o->target_is_zero && !o->skip_create) {
        blk_img_error("--target-is-zero requires use of -n flag");
    } else if (nsrc < 1) {
        blk_img_error("Must specify image file name");
    } else if (o->skip_broken && !o->bitmaps) {
        blk_img_error("Use of --skip-broken-bitmaps requires --bitmaps");
    } else if (o->bitmaps && nsrc > 1) {
        blk_img_error("Copying bitmaps only possible with single source");
    } else {
        return 0;
    }
    return -1;
}

/* Persistent bitmaps live in qcow2 images only. */
static bool
stores_bitmaps(struct blk_node *bs)
{
    return strcmp(blk_node_driver(bs)->name, "qcow2") == 0;
}

/*
 * --bitmaps: copy every persistent bitmap of src to the target, with its
 * granularity, recording state and dirty bits, after the data.  QEMU
 * walks the bitmaps newest first, so its messages name them in that
 * order; the checks run first, in that order, then the copies in
 * creation order, so the target lists them as the source does.
 */
static int
copy_bitmaps(struct blk_node *src, struct blk_node *dst, bool skip_broken)
{
    struct blk_bitmap **list = NULL, *bm;
    struct blk_error err = BLK_ERROR_INIT;
    size_t n = 0, i;
    int r = 0;

    for (bm = blk_bitmap_next(src, NULL); bm != NULL;
         bm = blk_bitmap_next(src, bm)) {
        if (blk_bitmap_persistent(bm)) {
            list = xrealloc(list, (n + 1) * sizeof(*list));
            list[n++] = bm;
        }
    }
    for (i = n; i-- > 0 && r == 0;) {
        const char *name = blk_bitmap_name(list[i]);

        if (blk_bitmap_inconsistent(list[i])) {
            if (!skip_broken) {
                blk_img_error("Cannot copy inconsistent bitmap '%s'", name);
                fprintf(stderr, "Try --skip-broken-bitmaps, or use 'blk-img "
                        "bitmap --remove' to delete it\n");
                r = -EINVAL;
            } else {
                fprintf(stderr, "blk-img: warning: Skipping inconsistent "
                        "bitmap '%s'\n", name);
                list[i] = NULL;
            }
        } else if (blk_bitmap_find(dst, name) != NULL) {
            blk_img_error("Failed to create bitmap %s: Bitmap already "
                          "exists: %s", name, name);
            r = -EEXIST;
        }
    }
    for (i = 0; i < n && r == 0; i++) {
        struct blk_bitmap *copy;

        if (list[i] == NULL) {
            continue;
        }
        copy = blk_bitmap_qmp_add(dst, blk_bitmap_name(list[i]), true,
                                  blk_bitmap_granularity(list[i]), true,
                                  !blk_bitmap_enabled(list[i]), &err);
        if (copy == NULL) {
            blk_img_error("Failed to create bitmap %s: %s",
                          blk_bitmap_name(list[i]), err.msg);
            r = err.code;
            break;
        }
        r = blk_bitmap_merge(copy, list[i], &err);
        if (r < 0) {
            blk_img_error("Failed to populate bitmap %s: %s",
                          blk_bitmap_name(list[i]), err.msg);
        }
    }
    free(list);
    return r;
}

static struct blk_node *
open_or_report(struct blk_graph *g, const char *name, const char *fmt,
               bool image_opts, unsigned flags)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs = blk_open_image(g, name, fmt, image_opts, flags, &err);

    if (bs == NULL) {
        if (image_opts) {
            blk_img_error("%s", err.msg);
        } else {
            blk_img_error("Could not open '%s': %s", name, err.msg);
        }
    }
    return bs;
}

/* Open the nparts sources named in names into j->parts.  -1 after a message. */
static int
open_sources(struct blk_graph *g, const struct convert_opts *o,
             char **names, unsigned flags, struct cv_job *j)
{
    struct blk_error err = BLK_ERROR_INIT;

    for (int i = 0; i < j->nparts; i++) {
        struct blk_node *bs;
        int64_t len;

        bs = open_or_report(g, names[i], o->fmt, o->image_opts,
                            flags | (o->force_share ? BLK_OPEN_FORCE_SHARE : 0));
        if (bs == NULL) {
            return -1;
        }
        j->parts[i].bs = bs;
        /*
         * qemu-img opens convert's sources without sharing write
         * (BDRV_O_NO_SHARE), so a target on the same file is refused
         * unless -U.  The graph frees the backend after the parts.
         */
        if (blk_backend_new(g, NULL, bs, BLK_PERM_CONSISTENT_READ,
                            o->force_share ? BLK_PERM_ALL
                            : BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED,
                            &err) == NULL) {
            if (o->image_opts) {
                blk_img_error("%s", err.msg);
            } else {
                blk_img_error("Could not open '%s': %s", names[i], err.msg);
            }
            return -1;
        }
        len = blk_node_get_length(bs);
        if (len < 0) {
            blk_img_error("Could not get size of %s: %s", names[i],
                          strerror((int)-len));
            return -1;
        }
        j->parts[i].len = (uint64_t)len;
        j->total += (uint64_t)len;
    }
    return 0;
}

/* The engine's settings for this convert (qemu-img's rules). */
static void
fill_job(struct cv_job *j, const struct convert_opts *o, bool created,
         bool has_backing, bool writethrough, struct blk_progress *prog)
{
    j->compressed = o->compressed;
    j->in_order = o->in_order;
    {
        const char *t = blk_node_driver(j->target)->name;

        /* Formats without allocation: host offsets follow guest offsets. */
        j->issue_order = strcmp(t, "raw") == 0 || strcmp(t, "file") == 0 ||
                         strcmp(t, "host_device") == 0;
    }
    j->target_has_backing = has_backing;
    j->target_backing_len = -1;
    if (has_backing && created && blk_node_backing(j->target) != NULL) {
        j->target_backing_len = blk_node_get_length(blk_node_backing(j->target));
    }
    /* A new target without backing reads as zeroes: skip zero writes. */
    j->has_zero_init = o->target_is_zero ||
                       (created && o->min_sparse && !has_backing);
    j->salvage = o->salvage;
    j->quiet = o->quiet;
    j->min_sparse = o->min_sparse;
    j->alignment = 512;
    while (j->alignment * 2 <= o->min_sparse) {
        j->alignment *= 2;
    }
    j->in_flight = (unsigned)o->in_flight;
    j->write_flags = writethrough ? BLK_REQ_FUA : 0;
    j->rate_limit = o->rate;
    j->progress = prog;
}

/*
 * -C: the file under a plain raw node (no offset/size window, no
 * O_DIRECT), opened again with flags for copy_file_range; -1 if none.
 */
static int
raw_file_fd(struct blk_node *bs, int flags)
{
    const struct kv *opts = blk_node_options(bs);
    struct blk_node *file = blk_node_file(bs);

    if (strcmp(blk_node_driver(bs)->name, "raw") != 0 || file == NULL ||
        strcmp(blk_node_driver(file)->name, "file") != 0 ||
        (opts != NULL && (kv_get(opts, "offset") || kv_get(opts, "size"))) ||
        blk_node_cache_direct(file) || blk_node_get_filename(file) == NULL) {
        return -1;
    }
    return open(blk_node_get_filename(file), flags | O_CLOEXEC);
}

/* Set up -C where every end is a plain raw file; otherwise copy normally. */
static void
setup_copy_range(struct cv_job *j, bool wanted)
{
    j->copy_src_fd = xmalloc((size_t)j->nparts * sizeof(int));
    j->copy_dst_fd = wanted ? raw_file_fd(j->target, O_WRONLY) : -1;
    for (int i = 0; i < j->nparts; i++) {
        j->copy_src_fd[i] = j->copy_dst_fd >= 0 ?
                            raw_file_fd(j->parts[i].bs, O_RDONLY) : -1;
    }
}

static void
close_copy_range(struct cv_job *j)
{
    for (int i = 0; j->copy_src_fd != NULL && i < j->nparts; i++) {
        if (j->copy_src_fd[i] >= 0) {
            close(j->copy_src_fd[i]);
        }
    }
    if (j->copy_dst_fd >= 0) {
        close(j->copy_dst_fd);
    }
    free(j->copy_src_fd);
    j->copy_src_fd = NULL;
    j->copy_dst_fd = -1;
}

int
cmd_convert(int argc, char **argv)
{
    struct convert_opts o = {
        .cache = "unsafe", .src_cache = "writeback", .min_sparse = 4096,
        .in_flight = 8, .in_order = true, .progress_mode = BLK_PROGRESS_ON,
    };
    struct cv_job j;
    struct blk_graph *g = NULL;
    struct blk_node *target = NULL;
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_progress *prog = NULL;
    const char *out_filename;
    char *data_made = NULL;
    unsigned src_flags, tgt_flags;
    bool src_wt, tgt_wt, has_backing = false, created = false;
    int nsrc, i, ret = 1;

    memset(&j, 0, sizeof(j));
    j.copy_dst_fd = -1;
    if (parse_args(argc, argv, &o) < 0) {
        goto out_free;
    }
    if (!o.out_fmt && !o.tgt_image_opts) {
        o.out_fmt = "raw";
    }
    nsrc = argc - optind - 1;
    out_filename = nsrc >= 1 ? argv[argc - 1] : NULL;
    if (o.options != NULL && !o.skip_create && o.out_fmt != NULL) {
        bool help = false;
        struct kv *t = img_opts_parse(o.options, &help, NULL);

        kv_free(t);
        if (help) {
            ret = print_opts_help(o.out_fmt, out_filename != NULL);
            goto out_free;
        }
    }
    if (check_combinations(&o, nsrc) < 0) {
        goto out_free;
    }
    if (cv_parse_cache(o.src_cache, &src_flags, &src_wt) < 0) {
        blk_img_error("Invalid source cache option: %s", o.src_cache);
        goto out_free;
    }
    if (o.quiet) {
        o.progress = false;
    }
    prog = blk_progress_new(o.progress ? o.progress_mode : BLK_PROGRESS_OFF,
                            1.0f, stdout);
    blk_progress_print(prog, 0, 100);

    blk_loop_init(CV_MAX_IN_FLIGHT + 2);
    g = blk_graph_new();
    j.parts = xcalloc((size_t)nsrc, sizeof(*j.parts));
    j.nparts = nsrc;
    if (open_sources(g, &o, argv + optind, src_flags, &j) < 0) {
        goto out;
    }
    if (o.bitmaps && !stores_bitmaps(j.parts[0].bs)) {
        blk_img_error("Source lacks bitmap support");
        goto out;
    }
    if ((o.sn_opts || o.snapshot != NULL) && load_snapshot(&o, &j) < 0) {
        goto out;
    }

    if (!o.skip_create) {
        const struct blk_driver *d = blk_driver_find(o.out_fmt);

        if (d == NULL || !d->is_format) {
            blk_img_error("Unknown file format '%s'", o.out_fmt);
            goto out;
        }
        if (strcmp(o.out_fmt, "raw") != 0 && strcmp(o.out_fmt, "qcow2") != 0) {
            blk_img_error("Format driver '%s' does not support image creation",
                          o.out_fmt);
            goto out;
        }
        if (o.compressed && strcmp(o.out_fmt, "qcow2") != 0) {
            blk_img_error("Compression not supported for this file format");
            goto out;
        }
    }
    if (o.skip_create) {
        has_backing = o.out_base != NULL;
    }
    if (o.out_base && nsrc > 1) {
        blk_img_error("Having a backing file for the target makes no sense "
                      "when concatenating multiple input images");
        goto out;
    }
    if (!o.skip_create) {
        bool existed = access(out_filename, F_OK) == 0;
        int r = create_target(&o, out_filename, j.total, &has_backing,
                              &created, &data_made, &err);

        /* A file creation that failed half way still made the file. */
        created |= !existed && access(out_filename, F_OK) == 0;

        if (r != 0) {
            if (r < 0) {
                blk_img_error("%s", err.msg);
            }
            ret = r < 0;
            goto out;
        }
    }
    if (o.target_is_zero && has_backing) {
        blk_img_error("Cannot use --target-is-zero when the destination image "
                      "has a backing file");
        goto out;
    }
    if (cv_parse_cache(o.cache, &tgt_flags, &tgt_wt) < 0) {
        blk_img_error("Invalid cache option: %s", o.cache);
        goto out;
    }
    tgt_flags |= BLK_OPEN_RDWR | (o.min_sparse ? BLK_OPEN_UNMAP : 0);
    target = open_or_report(g, out_filename,
                            o.tgt_image_opts ? NULL : o.out_fmt,
                            o.tgt_image_opts, tgt_flags);
    if (target == NULL) {
        goto out;
    }
    if (o.skip_create) {
        int64_t tl = blk_node_get_length(target);

        if (tl < 0) {
            blk_img_error("unable to get output image length: %s",
                          strerror((int)-tl));
            goto out;
        }
        if ((uint64_t)tl < j.total) {
            blk_img_error("output file is smaller than input file");
            goto out;
        }
    }
    if (o.compressed && strcmp(blk_node_driver(target)->name, "qcow2") != 0) {
        blk_img_error("Compression not supported for this file format");
        goto out;
    }
    if (o.bitmaps && !stores_bitmaps(target)) {
        blk_img_error("Format driver '%s' does not support bitmaps",
                      blk_node_driver(target)->name);
        goto out;
    }

    j.target = target;
    j.cluster_size = target_cluster_size(target);
    if (o.compressed && j.cluster_size == 0) {
        blk_img_error("could not get block driver info");
        goto out;
    }
    fill_job(&j, &o, created, has_backing, tgt_wt, prog);
    j.flush_every = cv_flush_every(tgt_flags, tgt_wt);
    setup_copy_range(&j, o.copy_range);

    ret = cv_run(&j) < 0;
    close_copy_range(&j);
    if (ret == 0) {
        if (blk_node_flush(target, &err) < 0) {
            blk_img_error("error while flushing the target: %s", err.msg);
            ret = 1;
        }
    }
    if (ret == 0 && o.bitmaps) {
        ret = copy_bitmaps(j.parts[0].bs, target, o.skip_broken) < 0;
    }
    if (ret == 0) {
        blk_progress_print(prog, 100, 0);
    }

out:
    blk_progress_end(prog);
    prog = NULL;
    if (target) {
        blk_node_unref(target);
    }
    for (i = 0; j.parts != NULL && i < j.nparts; i++) {
        if (j.parts[i].bs) {
            blk_node_unref(j.parts[i].bs);
        }
    }
    if (g) {
        blk_graph_free(g);
    }
    /*
     * A target this command created and could not fill is removed: a
     * half-written raw file or qcow2 image would otherwise look like a
     * complete image (qemu-img leaves it).  With -n the user's existing
     * target is left as it is; so is a data file that existed before.
     */
    if (ret != 0 && created && out_filename != NULL) {
        unlink(out_filename);
    }
    if (ret != 0 && data_made != NULL) {
        unlink(data_made);
    }
    free(data_made);
out_free:
    blk_progress_end(prog);
    free(j.parts);
    free(o.options);
    free(o.sn_id);
    free(o.sn_name);
    return ret;
}
