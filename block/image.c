/*
 * image.c - opening images the way qemu-img names them (a filename with a
 * format or probed, a json: pseudo-filename, or --image-opts options),
 * backing files named inside images, and image creation.  Loop thread (or
 * an offline tool's only thread).
 *
 * Names read from inside an image are data, not options: a backing file
 * name is always a plain local path (never json:, never a protocol
 * prefix), opened with the recorded format or probed read-only.  This
 * closes the class of QEMU's CVE-2024-4467 and CVE-2024-32498.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block/node-int.h"
#include "keyval/schema.h"
#include "util/size.h"
#include "util/xalloc.h"

#define PROBE_BYTES 2048

static struct kv *
file_opts(const char *filename)
{
    struct kv *f = kv_new_object();

    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(filename));
    return f;
}

/*
 * Command-line filenames with a protocol prefix blk implements
 * ("null-co://", "null-aio://"), as QEMU parses them; NULL for plain
 * paths.  Names read from images never come here.
 */
static struct kv *
protocol_opts(const char *name)
{
    static const char *const protos[] = { "null-co", "null-aio" };
    size_t i, n;

    for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        n = strlen(protos[i]);
        if (strncmp(name, protos[i], n) == 0 && strncmp(name + n, "://", 3) == 0) {
            struct kv *o = kv_new_object();

            kv_set(o, "driver", kv_new_str(protos[i]));
            return o;
        }
    }
    return NULL;
}

/*
 * QEMU's bdrv_fill_options: a "file" child given only as a filename gets
 * the file driver.  Applied before validation to --image-opts and json:.
 */
static void
fill_protocol(struct kv *opts)
{
    struct kv *f = kv_get(opts, "file");

    if (f != NULL && f->type == KV_OBJECT && kv_get(f, "driver") == NULL &&
        kv_get(f, "filename") != NULL) {
        kv_set(f, "driver", kv_new_str("file"));
    }
}

/*
 * The options QEMU 7.2's drivers declare as QemuOpts sizes in their
 * runtime option lists (block/raw-format.c, block/qcow2.c, block/null.c;
 * file-posix has none).  --image-opts and json: reach those drivers as
 * strings, so there they take suffixes ("size=4M"); -blockdev types them
 * by the QAPI schema and does not.
 */
static const struct {
    const char *driver;
    const char *const *names;
} legacy_size_opts[] = {
    { "raw", (const char *const[]){ "offset", "size", NULL } },
    { "qcow2", (const char *const[]){ "cache-size", "l2-cache-size",
                                      "l2-cache-entry-size",
                                      "refcount-cache-size", NULL } },
    { "null-co", (const char *const[]){ "size", NULL } },
    { "null-aio", (const char *const[]){ "size", NULL } },
};

static const char *const *
size_opt_names(const char *driver)
{
    size_t i;

    for (i = 0; i < sizeof(legacy_size_opts) / sizeof(legacy_size_opts[0]); i++) {
        if (strcmp(legacy_size_opts[i].driver, driver) == 0) {
            return legacy_size_opts[i].names;
        }
    }
    return NULL;
}

int
blk_image_opts_sizes(struct kv *opts, struct blk_error *err)
{
    const char *const *names = size_opt_names(kv_get_str(opts, "driver", ""));
    size_t i;

    for (i = 0; names != NULL && names[i] != NULL; i++) {
        struct kv *v = kv_get(opts, names[i]);
        uint64_t u;
        int r;

        if (v == NULL || v->type != KV_STRING) {
            continue;
        }
        r = blk_size_parse(v->v.s, &u);
        if (r == -ERANGE) {
            return blk_error_set(err, -EINVAL, "Value '%s' is out of range "
                                 "for parameter '%s'", v->v.s, names[i]);
        }
        if (r < 0) {
            return blk_error_set(err, -EINVAL, "Parameter '%s' expects a "
                                 "non-negative number below 2^64\nOptional "
                                 "suffix k, M, G, T, P or E means kilo-, "
                                 "mega-, giga-, tera-, peta-\nand exabytes, "
                                 "respectively.", names[i]);
        }
        kv_set(opts, names[i], kv_new_uint(u));
    }
    for (i = 0; i < opts->n; i++) {
        if (opts->vals[i]->type == KV_OBJECT &&
            blk_image_opts_sizes(opts->vals[i], err) < 0) {
            return -EINVAL;
        }
    }
    return 0;
}

