/*
 * cmdtab.c - blk-io's command table (qemu-io's cmdinfo_t shape), line
 * splitting, dispatch with qemu-io's checks (file open, argument count,
 * writability) and the `help` command derived from the table.
 * Loop thread.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-io/bitmap.h"
#include "cmd/blk-io/blk-io.h"
#include "util/xalloc.h"

/* Sorted by name, as qemu-io sorts its table before `help` lists it. */
const struct io_cmd io_cmds[] = {
    { "abort", NULL, io_cmd_abort, 0, 0, false, false, NULL,
      "simulate a program crash using abort(3)", NULL },
    { "aio_flush", NULL, io_cmd_aio_flush, 0, 0, true, false, NULL,
      "completes all outstanding aio requests", NULL },
    { "aio_read", NULL, io_cmd_aio_read, 2, -1, true, false,
      "[-Ciqv] [-P pattern] off len [len..]",
      "asynchronously reads a number of bytes", io_help_aio_read },
    { "aio_write", NULL, io_cmd_aio_write, 2, -1, true, true,
      "[-Cfiquz] [-P pattern] off len [len..]",
      "asynchronously writes a number of bytes", io_help_aio_write },
    { "alloc", "a", io_cmd_alloc, 1, 2, true, false, "offset [count]",
      "checks if offset is allocated in the file", NULL },
    { "bitmap", NULL, io_cmd_bitmap_dump, 3, 3, false, false,
      "dump node name", "prints the dirty and clean extents of a dirty bitmap",
      io_help_bitmap_dump },
    { "block-dirty-bitmap-add", NULL, io_cmd_bitmap_add, 1, -1, false, false,
      "ARGS", "creates a dirty bitmap (keyval or JSON BlockDirtyBitmapAdd)",
      io_help_bitmap_add },
    { "block-dirty-bitmap-clear", NULL, io_cmd_bitmap_clear, 1, -1, false,
      false, "ARGS", "marks a dirty bitmap clean (node, name)", NULL },
    { "block-dirty-bitmap-disable", NULL, io_cmd_bitmap_disable, 1, -1, false,
      false, "ARGS", "stops a dirty bitmap recording (node, name)", NULL },
    { "block-dirty-bitmap-enable", NULL, io_cmd_bitmap_enable, 1, -1, false,
      false, "ARGS", "starts a dirty bitmap recording (node, name)", NULL },
    { "block-dirty-bitmap-merge", NULL, io_cmd_bitmap_merge, 1, -1, false,
      false, "ARGS", "merges dirty bitmaps into one (BlockDirtyBitmapMerge)",
      io_help_bitmap_merge },
    { "block-dirty-bitmap-remove", NULL, io_cmd_bitmap_remove, 1, -1, false,
      false, "ARGS", "deletes a dirty bitmap (node, name)", NULL },
    { "blockdev-add", NULL, io_cmd_blockdev_add, 1, -1, false, false,
      "OPTIONS", "opens a block node (keyval or JSON BlockdevOptions)",
      io_help_blockdev_add },
    { "blockdev-del", NULL, io_cmd_blockdev_del, 1, 1, false, false,
      "node-name", "closes a node opened with blockdev-add", NULL },
    { "close", "c", io_cmd_close, 0, 0, true, false, NULL,
      "close the current open file", NULL },
    { "discard", "d", io_cmd_discard, 2, -1, true, true, "[-Cq] off len",
      "discards a number of bytes at a specified offset", io_help_discard },
    { "flush", "f", io_cmd_flush, 0, 0, true, false, NULL,
      "flush all in-core file state to disk", NULL },
    { "graph", NULL, io_cmd_graph, 0, 0, false, false, NULL,
      "draws the block graph: nodes, child edges and the current node", NULL },
    { "help", "?", io_cmd_help, 0, 1, false, false, "[command]",
      "help for one or all commands", NULL },
    { "info", "i", io_cmd_info, 0, 0, true, false, NULL,
      "prints information about the current file", NULL },
    { "length", "l", io_cmd_length, 0, 0, true, false, NULL,
      "gets the length of the current file", NULL },
    { "map", NULL, io_cmd_map, 0, 0, true, false, "",
      "prints the allocated areas of a file", NULL },
    { "open", "o", io_cmd_open, 1, -1, false, false,
      "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
      "open the file specified by path", io_help_open },
    { "query-named-block-nodes", NULL, io_cmd_query_nodes, 0, 0, false, false,
      NULL, "prints the open block nodes as JSON", NULL },
    { "quit", "q", io_cmd_quit, 0, 0, false, false, NULL,
      "exit the program", NULL },
    { "read", "r", io_cmd_read, 2, -1, true, false,
      "[-abCqv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset", io_help_read },
    { "readv", NULL, io_cmd_readv, 2, -1, true, false,
      "[-Cqv] [-P pattern] off len [len..]",
      "reads a number of bytes at a specified offset", io_help_readv },
    { "reopen", NULL, io_cmd_reopen, 0, -1, true, false,
      "[(-r|-w)] [-c cache] [-o options]",
      "reopens an image with new options", io_help_reopen },
    { "select", NULL, io_cmd_select, 0, 1, false, false, "[node-name]",
      "chooses the node the I/O commands act on", io_help_select },
    { "sigraise", NULL, io_cmd_sigraise, 1, 1, false, false, "signal",
      "raises a signal", io_help_sigraise },
    { "sleep", NULL, io_cmd_sleep, 1, 1, false, false, NULL,
      "waits for the given value in milliseconds", NULL },
    { "truncate", "t", io_cmd_truncate, 1, 3, true, true,
      "[-m prealloc_mode] off",
      "truncates the current file at the given offset", NULL },
    { "write", "w", io_cmd_write, 2, -1, true, true,
      "[-bcCfnquz] [-P pattern | -s source_file] off len",
      "writes a number of bytes at a specified offset", io_help_write },
    { "writev", NULL, io_cmd_writev, 2, -1, true, true,
      "[-Cfq] [-P pattern] off len [len..]",
      "writes a number of bytes at a specified offset", io_help_writev },
};
const size_t io_ncmds = ARRAY_SIZE(io_cmds);

