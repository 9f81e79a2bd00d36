/*
 * misc.c - blk-io's other image commands: flush, discard, truncate,
 * length, info, map, alloc, and the session commands sleep, quit, abort
 * and sigraise.  Requests go through blk_req_submit; multi-step commands
 * (map, alloc) are small state machines driven by their callbacks.
 * Loop thread.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-io/blk-io.h"
#include "util/size.h"
#include "util/xalloc.h"

/* A request without data whose callback ends the command. */
struct io_simple {
    struct io_state *st;
    struct blk_req req;
    bool qflag, csv;
    struct timespec t1;
};

static void
flush_done(struct blk_req *req)
{
    struct io_simple *s = container_of(req, struct io_simple, req);
    struct io_state *st = s->st;
    int ret = req->ret;

    if (ret < 0) {
        io_printf(st, "flush failed: %s\n", strerror(-ret));
    }
    free(s);
    io_cmd_finish(st, ret);
}

int
io_cmd_flush(struct io_state *st, int argc, char **argv)
{
    struct io_simple *s = xzalloc(sizeof(*s));

    s->st = st;
    s->req.op = BLK_OP_FLUSH;
    s->req.cb = flush_done;
    blk_req_submit(st->node, &s->req);
    return IO_PENDING;
}

static void
discard_done(struct blk_req *req)
{
    struct io_simple *s = container_of(req, struct io_simple, req);
    struct io_state *st = s->st;
    struct timespec t2;
    int ret = req->ret;

    io_now(&t2);
    if (ret < 0) {
        io_printf(st, "discard failed: %s\n", strerror(-ret));
    } else if (!s->qflag) {
        if (!s->csv) {
            io_printf(st, "discard %" PRIu64 "/%" PRIu64 " bytes at offset %"
                      PRIu64 "\n", req->length, req->length, req->offset);
        }
        io_print_report(st, &s->t1, &t2, (int64_t)req->length, 1, 1, s->csv);
    }
    free(s);
    io_cmd_finish(st, ret);
}

int
io_cmd_discard(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *self = io_cmd_find("discard");
    bool csv = false, qflag = false;
    int64_t off, count;
    struct io_simple *s;
    int c;

    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C': csv = true; break;
        case 'q': qflag = true; break;
        default:
            return io_cmd_usage(st, self);
        }
    }
    if (optind != argc - 2) {
        return io_cmd_usage(st, self);
    }
    if (io_parse_num(st, argv[optind], &off) < 0 ||
        io_parse_num(st, argv[optind + 1], &count) < 0) {
        return -EINVAL;
    }
    if (count > IO_MAX_BYTES) {
        io_printf(st, "length cannot exceed %lld, given %s\n", IO_MAX_BYTES,
                  argv[optind + 1]);
        return -EINVAL;
    }
    s = xzalloc(sizeof(*s));
    s->st = st;
    s->qflag = qflag;
    s->csv = csv;
    s->req.op = BLK_OP_DISCARD;
    s->req.offset = (uint64_t)off;
    s->req.length = (uint64_t)count;
    s->req.cb = discard_done;
    io_now(&s->t1);
    blk_req_submit(st->node, &s->req);
    return IO_PENDING;
}

/* truncate runs the synchronous helper on a worker: it may allocate. */
struct io_trunc {
    struct io_state *st;
    struct blk_node *node;
    uv_work_t work;
    uint64_t len;
    enum blk_prealloc prealloc;
    int ret;
    struct blk_error err;
};

static void
trunc_work(uv_work_t *w)
{
    struct io_trunc *t = container_of(w, struct io_trunc, work);

    t->ret = blk_node_truncate(t->node, t->len, false, t->prealloc, &t->err);
}

static void
trunc_after(uv_work_t *w, int status)
{
    struct io_trunc *t = container_of(w, struct io_trunc, work);
    struct io_state *st = t->st;
    int ret = t->ret;

    if (ret < 0) {
        io_report(st, "%s", t->err.msg[0] ? t->err.msg : strerror(-ret));
    }
    blk_node_unref(t->node);
    free(t);
    io_cmd_finish(st, ret);
}

