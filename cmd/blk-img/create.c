/*
 * create.c - `blk-img create`: qemu-img 7.2's create.  The -o string goes
 * through the keyval parser, its QemuOpts-style names are translated to
 * BlockdevCreateOptions members and validated against the schema, and the
 * image is made with blk_create (qcow2: the file first, then the format).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "keyval/schema.h"
#include "util/size.h"
#include "util/xalloc.h"

struct create {
    const char *filename;
    const char *fmt;
    const struct img_opt_desc *fmt_opts;   /* the format's -o table */
    const struct img_opt_desc *proto_opts; /* file options behind it, or NULL */
    struct kv *opts;            /* -o, -b, -F and the size, all strings */
    uint64_t size;
    bool quiet, unsafe;
};

/* "blk-img: FILE: msg", the prefix bdrv_img_create errors carry. */
static int
fail(const struct create *c, const char *msg)
{
    blk_img_error("%s: %s", c->filename, msg);
    return 1;
}

static void
add_formatting_opt(struct sbuf *sb, const struct create *c,
                   const struct img_opt_desc *d)
{
    const char *v = img_opt_str(c->opts, d->name);
    uint64_t u;

    if (v == NULL) {
        v = d->dflt;
    }
    if (v == NULL) {
        return;
    }
    if ((d->type == IMG_OPT_SIZE || d->type == IMG_OPT_NUM) &&
        img_opt_u64(c->opts, d->name, &u)) {
        sbuf_addf(sb, " %s=%" PRIu64, d->name, u);
    } else {
        sbuf_addf(sb, " %s=%s", d->name, v);
    }
}

/* "Formatting 'F', fmt=qcow2 cluster_size=65536 ..." in QEMU's option order. */
static void
print_formatting(const struct create *c)
{
    struct sbuf sb = SBUF_INIT;
    const struct img_opt_desc *d;

    sbuf_addf(&sb, "Formatting '%s', fmt=%s", c->filename, c->fmt);
    for (d = c->fmt_opts; d->name != NULL; d++) {
        add_formatting_opt(&sb, c, d);
    }
    for (d = c->proto_opts; d != NULL && d->name != NULL; d++) {
        if (img_opt_find(c->fmt_opts, d->name) == NULL) {
            add_formatting_opt(&sb, c, d);
        }
    }
    printf("%s\n", sb.buf);
    fflush(stdout);
    sbuf_release(&sb);
}

static void
set_str(struct kv *obj, const char *key, const char *val)
{
    kv_set(obj, key, kv_new_str(val));
}

/* Copy the options of table t present in c->opts into tree under their member names. */
static void
copy_members(const struct create *c, const struct img_opt_desc *t,
             struct kv *tree, const char *const *skip)
{
    for (; t->name != NULL; t++) {
        const char *v = img_opt_str(c->opts, t->name);
        size_t i;
        bool skipped = false;

        for (i = 0; skip != NULL && skip[i] != NULL; i++) {
            skipped |= strcmp(skip[i], t->name) == 0;
        }
        if (v == NULL || skipped || kv_get(tree, t->member) != NULL) {
            continue;
        }
        if (strcmp(t->name, "compat") == 0) {
            if (strcmp(v, "0.10") == 0) {
                v = "v2";
            } else if (strcmp(v, "1.1") == 0) {
                v = "v3";
            }
        }
        set_str(tree, t->member, v);
    }
}

/* Validate a keyval-typed BlockdevCreateOptions tree; errors name the -o key. */
static int
validate(const struct create *c, struct kv *tree)
{
    struct blk_error err = BLK_ERROR_INIT;
    const struct img_opt_desc *t;

    if (kv_validate(tree, kv_schema_lookup("BlockdevCreateOptions"),
                    KV_MODE_KEYVAL, &err) == 0) {
        return 0;
    }
    /* QEMU names the create member in enum errors, the -o key elsewhere */
    for (t = c->fmt_opts; strstr(err.msg, "does not accept value") == NULL &&
                          t->name != NULL; t++) {
        char *quoted = xasprintf("'%s'", t->member);
        char *at = strstr(err.msg, quoted);

        if (at != NULL && strcmp(t->name, "compat") != 0 &&
            strlen(t->name) == strlen(t->member)) {
            memcpy(at + 1, t->name, strlen(t->name));
        }
        free(quoted);
    }
    return fail(c, err.msg);
}

