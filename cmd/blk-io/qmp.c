/*
 * qmp.c - blk-io --qmp: a QMP-style machine mode on stdin/stdout, one JSON
 * object per line each way.  Greeting, capability negotiation, execute
 * with arguments and id, {"return"} / {"error"} replies and timestamped
 * events.  human-monitor-command runs any blk-io command line and returns
 * its output; output printed later (aio completions) becomes an event.
 * Loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "config.h"
#include "cmd/blk-io/bitmap.h"
#include "cmd/blk-io/blk-io.h"
#include "keyval/schema.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

struct qmp {
    bool negotiated;
    struct kv *pending_id;      /* id of the human-monitor-command running */
    char *cap_buf;              /* capture of that command's output */
    size_t cap_len;
    char *late_buf;             /* output printed between commands */
    size_t late_len;
    FILE *late;
};

typedef int qmp_fn(struct io_state *st, struct qmp *q, const struct kv *args,
                   struct kv **ret, struct blk_error *err);

static qmp_fn qmp_capabilities, qmp_query_commands, qmp_quit, qmp_hmp;
static qmp_fn qmp_blockdev_add, qmp_blockdev_del, qmp_query_nodes;
static qmp_fn qmp_query_version;

static const struct {
    const char *name;
    qmp_fn *fn;
} qmp_cmds[] = {
    { "block-dirty-bitmap-add", io_qmp_bitmap_add },
    { "block-dirty-bitmap-clear", io_qmp_bitmap_clear },
    { "block-dirty-bitmap-disable", io_qmp_bitmap_disable },
    { "block-dirty-bitmap-enable", io_qmp_bitmap_enable },
    { "block-dirty-bitmap-merge", io_qmp_bitmap_merge },
    { "block-dirty-bitmap-remove", io_qmp_bitmap_remove },
    { "blockdev-add", qmp_blockdev_add },
    { "blockdev-del", qmp_blockdev_del },
    { "human-monitor-command", qmp_hmp },
    { "qmp_capabilities", qmp_capabilities },
    { "query-commands", qmp_query_commands },
    { "query-named-block-nodes", qmp_query_nodes },
    { "query-version", qmp_query_version },
    { "quit", qmp_quit },
};

static void
emit(struct kv *msg)
{
    struct sbuf sb = SBUF_INIT;

    kv_to_json(msg, &sb);
    fprintf(stdout, "%s\n", sb.buf);
    fflush(stdout);
    sbuf_release(&sb);
    kv_free(msg);
}

static void
emit_event(const char *name, struct kv *data)
{
    struct kv *ev = kv_new_object(), *ts = kv_new_object();
    struct timeval tv;

    gettimeofday(&tv, NULL);
    kv_set(ev, "event", kv_new_str(name));
    if (data != NULL) {
        kv_set(ev, "data", data);
    }
    kv_set(ts, "seconds", kv_new_int(tv.tv_sec));
    kv_set(ts, "microseconds", kv_new_int(tv.tv_usec));
    kv_set(ev, "timestamp", ts);
    emit(ev);
}

static void
emit_return(struct kv *ret, const struct kv *id)
{
    struct kv *msg = kv_new_object();

    kv_set(msg, "return", ret != NULL ? ret : kv_new_object());
    if (id != NULL) {
        kv_set(msg, "id", kv_dup(id));
    }
    emit(msg);
}

static void
emit_error(const char *cls, const char *desc, const struct kv *id)
{
    struct kv *msg = kv_new_object(), *e = kv_new_object();

    kv_set(e, "class", kv_new_str(cls));
    kv_set(e, "desc", kv_new_str(desc));
    kv_set(msg, "error", e);
    if (id != NULL) {
        kv_set(msg, "id", kv_dup(id));
    }
    emit(msg);
}

static void
greeting(void)
{
    struct kv *g = kv_new_object(), *qmp = kv_new_object();
    struct kv *ver = kv_new_object(), *q = kv_new_object();
    int major = 0, minor = 0, micro = 0;

    sscanf(BLK_VERSION, "%d.%d.%d", &major, &minor, &micro);
    kv_set(q, "micro", kv_new_int(micro));
    kv_set(q, "minor", kv_new_int(minor));
    kv_set(q, "major", kv_new_int(major));
    kv_set(ver, "qemu", q);
    kv_set(ver, "package", kv_new_str("blk-io " BLK_VERSION));
    kv_set(qmp, "version", ver);
    kv_set(qmp, "capabilities", kv_new_list());
    kv_set(g, "QMP", qmp);
    emit(g);
}

/* ---- commands -------------------------------------------------------------- */

static int
qmp_capabilities(struct io_state *st, struct qmp *q, const struct kv *args,
                 struct kv **ret, struct blk_error *err)
{
    if (q->negotiated) {
        return blk_error_set(err, -EINVAL, "Capabilities negotiation is "
                             "already complete, command ignored");
    }
    q->negotiated = true;
    return 0;
}

