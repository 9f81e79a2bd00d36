/*
 * files.c - blk-io's current image: opening it as qemu-io does (filename
 * with -f or probing, --image-opts, open -o), the -s snapshot overlay and
 * -C copy-on-read, and the open, close and reopen commands.
 * Loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/blk-io/blk-io.h"
#include "keyval/schema.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

void
io_open_spec_free(struct io_open_spec *spec)
{
    if (spec == NULL) {
        return;
    }
    free(spec->name);
    free(spec->fmt);
    free(spec->opts);
    free(spec);
}

int
io_parse_cache(const char *mode, unsigned *flags, bool *writethrough)
{
    unsigned f = *flags & ~(BLK_OPEN_NOCACHE | BLK_OPEN_NO_FLUSH);
    bool wt = false;

    if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0) {
        f |= BLK_OPEN_NOCACHE;
    } else if (strcmp(mode, "directsync") == 0) {
        f |= BLK_OPEN_NOCACHE;
        wt = true;
    } else if (strcmp(mode, "writethrough") == 0) {
        wt = true;
    } else if (strcmp(mode, "unsafe") == 0) {
        f |= BLK_OPEN_NO_FLUSH;
    } else if (strcmp(mode, "writeback") != 0) {
        return -EINVAL;
    }
    *flags = f;
    *writethrough = wt;
    return 0;
}

int
io_parse_discard(const char *mode, unsigned *flags)
{
    if (strcmp(mode, "off") == 0 || strcmp(mode, "ignore") == 0) {
        *flags &= ~BLK_OPEN_UNMAP;
    } else if (strcmp(mode, "on") == 0 || strcmp(mode, "unmap") == 0) {
        *flags |= BLK_OPEN_UNMAP;
    } else {
        return -EINVAL;
    }
    return 0;
}

int
io_parse_aio(const char *mode)
{
    /* blk's file driver always uses the thread pool; the others are accepted. */
    if (strcmp(mode, "threads") == 0 || strcmp(mode, "native") == 0 ||
        strcmp(mode, "io_uring") == 0) {
        return 0;
    }
    return -EINVAL;
}

/* Append s to sb as a keyval value (commas doubled). */
static void
add_keyval_value(struct sbuf *sb, const char *s)
{
    for (; *s; s++) {
        if (*s == ',') {
            sbuf_addch(sb, ',');
        }
        sbuf_addch(sb, *s);
    }
}

/*
 * Every "file" child given by filename alone, at any depth (a filter over
 * a format, a backing file's file), gets the file protocol driver.
 */
static void
default_protocol(struct kv *tree)
{
    for (size_t i = 0; i < tree->n; i++) {
        struct kv *m = tree->vals[i];

        if (m->type != KV_OBJECT) {
            continue;
        }
        if (strcmp(tree->keys[i], "file") == 0 && kv_get(m, "driver") == NULL &&
            kv_get(m, "filename") != NULL) {
            kv_set(m, "driver", kv_new_str("file"));
        }
        default_protocol(m);
    }
}

/*
 * Parse BlockdevOptions as keyval or JSON.  As QEMU's --image-opts and
 * open -o do, a "file" child given by filename alone gets the file
 * protocol driver (QEMU probes the protocol from the name; blk has only
 * local files).
 */
static struct kv *
parse_blockdev_opts(const char *s, struct blk_error *err)
{
    const struct kv_schema_type *t = kv_schema_lookup("BlockdevOptions");
    struct kv *tree;
    bool is_json = false;

    tree = kv_parse(s, kv_schema_implied_key(t), NULL, &is_json, err);
    if (tree == NULL) {
        return NULL;
    }
    default_protocol(tree);
    /* qemu-io reads these through QemuOpts, where sizes take suffixes */
    if (blk_image_opts_sizes(tree, err) < 0 ||
        kv_validate(tree, t, is_json ? KV_MODE_JSON : KV_MODE_KEYVAL,
                    err) < 0) {
        kv_free(tree);
        return NULL;
    }
    return tree;
}

/* open -o options: a full BlockdevOptions string, with path as file.filename. */
static struct blk_node *
open_with_opts(struct io_state *st, const struct io_open_spec *spec,
               struct blk_error *err)
{
    struct kv *raw, *typed;
    struct blk_node *bs;
    struct sbuf sb = SBUF_INIT;
    const char *drv;

