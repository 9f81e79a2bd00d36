/*
 * info.c - `blk-img info`: qemu-img 7.2's ImageInfo, as its human dump or
 * as JSON in QEMU's member order, for one image or its backing chain.
 * Format-specific facts come from the driver's get_info op; for qcow2
 * images whose driver lacks it they are read from the header.
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
#include "util/xalloc.h"

/* qcow2 spec: feature bits */
#define QCOW2_INCOMPAT_DIRTY 1u
#define QCOW2_INCOMPAT_CORRUPT 2u
#define QCOW2_COMPAT_LAZY_REFCOUNTS 1u
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW 2u
#define QCOW2_INCOMPAT_EXTL2 16u

/* The format-specific "data" of a qcow2 image from its header (ImageInfoSpecificQcow2). */
static struct kv *
qcow2_specific(const struct img_qcow2_header *h)
{
    struct kv *d = kv_new_object();

    if (h->version < 3) {
        kv_set(d, "compat", kv_new_str("0.10"));
        kv_set(d, "refcount-bits", kv_new_int(1LL << h->refcount_order));
    } else {
        kv_set(d, "compat", kv_new_str("1.1"));
        if (h->data_file != NULL) {
            kv_set(d, "data-file", kv_new_str(h->data_file));
            kv_set(d, "data-file-raw",
                   kv_new_bool(h->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW));
        }
        kv_set(d, "extended-l2", kv_new_bool(h->incompatible & QCOW2_INCOMPAT_EXTL2));
        kv_set(d, "lazy-refcounts",
               kv_new_bool(h->compatible & QCOW2_COMPAT_LAZY_REFCOUNTS));
        kv_set(d, "corrupt", kv_new_bool(h->incompatible & QCOW2_INCOMPAT_CORRUPT));
        kv_set(d, "refcount-bits", kv_new_int(1LL << h->refcount_order));
    }
    kv_set(d, "compression-type",
           kv_new_str(h->compression_type == 1 ? "zstd" : "zlib"));
    return d;
}

struct facts {
    struct kv *specific;        /* {"type":..., "data":...} or NULL */
    int64_t cluster_size;       /* -1 if unknown */
    bool dirty, encrypted;
    char *backing, *backing_fmt;
};

/* Take the driver's get_info answer apart (see the report of this command). */
static void
driver_facts(struct blk_node *bs, struct facts *f)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *info, *v;

    if (drv->get_info == NULL) {
        return;
    }
    info = kv_new_object();
    if (drv->get_info(bs, info, &err) < 0 || info->n == 0) {
        kv_free(info);
        return;
    }
    if ((v = kv_take(info, "cluster-size")) != NULL) {
        f->cluster_size = v->type == KV_INT ? v->v.i : -1;
        kv_free(v);
    }
    if ((v = kv_take(info, "dirty-flag")) != NULL) {
        f->dirty = v->type == KV_BOOL && v->v.b;
        kv_free(v);
    }
    if ((v = kv_take(info, "encrypted")) != NULL) {
        f->encrypted = v->type == KV_BOOL && v->v.b;
        kv_free(v);
    }
    if (kv_get(info, "data") != NULL) {
        f->specific = info;
    } else {
        f->specific = kv_new_object();
        kv_set(f->specific, "type", kv_new_str(drv->name));
        kv_set(f->specific, "data", info);
    }
}

static void
collect_facts(struct blk_node *bs, struct facts *f)
{
    struct img_qcow2_header h;
    struct blk_node *file = blk_node_file(bs);

    memset(f, 0, sizeof(*f));
    f->cluster_size = -1;
    driver_facts(bs, f);
    if (strcmp(img_format_name(bs), "qcow2") != 0 || file == NULL ||
        img_qcow2_read_header(file, &h, NULL) < 0) {
        return;
    }
    if (f->cluster_size < 0) {
        f->cluster_size = 1LL << h.cluster_bits;
        f->dirty = (h.incompatible & QCOW2_INCOMPAT_DIRTY) != 0;
    }
    if (f->specific == NULL) {
        f->specific = kv_new_object();
        kv_set(f->specific, "type", kv_new_str("qcow2"));
        kv_set(f->specific, "data", qcow2_specific(&h));
    }
    f->backing = h.backing_file;
    f->backing_fmt = h.backing_fmt;
    h.backing_file = h.backing_fmt = NULL;
    img_qcow2_header_release(&h);
}