static int
do_create(const struct create *c, struct kv *tree)
{
    struct blk_error err = BLK_ERROR_INIT;

    if (validate(c, tree) != 0) {
        return 1;
    }
    if (blk_create(tree, &err) < 0) {
        return fail(c, err.msg);
    }
    return 0;
}

/* A protocol-level file: raw and file images, and qcow2's own files. */
static struct kv *
file_tree(const struct create *c, const char *filename, uint64_t size,
          bool with_prealloc)
{
    static const char *const no_prealloc[] = { "preallocation", "size", NULL };
    static const char *const no_size[] = { "size", NULL };
    struct kv *t = kv_new_object();

    set_str(t, "driver", "file");
    set_str(t, "filename", filename);
    {
        char *s = xasprintf("%" PRIu64, size);

        set_str(t, "size", s);
        free(s);
    }
    copy_members(c, img_protocol_opts(), t, with_prealloc ? no_size : no_prealloc);
    return t;
}

/* qemu-img's own checks of qcow2 options, with its texts, in its order. */
static const char *
qcow2_check(const struct create *c)
{
    uint64_t cs = 65536, rb = 16;
    const char *compat = img_opt_str(c->opts, "compat");
    bool v2 = compat != NULL && (strcmp(compat, "0.10") == 0 || strcmp(compat, "v2") == 0);
    bool ext = img_opt_bool(c->opts, "extended_l2", false);
    const char *prealloc = img_opt_str(c->opts, "preallocation");
    const char *ctype = img_opt_str(c->opts, "compression_type");
    bool has_backing = img_opt_str(c->opts, "backing_file") != NULL;
    bool has_data = img_opt_str(c->opts, "data_file") != NULL;

    img_opt_u64(c->opts, "cluster_size", &cs);
    img_opt_u64(c->opts, "refcount_bits", &rb);
    if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1)) != 0) {
        return "Cluster size must be a power of two between 512 and 2048k";
    }
    if (ext && cs < 16384) {
        return "Extended L2 entries are only supported with cluster sizes "
               "of at least 16384 bytes";
    }
    if (v2 && ext) {
        return "Extended L2 entries are only supported with compatibility "
               "level 1.1 and above (use version=v3 or greater)";
    }
    if (has_backing && prealloc != NULL && strcmp(prealloc, "off") != 0 && !ext) {
        return "Backing file and preallocation can only be used at the same "
               "time if extended_l2 is on";
    }
    if (v2 && img_opt_bool(c->opts, "lazy_refcounts", false)) {
        return "Lazy refcounts only supported with compatibility level 1.1 "
               "and above (use version=v3 or greater)";
    }
    if (rb > 64 || rb == 0 || (rb & (rb - 1)) != 0) {
        return "Refcount width must be a power of two and may not exceed 64 bits";
    }
    if (v2 && rb != 16) {
        return "Different refcount widths than 16 bits require compatibility "
               "level 1.1 or above (use version=v3 or greater)";
    }
    if (v2 && has_data) {
        return "External data files are only supported with compatibility "
               "level 1.1 and above (use version=v3 or greater)";
    }
    if (img_opt_bool(c->opts, "data_file_raw", false) && !has_data) {
        return "data-file-raw requires data-file";
    }
    if (img_opt_bool(c->opts, "data_file_raw", false) && has_backing) {
        return "Backing file and data-file-raw cannot be used at the same time";
    }
    if (!has_backing && img_opt_str(c->opts, "backing_fmt") != NULL) {
        return "Backing format cannot be used without backing file";
    }
    if (v2 && ctype != NULL && strcmp(ctype, "zlib") != 0) {
        return "Non-zlib compression type is only supported with compatibility "
               "level 1.1 and above (use version=v3 or greater)";
    }
    return NULL;
}