    raw = kv_parse_keyval(spec->opts, NULL, NULL, err);
    if (raw == NULL) {
        return NULL;
    }
    drv = kv_get_str(raw, "driver", NULL);
    if (spec->name != NULL && raw->n == (drv != NULL ? 1u : 0u)) {
        /* only a format: open the path the usual way */
        bs = blk_open_image(st->graph, spec->name, drv, false, spec->flags,
                            err);
        kv_free(raw);
        return bs;
    }
    sbuf_adds(&sb, spec->opts);
    if (spec->name != NULL && kv_get(raw, "file") == NULL) {
        sbuf_adds(&sb, sb.len > 0 ? "," : "");
        sbuf_adds(&sb, "file.driver=file,file.filename=");
        add_keyval_value(&sb, spec->name);
    }
    kv_free(raw);
    typed = parse_blockdev_opts(sb.buf, err);
    sbuf_release(&sb);
    if (typed == NULL) {
        return NULL;
    }
    bs = blk_node_open(st->graph, typed, spec->flags, err);
    kv_free(typed);
    return bs;
}

/*
 * -C: put a copy-on-read filter over bs (the filter takes bs's place).
 * QEMU 7.2 switches copy-on-read on inside the image's own node instead;
 * the filter does the same copies, and io_image_node looks through it.
 */
static struct blk_node *
add_cor_filter(struct io_state *st, struct blk_node *bs, struct blk_error *err)
{
    struct kv *o;
    struct blk_node *f;

    if (blk_node_is_read_only(bs)) {
        blk_error_set(err, -EINVAL, "Can't use copy-on-read on read-only "
                      "device");
        blk_node_unref(bs);
        return NULL;
    }
    o = kv_new_object();
    kv_set(o, "driver", kv_new_str("copy-on-read"));
    kv_set(o, "file", kv_new_str(blk_node_get_name(bs)));
    f = blk_node_open(st->graph, o, BLK_OPEN_RDWR, err);
    kv_free(o);
    blk_node_unref(bs);         /* the filter holds it now (or it closes) */
    if (f == NULL) {
        blk_error_prefix(err, "copy-on-read: ");
    }
    return f;
}

/*
 * -s: a temporary qcow2 overlay over bs (opened read-only), as qemu-io's
 * snapshot=on: writes go to the overlay, which is deleted at once (it
 * lives until it is closed).
 */
static struct blk_node *
add_snapshot_overlay(struct io_state *st, struct blk_node *base,
                     struct blk_error *err)
{
    const char *tmp = getenv("TMPDIR");
    char *path;
    struct kv *c, *o, *f;
    struct blk_node *bs = NULL;
    int64_t len = blk_node_get_length(base);
    int fd;

    if (len < 0) {
        blk_error_set(err, (int)len, "cannot get the image length");
        goto out_unref;
    }
    /* mkstemp's template: six X characters, as QEMU uses $TMPDIR or /var/tmp */
    path = xasprintf("%s/blk-io-snapshot.%s", tmp != NULL && *tmp ? tmp
                     : "/var/tmp", "XX" "XX" "XX");
    fd = mkstemp(path);
    if (fd < 0) {
        blk_error_setsys(err, -errno, "cannot create a temporary file");
        free(path);
        goto out_unref;
    }
    close(fd);
    c = kv_new_object();
    kv_set(c, "driver", kv_new_str("qcow2"));
    f = kv_new_object();
    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(path));
    kv_set(c, "file", f);
    kv_set(c, "size", kv_new_int(len));
    if (blk_create(c, err) < 0) {
        kv_free(c);
        blk_error_prefix(err, "snapshot overlay: ");
        goto out_unlink;
    }
    kv_free(c);
    o = kv_new_object();
    kv_set(o, "driver", kv_new_str("qcow2"));
    f = kv_new_object();
    kv_set(f, "driver", kv_new_str("file"));
    kv_set(f, "filename", kv_new_str(path));
    kv_set(o, "file", f);
    kv_set(o, "backing", kv_new_str(blk_node_get_name(base)));
    bs = blk_node_open(st->graph, o, BLK_OPEN_RDWR | BLK_OPEN_UNMAP, err);
    kv_free(o);
    if (bs == NULL) {
        blk_error_prefix(err, "snapshot overlay: ");
    }
out_unlink:
    unlink(path);
    free(path);
out_unref:
    blk_node_unref(base);
    return bs;
}

struct blk_node *
io_image_node(struct io_state *st)
{
    struct blk_node *bs = st->node;

    if (bs != NULL && st->spec != NULL && st->spec->cor && st->be != NULL &&
        bs == blk_backend_root(st->be) &&
        strcmp(blk_node_driver(bs)->name, "copy-on-read") == 0) {
        return blk_node_file(bs);
    }
    return bs;
}