/* The best-scoring format for the first bytes of bs; "raw" if none claims it. */
static const char *
probe_format(struct blk_node *bs, struct blk_error *err)
{
    unsigned char buf[PROBE_BYTES];
    const struct blk_driver *best = NULL;
    int best_score = 0;
    int64_t len = blk_node_get_length(bs);
    size_t n;
    size_t i;

    if (len < 0) {
        blk_error_set(err, (int)len, "Could not determine size of '%s'",
                      blk_node_get_filename(bs));
        return NULL;
    }
    n = len < PROBE_BYTES ? (size_t)len : PROBE_BYTES;
    memset(buf, 0, sizeof(buf));
    if (n > 0 && blk_node_pread(bs, 0, buf, n, err) < 0) {
        blk_error_prefix(err, "Could not read image for determining its "
                         "format: ");
        return NULL;
    }
    for (i = 0; blk_drivers[i] != NULL; i++) {
        const struct blk_driver *d = blk_drivers[i];
        int score;

        if (d->probe == NULL || !d->is_format) {
            continue;
        }
        score = d->probe(buf, n, blk_node_get_filename(bs));
        if (score > best_score) {
            best_score = score;
            best = d;
        }
    }
    return best != NULL ? best->name : "raw";
}

/* Fill the generic options implied by the open flags where absent. */
static void
apply_flags(struct kv *opts, unsigned flags)
{
    if (kv_get(opts, "read-only") == NULL) {
        kv_set(opts, "read-only", kv_new_bool(!(flags & BLK_OPEN_RDWR)));
    }
    if ((flags & BLK_OPEN_FORCE_SHARE) && kv_get(opts, "force-share") == NULL) {
        kv_set(opts, "force-share", kv_new_bool(true));
    }
    if ((flags & BLK_OPEN_UNMAP) && kv_get(opts, "discard") == NULL) {
        kv_set(opts, "discard", kv_new_str("unmap"));
    }
    if (flags & (BLK_OPEN_NOCACHE | BLK_OPEN_NO_FLUSH)) {
        struct kv *cache = kv_get(opts, "cache");

        if (cache == NULL) {
            cache = kv_new_object();
            kv_set(opts, "cache", cache);
        }
        if ((flags & BLK_OPEN_NOCACHE) && kv_get(cache, "direct") == NULL) {
            kv_set(cache, "direct", kv_new_bool(true));
        }
        if ((flags & BLK_OPEN_NO_FLUSH) && kv_get(cache, "no-flush") == NULL) {
            kv_set(cache, "no-flush", kv_new_bool(true));
        }
    }
}

/*
 * Open the protocol node fo (options, consumed; filename names it in
 * messages) with format fmt over it, or probe it: the protocol node is
 * opened first, its first bytes choose the format, then the format node
 * is opened over it.  A probed raw image is opened read-only unless the
 * caller asked for read-write (qemu-img allows that with a warning).
 */
static struct blk_node *
open_probed(struct blk_graph *g, struct kv *fo, const char *filename,
            const char *fmt, unsigned flags, bool from_image,
            struct blk_error *err)
{
    struct kv *opts;
    struct blk_node *file, *bs;
    const char *probed = fmt;

    apply_flags(fo, flags);
    if (fmt != NULL && strcmp(fmt, kv_get_str(fo, "driver", "")) == 0) {
        bs = blk_node_open(g, fo, flags, err);
        kv_free(fo);
        return bs;
    }
    if (fmt != NULL && blk_driver_find(fmt) == NULL) {
        blk_error_set(err, -EINVAL, "Unknown driver '%s'", fmt);
        kv_free(fo);
        return NULL;
    }
    /* Storage under a format takes discards by default, as in QEMU. */
    if (kv_get(fo, "discard") == NULL) {
        kv_set(fo, "discard", kv_new_str("unmap"));
    }
    file = blk_node_open(g, fo, flags, err);
    kv_free(fo);
    if (file == NULL) {
        return NULL;
    }
    if (probed == NULL) {
        probed = probe_format(file, err);
        if (probed == NULL) {
            blk_node_unref(file);
            return NULL;
        }
    }
    opts = kv_new_object();
    kv_set(opts, "driver", kv_new_str(probed));
    kv_set(opts, "file", kv_new_str(blk_node_get_name(file)));
    apply_flags(opts, flags);
    bs = blk_node_open(g, opts, flags, err);
    kv_free(opts);
    blk_node_unref(file);           /* the format node holds it now */
    if (bs != NULL && fmt == NULL && strcmp(probed, "raw") == 0) {
        bs->probed_raw = true;
        if (from_image && !bs->read_only) {
            blk_node_unref(bs);
            blk_error_set(err, -EPERM, "backing file '%s' was probed as raw "
                          "and cannot be opened read-write; record its format",
                          filename);
            return NULL;
        }
    }
    return bs;
}