const struct io_cmd *
io_cmd_find(const char *name)
{
    size_t i;

    for (i = 0; i < io_ncmds; i++) {
        if (strcmp(io_cmds[i].name, name) == 0 ||
            (io_cmds[i].altname != NULL &&
             strcmp(io_cmds[i].altname, name) == 0)) {
            return &io_cmds[i];
        }
    }
    return NULL;
}

static void
print_line_as(struct io_state *st, const struct io_cmd *c, const char *name)
{
    if (c->args != NULL) {
        io_printf(st, "%s %s -- %s\n", name, c->args, c->oneline);
    } else {
        io_printf(st, "%s -- %s\n", name, c->oneline);
    }
}

void
io_cmd_print_line(struct io_state *st, const struct io_cmd *c)
{
    print_line_as(st, c, c->name);
}

int
io_cmd_usage(struct io_state *st, const struct io_cmd *c)
{
    io_cmd_print_line(st, c);
    return -EINVAL;
}

void
io_getopt_reset(void)
{
    optind = 0;                 /* glibc: full re-initialisation */
    opterr = 1;
}

static bool
count_ok(struct io_state *st, const struct io_cmd *c, const char *typed,
         int nargs)
{
    if (nargs >= c->argmin && (c->argmax < 0 || nargs <= c->argmax)) {
        return true;
    }
    if (c->argmax < 0) {
        io_eprintf(st, "bad argument count %d to %s, expected at least %d "
                   "arguments\n", nargs, typed, c->argmin);
    } else if (c->argmin == c->argmax) {
        io_eprintf(st, "bad argument count %d to %s, expected %d arguments\n",
                   nargs, typed, c->argmin);
    } else {
        io_eprintf(st, "bad argument count %d to %s, expected between %d "
                   "and %d arguments\n", nargs, typed, c->argmin, c->argmax);
    }
    return false;
}

static char **
split_line(const char *line, int *argc)
{
    char *copy = xstrdup(line), *save = NULL, *tok;
    char **argv = xcalloc(strlen(line) / 2 + 2, sizeof(char *));
    int n = 0;

    for (tok = strtok_r(copy, " \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        argv[n++] = xstrdup(tok);
    }
    free(copy);
    *argc = n;
    return argv;
}

static void
free_argv(char **argv, int argc)
{
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    free(argv);
}

int
io_run_line(struct io_state *st, const char *line)
{
    const struct io_cmd *c;
    char **argv;
    int argc, ret;

    argv = split_line(line, &argc);
    if (argc == 0) {
        free(argv);
        return 0;
    }
    c = io_cmd_find(argv[0]);
    if (c == NULL) {
        io_eprintf(st, "command \"%s\" not found\n", argv[0]);
        ret = -EINVAL;
    } else if (c->needs_file && st->node == NULL) {
        io_eprintf(st, "no file open, try 'help open'\n");
        ret = -EINVAL;
    } else if (!count_ok(st, c, argv[0], argc - 1)) {
        ret = -EINVAL;
    } else if (c->needs_write && blk_node_is_read_only(st->node)) {
        io_report(st, "Block node is read-only");
        ret = -EPERM;
    } else {
        io_getopt_reset();
        st->busy = true;
        ret = c->fn(st, argc, argv);
        if (ret != IO_PENDING) {
            st->busy = false;
        }
    }
    free_argv(argv, argc);
    if (ret < 0) {
        st->failed = true;
    }
    return ret;
}

void
io_cmd_finish(struct io_state *st, int ret)
{
    st->busy = false;
    if (ret < 0) {
        st->failed = true;
    }
    if (st->cmd_done != NULL) {
        st->cmd_done(st, ret);
    }
}

int
io_cmd_help(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *c;
    size_t i;

    if (argc == 1) {
        for (i = 0; i < io_ncmds; i++) {
            io_cmd_print_line(st, &io_cmds[i]);
        }
        io_printf(st, "\nUse 'help commandname' for extended help.\n");
        return 0;
    }
    c = io_cmd_find(argv[1]);
    if (c == NULL) {
        io_printf(st, "command %s not found\n", argv[1]);
        return -EINVAL;
    }
    print_line_as(st, c, argv[1]);     /* `help r` prints "r ..." as qemu-io */
    if (c->help != NULL) {
        c->help(st);
    }
    return 0;
}
