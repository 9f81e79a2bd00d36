/*
 * img-common.c - helpers shared by blk-img's image subcommands: qemu-img
 * 7.2's wording for option errors, opening images, the -o option tables,
 * QEMU's JSON member order, human dumps, and chain-wide block status.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "util/size.h"
#include "util/xalloc.h"

void
img_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("blk-img: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'blk-img --help' for more information\n", stderr);
}

int
img_getopt_error(int c, char **argv)
{
    extern int optind;

    if (c == ':') {
        img_usage_error("missing argument for option '%s'", argv[optind - 1]);
    } else {
        img_usage_error("unrecognized option '%s'", argv[optind - 1]);
    }
    return 1;
}

int
img_parse_output(const char *s, enum img_output *out)
{
    if (s == NULL || strcmp(s, "human") == 0) {
        *out = IMG_OUTPUT_HUMAN;
    } else if (strcmp(s, "json") == 0) {
        *out = IMG_OUTPUT_JSON;
    } else {
        blk_img_error("--output must be used with human or json as argument.");
        return -1;
    }
    return 0;
}

int
img_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;

    if (blk_size_parse(s, &v) < 0 || v > INT64_MAX) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

void
img_size_error(const char *what)
{
    blk_img_error("Invalid %s specified. You may use "
                  "k, M, G, T, P or E suffixes for", what);
    blk_img_error("kilobytes, megabytes, gigabytes, terabytes, "
                  "petabytes and exabytes.");
}

struct blk_node *
img_open(struct blk_graph *g, const char *name, const char *fmt,
         bool image_opts, unsigned flags)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;

    if (image_opts && fmt != NULL) {
        blk_img_error("--image-opts and --format are mutually exclusive");
        return NULL;
    }
    bs = blk_open_image(g, name, fmt, image_opts, flags, &err);
    if (bs == NULL) {
        blk_img_error("Could not open '%s': %s", name, err.msg);
    }
    return bs;
}

const char *
img_format_name(const struct blk_node *bs)
{
    return blk_node_driver(bs)->name;
}

/* A name with a "proto:" prefix (no '/' before the ':'). */
static bool
has_protocol(const char *s)
{
    const char *colon = strchr(s, ':');

    return colon != NULL && memchr(s, '/', (size_t)(colon - s)) == NULL;
}

char *
img_path_combine(const char *image, const char *backing)
{
    const char *slash;

    if (backing[0] == '/' || has_protocol(backing)) {
        return xstrdup(backing);
    }
    slash = strrchr(image, '/');
    if (slash == NULL || kv_is_json_filename(image)) {
        return xstrdup(backing);
    }
    return xasprintf("%.*s%s", (int)(slash - image + 1), image, backing);
}

/* ---- qcow2 header --------------------------------------------------------- */

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* qcow2 spec, "Header extensions": type, length, data padded to 8 bytes. */
static void
parse_extensions(struct img_qcow2_header *h, const uint8_t *buf, size_t len,
                 size_t pos)
{
    while (pos + 8 <= len) {
        uint32_t type = be32(buf + pos), elen = be32(buf + pos + 4);

        pos += 8;
        if (type == 0 || elen > len - pos) {
            break;
        }
        if (type == 0xe2792acaU && h->backing_fmt == NULL) {
            h->backing_fmt = xstrndup((const char *)buf + pos, elen);
        } else if (type == 0x44415441U && h->data_file == NULL) {
            h->data_file = xstrndup((const char *)buf + pos, elen);
        }
        pos += ((size_t)elen + 7) & ~(size_t)7;
    }
}

/* Whether the extension list starting at pos ends within len bytes. */
static bool
extensions_end(const uint8_t *buf, size_t len, size_t pos)
{
    while (pos + 8 <= len) {
        uint32_t type = be32(buf + pos), elen = be32(buf + pos + 4);

        if (type == 0) {
            return true;
        }
        pos += 8 + (((size_t)elen + 7) & ~(size_t)7);
    }
    return false;
}