static int
qmp_query_commands(struct io_state *st, struct qmp *q, const struct kv *args,
                   struct kv **ret, struct blk_error *err)
{
    struct kv *list = kv_new_list();

    for (size_t i = 0; i < ARRAY_SIZE(qmp_cmds); i++) {
        struct kv *o = kv_new_object();

        kv_set(o, "name", kv_new_str(qmp_cmds[i].name));
        kv_append(list, o);
    }
    *ret = list;
    return 0;
}

static int
qmp_query_version(struct io_state *st, struct qmp *q, const struct kv *args,
                  struct kv **ret, struct blk_error *err)
{
    struct kv *v = kv_new_object(), *n = kv_new_object();
    int major = 0, minor = 0, micro = 0;

    sscanf(BLK_VERSION, "%d.%d.%d", &major, &minor, &micro);
    kv_set(n, "micro", kv_new_int(micro));
    kv_set(n, "minor", kv_new_int(minor));
    kv_set(n, "major", kv_new_int(major));
    kv_set(v, "qemu", n);
    kv_set(v, "package", kv_new_str("blk-io " BLK_VERSION));
    *ret = v;
    return 0;
}

static int
qmp_quit(struct io_state *st, struct qmp *q, const struct kv *args,
         struct kv **ret, struct blk_error *err)
{
    st->quit = true;
    return 0;
}

/* Members of args other than the allowed ones are errors, as in QMP. */
static int
check_members(const struct kv *args, const char *const *allowed,
              struct blk_error *err)
{
    if (args == NULL) {
        return 0;
    }
    for (size_t i = 0; i < args->n; i++) {
        bool ok = false;

        for (size_t j = 0; allowed[j] != NULL; j++) {
            ok = ok || strcmp(args->keys[i], allowed[j]) == 0;
        }
        if (!ok) {
            return blk_error_set(err, -EINVAL, "Parameter '%s' is unexpected",
                                 args->keys[i]);
        }
    }
    return 0;
}

static const char *
get_string_arg(const struct kv *args, const char *name, struct blk_error *err)
{
    const struct kv *v = args != NULL ? kv_get(args, name) : NULL;

    if (v == NULL) {
        blk_error_set(err, -EINVAL, "Parameter '%s' is missing", name);
        return NULL;
    }
    if (v->type != KV_STRING) {
        blk_error_set(err, -EINVAL, "Invalid parameter type for '%s', "
                      "expected: string", name);
        return NULL;
    }
    return v->v.s;
}

static int
qmp_blockdev_add(struct io_state *st, struct qmp *q, const struct kv *args,
                 struct kv **ret, struct blk_error *err)
{
    struct kv *opts = args != NULL ? kv_dup(args) : kv_new_object();
    struct blk_node *bs;
    int r;

    r = kv_validate(opts, kv_schema_lookup("BlockdevOptions"), KV_MODE_JSON,
                    err);
    if (r < 0) {
        kv_free(opts);
        return r;
    }
    if (kv_get_str(opts, "node-name", NULL) == NULL) {
        kv_free(opts);
        return blk_error_set(err, -EINVAL, "'node-name' must be specified "
                             "for the root node");
    }
    bs = blk_node_open(st->graph, opts, BLK_OPEN_RDWR, err);
    kv_free(opts);
    if (bs == NULL) {
        return err->code;
    }
    st->added = xrealloc(st->added, (st->nadded + 1) * sizeof(*st->added));
    st->added[st->nadded++] = bs;
    return 0;
}

/* Run a shell command with its output captured; for the simple ones. */
static int
run_captured(struct io_state *st, const char *line, char **out,
             struct blk_error *err)
{
    FILE *saved_out = st->out, *saved_err = st->err;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int r;

    st->out = st->err = f;
    r = io_run_line(st, line);
    fclose(f);
    st->out = saved_out;
    st->err = saved_err;
    while (len > 0 && buf[len - 1] == '\n') {
        buf[--len] = '\0';
    }
    if (r < 0) {
        const char *m = strncmp(buf, "blk-io: ", 8) == 0 ? buf + 8 : buf;

        blk_error_set(err, r, "%s", m);
        free(buf);
        return r;
    }
    *out = buf;
    return 0;
}

static int
qmp_blockdev_del(struct io_state *st, struct qmp *q, const struct kv *args,
                 struct kv **ret, struct blk_error *err)
{
    static const char *const allowed[] = { "node-name", NULL };
    const char *name;
    char *line, *out = NULL;
    int r;

    if (check_members(args, allowed, err) < 0) {
        return err->code;
    }
    name = get_string_arg(args, "node-name", err);
    if (name == NULL) {
        return err->code;
    }
    line = xasprintf("blockdev-del %s", name);
    r = run_captured(st, line, &out, err);
    free(line);
    free(out);
    return r;
}

static int
qmp_query_nodes(struct io_state *st, struct qmp *q, const struct kv *args,
                struct kv **ret, struct blk_error *err)
{
    *ret = io_query_nodes(st);
    return 0;
}