static int
create_qcow2(const struct create *c)
{
    static const char *const skip[] = { "size", "backing_file", "data_file", NULL };
    const char *msg, *data = img_opt_str(c->opts, "data_file");
    struct kv *tree, *f;
    char *s;
    int r;

    /* validate the whole tree before touching any file */
    tree = kv_new_object();
    set_str(tree, "driver", "qcow2");
    f = kv_new_object();
    set_str(f, "driver", "file");
    set_str(f, "filename", c->filename);
    kv_set(tree, "file", f);
    if (data != NULL) {
        f = kv_new_object();
        set_str(f, "driver", "file");
        set_str(f, "filename", data);
        kv_set(tree, "data-file", f);
    }
    /* QEMU rounds the virtual size up to whole sectors */
    s = xasprintf("%" PRIu64, (c->size + 511) & ~(uint64_t)511);
    set_str(tree, "size", s);
    free(s);
    if (img_opt_str(c->opts, "backing_file") != NULL) {
        set_str(tree, "backing-file", img_opt_str(c->opts, "backing_file"));
    }
    copy_members(c, c->fmt_opts, tree, skip);
    if (validate(c, tree) != 0) {
        kv_free(tree);
        return 1;
    }
    msg = qcow2_check(c);
    if (msg != NULL) {
        kv_free(tree);
        return fail(c, msg);
    }
    f = file_tree(c, c->filename, 0, false);
    r = do_create(c, f);
    kv_free(f);
    if (r == 0 && data != NULL) {
        struct kv *dt = file_tree(c, data, c->size, false);
        const char *prealloc = img_opt_str(c->opts, "preallocation");

        /* the data file holds the clusters that falloc and full allocate */
        if (prealloc != NULL && (strcmp(prealloc, "falloc") == 0 ||
                                 strcmp(prealloc, "full") == 0)) {
            set_str(dt, "preallocation", prealloc);
        }
        r = do_create(c, dt);
        kv_free(dt);
    }
    if (r == 0) {
        r = do_create(c, tree);
    }
    kv_free(tree);
    return r;
}

static int
create_file(const struct create *c)
{
    const char *prealloc = img_opt_str(c->opts, "preallocation");
    struct kv *tree;
    int r;

    if (prealloc != NULL && strcmp(prealloc, "metadata") == 0) {
        return fail(c, "Unsupported preallocation mode: metadata");
    }
    if (prealloc != NULL && strcmp(prealloc, "off") != 0 &&
        strcmp(prealloc, "falloc") != 0 && strcmp(prealloc, "full") != 0) {
        char *m = xasprintf("invalid parameter value: %s", prealloc);

        fail(c, m);
        free(m);
        return 1;
    }
    tree = file_tree(c, c->filename, c->size, true);
    r = do_create(c, tree);
    kv_free(tree);
    return r;
}

/*
 * The backing file: qemu-img opens it (unless -u) to check it and to take
 * its size, and insists on a backing format.
 */
static int
check_backing(struct create *c, bool have_size)
{
    const char *bfile = img_opt_str(c->opts, "backing_file");
    const char *bfmt = img_opt_str(c->opts, "backing_fmt");
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_graph *g;
    struct blk_node *bs;
    char *path;

    if (bfile == NULL) {
        return 0;
    }
    if (strcmp(bfile, c->filename) == 0) {
        return fail(c, "Error: Trying to create an image with the same "
                    "filename as the backing file");
    }
    if (bfile[0] == '\0') {
        return fail(c, "Expected backing file name, got empty string");
    }
    if (c->unsafe) {
        if (bfmt == NULL) {
            return fail(c, "Backing file specified without backing format");
        }
        return 0;
    }
    path = img_path_combine(c->filename, bfile);
    g = blk_graph_new();
    bs = blk_open_image(g, path, bfmt, false, BLK_OPEN_NO_BACKING, &err);
    free(path);
    if (bs == NULL) {
        fail(c, err.msg);
        fputs("Could not open backing image.\n", stderr);
        blk_graph_free(g);
        return 1;
    }
    if (bfmt == NULL) {
        fail(c, "Backing file specified without backing format");
        fprintf(stderr, "Detected format of %s.", img_format_name(bs));
        blk_node_unref(bs);
        blk_graph_free(g);
        return 1;
    }
    if (!have_size) {
        int64_t len = blk_node_get_length(bs);
        char *s;

        if (len < 0) {
            blk_node_unref(bs);
            blk_graph_free(g);
            return fail(c, "Could not get the size of the backing image");
        }
        c->size = (uint64_t)len;
        s = xasprintf("%" PRIu64, c->size);
        kv_set(c->opts, "size", kv_new_str(s));
        free(s);
    }
    blk_node_unref(bs);
    blk_graph_free(g);
    return 0;
}

static void
print_help(const char *fmt, const struct img_opt_desc *t, bool with_file)
{
    if (with_file) {
        printf("Supported options:\n");
        img_opts_help(t, strcmp(fmt, "file") == 0 ? NULL : img_protocol_opts());
        return;
    }
    printf("Supported %s options:\n", fmt);
    img_opts_help(t, NULL);
    printf("\nThe protocol level may support further options.\n"
           "Specify the target filename to include those options.\n");
}