/* Parse the first len bytes of a qcow2 file; false if more bytes are needed. */
static bool
parse_header(struct img_qcow2_header *h, const uint8_t *buf, size_t len,
             bool complete)
{
    uint64_t boff;
    uint32_t blen, hlen;

    h->version = be32(buf + 4);
    boff = be64(buf + 8);
    blen = be32(buf + 16);
    h->cluster_bits = be32(buf + 20);
    h->size = be64(buf + 24);
    h->refcount_order = 4;
    hlen = 72;
    if (h->version >= 3 && len >= 104) {
        h->incompatible = be64(buf + 72);
        h->compatible = be64(buf + 80);
        h->autoclear = be64(buf + 88);
        h->refcount_order = be32(buf + 96);
        hlen = be32(buf + 100);
        if (hlen > 104 && len > 104) {
            h->compression_type = buf[104];
        }
    }
    /* the extensions and the backing file name live in the first cluster */
    if (!complete && ((boff != 0 && boff + blen > len) ||
                      !extensions_end(buf, len, hlen))) {
        return false;
    }
    if (hlen < len) {
        parse_extensions(h, buf, len, hlen);
    }
    if (boff != 0 && blen > 0 && boff < len && blen <= len - boff) {
        h->backing_file = xstrndup((const char *)buf + boff, blen);
    }
    return true;
}

int
img_qcow2_read_header(struct blk_node *file, struct img_qcow2_header *h,
                      struct blk_error *err)
{
    int64_t flen = blk_node_get_length(file);
    size_t len = 4096, max = 2 * 1024 * 1024;
    uint8_t *buf = NULL;
    int r;

    memset(h, 0, sizeof(*h));
    if (flen < 0) {
        return blk_error_set(err, (int)flen, "cannot get the image length");
    }
    for (;;) {
        bool complete;

        if ((uint64_t)flen < len) {
            len = (size_t)flen;
        }
        complete = len == (uint64_t)flen || len >= max;
        if (len < 72) {
            return blk_error_set(err, -EINVAL, "image is not in qcow2 format");
        }
        free(buf);
        buf = xmalloc(len);
        r = blk_node_pread(file, 0, buf, len, err);
        if (r < 0) {
            goto out;
        }
        if (be32(buf) != 0x514649fbU) {
            r = blk_error_set(err, -EINVAL, "image is not in qcow2 format");
            goto out;
        }
        /* a small read is enough unless the metadata runs past it */
        if (parse_header(h, buf, len, complete)) {
            break;
        }
        len = max;
    }
    r = 0;
out:
    free(buf);
    return r;
}

void
img_qcow2_header_release(struct img_qcow2_header *h)
{
    free(h->backing_file);
    free(h->backing_fmt);
    free(h->data_file);
    memset(h, 0, sizeof(*h));
}

/* ---- -o option tables ---------------------------------------------------- */

#define PREALLOC_HELP "Preallocation mode (allowed values: off, metadata, falloc, full)"

