/*
 * blk-io.h - blk-io, blk's qemu-io: the shared state of one session, the
 * command table (qemu-io's cmdinfo_t shape) and the helpers commands use
 * to parse arguments and print qemu-io 7.2's report lines.
 * Everything here runs on the loop thread.
 */
#ifndef CMD_BLK_IO_H
#define CMD_BLK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <time.h>

#include "block/block.h"

struct io_state;

/*
 * A command handler.  Returns 0 (done, success), a negative value (done,
 * failed: the session's exit status becomes 1) or IO_PENDING: the command
 * goes on asynchronously and calls io_cmd_finish() exactly once, later,
 * on the loop.  argv[0] is the command name as typed.
 */
#define IO_PENDING 1
typedef int io_cmd_fn(struct io_state *st, int argc, char **argv);

struct io_cmd {
    const char *name;
    const char *altname;        /* one-letter alias, or NULL */
    io_cmd_fn *fn;
    int argmin, argmax;         /* argmax -1: no limit */
    bool needs_file;            /* fails with "no file open" without one */
    bool needs_write;           /* fails with "Block node is read-only" */
    const char *args;           /* synopsis; NULL prints nothing, "" two blanks */
    const char *oneline;
    void (*help)(struct io_state *st);  /* long help, or NULL */
};

/* One session: the graph, the current image, output streams, counters. */
struct io_state {
    struct blk_graph *graph;
    struct blk_node *node;      /* current node (qemu-io's current file); ref held */
    struct blk_backend *be;     /* the image opened by `open`/the command line */
    struct io_open_spec *spec;  /* how be's image was opened (for reopen) */
    struct blk_node **added;    /* nodes opened by blockdev-add; refs held */
    size_t nadded;
    bool misalign;              /* -m: buffers start 16 bytes past alignment */
    bool writethrough;          /* -t writethrough/directsync: writes get FUA */

    FILE *out;                  /* stdout, or a capture (human-monitor-command) */
    FILE *err;                  /* stderr, or the same capture */
    bool interactive;           /* shell: flush after each report */
    /* shell on a tty: around output printed while the prompt waits */
    void (*async_begin)(struct io_state *st);
    void (*async_end)(struct io_state *st);
    void *async_opaque;
    bool qmp;                   /* machine mode: stdout carries JSON only */

    unsigned aio_in_flight;     /* aio_read/aio_write not yet called back */
    void (*aio_drained)(struct io_state *st);  /* run once aio_in_flight is 0 */
    void *aio_drained_opaque;   /* aio_drained's */

    /* The command in progress (at most one; aio requests are not commands). */
    bool busy;
    void (*cmd_done)(struct io_state *st, int ret);  /* set by the runner */
    void *cmd_done_opaque;      /* the runner's */
    bool failed;                /* some command failed: exit status 1 */
    bool quit;                  /* `quit` ran */
};

/* ---- commands (cmdtab.c) -------------------------------------------------- */

extern const struct io_cmd io_cmds[];
extern const size_t io_ncmds;

const struct io_cmd *io_cmd_find(const char *name);

/*
 * Split line at blanks (no quoting, as qemu-io) and run the command.
 * Returns as the handler does; when it returns IO_PENDING, st->cmd_done
 * runs at the end.  Unknown commands and bad argument counts print
 * qemu-io's messages and return -EINVAL.
 */
int io_run_line(struct io_state *st, const char *line);

/* Called by an asynchronous command when it ends; runs st->cmd_done. */
void io_cmd_finish(struct io_state *st, int ret);

/* Print the one-line summary of a command ("read [-abCqv] ... -- reads ..."). */
void io_cmd_print_line(struct io_state *st, const struct io_cmd *c);
/* Print the usage line for c (after a getopt error or bad operands); returns -EINVAL. */
int io_cmd_usage(struct io_state *st, const struct io_cmd *c);
/* Reset getopt for a new command's argv. */
void io_getopt_reset(void);

/* ---- output and argument helpers (util.c) ------------------------------- */

