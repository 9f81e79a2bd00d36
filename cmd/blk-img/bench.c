/*
 * bench.c - blk-img bench: qemu-img bench's flags and output lines.  Keeps
 * `depth` requests in flight on the loop through blk_req_submit, each
 * completion submitting the next; optional periodic flushes (draining
 * first unless --no-drain).  Loop thread (the command's only thread).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "keyval/schema.h"
#include "util/size.h"
#include "util/xalloc.h"

#define BENCH_ALIGN 4096

struct bench {
    struct blk_node *bs;
    bool write, drain;
    uint64_t image_size;
    uint64_t offset, step;      /* next request's offset, bytes */
    size_t bufsize;
    int count;                  /* requests still to submit */
    int depth;
    int in_flight;
    int flush_interval, since_flush;
    bool draining;              /* a flush waits for the requests in flight */
    int ret;                    /* first error */
    struct slot *slots;         /* depth of them */
};

/* One request slot with its buffer; busy while its request is in flight. */
struct slot {
    struct blk_req req;
    struct iovec iov;
    bool busy;
};

static void bench_submit(struct bench *b, struct slot *sl);
static void bench_fill(struct bench *b);

/* Record the first error; true if the run is failing (submit nothing more). */
static bool
req_failed(struct bench *b, int ret)
{
    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
    }
    return b->ret < 0;
}

/* A flush request lives on the heap: with --no-drain several may be in flight. */
static void
flush_cb(struct blk_req *req)
{
    struct bench *b = req->opaque;
    int ret = req->ret;

    free(req);
    b->in_flight--;
    if (req_failed(b, ret)) {
        return;
    }
    bench_fill(b);              /* after a drained flush: every slot is idle */
}

static void
start_flush(struct bench *b)
{
    struct blk_req *req = xzalloc(sizeof(*req));

    req->op = BLK_OP_FLUSH;
    req->cb = flush_cb;
    req->opaque = b;
    b->in_flight++;
    blk_req_submit(b->bs, req);
}

static void
req_cb(struct blk_req *req)
{
    struct slot *sl = container_of(req, struct slot, req);
    struct bench *b = req->opaque;

    sl->busy = false;
    b->in_flight--;
    if (req_failed(b, req->ret)) {
        return;
    }
    if (b->flush_interval > 0 && ++b->since_flush >= b->flush_interval) {
        b->since_flush = 0;
        if (b->drain) {
            b->draining = true;
        } else {
            start_flush(b);
        }
    }
    if (b->draining) {
        /* hold new requests until all are done, then flush, then resume */
        if (b->in_flight == 0) {
            b->draining = false;
            start_flush(b);
        }
        return;
    }
    if (b->count > 0) {
        bench_submit(b, sl);
    }
}

static void
bench_submit(struct bench *b, struct slot *sl)
{
    struct blk_req *req = &sl->req;

    sl->busy = true;
    req->op = b->write ? BLK_OP_WRITE : BLK_OP_READ;
    req->offset = b->offset;
    req->length = b->bufsize;
    req->iov = &sl->iov;
    req->iovcnt = 1;
    req->flags = 0;
    req->cb = req_cb;
    req->opaque = b;
    b->count--;
    b->in_flight++;
    b->offset += b->step;
    if (b->image_size > 0) {
        b->offset %= b->image_size;
    }
    blk_req_submit(b->bs, req);
}

/* Submit on every idle slot (at the start, and after a drained flush). */
static void
bench_fill(struct bench *b)
{
    int i;

    for (i = 0; i < b->depth && b->count > 0 && b->ret == 0; i++) {
        if (!b->slots[i].busy) {
            bench_submit(b, &b->slots[i]);
        }
    }
}

static int
parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

enum { OPT_PATTERN = 256, OPT_FLUSH_INTERVAL, OPT_NO_DRAIN, OPT_IMAGE_OPTS };