/* In QEMU's order, which is the order of the "Formatting ..." line. */
static const struct img_opt_desc qcow2_create_opts[] = {
    { "cluster_size", "cluster-size", IMG_OPT_SIZE, "65536", "qcow2 cluster size" },
    { "extended_l2", "extended-l2", IMG_OPT_BOOL, "off", "Extended L2 tables" },
    { "preallocation", "preallocation", IMG_OPT_STR, NULL, PREALLOC_HELP },
    { "compression_type", "compression-type", IMG_OPT_STR, "zlib",
      "Compression method used for image cluster compression" },
    { "size", "size", IMG_OPT_SIZE, NULL, "Virtual disk size" },
    { "compat", "version", IMG_OPT_STR, NULL,
      "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { "backing_file", "backing-file", IMG_OPT_STR, NULL, "File name of a base image" },
    { "backing_fmt", "backing-fmt", IMG_OPT_STR, NULL, "Image format of the base image" },
    { "data_file", "data-file", IMG_OPT_STR, NULL, "File name of an external data file" },
    { "data_file_raw", "data-file-raw", IMG_OPT_BOOL, NULL,
      "The external data file must stay valid as a raw image" },
    { "lazy_refcounts", "lazy-refcounts", IMG_OPT_BOOL, "off", "Postpone refcount updates" },
    { "refcount_bits", "refcount-bits", IMG_OPT_NUM, "16",
      "Width of a reference count entry in bits" },
    { NULL, NULL, 0, NULL, NULL },
};

static const struct img_opt_desc qcow2_amend_opts[] = {
    { "size", "size", IMG_OPT_SIZE, NULL, "Virtual disk size" },
    { "compat", "version", IMG_OPT_STR, NULL,
      "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { "backing_file", "backing-file", IMG_OPT_STR, NULL, "File name of a base image" },
    { "backing_fmt", "backing-fmt", IMG_OPT_STR, NULL, "Image format of the base image" },
    { "data_file", "data-file", IMG_OPT_STR, NULL, "File name of an external data file" },
    { "data_file_raw", "data-file-raw", IMG_OPT_BOOL, NULL,
      "The external data file must stay valid as a raw image" },
    { "lazy_refcounts", "lazy-refcounts", IMG_OPT_BOOL, NULL, "Postpone refcount updates" },
    { "refcount_bits", "refcount-bits", IMG_OPT_NUM, NULL,
      "Width of a reference count entry in bits" },
    { NULL, NULL, 0, NULL, NULL },
};

static const struct img_opt_desc raw_create_opts[] = {
    { "size", "size", IMG_OPT_SIZE, NULL, "Virtual disk size" },
    { NULL, NULL, 0, NULL, NULL },
};

static const struct img_opt_desc file_create_opts[] = {
    { "size", "size", IMG_OPT_SIZE, NULL, "Virtual disk size" },
    { "nocow", "nocow", IMG_OPT_BOOL, NULL, "Turn off copy-on-write (valid only on btrfs)" },
    { "preallocation", "preallocation", IMG_OPT_STR, NULL,
      "Preallocation mode (allowed values: off, falloc, full)" },
    { "extent_size_hint", "extent-size-hint", IMG_OPT_SIZE, NULL,
      "Extent size hint for the image file, 0 to disable" },
    { NULL, NULL, 0, NULL, NULL },
};

const struct img_opt_desc *
img_create_opts(const char *fmt)
{
    if (strcmp(fmt, "qcow2") == 0) {
        return qcow2_create_opts;
    }
    if (strcmp(fmt, "raw") == 0) {
        return raw_create_opts;
    }
    if (strcmp(fmt, "file") == 0) {
        return file_create_opts;
    }
    return NULL;
}

const struct img_opt_desc *
img_amend_opts(const char *fmt)
{
    return strcmp(fmt, "qcow2") == 0 ? qcow2_amend_opts : NULL;
}

const struct img_opt_desc *
img_protocol_opts(void)
{
    return file_create_opts;
}

const struct img_opt_desc *
img_opt_find(const struct img_opt_desc *t, const char *name)
{
    for (; t != NULL && t->name != NULL; t++) {
        if (strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

static const char *
type_help(enum img_opt_type type)
{
    switch (type) {
    case IMG_OPT_BOOL:
        return "bool (on/off)";
    case IMG_OPT_SIZE:
        return "size";
    case IMG_OPT_NUM:
        return "num";
    case IMG_OPT_STR:
        break;
    }
    return "str";
}

static int
cmp_desc(const void *a, const void *b)
{
    const struct img_opt_desc *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

void
img_opts_help(const struct img_opt_desc *a, const struct img_opt_desc *b)
{
    const struct img_opt_desc *list[64];
    const struct img_opt_desc *t;
    size_t n = 0, i;

    for (t = a; t != NULL && t->name != NULL && n < 64; t++) {
        list[n++] = t;
    }
    for (t = b; t != NULL && t->name != NULL && n < 64; t++) {
        if (img_opt_find(a, t->name) == NULL) {
            list[n++] = t;
        }
    }
    qsort(list, n, sizeof(list[0]), cmp_desc);
    for (i = 0; i < n; i++) {
        char *s = xasprintf("%s=<%s>", list[i]->name, type_help(list[i]->type));

        printf("  %-22s - %s\n", s, list[i]->help);
        free(s);
    }
}

struct kv *
img_opts_parse(const char *s, bool *help, struct blk_error *err)
{
    return kv_parse_keyval(s, NULL, help, err);
}

static bool
parse_bool(const char *s, bool *out)
{
    static const char *const on[] = { "on", "yes", "true", "y" };
    static const char *const off[] = { "off", "no", "false", "n" };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(on); i++) {
        if (strcmp(s, on[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, off[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool
parse_num(const char *s, uint64_t *out)
{
    char *end;

    if (*s == '\0' || *s == '-') {
        return false;
    }
    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno == 0 && *end == '\0';
}

int
img_opts_check(const struct kv *opts, const struct img_opt_desc *a,
               const struct img_opt_desc *b, struct blk_error *err)
{
    size_t i;

    for (i = 0; i < opts->n; i++) {
        const char *name = opts->keys[i];
        const struct kv *v = opts->vals[i];
        const struct img_opt_desc *d = img_opt_find(a, name);
        uint64_t u;
        bool bv;

        if (d == NULL) {
            d = img_opt_find(b, name);
        }
        if (strcmp(name, "encrypt") == 0 || strcmp(name, "encryption") == 0) {
            return blk_error_set(err, -ENOTSUP,
                                 "Encrypted images are not supported");
        }
        if (d == NULL) {
            return blk_error_set(err, -EINVAL, "Invalid parameter '%s'", name);
        }
        if (v->type != KV_STRING) {
            return blk_error_set(err, -EINVAL,
                                 "Parameters '%s.*' are unexpected", name);
        }
        switch (d->type) {
        case IMG_OPT_SIZE:
            if (blk_size_parse(v->v.s, &u) < 0) {
                return blk_error_set(err, -EINVAL, "Parameter '%s' expects a "
                                     "non-negative number below 2^64\nOptional "
                                     "suffix k, M, G, T, P or E means kilo-, "
                                     "mega-, giga-, tera-, peta-\nand exabytes, "
                                     "respectively.", name);
            }
            break;
        case IMG_OPT_NUM:
            if (!parse_num(v->v.s, &u)) {
                return blk_error_set(err, -EINVAL,
                                     "Parameter '%s' expects a number", name);
            }
            break;
        case IMG_OPT_BOOL:
            if (!parse_bool(v->v.s, &bv)) {
                return blk_error_set(err, -EINVAL,
                                     "Parameter '%s' expects 'on' or 'off'", name);
            }
            break;
        case IMG_OPT_STR:
            break;
        }
    }
    return 0;
}

const char *
img_opt_str(const struct kv *opts, const char *name)
{
    const struct kv *v = opts != NULL ? kv_get(opts, name) : NULL;

    return v != NULL && v->type == KV_STRING ? v->v.s : NULL;
}

bool
img_opt_u64(const struct kv *opts, const char *name, uint64_t *out)
{
    const char *s = img_opt_str(opts, name);

    if (s == NULL) {
        return false;
    }
    if (blk_size_parse(s, out) == 0) {
        return true;
    }
    return parse_num(s, out);
}

bool
img_opt_bool(const struct kv *opts, const char *name, bool dflt)
{
    const char *s = img_opt_str(opts, name);
    bool b;

    return s != NULL && parse_bool(s, &b) ? b : dflt;
}

/* ---- QDict order ------------------------------------------------------- */

/* QEMU's QDict bucket of a key (the tdb hash, 512 buckets). */
static unsigned
qdict_bucket(const char *key)
{
    size_t n = strlen(key), i;
    uint32_t v = (uint32_t)(0x238F13AFu * (uint32_t)n);

    for (i = 0; i < n; i++) {
        v += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    }
    return (1103515243u * v + 12345u) % 512;
}

void
img_qdict_order(struct kv *tree)
{
    size_t i, j;

    if (tree->type == KV_LIST) {
        for (i = 0; i < tree->n; i++) {
            img_qdict_order(tree->vals[i]);
        }
        return;
    }
    if (tree->type != KV_OBJECT) {
        return;
    }
    for (i = 0; i < tree->n; i++) {
        img_qdict_order(tree->vals[i]);
    }
    {
        struct kv *sorted = kv_new_object();
        size_t n = tree->n;
        char **keys = xcalloc(n ? n : 1, sizeof(*keys));
        unsigned *bucket = xcalloc(n ? n : 1, sizeof(*bucket));
        bool *done = xcalloc(n ? n : 1, sizeof(*done));

        for (i = 0; i < n; i++) {
            keys[i] = xstrdup(tree->keys[i]);
            bucket[i] = qdict_bucket(keys[i]);
        }
        for (i = 0; i < n; i++) {
            size_t best = n;

            /* lowest bucket; within a bucket the latest insertion first */
            for (j = 0; j < n; j++) {
                if (!done[j] && (best == n || bucket[j] <= bucket[best])) {
                    best = j;
                }
            }
            done[best] = true;
            kv_set(sorted, keys[best], kv_take(tree, keys[best]));
        }
        for (i = 0; i < n; i++) {
            free(keys[i]);
        }
        {
            /* tree is empty now: give it sorted's members and index */
            struct kv tmp = *tree;

            *tree = *sorted;
            *sorted = tmp;
        }
        kv_free(sorted);
        free(keys);
        free(bucket);
        free(done);
    }
}

void
img_print_json(const struct kv *tree)
{
    struct sbuf sb = SBUF_INIT;

    kv_to_json_pretty(tree, &sb, 0);
    printf("%s\n", sb.buf);
    sbuf_release(&sb);
}

static void
dump_scalar(const struct kv *v, struct sbuf *out)
{
    switch (v->type) {
    case KV_BOOL:
        sbuf_adds(out, v->v.b ? "true" : "false");
        break;
    case KV_INT:
        sbuf_addf(out, "%" PRId64, v->v.i);
        break;
    case KV_UINT:
        sbuf_addf(out, "%" PRIu64, v->v.u);
        break;
    case KV_NUMBER:
        sbuf_addf(out, "%g", v->v.d);
        break;
    case KV_STRING:
        sbuf_adds(out, v->v.s);
        break;
    default:
        sbuf_adds(out, "null");
        break;
    }
}

static void dump_value(const char *label, const struct kv *v, int indent,
                       struct sbuf *out);

static void
dump_list(const struct kv *list, int indent, struct sbuf *out)
{
    size_t i;

    for (i = 0; i < list->n; i++) {
        char label[32];

        snprintf(label, sizeof(label), "[%zu]", i);
        dump_value(label, list->vals[i], indent, out);
    }
}

static void
dump_value(const char *label, const struct kv *v, int indent, struct sbuf *out)
{
    sbuf_addf(out, "%*s%s:", indent * 4, "", label);
    if (v->type == KV_OBJECT) {
        sbuf_addch(out, '\n');
        img_dump_specific(v, indent + 1, out);
    } else if (v->type == KV_LIST) {
        sbuf_addch(out, '\n');
        dump_list(v, indent + 1, out);
    } else {
        sbuf_addch(out, ' ');
        dump_scalar(v, out);
        sbuf_addch(out, '\n');
    }
}

void
img_dump_specific(const struct kv *obj, int indent, struct sbuf *out)
{
    size_t i;

    for (i = 0; i < obj->n; i++) {
        char *label = xstrdup(obj->keys[i]);
        char *p;

        for (p = label; *p != '\0'; p++) {
            if (*p == '-') {
                *p = ' ';
            }
        }
        dump_value(label, obj->vals[i], indent, out);
        free(label);
    }
}

void
img_dump_snapshots(const struct blk_snapshot_info *sn, size_t n,
                   struct sbuf *out)
{
    size_t i;

    sbuf_addf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
              "DATE", "VM CLOCK", "ICOUNT");
    for (i = 0; i < n; i++) {
        char date[64] = "", clock[64], size[BLK_SIZE_STR_MAX], icount[32] = "";
        time_t t = (time_t)sn[i].date_sec;
        uint64_t secs = sn[i].vm_clock_nsec / 1000000000ULL;
        struct tm tm;

        if (localtime_r(&t, &tm) != NULL) {
            strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
        }
        snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d",
                 (int)(secs / 3600), (int)((secs / 60) % 60), (int)(secs % 60),
                 (int)((sn[i].vm_clock_nsec / 1000000) % 1000));
        blk_size_to_str(sn[i].vm_state_size, size, sizeof(size));
        if (sn[i].icount != UINT64_MAX) {
            snprintf(icount, sizeof(icount), "%" PRIu64, sn[i].icount);
        }
        sbuf_addf(out, "%-9s %-16s %8s%20s%13s%11s\n", sn[i].id, sn[i].name,
                  size, date, clock, icount);
    }
}

void
img_snapshots_free(struct blk_snapshot_info *sn, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(sn[i].id);
        free(sn[i].name);
    }
    free(sn);
}

/* ---- block status over the chain ---------------------------------------- */

/* One layer's status, with a raw-style RECURSE resolved through its file. */
static int
layer_status(struct blk_node *bs, uint64_t off, uint64_t len,
             struct blk_status *st, struct blk_error *err)
{
    struct blk_status fst;
    int r;

    r = blk_node_block_status(bs, off, len, st, err);
    if (r < 0) {
        return r;
    }
    if ((st->flags & BLK_STATUS_RECURSE) && (st->flags & BLK_STATUS_OFFSET_VALID)
        && st->file != NULL && st->file != bs) {
        r = blk_node_block_status(st->file, st->map, st->pnum, &fst, err);
        if (r < 0) {
            return r;
        }
        if (fst.pnum < st->pnum) {
            st->pnum = fst.pnum;
        }
        if (st->flags & BLK_STATUS_DATA) {
            /*
             * A format's data over a hole (qcow2 metadata preallocation):
             * still data, and zero where the file says so (QEMU's rule).
             */
            st->flags &= ~BLK_STATUS_RECURSE;
            st->flags |= fst.flags & BLK_STATUS_ZERO;
        } else {
            /* Raw-style pass-through: the file's answer is the answer. */
            st->flags &= ~(BLK_STATUS_ZERO | BLK_STATUS_RECURSE);
            st->flags |= fst.flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO);
            if (!(st->flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO))) {
                st->flags |= BLK_STATUS_DATA;
            }
        }
    }
    if (st->pnum == 0 || st->pnum > len) {
        st->pnum = len;
    }
    return 0;
}

int
img_block_status_chain(struct blk_node *bs, uint64_t off, uint64_t len,
                       struct blk_status *st, int *depth,
                       struct blk_error *err)
{
    struct blk_node *cur = bs;
    int d = 0, r;

    for (;;) {
        struct blk_node *backing;
        int64_t blen;

        r = layer_status(cur, off, len, st, err);
        if (r < 0) {
            return r;
        }
        if (st->flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO)) {
            st->flags |= BLK_STATUS_ALLOCATED;
            break;
        }
        len = st->pnum;
        if (!blk_node_driver(cur)->has_backing) {
            /* e.g. null-co: neither data nor zeroes, nothing to map */
            st->flags = 0;
            st->file = NULL;
            break;
        }
        backing = blk_node_backing(cur);
        blen = backing != NULL ? blk_node_get_length(backing) : -1;
        if (backing == NULL || blen < 0 || off >= (uint64_t)blen) {
            /*
             * Nothing below: reads as zeroes, allocated nowhere.  A
             * mapping the layer gave (an allocated cluster whose
             * subcluster is not) stays, as in QEMU.
             */
            st->flags = (st->flags & BLK_STATUS_OFFSET_VALID) | BLK_STATUS_ZERO;
            if (!(st->flags & BLK_STATUS_OFFSET_VALID)) {
                st->file = NULL;
            }
            break;
        }
        if (off + len > (uint64_t)blen) {
            len = (uint64_t)blen - off;
        }
        cur = backing;
        d++;
    }
    if (depth != NULL) {
        *depth = d;
    }
    return 0;
}