static struct kv *
snapshots_list(struct blk_node *bs)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    struct blk_snapshot_info *sn = NULL;
    struct kv *list;
    size_t n = 0, i;

    if (drv->snapshot_list == NULL || drv->snapshot_list(bs, &sn, &n, NULL) < 0) {
        return NULL;
    }
    if (n == 0) {
        img_snapshots_free(sn, n);
        return NULL;
    }
    list = kv_new_list();
    for (i = 0; i < n; i++) {
        struct kv *o = kv_new_object();

        /* SnapshotInfo's member order */
        kv_set(o, "id", kv_new_str(sn[i].id));
        kv_set(o, "name", kv_new_str(sn[i].name));
        kv_set(o, "vm-state-size", kv_new_int((int64_t)sn[i].vm_state_size));
        kv_set(o, "date-sec", kv_new_int(sn[i].date_sec));
        kv_set(o, "date-nsec", kv_new_int(sn[i].date_nsec));
        kv_set(o, "vm-clock-sec", kv_new_int((int64_t)(sn[i].vm_clock_nsec / 1000000000ULL)));
        kv_set(o, "vm-clock-nsec", kv_new_int((int64_t)(sn[i].vm_clock_nsec % 1000000000ULL)));
        if (sn[i].icount != UINT64_MAX) {
            kv_set(o, "icount", kv_new_int((int64_t)sn[i].icount));
        }
        kv_append(list, o);
    }
    img_snapshots_free(sn, n);
    return list;
}

/*
 * QEMU reports dirty-flag (and cluster-size) only for drivers that answer
 * its get_info call: the file protocols, raw and qcow2, not null-co.
 */
static bool
has_block_info(struct blk_node *bs)
{
    static const char *const names[] = { "file", "host_device", "raw", "qcow2" };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(names); i++) {
        if (strcmp(img_format_name(bs), names[i]) == 0) {
            return true;
        }
    }
    return blk_node_driver(bs)->get_info != NULL;
}

/* ImageInfo, members in QAPI order (which decides ties in QDict order). */
static struct kv *
image_info(struct blk_node *bs, const char *name)
{
    struct blk_node *file = blk_node_file(bs);
    const char *filename = blk_node_get_filename(bs);
    struct kv *info = kv_new_object(), *snaps;
    int64_t actual = -1;
    struct facts f;

    collect_facts(bs, &f);
    if (file != NULL) {
        actual = blk_node_get_allocated_size(file);
    } else {
        actual = blk_node_get_allocated_size(bs);
    }
    kv_set(info, "filename", kv_new_str(filename != NULL ? filename : name));
    kv_set(info, "format", kv_new_str(img_format_name(bs)));
    if (has_block_info(bs)) {
        kv_set(info, "dirty-flag", kv_new_bool(f.dirty));
    }
    if (actual >= 0) {
        kv_set(info, "actual-size", kv_new_int(actual));
    }
    kv_set(info, "virtual-size", kv_new_int(blk_node_get_length(bs)));
    if (f.cluster_size > 0) {
        kv_set(info, "cluster-size", kv_new_int(f.cluster_size));
    }
    if (f.encrypted) {
        kv_set(info, "encrypted", kv_new_bool(true));
    }
    if (f.backing != NULL) {
        char *full = img_path_combine(filename != NULL ? filename : name, f.backing);

        kv_set(info, "backing-filename", kv_new_str(f.backing));
        kv_set(info, "full-backing-filename", kv_new_str(full));
        free(full);
        if (f.backing_fmt != NULL) {
            kv_set(info, "backing-filename-format", kv_new_str(f.backing_fmt));
        }
    }
    snaps = snapshots_list(bs);
    if (snaps != NULL) {
        kv_set(info, "snapshots", snaps);
    }
    if (f.specific != NULL) {
        kv_set(info, "format-specific", f.specific);
    }
    free(f.backing);
    free(f.backing_fmt);
    img_qdict_order(info);
    return info;
}

