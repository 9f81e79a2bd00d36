/*
 * shell.c - blk-io's interactive shell, a state machine on the libuv loop:
 * the loop reads the terminal (uv_tty_t in raw mode, with a small line
 * editor and history), a pipe or socket (uv_pipe_t) or a regular file
 * (uv_fs_read), so aio requests and timers complete while the prompt
 * waits.  One command runs at a time; lines typed meanwhile wait in the
 * buffer.  SIGINT ends the session cleanly.  Loop thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/blk-io/blk-io.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

#define PROMPT "blk-io> "
#define HISTORY_MAX 100
#define FILE_CHUNK 4096

enum input_kind { INPUT_TTY, INPUT_STREAM, INPUT_FILE };

struct shell {
    struct io_state *st;
    enum input_kind kind;
    union {
        uv_tty_t tty;
        uv_pipe_t pipe;
    } h;
    uv_fs_t fsreq;              /* INPUT_FILE: one read at a time */
    char fsbuf[FILE_CHUNK];
    int64_t fsoff;
    uv_signal_t sigint;

    struct sbuf in;             /* bytes read, not yet made into lines */
    struct sbuf line;           /* tty: the line being edited */
    char *history[HISTORY_MAX];
    int nhist, hist_pos;        /* hist_pos == nhist: the new line */
    int esc;                    /* tty: 0, 1 after ESC, 2 after ESC [ */

    const struct io_input_ops *ops;     /* NULL: the shell itself */
    void *opaque;
    bool edit;                  /* tty line editing and a prompt */

    bool eof;                   /* no more input */
    bool reading;               /* read started */
    bool prompted;              /* the prompt for the next line is out */
    bool ended;
};

static void shell_pump(struct shell *sh);

static void
show_prompt(struct shell *sh)
{
    if (sh->ops == NULL && !sh->prompted) {
        io_printf(sh->st, PROMPT);
        io_flush_output(sh->st);
        sh->prompted = true;
    }
}

static void
close_cb(uv_handle_t *h)
{
    (void)h;
}

/* Stop reading and close the shell's handles; the loop then runs dry. */
static void
shell_end(struct shell *sh)
{
    if (sh->ended) {
        return;
    }
    sh->ended = true;
    if (sh->kind == INPUT_TTY && sh->edit) {
        uv_tty_set_mode(&sh->h.tty, UV_TTY_MODE_NORMAL);
    }
    if (sh->kind != INPUT_FILE) {
        uv_read_stop((uv_stream_t *)&sh->h);
        uv_close((uv_handle_t *)&sh->h, close_cb);
    }
    uv_signal_stop(&sh->sigint);
    uv_close((uv_handle_t *)&sh->sigint, close_cb);
}

static void
cmd_done(struct io_state *st, int ret)
{
    struct shell *sh = st->cmd_done_opaque;

    if (sh->ops != NULL && sh->ops->done != NULL) {
        sh->ops->done(st, sh->opaque, ret);
    }
    io_flush_output(st);
    shell_pump(sh);
}

static void
history_add(struct shell *sh, const char *line)
{
    if (*line == '\0' ||
        (sh->nhist > 0 && strcmp(sh->history[sh->nhist - 1], line) == 0)) {
        sh->hist_pos = sh->nhist;
        return;
    }
    if (sh->nhist == HISTORY_MAX) {
        free(sh->history[0]);
        memmove(sh->history, sh->history + 1,
                (HISTORY_MAX - 1) * sizeof(char *));
        sh->nhist--;
    }
    sh->history[sh->nhist++] = xstrdup(line);
    sh->hist_pos = sh->nhist;
}

/* Run one line; returns false while it is still running. */
static bool
run_line(struct shell *sh, const char *line)
{
    struct io_state *st = sh->st;
    int ret;

    sh->prompted = false;
    st->cmd_done = cmd_done;
    st->cmd_done_opaque = sh;
    if (sh->ops != NULL) {
        bool fin = sh->ops->line(st, sh->opaque, line);

        io_flush_output(st);
        return fin;
    }
    ret = io_run_line(st, line);
    io_flush_output(st);
    return ret != IO_PENDING;
}

/*
 * The shell's step: run complete lines while no command is in progress,
 * then prompt for more, or end at EOF / quit.
 */
