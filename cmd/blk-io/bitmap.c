/*
 * bitmap.c - blk-io's dirty bitmap commands.  The shell takes keyval or
 * JSON arguments, --qmp takes JSON; both are validated against the schema
 * types of schema/block-bitmap.json and run the same operation with
 * QEMU 7.2's checks and messages (block/bitmap-qmp.c).  A backend name
 * given as a node means that backend's root node at that moment; the
 * bitmap then stays on that node whatever happens to the backend.
 * Loop thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap-qmp.h"
#include "cmd/blk-io/bitmap.h"
#include "keyval/schema.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

enum bitmap_op { OP_ADD, OP_REMOVE, OP_CLEAR, OP_ENABLE, OP_DISABLE, OP_MERGE };

/* The argument type of each operation (QEMU's names). */
static const char *const op_types[] = {
    "BlockDirtyBitmapAdd", "BlockDirtyBitmap", "BlockDirtyBitmap",
    "BlockDirtyBitmap", "BlockDirtyBitmap", "BlockDirtyBitmapMerge",
};

/*
 * QEMU's bdrv_lookup_bs(name, name): a backend (device) name first, then
 * a node-name.  add_msg: block-dirty-bitmap-add's wording for a miss.
 */
static struct blk_node *
find_node(struct io_state *st, const char *name, bool add_msg,
          struct blk_error *err)
{
    struct blk_backend *be = blk_graph_find_backend(st->graph, name);
    struct blk_node *bs = be != NULL ? blk_backend_root(be) : NULL;

    if (bs == NULL) {
        bs = blk_graph_find_node(st->graph, name);
    }
    if (bs == NULL) {
        if (add_msg) {
            blk_error_set(err, -ENODEV, "Cannot find device='%s' nor "
                          "node-name='%s'", name, name);
        } else {
            blk_error_set(err, -ENODEV, "Node '%s' not found", name);
        }
    }
    return bs;
}

static int
do_add(struct io_state *st, const struct kv *a, struct blk_error *err)
{
    struct blk_node *bs = find_node(st, kv_get_str(a, "node", ""), true, err);
    const struct kv *g = kv_get(a, "granularity");

    if (bs == NULL) {
        return err->code;
    }
    if (blk_bitmap_qmp_add(bs, kv_get_str(a, "name", ""), g != NULL,
                           g != NULL ? (uint64_t)kv_get_int(a, "granularity", 0)
                                     : 0,
                           kv_get_bool(a, "persistent", false),
                           kv_get_bool(a, "disabled", false), err) == NULL) {
        return err->code;
    }
    return 0;
}

/* One source of a merge: a name on node, or a {node, name} object. */
static struct blk_bitmap *
merge_source(struct io_state *st, struct blk_node *bs, const struct kv *src,
             struct blk_error *err)
{
    if (src->type == KV_STRING) {
        return blk_bitmap_qmp_lookup(bs, src->v.s, err);
    }
    bs = find_node(st, kv_get_str(src, "node", ""), false, err);
    return bs == NULL ? NULL
                      : blk_bitmap_qmp_lookup(bs, kv_get_str(src, "name", ""),
                                              err);
}

static int
do_merge(struct io_state *st, const struct kv *a, struct blk_error *err)
{
    struct blk_node *bs = find_node(st, kv_get_str(a, "node", ""), false, err);
    const struct kv *list = kv_get(a, "bitmaps");
    struct blk_bitmap *dst, **srcs;
    size_t i, n = list != NULL ? list->n : 0;
    int r;

    if (bs == NULL) {
        return err->code;
    }
    dst = blk_bitmap_qmp_lookup(bs, kv_get_str(a, "target", ""), err);
    if (dst == NULL) {
        return err->code;
    }
    r = blk_bitmap_qmp_check(dst, BLK_BITMAP_CHECK_DEFAULT, err);
    if (r < 0) {
        return r;
    }
    srcs = xcalloc(n + 1, sizeof(*srcs));
    for (i = 0; i < n; i++) {
        srcs[i] = merge_source(st, bs, list->vals[i], err);
        if (srcs[i] == NULL) {
            free(srcs);
            return err->code;
        }
    }
    r = blk_bitmap_qmp_merge(dst, srcs, n, err);
    free(srcs);
    return r;
}

/* Run one operation on validated arguments. */
static int
run_op(struct io_state *st, enum bitmap_op op, const struct kv *a,
       struct blk_error *err)
{
    struct blk_node *bs;
    const char *name = kv_get_str(a, "name", "");