int
io_cmd_truncate(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *self = io_cmd_find("truncate");
    static const char *const modes[] = { "off", "metadata", "falloc", "full" };
    enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
    struct io_trunc *t;
    int64_t off;
    size_t i;
    int c;

    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm':
            for (i = 0; i < ARRAY_SIZE(modes); i++) {
                if (strcmp(optarg, modes[i]) == 0) {
                    break;
                }
            }
            if (i == ARRAY_SIZE(modes)) {
                io_report(st, "Invalid preallocation mode '%s'", optarg);
                return -EINVAL;
            }
            prealloc = (enum blk_prealloc)i;
            break;
        default:
            return io_cmd_usage(st, self);
        }
    }
    if (optind >= argc) {
        return io_cmd_usage(st, self);
    }
    if (io_parse_num(st, argv[optind], &off) < 0) {
        return -EINVAL;
    }
    t = xzalloc(sizeof(*t));
    t->st = st;
    t->node = st->node;
    blk_node_ref(t->node);
    t->len = (uint64_t)off;
    t->prealloc = prealloc;
    uv_queue_work(blk_loop(), &t->work, trunc_work, trunc_after);
    return IO_PENDING;
}

int
io_cmd_length(struct io_state *st, int argc, char **argv)
{
    int64_t len = blk_node_get_length(st->node);
    char s[BLK_SIZE_STR_MAX];

    if (len < 0) {
        io_printf(st, "getlength: %s\n", strerror((int)-len));
        return (int)len;
    }
    io_cvtstr((double)len, s, sizeof(s));
    io_printf(st, "%s\n", s);
    return 0;
}

/* Print an ImageInfoSpecific object as qemu-io's info does (nested, 4 spaces). */
static void
print_specific(struct io_state *st, const struct kv *v, int indent)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct kv *m = v->vals[i];
        char *key = xstrdup(v->type == KV_OBJECT ? v->keys[i] : "");

        for (char *p = key; *p; p++) {
            if (*p == '-') {
                *p = ' ';
            }
        }
        if (v->type == KV_LIST) {
            io_printf(st, "%*s[%zu]:\n", indent * 4, "", i);
            print_specific(st, m, indent + 1);
            free(key);
            continue;
        }
        switch (m->type) {
        case KV_OBJECT:
        case KV_LIST:
            io_printf(st, "%*s%s:\n", indent * 4, "", key);
            print_specific(st, m, indent + 1);
            break;
        case KV_BOOL:
            io_printf(st, "%*s%s: %s\n", indent * 4, "", key,
                      m->v.b ? "true" : "false");
            break;
        case KV_INT:
            io_printf(st, "%*s%s: %" PRId64 "\n", indent * 4, "", key, m->v.i);
            break;
        case KV_UINT:
            io_printf(st, "%*s%s: %" PRIu64 "\n", indent * 4, "", key, m->v.u);
            break;
        case KV_STRING:
            io_printf(st, "%*s%s: %s\n", indent * 4, "", key, m->v.s);
            break;
        default:
            break;
        }
        free(key);
    }
}

/*
 * qcow2's cluster size (from cluster_bits, header offset 20, big endian;
 * qcow2 spec "Header") and VM state offset: the VM state starts at the
 * first L1 entry past the disk, and one L1 entry maps cluster_size /
 * l2-entry-size clusters.  Other formats have neither (0, as in qemu-io).
 */
static void
format_geometry(struct blk_node *bs, const struct kv *data, int64_t *cluster,
                int64_t *vmstate)
{
    int64_t len = blk_node_get_length(bs), cs, span;
    bool ext = kv_get_bool(data, "extended-l2", false);
    struct blk_node *file = blk_node_file(bs);
    unsigned char be[4];

    *cluster = 0;
    *vmstate = 0;
    if (strcmp(blk_node_driver(bs)->name, "qcow2") != 0 || file == NULL ||
        blk_node_pread(file, 20, be, sizeof(be), NULL) < 0) {
        return;
    }
    cs = (int64_t)1 << (((unsigned)be[0] << 24 | (unsigned)be[1] << 16 |
                         (unsigned)be[2] << 8 | be[3]) & 63);
    span = cs * (cs / (ext ? 16 : 8));
    *cluster = cs;
    *vmstate = len < 0 ? 0 : (len + span - 1) / span * span;
}