static void
shell_pump(struct shell *sh)
{
    struct io_state *st = sh->st;
    char *nl, *line;

    while (!st->busy && !st->quit && !sh->ended) {
        nl = memchr(sh->in.buf, '\n', sh->in.len);
        if (nl == NULL && !(sh->eof && sh->in.len > 0)) {
            break;
        }
        if (nl == NULL) {
            nl = sh->in.buf + sh->in.len;
        }
        show_prompt(sh);
        line = xstrndup(sh->in.buf, (size_t)(nl - sh->in.buf));
        if (nl < sh->in.buf + sh->in.len) {
            nl++;
        }
        memmove(sh->in.buf, nl, sh->in.len - (size_t)(nl - sh->in.buf));
        sbuf_setlen(&sh->in, sh->in.len - (size_t)(nl - sh->in.buf));
        if (!run_line(sh, line)) {
            free(line);
            return;
        }
        free(line);
    }
    if (st->busy) {
        return;
    }
    if (st->quit) {
        shell_end(sh);
        return;
    }
    if (sh->eof && sh->in.len == 0) {
        show_prompt(sh);        /* qemu-io prompts for the read that sees EOF */
        shell_end(sh);
        return;
    }
    show_prompt(sh);
}

/* ---- tty line editing ----------------------------------------------------- */

static void
redraw(struct shell *sh)
{
    io_printf(sh->st, "\r" PROMPT "%s\x1b[K", sh->line.buf);
    io_flush_output(sh->st);
}

/*
 * An aio request reports while the prompt waits: clear the line being
 * edited, let the report print, then draw the prompt and the line again.
 */
static void
async_begin(struct io_state *st)
{
    struct shell *sh = st->async_opaque;

    if (sh->prompted && !st->busy && !sh->ended) {
        io_printf(st, "\r\x1b[K");
    }
}

static void
async_end(struct io_state *st)
{
    struct shell *sh = st->async_opaque;

    if (sh->prompted && !st->busy && !sh->ended) {
        redraw(sh);
    }
}

static void
tty_history(struct shell *sh, int dir)
{
    int pos = sh->hist_pos + dir;

    if (pos < 0 || pos > sh->nhist) {
        return;
    }
    sh->hist_pos = pos;
    sbuf_reset(&sh->line);
    if (pos < sh->nhist) {
        sbuf_adds(&sh->line, sh->history[pos]);
    }
    redraw(sh);
}

static void
tty_interrupt(struct shell *sh)
{
    io_printf(sh->st, "\n");
    sh->st->quit = true;
    sh->eof = true;
    if (!sh->st->busy) {
        shell_end(sh);
    }
}

static void
tty_key(struct shell *sh, unsigned char ch)
{
    if (sh->esc == 1) {
        sh->esc = ch == '[' ? 2 : 0;
        return;
    }
    if (sh->esc == 2) {
        sh->esc = 0;
        if (ch == 'A') {
            tty_history(sh, -1);
        } else if (ch == 'B') {
            tty_history(sh, 1);
        }
        return;
    }
    switch (ch) {
    case 0x1b:
        sh->esc = 1;
        break;
    case '\r':
    case '\n':
        io_printf(sh->st, "\n");
        history_add(sh, sh->line.buf);
        sbuf_add(&sh->in, sh->line.buf, sh->line.len);
        sbuf_addch(&sh->in, '\n');
        sbuf_reset(&sh->line);
        sh->prompted = true;        /* the prompt of this line is on screen */
        break;
    case 0x7f:
    case 0x08:
        if (sh->line.len > 0) {
            sbuf_setlen(&sh->line, sh->line.len - 1);
            io_printf(sh->st, "\b \b");
        }
        break;
    case 0x15:                      /* Ctrl-U */
        sbuf_reset(&sh->line);
        redraw(sh);
        break;
    case 0x03:                      /* Ctrl-C: raw mode turns it into a byte */
        tty_interrupt(sh);
        break;
    case 0x04:                      /* Ctrl-D on an empty line: EOF */
        if (sh->line.len == 0) {
            io_printf(sh->st, "\n");
            sh->eof = true;
        }
        break;
    default:
        if (ch >= 0x20) {
            sbuf_addch(&sh->line, (char)ch);
            io_printf(sh->st, "%c", ch);
        }
        break;
    }
}