static struct blk_node *
open_file_probed(struct blk_graph *g, const char *filename, const char *fmt,
                 unsigned flags, bool from_image, struct blk_error *err)
{
    return open_probed(g, file_opts(filename), filename, fmt, flags,
                       from_image, err);
}

struct blk_node *
blk_open_image(struct blk_graph *g, const char *name, const char *fmt,
               bool image_opts, unsigned flags, struct blk_error *err)
{
    struct blk_node *bs;
    struct kv *opts;
    bool help = false;

    if (image_opts) {
        bool is_json = false;

        if (fmt != NULL) {
            blk_error_set(err, -EINVAL, "--image-opts and --format are "
                          "mutually exclusive");
            return NULL;
        }
        opts = kv_parse(name, "driver", NULL, &is_json, err);
        if (opts != NULL) {
            fill_protocol(opts);
            if (blk_image_opts_sizes(opts, err) < 0 ||
                kv_validate(opts, kv_schema_lookup("BlockdevOptions"),
                            is_json ? KV_MODE_JSON : KV_MODE_KEYVAL, err) < 0) {
                kv_free(opts);
                opts = NULL;
            }
        }
    } else if (kv_is_json_filename(name)) {
        opts = kv_parse_json_filename(name, err);
        if (opts != NULL) {
            fill_protocol(opts);
            if (blk_image_opts_sizes(opts, err) < 0 ||
                kv_validate(opts, kv_schema_lookup("BlockdevOptions"),
                            KV_MODE_LENIENT, err) < 0) {
                kv_free(opts);
                opts = NULL;
            }
        }
        if (opts != NULL && fmt != NULL &&
            strcmp(kv_get_str(opts, "driver", ""), fmt) != 0) {
            blk_error_set(err, -EINVAL, "Cannot use image format '%s' with "
                          "json: options using driver '%s'", fmt,
                          kv_get_str(opts, "driver", ""));
            kv_free(opts);
            return NULL;
        }
    } else if ((opts = protocol_opts(name)) != NULL) {
        /* "null-co://": the protocol driver itself, or the format given. */
        if (fmt != NULL) {
            return open_probed(g, opts, name, fmt, flags, false, err);
        }
    } else {
        return open_file_probed(g, name, fmt, flags, false, err);
    }
    (void)help;
    if (opts == NULL) {
        return NULL;
    }
    apply_flags(opts, flags);
    bs = blk_node_open(g, opts, flags, err);
    kv_free(opts);
    return bs;
}

/* A directory-relative path, as QEMU resolves backing names. */
static char *
resolve_relative(const char *base_filename, const char *name)
{
    char *copy, *dir, *path;

    if (name[0] == '/' || base_filename == NULL || base_filename[0] == '\0' ||
        strchr(base_filename, '/') == NULL) {
        return xstrdup(name);
    }
    copy = xstrdup(base_filename);
    dir = dirname(copy);
    path = xasprintf("%s/%s", dir, name);
    free(copy);
    return path;
}

/*
 * Is path the image being opened (parent) or one whose backing chain is
 * being opened around us?  Fills *frame with path's identity.  A file
 * that cannot be stat'ed fails to open later, with its own message.
 */
static bool
makes_loop(struct blk_node *parent, const char *path,
           struct blk_backing_frame *frame)
{
    const struct blk_backing_frame *f;
    struct stat st;

    memset(frame, 0, sizeof(*frame));
    if (stat(path, &st) < 0) {
        return false;
    }
    frame->dev = st.st_dev;
    frame->ino = st.st_ino;
    for (f = parent->g->opening; f != NULL; f = f->up) {
        if (f->dev == st.st_dev && f->ino == st.st_ino) {
            return true;
        }
    }
    return stat(blk_node_get_filename(parent), &st) == 0 &&
           st.st_dev == frame->dev && st.st_ino == frame->ino;
}