void io_printf(struct io_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* To st->err without prefix (qemu-io's plain fprintf(stderr)). */
void io_eprintf(struct io_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* To st->err as "blk-io: <msg>\n" (qemu-io's error_report). */
void io_report(struct io_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void io_flush_output(struct io_state *st);

/*
 * qemu-io's cvtnum: a size with optional suffix (util/size.h rules, plus
 * 7.2's deprecated hex-with-suffix, which warns).  Returns the value, or
 * -EINVAL / -ERANGE (values above INT64_MAX are -ERANGE).
 */
int64_t io_cvtnum(struct io_state *st, const char *s);
/* Print "Parsing error: ... -- S" for a failed io_cvtnum (stdout, as qemu-io). */
void io_print_cvtnum_error(struct io_state *st, int64_t ret, const char *s);
/* io_cvtnum + its error; returns -EINVAL on error. */
int io_parse_num(struct io_state *st, const char *s, int64_t *out);

/* The largest length one request may have (qemu-io's BDRV_REQUEST_MAX_BYTES). */
#define IO_MAX_BYTES 2147483136LL

/* Parse a pattern byte (-P): strtol base 0, 0..255; prints the error. */
int io_parse_pattern(struct io_state *st, const char *s, int *pattern);

/* A buffer of len bytes filled with pattern (honours -m); free with io_buf_free. */
void *io_buf_alloc(struct io_state *st, size_t len, int pattern);
void io_buf_free(struct io_state *st, void *buf);
/* A buffer filled by repeating the contents of file; NULL with the error printed. */
void *io_buf_from_file(struct io_state *st, const char *file, size_t len);

/* qemu-io's -v dump: offset is the disk offset of buf[0]. */
void io_dump_buffer(struct io_state *st, const void *buf, int64_t offset, int64_t len);
/* Compare buf[skip..skip+len) with pattern; prints the failure line. */
int io_check_pattern(struct io_state *st, const uint8_t *buf, int pattern,
                     int64_t disk_off, int64_t len);

/* The "N KiB, 1 ops; 00.00 sec (...)" line, or its -C form. */
void io_print_report(struct io_state *st, const struct timespec *t1,
                     const struct timespec *t2, int64_t bytes, int ops,
                     int total, bool csv);
void io_cvtstr(double v, char *buf, size_t len);
void io_now(struct timespec *ts);

/* ---- session helpers (main.c / files.c) ---------------------------------- */

/* How an image was opened: qemu-io's open arguments, kept for reopen. */
struct io_open_spec {
    char *name;                 /* filename / option string; may be NULL */
    char *fmt;                  /* -f, or NULL to probe */
    char *opts;                 /* -o options (keyval), or NULL */
    bool image_opts;            /* name is an option string */
    unsigned flags;             /* BLK_OPEN_* */
    bool snapshot, cor, writethrough;
};

void io_open_spec_free(struct io_open_spec *spec);

/*
 * Open an image as qemu-io's open command and command line do and make it
 * the current image (takes ownership of spec).  On failure prints
 * "blk-io: can't open device NAME: MSG" and returns -errno.
 */
int io_open_image(struct io_state *st, struct io_open_spec *spec);
/*
 * The current node as qemu-io's commands describe it (info, the probe
 * warning): below the filter -C put over the image, else st->node.
 */
struct blk_node *io_image_node(struct io_state *st);
/* Close the current image (flushes it; waits for nothing: callers drain). */
void io_close_image(struct io_state *st);

/* Parse -t's cache modes into open flags; -d's discard modes; -i's aio modes. */
int io_parse_cache(const char *mode, unsigned *flags, bool *writethrough);
int io_parse_discard(const char *mode, unsigned *flags);
int io_parse_aio(const char *mode);

/* ---- command handlers (io-cmds.c, file-cmds.c, graph-cmds.c) ------------- */

io_cmd_fn io_cmd_read, io_cmd_readv, io_cmd_write, io_cmd_writev;
io_cmd_fn io_cmd_aio_read, io_cmd_aio_write, io_cmd_aio_flush;
io_cmd_fn io_cmd_flush, io_cmd_discard, io_cmd_truncate, io_cmd_length;
io_cmd_fn io_cmd_info, io_cmd_map, io_cmd_alloc;
io_cmd_fn io_cmd_open, io_cmd_close, io_cmd_reopen, io_cmd_sleep;
io_cmd_fn io_cmd_help, io_cmd_quit, io_cmd_abort, io_cmd_sigraise;
io_cmd_fn io_cmd_blockdev_add, io_cmd_blockdev_del, io_cmd_query_nodes;
io_cmd_fn io_cmd_graph, io_cmd_select;

void io_help_read(struct io_state *st);
void io_help_readv(struct io_state *st);
void io_help_write(struct io_state *st);
void io_help_writev(struct io_state *st);
void io_help_aio_read(struct io_state *st);
void io_help_aio_write(struct io_state *st);
void io_help_discard(struct io_state *st);
void io_help_open(struct io_state *st);
void io_help_reopen(struct io_state *st);
void io_help_sigraise(struct io_state *st);
void io_help_blockdev_add(struct io_state *st);
void io_help_select(struct io_state *st);

/* ---- front ends ------------------------------------------------------------ */

/* The interactive shell on the loop (shell.c); returns when it ends. */
void io_shell_run(struct io_state *st);

/*
 * The shell's input machinery with another line handler (QMP): line()
 * handles one input line and returns true when done, false when a
 * command is still running (then done() runs when it ends, and input
 * resumes); tick() runs after each loop iteration.  No prompt, no line
 * editing.  Returns at EOF or once st->quit is set.
 */
struct io_input_ops {
    bool (*line)(struct io_state *st, void *opaque, const char *line);
    void (*done)(struct io_state *st, void *opaque, int ret);
    void (*tick)(struct io_state *st, void *opaque);
};
void io_input_run(struct io_state *st, const struct io_input_ops *ops,
                  void *opaque);
/* QMP machine mode on stdin/stdout (qmp.c); returns when it ends. */
void io_qmp_run(struct io_state *st);

/* query-named-block-nodes as data (caller frees). */
struct kv *io_query_nodes(struct io_state *st);
/* Drop every node blockdev-add opened (at exit). */
void io_graph_release(struct io_state *st);

/* Wait (running the loop) until every aio request has called back. */
void io_wait_aio(struct io_state *st);

#endif