/* ---- input ------------------------------------------------------------------- */

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(suggested);
    buf->len = suggested;
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct shell *sh = s->data;

    if (n < 0) {
        sh->eof = true;
        if (sh->kind != INPUT_FILE) {
            uv_read_stop(s);
        }
    } else if (sh->kind == INPUT_TTY && sh->edit) {
        for (ssize_t i = 0; i < n && !sh->eof; i++) {
            tty_key(sh, (unsigned char)buf->base[i]);
        }
        io_flush_output(sh->st);
    } else {
        sbuf_add(&sh->in, buf->base, (size_t)n);
    }
    free(buf->base);
    shell_pump(sh);
}

static void fs_read_next(struct shell *sh);

static void
fs_read_cb(uv_fs_t *req)
{
    struct shell *sh = req->data;
    ssize_t n = req->result;

    uv_fs_req_cleanup(req);
    if (n <= 0) {
        sh->eof = true;
    } else {
        sbuf_add(&sh->in, sh->fsbuf, (size_t)n);
        sh->fsoff += n;
    }
    shell_pump(sh);
    if (!sh->eof && !sh->ended) {
        fs_read_next(sh);
    }
}

static void
fs_read_next(struct shell *sh)
{
    uv_buf_t b = uv_buf_init(sh->fsbuf, sizeof(sh->fsbuf));

    sh->fsreq.data = sh;
    uv_fs_read(blk_loop(), &sh->fsreq, 0, &b, 1, sh->fsoff, fs_read_cb);
}

static void
sigint_cb(uv_signal_t *h, int signum)
{
    struct shell *sh = h->data;

    (void)signum;
    tty_interrupt(sh);
}

static void
input_run(struct io_state *st, const struct io_input_ops *ops, void *opaque)
{
    struct shell *sh = xzalloc(sizeof(*sh));
    uv_loop_t *loop = blk_loop();
    int r = -1;

    sh->st = st;
    sh->ops = ops;
    sh->opaque = opaque;
    sh->edit = ops == NULL;
    sbuf_init(&sh->in);
    sbuf_init(&sh->line);
    st->interactive = true;
    switch (uv_guess_handle(0)) {
    case UV_TTY:
        sh->kind = INPUT_TTY;
        r = uv_tty_init(loop, &sh->h.tty, 0, 1);
        if (r == 0 && sh->edit) {
            uv_tty_set_mode(&sh->h.tty, UV_TTY_MODE_RAW);
            st->async_begin = async_begin;
            st->async_end = async_end;
            st->async_opaque = sh;
        }
        break;
    case UV_NAMED_PIPE:
    case UV_TCP:
        sh->kind = INPUT_STREAM;
        r = uv_pipe_init(loop, &sh->h.pipe, 0);
        if (r == 0) {
            r = uv_pipe_open(&sh->h.pipe, 0);
        }
        break;
    default:
        sh->kind = INPUT_FILE;
        r = 0;
        break;
    }
    if (r < 0) {
        io_report(st, "cannot read standard input: %s", uv_strerror(r));
        st->failed = true;
        free(sh);
        return;
    }
    uv_signal_init(loop, &sh->sigint);
    sh->sigint.data = sh;
    uv_signal_start(&sh->sigint, sigint_cb, SIGINT);
    if (sh->kind == INPUT_FILE) {
        fs_read_next(sh);
    } else {
        sh->h.pipe.data = sh;
        uv_read_start((uv_stream_t *)&sh->h, alloc_cb, read_cb);
    }
    show_prompt(sh);
    while (!sh->ended || st->busy) {
        int alive = uv_run(loop, UV_RUN_ONCE);

        if (ops != NULL && ops->tick != NULL) {
            ops->tick(st, opaque);
        }
        if (alive == 0 && !st->busy) {
            break;
        }
    }
    /* Let the closed handles' callbacks run before sh goes away. */
    uv_run(loop, UV_RUN_NOWAIT);
    st->cmd_done = NULL;
    st->async_begin = st->async_end = NULL;
    st->async_opaque = NULL;
    for (int i = 0; i < sh->nhist; i++) {
        free(sh->history[i]);
    }
    sbuf_release(&sh->in);
    sbuf_release(&sh->line);
    if (sh->kind == INPUT_FILE && !sh->eof) {
        uv_cancel((uv_req_t *)&sh->fsreq);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    free(sh);
}

void
io_shell_run(struct io_state *st)
{
    input_run(st, NULL, NULL);
}

void
io_input_run(struct io_state *st, const struct io_input_ops *ops,
             void *opaque)
{
    input_run(st, ops, opaque);
}
