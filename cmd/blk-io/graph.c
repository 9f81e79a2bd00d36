/*
 * graph.c - blk-io's graph commands: blockdev-add and blockdev-del (keyval
 * or JSON BlockdevOptions, validated by the schema), query-named-block-nodes,
 * an ASCII drawing of the graph, and select (which node the I/O commands
 * act on).  The session holds one reference on every node it added.
 * Loop thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-io/bitmap.h"
#include "cmd/blk-io/blk-io.h"
#include "keyval/schema.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

/* The arguments after the command name, joined again (JSON may hold blanks). */
static char *
join_args(int argc, char **argv)
{
    struct sbuf sb = SBUF_INIT;

    for (int i = 1; i < argc; i++) {
        if (i > 1) {
            sbuf_addch(&sb, ' ');
        }
        sbuf_adds(&sb, argv[i]);
    }
    return sbuf_detach(&sb);
}

int
io_cmd_blockdev_add(struct io_state *st, int argc, char **argv)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf help_text = SBUF_INIT;
    char *s = join_args(argc, argv);
    struct blk_node *bs;
    struct kv *opts;
    bool help = false;

    opts = kv_parse_typed(s, "BlockdevOptions", &help, &help_text, &err);
    free(s);
    if (help) {
        io_printf(st, "%s%s", help_text.buf,
                  help_text.len > 0 && help_text.buf[help_text.len - 1] != '\n'
                  ? "\n" : "");
        sbuf_release(&help_text);
        kv_free(opts);
        return 0;
    }
    sbuf_release(&help_text);
    if (opts == NULL) {
        io_report(st, "%s", err.msg);
        return err.code;
    }
    if (kv_get_str(opts, "node-name", NULL) == NULL) {
        io_report(st, "'node-name' must be specified for the root node");
        kv_free(opts);
        return -EINVAL;
    }
    bs = blk_node_open(st->graph, opts, BLK_OPEN_RDWR, &err);
    kv_free(opts);
    if (bs == NULL) {
        io_report(st, "%s", err.msg);
        return err.code;
    }
    st->added = xrealloc(st->added, (st->nadded + 1) * sizeof(*st->added));
    st->added[st->nadded++] = bs;
    return 0;
}

static bool
is_child_of_any(struct io_state *st, const struct blk_node *n)
{
    struct blk_node *bs = NULL;
    struct blk_child *c;

    while ((bs = blk_graph_next_node(st->graph, bs)) != NULL) {
        for (c = blk_node_next_child(bs, NULL); c != NULL;
             c = blk_node_next_child(bs, c)) {
            if (blk_child_node(c) == n) {
                return true;
            }
        }
    }
    return false;
}

int
io_cmd_blockdev_del(struct io_state *st, int argc, char **argv)
{
    const char *name = argv[1];
    size_t i;

    for (i = 0; i < st->nadded; i++) {
        if (strcmp(blk_node_get_name(st->added[i]), name) == 0) {
            break;
        }
    }
    if (i == st->nadded) {
        io_report(st, "Failed to find node with node-name='%s'", name);
        return -ENOENT;
    }
    if (st->added[i] == st->node) {
        io_report(st, "Node '%s' is busy: it is the current node (select "
                  "another one first)", name);
        return -EBUSY;
    }
    if (is_child_of_any(st, st->added[i]) ||
        (st->be != NULL && blk_backend_root(st->be) == st->added[i])) {
        io_report(st, "Node '%s' is busy: another node or a backend uses it",
                  name);
        return -EBUSY;
    }
    if (blk_node_in_flight(st->added[i]) > 0) {
        io_report(st, "Node '%s' is busy: requests are in flight", name);
        return -EBUSY;
    }
    blk_node_unref(st->added[i]);
    memmove(&st->added[i], &st->added[i + 1],
            (st->nadded - i - 1) * sizeof(*st->added));
    st->nadded--;
    return 0;
}

void
io_graph_release(struct io_state *st)
{
    while (st->nadded > 0) {
        blk_node_unref(st->added[--st->nadded]);
    }
    free(st->added);
    st->added = NULL;
}

static int
backing_depth(const struct blk_node *bs)
{
    int d = 0;

    for (bs = blk_node_backing(bs); bs != NULL; bs = blk_node_backing(bs)) {
        d++;
    }
    return d;
}