int
io_open_image(struct io_state *st, struct io_open_spec *spec)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    struct blk_backend *be;
    unsigned flags = spec->flags, perm, shared;

    if (spec->snapshot) {
        spec->flags &= ~BLK_OPEN_RDWR;
    }
    if (spec->opts != NULL) {
        bs = open_with_opts(st, spec, &err);
    } else if (spec->image_opts) {
        struct kv *typed = parse_blockdev_opts(spec->name, &err);

        bs = typed != NULL ? blk_node_open(st->graph, typed, spec->flags, &err)
                           : NULL;
        kv_free(typed);
    } else {
        bs = blk_open_image(st->graph, spec->name, spec->fmt, spec->image_opts,
                            spec->flags, &err);
    }
    spec->flags = flags;
    if (bs != NULL && spec->snapshot) {
        bs = add_snapshot_overlay(st, bs, &err);
    }
    if (bs != NULL && spec->cor) {
        bs = add_cor_filter(st, bs, &err);
    }
    if (bs == NULL) {
        goto out_fail;
    }
    perm = BLK_PERM_CONSISTENT_READ;
    if (!blk_node_is_read_only(bs)) {
        perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
    }
    /* qemu-io opens without BDRV_O_NO_SHARE: it lets others do anything */
    shared = BLK_PERM_ALL;
    /* The image's backend is "image", so commands can name it (graph shows it). */
    be = blk_backend_new(st->graph, "image", bs, perm, shared, &err);
    if (be == NULL) {
        blk_node_unref(bs);
        goto out_fail;
    }
    blk_node_unref(bs);         /* the backend holds it */
    blk_node_ref(bs);           /* ... and so does st->node */
    st->be = be;
    st->node = bs;
    st->writethrough = spec->writethrough;
    io_open_spec_free(st->spec);
    st->spec = spec;
    return 0;

out_fail:
    if (spec->name != NULL && !spec->image_opts) {
        io_report(st, "can't open device %s: %s", spec->name, err.msg);
    } else {
        io_report(st, "can't open: %s", err.msg);
    }
    io_open_spec_free(spec);
    return err.code < 0 ? err.code : -EINVAL;
}

void
io_close_image(struct io_state *st)
{
    struct blk_error err = BLK_ERROR_INIT;

    if (st->be != NULL && !blk_node_is_read_only(blk_backend_root(st->be))) {
        blk_node_flush(blk_backend_root(st->be), &err);
    }
    blk_node_unref(st->node);
    st->node = NULL;
    if (st->be != NULL) {
        blk_backend_free(st->be);
        st->be = NULL;
    }
}

int
io_cmd_close(struct io_state *st, int argc, char **argv)
{
    io_close_image(st);
    return 0;
}

/* Append one -o string to *acc (joined with ','). */
static void
add_opts(char **acc, const char *o)
{
    char *n = *acc == NULL ? xstrdup(o) : xasprintf("%s,%s", *acc, o);

    free(*acc);
    *acc = n;
}

int
io_cmd_open(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *self = io_cmd_find("open");
    struct io_open_spec *spec = xzalloc(sizeof(*spec));
    int c;

    spec->flags = BLK_OPEN_RDWR | BLK_OPEN_UNMAP;
    spec->writethrough = true;  /* qemu-io's default cache mode */
    while ((c = getopt(argc, argv, "snCro:ki:t:d:U")) != -1) {
        switch (c) {
        case 's': spec->snapshot = true; break;
        case 'n':
            spec->flags |= BLK_OPEN_NOCACHE;
            spec->writethrough = false;
            break;
        case 'C': spec->cor = true; break;
        case 'r': spec->flags &= ~BLK_OPEN_RDWR; break;
        case 'k': break;
        case 'U': spec->flags |= BLK_OPEN_FORCE_SHARE; break;
        case 'o': add_opts(&spec->opts, optarg); break;
        case 'i':
            if (io_parse_aio(optarg) < 0) {
                io_report(st, "Invalid aio option: %s", optarg);
                goto out_fail;
            }
            break;
        case 't':
            if (io_parse_cache(optarg, &spec->flags, &spec->writethrough) < 0) {
                io_report(st, "Invalid cache option: %s", optarg);
                goto out_fail;
            }
            break;
        case 'd':
            if (io_parse_discard(optarg, &spec->flags) < 0) {
                io_report(st, "Invalid discard option: %s", optarg);
                goto out_fail;
            }
            break;
        default:
            io_open_spec_free(spec);
            return io_cmd_usage(st, self);
        }
    }
    if (optind == argc - 1) {
        spec->name = xstrdup(argv[optind]);
    } else if (optind != argc || spec->opts == NULL) {
        io_open_spec_free(spec);
        return io_cmd_usage(st, self);
    }
    if (st->node != NULL) {
        io_report(st, "file open already, try 'help close'");
        goto out_fail;
    }
    return io_open_image(st, spec);

out_fail:
    io_open_spec_free(spec);
    return -EINVAL;
}