static const struct option bench_opts[] = {
    { "help", no_argument, NULL, 'h' },
    { "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
    { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
    { "pattern", required_argument, NULL, OPT_PATTERN },
    { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
    { "force-share", no_argument, NULL, 'U' },
    { NULL, 0, NULL, 0 },
};

static int
parse_cache(const char *mode, unsigned *flags)
{
    *flags &= ~(BLK_OPEN_NOCACHE | BLK_OPEN_NO_FLUSH);
    if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0 ||
        strcmp(mode, "directsync") == 0) {
        *flags |= BLK_OPEN_NOCACHE;
    } else if (strcmp(mode, "unsafe") == 0) {
        *flags |= BLK_OPEN_NO_FLUSH;
    } else if (strcmp(mode, "writeback") != 0 &&
               strcmp(mode, "writethrough") != 0) {
        return -EINVAL;
    }
    return 0;
}

static int
run_bench(struct bench *b, int count, uint64_t offset)
{
    struct timespec t1, t2;

    printf("Sending %d %s requests, %zu bytes each, %d in parallel (starting "
           "at offset %" PRIu64 ", step size %" PRIu64 ")\n", count,
           b->write ? "write" : "read", b->bufsize, b->depth, offset, b->step);
    if (b->flush_interval > 0) {
        printf("Sending flush every %d requests\n", b->flush_interval);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bench_fill(b);
    while (b->in_flight > 0) {
        uv_run(blk_loop(), UV_RUN_ONCE);
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    if (b->ret < 0) {
        blk_img_error("Failed request: %s", strerror(-b->ret));
        return 1;
    }
    printf("Run completed in %3.3f seconds.\n",
           (double)(t2.tv_sec - t1.tv_sec) +
           (double)(t2.tv_nsec - t1.tv_nsec) / 1e9);
    return 0;
}

int
cmd_bench(int argc, char **argv)
{
    struct bench b = { .depth = 64, .drain = true, .bufsize = 4096 };
    const char *fmt = NULL, *name;
    bool image_opts = false, step_set = false;
    unsigned flags = 0;
    long count = 75000, v;
    uint64_t offset = 0, u;
    int pattern = 0, c, r, i;
    struct blk_graph *g;

    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", bench_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            printf("usage: blk-img bench [-c count] [-d depth] [-f fmt] "
                   "[--flush-interval=flush_interval] [-i aio] [-n] "
                   "[--no-drain] [-o offset] [--pattern=pattern] [-q] "
                   "[-s buffer_size] [-S step_size] [-t cache] [-w] [-U] "
                   "filename\n");
            return 0;
        case 'c':
            if (parse_int(optarg, 0, INT32_MAX, &count) < 0) {
                blk_img_error("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            if (parse_int(optarg, 1, INT32_MAX, &v) < 0) {
                blk_img_error("Invalid queue depth specified");
                return 1;
            }
            b.depth = (int)v;
            break;
        case 'f': fmt = optarg; break;
        case 'n': flags |= BLK_OPEN_NOCACHE; break;
        case 'i':
            if (strcmp(optarg, "threads") != 0 && strcmp(optarg, "native") != 0 &&
                strcmp(optarg, "io_uring") != 0) {
                blk_img_error("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'o':
            if (img_parse_size(optarg, &offset) < 0) {
                img_size_error("offset");
                return 1;
            }
            break;
        case 'q': break;        /* qemu-img bench 7.2 prints its lines anyway */
        case 's':
            if (img_parse_size(optarg, &u) < 0 || u > INT32_MAX) {
                blk_img_error("Invalid buffer size specified. Must be between "
                              "0 and 2147483647.");
                return 1;
            }
            b.bufsize = (size_t)u;
            break;
        case 'S':
            if (img_parse_size(optarg, &u) < 0 || u > INT32_MAX) {
                img_size_error("step_size");
                return 1;
            }
            b.step = u;
            step_set = true;
            break;
        case 't':
            if (parse_cache(optarg, &flags) < 0) {
                blk_img_error("Invalid cache mode");
                return 1;
            }
            break;
        case 'w': b.write = true; break;
        case 'U': flags |= BLK_OPEN_FORCE_SHARE; break;
        case OPT_PATTERN:
            if (parse_int(optarg, 0, 255, &v) < 0) {
                blk_img_error("Invalid pattern byte specified");
                return 1;
            }
            pattern = (int)v;
            break;
        case OPT_FLUSH_INTERVAL:
            if (parse_int(optarg, 0, INT32_MAX, &v) < 0) {
                blk_img_error("Invalid flush interval specified");
                return 1;
            }
            b.flush_interval = (int)v;
            break;
        case OPT_NO_DRAIN: b.drain = false; break;
        case OPT_IMAGE_OPTS: image_opts = true; break;
        default:
            return img_getopt_error(c, argv);
        }
    }
    if (optind != argc - 1) {
        img_usage_error("Expecting one image file name");
        return 1;
    }
    name = argv[optind];
    if (b.flush_interval > 0 && !b.write) {
        blk_img_error("--flush-interval is only available in write tests");
        return 1;
    }
    if (b.flush_interval > 0 && b.flush_interval < b.depth) {
        blk_img_error("Flush interval can't be smaller than depth");
        return 1;
    }
    if (!step_set) {
        b.step = b.bufsize;
    }
    if (b.write) {
        flags |= BLK_OPEN_RDWR;
    }

    blk_loop_init((unsigned)(b.depth < 1024 ? b.depth : 1024));
    kv_schema_init();
    g = blk_graph_new();
    b.bs = img_open(g, name, fmt, image_opts, flags);
    if (b.bs == NULL) {
        blk_graph_free(g);
        return 1;
    }
    b.image_size = (uint64_t)blk_node_get_length(b.bs);
    b.count = (int)count;
    b.slots = xcalloc((size_t)b.depth, sizeof(*b.slots));
    r = 0;
    for (i = 0; i < b.depth; i++) {
        struct iovec *iov = &b.slots[i].iov;

        iov->iov_base = blk_try_memalign(BENCH_ALIGN, b.bufsize ? b.bufsize : 1);
        if (iov->iov_base == NULL) {
            blk_img_error("Failed request: %s", strerror(ENOMEM));
            r = 1;
            break;
        }
        memset(iov->iov_base, pattern, b.bufsize);
        iov->iov_len = b.bufsize;
    }
    b.offset = offset;
    if (r == 0) {
        r = run_bench(&b, (int)count, offset);
    }
    for (i = 0; i < b.depth; i++) {
        free(b.slots[i].iov.iov_base);
    }
    free(b.slots);
    blk_node_unref(b.bs);
    blk_graph_free(g);
    return r;
}