    if (op == OP_ADD) {
        return do_add(st, a, err);
    }
    if (op == OP_MERGE) {
        return do_merge(st, a, err);
    }
    bs = find_node(st, kv_get_str(a, "node", ""), false, err);
    if (bs == NULL) {
        return err->code;
    }
    switch (op) {
    case OP_REMOVE:
        return blk_bitmap_qmp_remove(bs, name, err);
    case OP_CLEAR:
        return blk_bitmap_qmp_clear(bs, name, err);
    default:
        return blk_bitmap_qmp_enable(bs, name, op == OP_ENABLE, err);
    }
}

/* ---- the shell ----------------------------------------------------------- */

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

static int
shell_op(struct io_state *st, enum bitmap_op op, int argc, char **argv)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf help_text = SBUF_INIT;
    char *s = join_args(argc, argv);
    bool help = false;
    struct kv *a;
    int r;

    a = kv_parse_typed(s, op_types[op], &help, &help_text, &err);
    free(s);
    if (help) {
        io_printf(st, "%s%s", help_text.buf,
                  help_text.len > 0 && help_text.buf[help_text.len - 1] != '\n'
                  ? "\n" : "");
        sbuf_release(&help_text);
        kv_free(a);
        return 0;
    }
    sbuf_release(&help_text);
    if (a == NULL) {
        io_report(st, "%s", err.msg);
        return err.code;
    }
    r = run_op(st, op, a, &err);
    kv_free(a);
    if (r < 0) {
        io_report(st, "%s", err.msg);
    }
    return r;
}

int
io_cmd_bitmap_add(struct io_state *st, int argc, char **argv)
{
    return shell_op(st, OP_ADD, argc, argv);
}

int
io_cmd_bitmap_remove(struct io_state *st, int argc, char **argv)
{
    return shell_op(st, OP_REMOVE, argc, argv);
}

int
io_cmd_bitmap_clear(struct io_state *st, int argc, char **argv)
{
    return shell_op(st, OP_CLEAR, argc, argv);
}

int
io_cmd_bitmap_enable(struct io_state *st, int argc, char **argv)
{
    return shell_op(st, OP_ENABLE, argc, argv);
}

int
io_cmd_bitmap_disable(struct io_state *st, int argc, char **argv)
{
    return shell_op(st, OP_DISABLE, argc, argv);
}

int
io_cmd_bitmap_merge(struct io_state *st, int argc, char **argv)
{
    return shell_op(st, OP_MERGE, argc, argv);
}

int
io_cmd_bitmap_dump(struct io_state *st, int argc, char **argv)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_bitmap *bm = NULL;
    struct blk_node *bs;

    if (strcmp(argv[1], "dump") != 0) {
        return io_cmd_usage(st, io_cmd_find(argv[0]));
    }
    bs = find_node(st, argv[2], false, &err);
    if (bs != NULL) {
        bm = blk_bitmap_qmp_lookup(bs, argv[3], &err);
    }
    if (bm == NULL ||
        blk_bitmap_qmp_check(bm, BLK_BITMAP_CHECK_INCONSISTENT, &err) < 0) {
        io_report(st, "%s", err.msg);
        return err.code;
    }
    blk_bitmap_dump(bm, 0, UINT64_MAX, false, st->out);
    return 0;
}

void
io_help_bitmap_add(struct io_state *st)
{
    io_printf(st, "%s",
              "\n"
              " creates a dirty bitmap on a node (QEMU's BlockDirtyBitmapAdd)\n"
              "\n"
              " Example:\n"
              " 'block-dirty-bitmap-add node=disk,name=b0,granularity=65536,persistent=on'\n"
              "\n"
              " node is a node-name (or a backend name: its root node now); the\n"
              " bitmap records every write, write-zeroes and discard on that node\n"
              " unless disabled=on.  persistent=on stores it in the qcow2 image when\n"
              " the node closes.  The other block-dirty-bitmap-* commands take\n"
              " node and name; 'bitmap dump NODE NAME' prints its extents.\n"
              "\n");
}

void
io_help_bitmap_merge(struct io_state *st)
{
    io_printf(st, "%s",
              "\n"
              " merges dirty bitmaps into a target (QEMU's BlockDirtyBitmapMerge)\n"
              "\n"
              " Example:\n"
              " 'block-dirty-bitmap-merge node=disk,target=b0,bitmaps.0=b1,bitmaps.1.node=other,bitmaps.1.name=b2'\n"
              " 'block-dirty-bitmap-merge {\"node\": \"disk\", \"target\": \"b0\", \"bitmaps\": [\"b1\"]}'\n"
              "\n"
              " Each source is a bitmap name on node or a {node, name} object; all\n"
              " must cover the same size as the target, which is left unchanged if\n"
              " any source fails its checks.\n"
              "\n");
}