static bool
flags_cache_same(unsigned a, unsigned b)
{
    unsigned m = BLK_OPEN_NOCACHE | BLK_OPEN_NO_FLUSH;

    return (a & m) == (b & m);
}

/*
 * reopen -r/-w: the core's transactional reopen on the current root.  Its
 * backend is released first (a writer keeps a node writable) and attached
 * again with the permissions of the new state; on failure the old backend
 * comes back and nothing changed.
 */
static int
reopen_in_place(struct io_state *st, bool read_only)
{
    struct blk_node *bs = blk_backend_root(st->be);
    struct blk_error err = BLK_ERROR_INIT;
    unsigned old_perm = BLK_PERM_CONSISTENT_READ, perm;
    int r;

    if (!blk_node_is_read_only(bs)) {
        old_perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
    }
    blk_node_ref(bs);
    blk_backend_free(st->be);
    st->be = NULL;
    r = blk_node_reopen(bs, NULL, read_only, &err);
    perm = BLK_PERM_CONSISTENT_READ;
    if (!blk_node_is_read_only(bs)) {
        perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
    }
    st->be = blk_backend_new(st->graph, "image", bs,
                             r == 0 ? perm : old_perm, BLK_PERM_ALL, NULL);
    blk_node_unref(bs);
    if (r < 0) {
        io_report(st, "%s", err.msg);
        return r;
    }
    return 0;
}

/*
 * reopen: read-only changes reopen in place (reopen_in_place); a cache
 * mode or -o options close the image and open it again with the changed
 * settings, and if that fails the old settings are restored.
 */
int
io_cmd_reopen(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *self = io_cmd_find("reopen");
    struct io_open_spec *spec, *old;
    bool ro = false, rw = false, wt;
    unsigned flags;
    char *opts = NULL;
    int c, r;

    if (st->spec == NULL || st->be == NULL) {
        io_report(st, "the current node was not opened with open; "
                  "reopen works on the image opened by open");
        return -EINVAL;
    }
    flags = st->spec->flags;
    wt = st->spec->writethrough;
    while ((c = getopt(argc, argv, "c:o:rw")) != -1) {
        switch (c) {
        case 'c':
            if (io_parse_cache(optarg, &flags, &wt) < 0) {
                io_report(st, "Invalid cache option: %s", optarg);
                free(opts);
                return -EINVAL;
            }
            break;
        case 'o': add_opts(&opts, optarg); break;
        case 'r':
            if (rw) {
                goto out_both;
            }
            ro = true;
            break;
        case 'w':
            if (ro) {
                goto out_both;
            }
            rw = true;
            break;
        default:
            free(opts);
            return io_cmd_usage(st, self);
        }
    }
    if (optind != argc) {
        free(opts);
        return io_cmd_usage(st, self);
    }
    flags = ro ? flags & ~BLK_OPEN_RDWR : rw ? flags | BLK_OPEN_RDWR : flags;
    if (opts == NULL && flags_cache_same(flags, st->spec->flags) &&
        wt == st->spec->writethrough) {
        /* Only read-only changes: in place, the graph (a -s overlay) stays. */
        r = reopen_in_place(st, !(flags & BLK_OPEN_RDWR));
        if (r == 0) {
            st->spec->flags = flags;
        }
        return r;
    }
    old = st->spec;
    spec = xzalloc(sizeof(*spec));
    *spec = *old;
    spec->name = old->name ? xstrdup(old->name) : NULL;
    spec->fmt = old->fmt ? xstrdup(old->fmt) : NULL;
    spec->opts = old->opts ? xstrdup(old->opts) : NULL;
    if (opts != NULL) {
        add_opts(&spec->opts, opts);
        free(opts);
    }
    spec->flags = flags;
    spec->writethrough = wt;
    st->spec = NULL;
    io_close_image(st);
    r = io_open_image(st, spec);
    if (r < 0) {
        io_open_image(st, old);     /* back to what it was */
        return r;
    }
    io_open_spec_free(old);
    return 0;

out_both:
    io_report(st, "Only one -r/-w option may be given");
    free(opts);
    return -EINVAL;
}