int
io_cmd_info(struct io_state *st, int argc, char **argv)
{
    struct blk_node *bs = io_image_node(st);
    const struct blk_driver *drv = blk_node_driver(bs);
    struct blk_error err = BLK_ERROR_INIT;
    char s1[BLK_SIZE_STR_MAX], s2[BLK_SIZE_STR_MAX];
    struct kv *info = kv_new_object();
    int64_t cluster, vmstate;
    bool specific = true;
    int ret = 0;

    io_printf(st, "format name: %s\n", drv->name);
    /* A filter shows its child's geometry, and no format details (QEMU). */
    while (drv->is_filter && blk_node_file(bs) != NULL) {
        bs = blk_node_file(bs);
        drv = blk_node_driver(bs);
        specific = false;
    }
    if (drv->get_info != NULL) {
        ret = drv->get_info(bs, info, &err);
    } else if (!drv->is_format && strcmp(drv->name, "file") != 0 &&
               strcmp(drv->name, "host_device") != 0) {
        ret = -ENOTSUP;
    }
    if (ret < 0) {
        kv_free(info);
        return ret;
    }
    format_geometry(bs, kv_get(info, "data"), &cluster, &vmstate);
    io_cvtstr((double)cluster, s1, sizeof(s1));
    io_cvtstr((double)vmstate, s2, sizeof(s2));
    io_printf(st, "cluster size: %s\n", s1);
    io_printf(st, "vm state offset: %s\n", s2);
    if (info->n > 0 && specific) {
        struct kv *data = kv_get(info, "data");

        io_printf(st, "Format specific information:\n");
        print_specific(st, data != NULL && data->type == KV_OBJECT ? data : info,
                       1);
    }
    kv_free(info);
    return 0;
}

/* ---- map and alloc: block status, one request per extent ------------- */

struct io_scan {
    struct io_state *st;
    struct blk_req req;
    bool is_map;
    int64_t offset, end;        /* bytes still to scan: [offset, end) */
    int64_t start;              /* alloc: the first offset asked for */
    int64_t run_off, run_len;   /* map: the extent being merged */
    bool run_alloc;
    int64_t sum;                /* alloc: allocated bytes */
};

/*
 * qemu-io's "allocated" is QEMU's BDRV_BLOCK_ALLOCATED, which its generic
 * layer sets whenever a driver reports DATA or ZERO (a raw node recurses
 * into its protocol node, which always does).  blk's core passes driver
 * flags through, so the same rule is applied here.
 */
static bool
status_allocated(const struct blk_status *s)
{
    return (s->flags & (BLK_STATUS_ALLOCATED | BLK_STATUS_DATA |
                        BLK_STATUS_ZERO | BLK_STATUS_RECURSE)) != 0;
}

static void
map_print_run(struct io_scan *sc)
{
    char s1[BLK_SIZE_STR_MAX], s2[BLK_SIZE_STR_MAX];

    if (sc->run_len == 0) {
        return;
    }
    io_cvtstr((double)sc->run_len, s1, sizeof(s1));
    io_cvtstr((double)sc->run_off, s2, sizeof(s2));
    io_printf(sc->st, "%s (0x%" PRIx64 ") bytes %s allocated at offset %s "
              "(0x%" PRIx64 ")\n", s1, (uint64_t)sc->run_len,
              sc->run_alloc ? "   " : "not", s2, (uint64_t)sc->run_off);
}

static void scan_next(struct io_scan *sc);

static void
scan_finish(struct io_scan *sc, int ret)
{
    struct io_state *st = sc->st;
    char s[BLK_SIZE_STR_MAX];

    if (sc->is_map) {
        if (ret < 0) {
            io_report(st, "Failed to get allocation status: %s",
                      strerror(-ret));
        } else {
            map_print_run(sc);
        }
    } else if (ret < 0) {
        io_printf(st, "alloc failed: %s\n", strerror(-ret));
    } else {
        io_cvtstr((double)sc->start, s, sizeof(s));
        io_printf(st, "%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
                  sc->sum, sc->end - sc->start, s);
    }
    free(sc);
    io_cmd_finish(st, ret < 0 ? ret : 0);
}