/*
 * human-monitor-command: output goes into a capture; an asynchronous
 * command replies from its completion (qmp_done).
 */
static int
qmp_hmp(struct io_state *st, struct qmp *q, const struct kv *args,
        struct kv **ret, struct blk_error *err)
{
    static const char *const allowed[] = { "command-line", "cpu-index", NULL };
    const char *line;
    FILE *f;
    int r;

    if (check_members(args, allowed, err) < 0) {
        return err->code;
    }
    line = get_string_arg(args, "command-line", err);
    if (line == NULL) {
        return err->code;
    }
    f = open_memstream(&q->cap_buf, &q->cap_len);
    st->out = st->err = f;
    r = io_run_line(st, line);
    if (r == IO_PENDING) {
        return IO_PENDING;
    }
    fclose(f);
    st->out = st->err = q->late;
    *ret = kv_new_str(q->cap_buf);
    free(q->cap_buf);
    q->cap_buf = NULL;
    return 0;
}

/* ---- the input side ------------------------------------------------------------ */

static bool
qmp_line(struct io_state *st, void *opaque, const char *line)
{
    struct qmp *q = opaque;
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *msg, *ret = NULL;
    const struct kv *id, *args;
    const char *name;
    size_t i;
    int r;

    while (*line == ' ' || *line == '\t' || *line == '\r') {
        line++;
    }
    if (*line == '\0') {
        return true;
    }
    msg = kv_parse_json(line, &err);
    if (msg == NULL) {
        emit_error("GenericError", err.msg, NULL);
        return true;
    }
    id = kv_get(msg, "id");
    name = kv_get_str(msg, "execute", NULL);
    args = kv_get(msg, "arguments");
    if (name == NULL) {
        emit_error("GenericError", "QMP input lacks member 'execute'", id);
        goto out;
    }
    if (args != NULL && args->type != KV_OBJECT) {
        emit_error("GenericError", "QMP input member 'arguments' must be an "
                   "object", id);
        goto out;
    }
    for (i = 0; i < ARRAY_SIZE(qmp_cmds); i++) {
        if (strcmp(qmp_cmds[i].name, name) == 0) {
            break;
        }
    }
    if (!q->negotiated && (i == ARRAY_SIZE(qmp_cmds) ||
                           qmp_cmds[i].fn != qmp_capabilities)) {
        emit_error("CommandNotFound", "Expecting capabilities negotiation "
                   "with 'qmp_capabilities'", id);
        goto out;
    }
    if (i == ARRAY_SIZE(qmp_cmds)) {
        char *d = xasprintf("The command %s has not been found", name);

        emit_error("CommandNotFound", d, id);
        free(d);
        goto out;
    }
    r = qmp_cmds[i].fn(st, q, args, &ret, &err);
    if (r == IO_PENDING) {
        q->pending_id = id != NULL ? kv_dup(id) : kv_new_null();
        kv_free(msg);
        return false;
    }
    if (r < 0) {
        emit_error("GenericError", err.msg, id);
    } else {
        emit_return(ret, id);
    }
    if (st->quit) {
        emit_event("SHUTDOWN", NULL);
    }
out:
    kv_free(msg);
    return true;
}

static void
qmp_done(struct io_state *st, void *opaque, int ret)
{
    struct qmp *q = opaque;
    const struct kv *id = q->pending_id->type == KV_NULL ? NULL : q->pending_id;

    fclose(st->out);
    st->out = st->err = q->late;
    emit_return(kv_new_str(q->cap_buf), id);
    free(q->cap_buf);
    q->cap_buf = NULL;
    kv_free(q->pending_id);
    q->pending_id = NULL;
}

/* Output printed outside a command (aio completions) becomes an event. */
static void
qmp_tick(struct io_state *st, void *opaque)
{
    struct qmp *q = opaque;
    struct kv *data;

    fflush(q->late);
    if (q->late_len == 0) {
        return;
    }
    data = kv_new_object();
    kv_set(data, "text", kv_new_str(q->late_buf));
    emit_event("BLK_IO_OUTPUT", data);
    fclose(q->late);
    free(q->late_buf);
    q->late_buf = NULL;
    q->late_len = 0;
    q->late = open_memstream(&q->late_buf, &q->late_len);
    if (!st->busy) {
        st->out = st->err = q->late;
    }
}

void
io_qmp_run(struct io_state *st)
{
    static const struct io_input_ops ops = { qmp_line, qmp_done, qmp_tick };
    struct qmp q = { 0 };

    st->qmp = true;
    q.late = open_memstream(&q.late_buf, &q.late_len);
    st->out = st->err = q.late;
    greeting();
    io_input_run(st, &ops, &q);
    io_wait_aio(st);
    qmp_tick(st, &q);
    fclose(q.late);
    free(q.late_buf);
    st->out = stdout;
    st->err = stderr;
    st->failed = false;         /* errors were replies, not failures */
}