void
io_help_bitmap_dump(struct io_state *st)
{
    io_printf(st, "%s",
              "\n"
              " prints the extents of a dirty bitmap, dirty and clean in turn\n"
              "\n"
              " Example:\n"
              " 'bitmap dump disk b0'\n"
              "\n"
              " The table is blk-img bitmap dump's human output: hexadecimal start\n"
              " and length, and yes/no for dirty.\n"
              "\n");
}

/* ---- --qmp --------------------------------------------------------------- */

static int
qmp_op(struct io_state *st, enum bitmap_op op, const struct kv *args,
       struct blk_error *err)
{
    struct kv *a = args != NULL ? kv_dup(args) : kv_new_object();
    int r;

    r = kv_validate(a, kv_schema_lookup(op_types[op]), KV_MODE_JSON, err);
    if (r == 0) {
        r = run_op(st, op, a, err);
    }
    kv_free(a);
    return r;
}

int
io_qmp_bitmap_add(struct io_state *st, struct qmp *q, const struct kv *args,
                  struct kv **ret, struct blk_error *err)
{
    return qmp_op(st, OP_ADD, args, err);
}

int
io_qmp_bitmap_remove(struct io_state *st, struct qmp *q, const struct kv *args,
                     struct kv **ret, struct blk_error *err)
{
    return qmp_op(st, OP_REMOVE, args, err);
}

int
io_qmp_bitmap_clear(struct io_state *st, struct qmp *q, const struct kv *args,
                    struct kv **ret, struct blk_error *err)
{
    return qmp_op(st, OP_CLEAR, args, err);
}

int
io_qmp_bitmap_enable(struct io_state *st, struct qmp *q, const struct kv *args,
                     struct kv **ret, struct blk_error *err)
{
    return qmp_op(st, OP_ENABLE, args, err);
}

int
io_qmp_bitmap_disable(struct io_state *st, struct qmp *q, const struct kv *args,
                      struct kv **ret, struct blk_error *err)
{
    return qmp_op(st, OP_DISABLE, args, err);
}

int
io_qmp_bitmap_merge(struct io_state *st, struct qmp *q, const struct kv *args,
                    struct kv **ret, struct blk_error *err)
{
    return qmp_op(st, OP_MERGE, args, err);
}

/* ---- query-named-block-nodes --------------------------------------------- */

/* Dirty bytes as QEMU counts them: whole granules, the last one too. */
static uint64_t
qemu_count(struct blk_bitmap *bm)
{
    uint64_t count = blk_bitmap_count(bm), size = blk_bitmap_size(bm);
    uint64_t gran = blk_bitmap_granularity(bm);

    if (count > 0 && size % gran != 0 && blk_bitmap_get(bm, size - 1)) {
        count += gran - size % gran;
    }
    return count;
}

static struct kv *
bitmap_info(struct blk_bitmap *bm)
{
    struct kv *o = kv_new_object();
    bool inconsistent = blk_bitmap_inconsistent(bm);

    kv_set(o, "name", kv_new_str(blk_bitmap_name(bm)));
    kv_set(o, "recording", kv_new_bool(blk_bitmap_enabled(bm) &&
                                       !inconsistent));
    kv_set(o, "persistent", kv_new_bool(blk_bitmap_persistent(bm)));
    kv_set(o, "busy", kv_new_bool(blk_bitmap_busy(bm)));
    kv_set(o, "granularity", kv_new_int((int64_t)blk_bitmap_granularity(bm)));
    kv_set(o, "count", kv_new_int((int64_t)qemu_count(bm)));
    if (inconsistent) {
        kv_set(o, "inconsistent", kv_new_bool(true));
    }
    return o;
}

struct kv *
io_bitmap_query(struct blk_node *bs)
{
    struct blk_bitmap *bm = NULL, **all = NULL;
    struct kv *list;
    size_t n = 0;

    while ((bm = blk_bitmap_next(bs, bm)) != NULL) {
        all = xrealloc(all, (n + 1) * sizeof(*all));
        all[n++] = bm;
    }
    if (n == 0) {
        return NULL;
    }
    list = kv_new_list();
    while (n > 0) {             /* QEMU lists the newest first */
        kv_append(list, bitmap_info(all[--n]));
    }
    free(all);
    return list;
}