/*
 * Everything qemu-img checks before the Formatting line: the file name,
 * the size (argument or -o, not both; else the backing file's), the -o
 * keys and values, -b/-F.  Returns 0, or 1 after printing the error.
 */
static int
prepare(struct create *c, const char *bfile, const char *bfmt,
        const char *size_arg)
{
    struct blk_error err = BLK_ERROR_INIT;
    bool have_size;

    if (c->filename == NULL) {
        img_usage_error("Expecting image file name");
        return 1;
    }
    if (size_arg != NULL && img_parse_size(size_arg, &c->size) < 0) {
        img_size_error("image size");
        return 1;
    }
    if (size_arg != NULL && kv_get(c->opts, "size") != NULL) {
        fail(c, "The image size must be specified only once");
        return 1;
    }
    if (c->fmt_opts == NULL) {
        blk_img_error("%s: Unknown file format '%s'", c->filename, c->fmt);
        return 1;
    }
    c->proto_opts = strcmp(c->fmt, "file") == 0 ? NULL : img_protocol_opts();
    if (img_opts_check(c->opts, c->fmt_opts, c->proto_opts, &err) < 0) {
        fail(c, err.msg);
        return 1;
    }
    if (bfile != NULL || bfmt != NULL) {
        if (strcmp(c->fmt, "qcow2") != 0) {
            char *m = xasprintf("Backing file not supported for file format '%s'",
                                c->fmt);

            fail(c, m);
            free(m);
            return 1;
        }
        if (bfile != NULL) {
            set_str(c->opts, "backing_file", bfile);
        }
        if (bfmt != NULL) {
            set_str(c->opts, "backing_fmt", bfmt);
        }
    }
    if (size_arg != NULL) {
        char *s = xasprintf("%" PRIu64, c->size);

        set_str(c->opts, "size", s);
        free(s);
    }
    have_size = img_opt_u64(c->opts, "size", &c->size);
    if (check_backing(c, have_size) != 0) {
        return 1;
    }
    if (!img_opt_u64(c->opts, "size", &c->size)) {
        fail(c, "Image creation needs a size parameter");
        return 1;
    }
    return 0;
}

int
cmd_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct create c = { .fmt = "raw" };
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf ostr = SBUF_INIT;
    const char *bfile = NULL, *bfmt = NULL, *size_arg = NULL;
    bool help = false, have_o = false;
    int ch, ret = 1;

    while ((ch = getopt_long(argc, argv, ":F:b:f:ho:qu", longopts, NULL)) != -1) {
        switch (ch) {
        case 'F':
            bfmt = optarg;
            break;
        case 'b':
            bfile = optarg;
            break;
        case 'f':
            c.fmt = optarg;
            break;
        case 'o':
            if (have_o) {
                sbuf_addch(&ostr, ',');
            }
            sbuf_adds(&ostr, optarg);
            have_o = true;
            break;
        case 'q':
            c.quiet = true;
            break;
        case 'u':
            c.unsafe = true;
            break;
        case 'h':
            printf("usage: blk-img create [-q] [-f fmt] [-b backing_file "
                   "[-F backing_fmt]] [-u] [-o options] filename [size]\n");
            return 0;
        default:
            sbuf_release(&ostr);
            return img_getopt_error(ch, argv);
        }
    }
    if (optind < argc) {
        c.filename = argv[optind++];
    }
    if (optind < argc) {
        size_arg = argv[optind++];
    }
    if (optind < argc) {
        img_usage_error("Unexpected argument: %s", argv[optind]);
        goto out;
    }
    c.fmt_opts = img_create_opts(c.fmt);
    if (have_o) {
        c.opts = img_opts_parse(ostr.buf, &help, &err);
        if (c.opts == NULL) {
            blk_img_error("Invalid option list: %s", ostr.buf);
            goto out;
        }
        if (help) {
            if (c.fmt_opts == NULL) {
                blk_img_error("Unknown file format '%s'", c.fmt);
                goto out;
            }
            print_help(c.fmt, c.fmt_opts, c.filename != NULL);
            ret = 0;
            goto out;
        }
    } else {
        c.opts = kv_new_object();
    }
    if (prepare(&c, bfile, bfmt, size_arg) != 0) {
        goto out;
    }
    if (!c.quiet) {
        print_formatting(&c);
    }
    ret = strcmp(c.fmt, "qcow2") == 0 ? create_qcow2(&c) : create_file(&c);
out:
    kv_free(c.opts);
    sbuf_release(&ostr);
    return ret;
}