static void
scan_done(struct blk_req *req)
{
    struct io_scan *sc = container_of(req, struct io_scan, req);
    uint64_t pnum = req->status.pnum;
    bool alloc;

    if (req->ret < 0) {
        scan_finish(sc, req->ret);
        return;
    }
    if (pnum == 0 || pnum > (uint64_t)(sc->end - sc->offset)) {
        pnum = (uint64_t)(sc->end - sc->offset);
    }
    alloc = status_allocated(&req->status);
    if (sc->is_map) {
        if (sc->run_len > 0 && alloc != sc->run_alloc) {
            map_print_run(sc);
            sc->run_len = 0;
        }
        if (sc->run_len == 0) {
            sc->run_off = sc->offset;
            sc->run_alloc = alloc;
        }
        sc->run_len += (int64_t)pnum;
    } else if (alloc) {
        sc->sum += (int64_t)pnum;
    }
    sc->offset += (int64_t)pnum;
    scan_next(sc);
}

static void
scan_next(struct io_scan *sc)
{
    if (sc->offset >= sc->end) {
        scan_finish(sc, 0);
        return;
    }
    memset(&sc->req, 0, sizeof(sc->req));
    sc->req.op = BLK_OP_BLOCK_STATUS;
    sc->req.offset = (uint64_t)sc->offset;
    sc->req.length = (uint64_t)(sc->end - sc->offset);
    sc->req.cb = scan_done;
    blk_req_submit(sc->st->node, &sc->req);
}

int
io_cmd_map(struct io_state *st, int argc, char **argv)
{
    struct io_scan *sc;
    int64_t len = blk_node_get_length(st->node);

    if (len < 0) {
        io_report(st, "Failed to query image length: %s", strerror((int)-len));
        return (int)len;
    }
    sc = xzalloc(sizeof(*sc));
    sc->st = st;
    sc->is_map = true;
    sc->end = len;
    scan_next(sc);
    return IO_PENDING;
}

int
io_cmd_alloc(struct io_state *st, int argc, char **argv)
{
    int64_t off, count = 512, len;
    struct io_scan *sc;

    if (io_parse_num(st, argv[1], &off) < 0) {
        return -EINVAL;
    }
    if (argc == 3 && io_parse_num(st, argv[2], &count) < 0) {
        return -EINVAL;
    }
    len = blk_node_get_length(st->node);
    if (len < 0) {
        io_printf(st, "alloc failed: %s\n", strerror((int)-len));
        return (int)len;
    }
    if (off >= len) {
        count = 0;
    } else if (count > len - off) {
        count = len - off;
    }
    sc = xzalloc(sizeof(*sc));
    sc->st = st;
    sc->offset = sc->start = off;
    sc->end = off + count;
    scan_next(sc);
    return IO_PENDING;
}

/* ---- session commands -------------------------------------------------- */

static void
sleep_done(uv_timer_t *t)
{
    struct io_state *st = t->data;

    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    io_cmd_finish(st, 0);
}

int
io_cmd_sleep(struct io_state *st, int argc, char **argv)
{
    uv_timer_t *t;
    char *end;
    long ms;

    errno = 0;
    ms = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || errno != 0 || ms < 0) {
        io_printf(st, "%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    t = xzalloc(sizeof(*t));
    uv_timer_init(blk_loop(), t);
    t->data = st;
    uv_timer_start(t, sleep_done, (uint64_t)ms, 0);
    return IO_PENDING;
}

int
io_cmd_quit(struct io_state *st, int argc, char **argv)
{
    st->quit = true;
    return 0;
}

int
io_cmd_abort(struct io_state *st, int argc, char **argv)
{
    io_flush_output(st);
    abort();
}

int
io_cmd_sigraise(struct io_state *st, int argc, char **argv)
{
    int64_t sig;

    if (io_parse_num(st, argv[1], &sig) < 0) {
        return -EINVAL;
    }
    if (sig > NSIG) {
        io_printf(st, "signal argument '%s' is too large to be a valid "
                  "signal\n", argv[1]);
        return -EINVAL;
    }
    io_flush_output(st);
    raise((int)sig);
    return 0;
}