struct blk_child *
blk_node_open_backing(struct blk_node *parent, const char *name,
                      const char *fmt, struct blk_error *err)
{
    struct blk_backing_frame frame;
    const struct blk_driver *d;
    struct blk_node *bs;
    struct blk_child *c;
    unsigned flags;
    char *path;

    if (strncmp(name, "json:", 5) == 0) {
        blk_error_set(err, -EINVAL, "backing file name '%s' in '%s' is not a "
                      "plain file name; blk does not take options from "
                      "inside an image", name, blk_node_get_filename(parent));
        return NULL;
    }
    if (fmt != NULL && fmt[0] != '\0') {
        d = blk_driver_find(fmt);
        if (d == NULL || !(d->is_format || strcmp(fmt, "file") == 0)) {
            blk_error_set(err, -EINVAL, "Unknown backing format '%s' in '%s'",
                          fmt, blk_node_get_filename(parent));
            return NULL;
        }
    } else {
        fmt = NULL;
    }
    path = resolve_relative(blk_node_get_filename(parent), name);
    if (makes_loop(parent, path, &frame)) {
        blk_error_set(err, -ELOOP, "backing file '%s' of '%s' makes a loop "
                      "in the backing chain", name,
                      blk_node_get_filename(parent));
        free(path);
        return NULL;
    }
    flags = parent->open_flags & ~BLK_OPEN_RDWR;
    if (parent->force_share) {
        flags |= BLK_OPEN_FORCE_SHARE;
    }
    frame.up = parent->g->opening;
    parent->g->opening = &frame;
    bs = open_file_probed(parent->g, path, fmt, flags, true, err);
    parent->g->opening = frame.up;
    if (bs == NULL) {
        blk_error_prefix(err, "Could not open backing file: ");
        free(path);
        return NULL;
    }
    free(path);
    c = blk_node_attach_child(parent, bs, "backing", BLK_ROLE_COW, err);
    blk_node_unref(bs);
    return c;
}

/* ---- creation ------------------------------------------------------------------ */

int
blk_create(const struct kv *opts, struct blk_error *err)
{
    const char *name = kv_get_str(opts, "driver", NULL);
    const struct blk_driver *drv = name ? blk_driver_find(name) : NULL;

    if (drv == NULL) {
        return blk_error_set(err, -EINVAL, "Unknown driver '%s'",
                             name ? name : "");
    }
    if (drv->create == NULL) {
        return blk_error_set(err, -ENOTSUP, "Driver '%s' does not support "
                             "image creation", name);
    }
    return drv->create(opts, err);
}

struct blk_node *
blk_create_open_child(const struct kv *ref, struct blk_error *err)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_node *bs;

    if (ref == NULL) {
        blk_error_set(err, -EINVAL, "Parameter 'file' is missing");
        free(g);
        return NULL;
    }
    if (ref->type == KV_STRING) {
        bs = open_file_probed(g, ref->v.s, "file", BLK_OPEN_RDWR, false, err);
    } else {
        struct kv *o = kv_dup(ref);

        apply_flags(o, BLK_OPEN_RDWR);
        bs = blk_node_open(g, o, BLK_OPEN_RDWR, err);
        kv_free(o);
    }
    if (bs == NULL) {
        free(g);
    }
    return bs;
}

void
blk_create_close_child(struct blk_node *bs)
{
    struct blk_graph *g;

    if (bs == NULL) {
        return;
    }
    g = bs->g;
    blk_node_unref(bs);
    blk_graph_free(g);
}

int
blk_create_pwrite(struct blk_node *bs, uint64_t off, const void *buf,
                  size_t len, struct blk_error *err)
{
    return blk_io_buf(bs, BLK_OP_WRITE, off, buf, len, 0, false, err);
}

int
blk_create_pread(struct blk_node *bs, uint64_t off, void *buf, size_t len,
                 struct blk_error *err)
{
    return blk_io_buf(bs, BLK_OP_READ, off, buf, len, 0, false, err);
}

int
blk_create_truncate(struct blk_node *bs, uint64_t len,
                    enum blk_prealloc prealloc, struct blk_error *err)
{
    return blk_node_truncate(bs, len, true, prealloc, err);
}

int
blk_create_flush(struct blk_node *bs, struct blk_error *err)
{
    return blk_node_flush(bs, err);
}