/* One BlockDeviceInfo-like object (QEMU's query-named-block-nodes, modest). */
static struct kv *
node_info(struct blk_node *bs)
{
    struct kv *o = kv_new_object(), *img, *cache, *bitmaps;
    const char *fn = blk_node_get_filename(bs);
    struct blk_node *backing = blk_node_backing(bs);
    int64_t len = blk_node_get_length(bs), alloc;

    kv_set(o, "file", kv_new_str(fn ? fn : ""));
    kv_set(o, "node-name", kv_new_str(blk_node_get_name(bs)));
    kv_set(o, "ro", kv_new_bool(blk_node_is_read_only(bs)));
    kv_set(o, "drv", kv_new_str(blk_node_driver(bs)->name));
    if (backing != NULL) {
        const char *bfn = blk_node_get_filename(backing);

        kv_set(o, "backing_file", kv_new_str(bfn ? bfn : ""));
    }
    kv_set(o, "backing_file_depth", kv_new_int(backing_depth(bs)));
    bitmaps = io_bitmap_query(bs);
    if (bitmaps != NULL) {
        kv_set(o, "dirty-bitmaps", bitmaps);
    }
    kv_set(o, "encrypted", kv_new_bool(false));
    kv_set(o, "detect_zeroes", kv_new_str(kv_get_str(blk_node_options(bs),
                                                     "detect-zeroes", "off")));
    cache = kv_new_object();
    kv_set(cache, "no-flush", kv_new_bool(blk_node_cache_no_flush(bs)));
    kv_set(cache, "direct", kv_new_bool(blk_node_cache_direct(bs)));
    kv_set(cache, "writeback", kv_new_bool(true));
    kv_set(o, "cache", cache);
    img = kv_new_object();
    kv_set(img, "virtual-size", kv_new_int(len < 0 ? 0 : len));
    kv_set(img, "filename", kv_new_str(fn ? fn : ""));
    kv_set(img, "format", kv_new_str(blk_node_driver(bs)->name));
    alloc = blk_node_get_allocated_size(bs);
    if (alloc >= 0) {
        kv_set(img, "actual-size", kv_new_int(alloc));
    }
    kv_set(img, "dirty-flag", kv_new_bool(false));
    kv_set(o, "image", img);
    return o;
}

/* The list query-named-block-nodes returns (caller frees). */
static struct kv *
query_nodes(struct io_state *st)
{
    struct kv *list = kv_new_list();
    struct blk_node *bs = NULL;

    while ((bs = blk_graph_next_node(st->graph, bs)) != NULL) {
        kv_append(list, node_info(bs));
    }
    return list;
}

int
io_cmd_query_nodes(struct io_state *st, int argc, char **argv)
{
    struct kv *list = query_nodes(st);
    struct sbuf sb = SBUF_INIT;

    kv_to_json_pretty(list, &sb, 0);
    io_printf(st, "%s\n", sb.buf);
    sbuf_release(&sb);
    kv_free(list);
    return 0;
}

/* ---- graph: roots first, children indented under their parents ---------- */

static void
draw_node(struct io_state *st, struct blk_node *bs, struct sbuf *prefix,
          const char *edge, bool last, int depth)
{
    const char *fn = blk_node_get_filename(bs);
    struct blk_child *c, *next;
    size_t keep = prefix->len;

    if (depth > 0) {
        io_printf(st, "%s%s %s: ", prefix->buf, last ? "`--" : "|--", edge);
    }
    io_printf(st, "%s [%s]", blk_node_get_name(bs), blk_node_driver(bs)->name);
    if (fn != NULL && *fn) {
        io_printf(st, " %s", fn);
    }
    if (blk_node_is_read_only(bs)) {
        io_printf(st, " (ro)");
    }
    if (bs == st->node) {
        io_printf(st, " <- current");
    }
    io_printf(st, "\n");
    if (depth > 0) {
        sbuf_adds(prefix, last ? "    " : "|   ");
    }
    for (c = blk_node_next_child(bs, NULL); c != NULL; c = next) {
        next = blk_node_next_child(bs, c);
        draw_node(st, blk_child_node(c), prefix, blk_child_name(c),
                  next == NULL, depth + 1);
    }
    sbuf_setlen(prefix, keep);
}

int
io_cmd_graph(struct io_state *st, int argc, char **argv)
{
    struct sbuf prefix = SBUF_INIT;
    struct blk_node *bs = NULL;
    bool any = false;

    while ((bs = blk_graph_next_node(st->graph, bs)) != NULL) {
        if (is_child_of_any(st, bs)) {
            continue;
        }
        if (st->be != NULL && blk_backend_root(st->be) == bs) {
            io_printf(st, "(image) --root--> ");
        }
        draw_node(st, bs, &prefix, NULL, true, 0);
        any = true;
    }
    if (!any) {
        io_printf(st, "(no nodes)\n");
    }
    sbuf_release(&prefix);
    return 0;
}

int
io_cmd_select(struct io_state *st, int argc, char **argv)
{
    struct blk_node *bs;

    if (argc == 1) {
        if (st->node == NULL) {
            io_printf(st, "no node selected\n");
        } else {
            io_printf(st, "%s\n", blk_node_get_name(st->node));
        }
        return 0;
    }
    bs = blk_graph_find_node(st->graph, argv[1]);
    if (bs == NULL) {
        struct blk_backend *be = blk_graph_find_backend(st->graph, argv[1]);

        bs = be != NULL ? blk_backend_root(be) : NULL;
    }
    if (bs == NULL) {
        io_report(st, "Cannot find device='%s' nor node-name='%s'", argv[1],
                  argv[1]);
        return -ENOENT;
    }
    blk_node_ref(bs);
    blk_node_unref(st->node);
    st->node = bs;
    return 0;
}

struct kv *
io_query_nodes(struct io_state *st)
{
    return query_nodes(st);
}