static void
dump_human(const struct kv *info)
{
    struct sbuf sb = SBUF_INIT;
    char buf[BLK_SIZE_STR_BYTES_MAX];
    const struct kv *v;
    const char *backing = kv_get_str(info, "backing-filename", NULL);
    const char *full = kv_get_str(info, "full-backing-filename", NULL);

    sbuf_addf(&sb, "image: %s\n", kv_get_str(info, "filename", ""));
    sbuf_addf(&sb, "file format: %s\n", kv_get_str(info, "format", ""));
    blk_size_to_str_bytes((uint64_t)kv_get_int(info, "virtual-size", 0), buf, sizeof(buf));
    sbuf_addf(&sb, "virtual size: %s\n", buf);
    if (kv_get(info, "actual-size") != NULL) {
        blk_size_to_str((uint64_t)kv_get_int(info, "actual-size", 0), buf, sizeof(buf));
        sbuf_addf(&sb, "disk size: %s\n", buf);
    } else {
        sbuf_adds(&sb, "disk size: unavailable\n");
    }
    if (kv_get(info, "cluster-size") != NULL) {
        sbuf_addf(&sb, "cluster_size: %" PRId64 "\n", kv_get_int(info, "cluster-size", 0));
    }
    if (kv_get_bool(info, "encrypted", false)) {
        sbuf_adds(&sb, "encrypted: yes\n");
    }
    if (kv_get_bool(info, "dirty-flag", false)) {
        sbuf_adds(&sb, "cleanly shut down: no\n");
    }
    if (backing != NULL) {
        sbuf_addf(&sb, "backing file: %s", backing);
        if (full != NULL && strcmp(full, backing) != 0) {
            sbuf_addf(&sb, " (actual path: %s)", full);
        }
        sbuf_addch(&sb, '\n');
    }
    if ((v = kv_get(info, "backing-filename-format")) != NULL) {
        sbuf_addf(&sb, "backing file format: %s\n", v->v.s);
    }
    if ((v = kv_get(info, "snapshots")) != NULL) {
        struct blk_snapshot_info *sn = xcalloc(v->n, sizeof(*sn));
        size_t i;

        for (i = 0; i < v->n; i++) {
            const struct kv *o = v->vals[i];

            sn[i].id = (char *)kv_get_str(o, "id", "");
            sn[i].name = (char *)kv_get_str(o, "name", "");
            sn[i].vm_state_size = (uint64_t)kv_get_int(o, "vm-state-size", 0);
            sn[i].date_sec = (uint32_t)kv_get_int(o, "date-sec", 0);
            sn[i].vm_clock_nsec = (uint64_t)kv_get_int(o, "vm-clock-sec", 0) * 1000000000ULL +
                                  (uint64_t)kv_get_int(o, "vm-clock-nsec", 0);
            sn[i].icount = kv_get(o, "icount") != NULL ?
                           (uint64_t)kv_get_int(o, "icount", 0) : UINT64_MAX;
        }
        sbuf_adds(&sb, "Snapshot list:\n");
        img_dump_snapshots(sn, v->n, &sb);
        free(sn);
    }
    if ((v = kv_get(info, "format-specific")) != NULL && kv_get(v, "data") != NULL) {
        sbuf_adds(&sb, "Format specific information:\n");
        img_dump_specific(kv_get(v, "data"), 1, &sb);
    }
    fputs(sb.buf, stdout);
    sbuf_release(&sb);
}

/* Open each image of the chain in turn (never through the backing link). */
static struct kv *
collect_chain(const char *filename, const char *fmt, bool image_opts,
              bool chain, unsigned flags)
{
    struct kv *list = kv_new_list();
    char *name = xstrdup(filename), *cur_fmt = fmt != NULL ? xstrdup(fmt) : NULL;
    size_t i;

    while (name != NULL) {
        struct blk_graph *g;
        struct blk_node *bs;
        struct kv *info;
        const char *next;

        for (i = 0; i < list->n; i++) {
            if (strcmp(kv_get_str(list->vals[i], "filename", ""), name) == 0) {
                blk_img_error("Backing file '%s' creates an infinite loop.", name);
                goto fail;
            }
        }
        g = blk_graph_new();
        bs = img_open(g, name, cur_fmt, image_opts, flags);
        if (bs == NULL) {
            blk_graph_free(g);
            goto fail;
        }
        info = image_info(bs, name);
        blk_node_unref(bs);
        blk_graph_free(g);
        kv_append(list, info);
        free(name);
        free(cur_fmt);
        name = cur_fmt = NULL;
        image_opts = false;
        if (!chain) {
            break;
        }
        next = kv_get_str(info, "full-backing-filename",
                          kv_get_str(info, "backing-filename", NULL));
        if (next != NULL) {
            name = xstrdup(next);
            next = kv_get_str(info, "backing-filename-format", NULL);
            cur_fmt = next != NULL ? xstrdup(next) : NULL;
        }
    }
    return list;

fail:
    free(name);
    free(cur_fmt);
    kv_free(list);
    return NULL;
}

int
cmd_info(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_CHAIN, OPT_IMAGE_OPTS };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "backing-chain", no_argument, NULL, OPT_CHAIN },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = NULL;
    bool chain = false, image_opts = false;
    unsigned flags = BLK_OPEN_NO_BACKING;
    enum img_output of;
    struct kv *list;
    size_t i;
    int c;

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
        case OPT_CHAIN:
            chain = true;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img info [--image-opts] [-f fmt] [--output=ofmt] "
                   "[--backing-chain] [-U] filename\n");
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
    list = collect_chain(argv[optind], fmt, image_opts, chain, flags);
    if (list == NULL) {
        return 1;
    }
    if (of == IMG_OUTPUT_JSON) {
        img_print_json(chain ? list : list->vals[0]);
    } else {
        for (i = 0; i < list->n; i++) {
            if (i > 0) {
                putchar('\n');
            }
            dump_human(list->vals[i]);
        }
    }
    kv_free(list);
    return 0;
}
