/*
 * rw.c - blk-io's data commands: read, readv, write, writev, aio_read,
 * aio_write, aio_flush.  Each submits one block request on the loop; the
 * synchronous ones end in the request's callback, the aio ones return at
 * once and print their report line when the callback runs, as qemu-io
 * prints them on completion.  Loop thread.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-io/blk-io.h"
#include "util/xalloc.h"

/* One read or write in flight, owned by blk-io until its callback. */
struct io_rw {
    struct io_state *st;
    struct blk_req req;
    const char *verb;           /* "read" / "wrote" in the report line */
    const char *failname;       /* "read" / "readv" / "aio_write" ... */
    uint8_t *buf;               /* whole transfer, contiguous; NULL for zero */
    struct iovec *iov;
    int iovcnt;
    int64_t offset, count;
    bool check;                 /* -P on a read: verify [pat_off, +pat_len) */
    int pattern;
    int64_t pat_off, pat_len;
    bool qflag, vflag, csv, aio;
    struct timespec t1;
};

static void
rw_free(struct io_rw *rw)
{
    io_buf_free(rw->st, rw->buf);
    free(rw->iov);
    free(rw);
}

static void
rw_done(struct blk_req *req)
{
    struct io_rw *rw = container_of(req, struct io_rw, req);
    struct io_state *st = rw->st;
    struct timespec t2;
    int ret = req->ret;

    io_now(&t2);
    if (rw->aio && st->async_begin != NULL) {
        st->async_begin(st);
    }
    if (ret < 0) {
        io_printf(st, "%s failed: %s\n", rw->failname, strerror(-ret));
    } else {
        if (rw->check) {
            ret = io_check_pattern(st, rw->buf + rw->pat_off, rw->pattern,
                                   rw->offset + rw->pat_off, rw->pat_len);
        }
        if (rw->vflag) {
            io_dump_buffer(st, rw->buf, rw->offset, rw->count);
        }
        if (!rw->qflag) {
            if (!rw->csv) {
                io_printf(st, "%s %" PRId64 "/%" PRId64 " bytes at offset %"
                          PRId64 "\n", rw->verb, rw->count, rw->count,
                          rw->offset);
            }
            io_print_report(st, &rw->t1, &t2, rw->count, 1, 1, rw->csv);
        }
    }
    if (rw->aio) {
        /* aio results never change the exit status, as in qemu-io 7.2 */
        rw_free(rw);
        if (st->async_end != NULL) {
            st->async_end(st);
        }
        if (st->interactive) {
            io_flush_output(st);
        }
        st->aio_in_flight--;
        if (st->aio_in_flight == 0 && st->aio_drained != NULL) {
            void (*cb)(struct io_state *) = st->aio_drained;

            st->aio_drained = NULL;
            cb(st);
        }
        return;
    }
    rw_free(rw);
    io_cmd_finish(st, ret < 0 ? ret : 0);
}

static struct io_rw *
rw_new(struct io_state *st, const char *verb, const char *failname)
{
    struct io_rw *rw = xzalloc(sizeof(*rw));

    rw->st = st;
    rw->verb = verb;
    rw->failname = failname;
    return rw;
}

/* Submit rw; for aio return at once, else wait for the callback. */
static int
rw_submit(struct io_rw *rw, enum blk_op op, unsigned flags)
{
    struct io_state *st = rw->st;

    if (st->writethrough && (op == BLK_OP_WRITE || op == BLK_OP_ZERO)) {
        flags |= BLK_REQ_FUA;       /* -t writethrough / directsync */
    }
    rw->req.op = op;
    rw->req.offset = (uint64_t)rw->offset;
    rw->req.length = (uint64_t)rw->count;
    rw->req.iov = rw->iov;
    rw->req.iovcnt = rw->iovcnt;
    rw->req.flags = flags;
    rw->req.cb = rw_done;
    if (rw->aio) {
        st->aio_in_flight++;
    }
    io_now(&rw->t1);
    blk_req_submit(st->node, &rw->req);
    return rw->aio ? 0 : IO_PENDING;
}

/*
 * read -b / write -b: the VM state area instead of the disk (qemu-io's
 * bdrv_load_vmstate / bdrv_save_vmstate).  It is not guest data, so it
 * bypasses the request engine: one blocking call on the pool, then the
 * same report as a disk request.  A save is flushed in writethrough mode,
 * as QEMU's blk_save_vmstate does.
 */
struct io_vm {
    uv_work_t work;
    struct io_rw *rw;
    struct blk_node *node;      /* ref held until the callback */
    bool save, flush;
};

static void
vm_work(uv_work_t *w)
{
    struct io_vm *vm = container_of(w, struct io_vm, work);
    struct io_rw *rw = vm->rw;
    struct blk_req *req = &rw->req;

    if (vm->save) {
        req->ret = blk_node_save_vmstate(vm->node, (uint64_t)rw->offset,
                                         rw->buf, (size_t)rw->count,
                                         &req->err);
        if (req->ret == 0 && vm->flush) {
            req->ret = blk_node_flush(vm->node, &req->err);
        }
    } else {
        req->ret = blk_node_load_vmstate(vm->node, (uint64_t)rw->offset,
                                         rw->buf, (size_t)rw->count,
                                         &req->err);
    }
}

static void
vm_after(uv_work_t *w, int status)
{
    struct io_vm *vm = container_of(w, struct io_vm, work);
    struct io_rw *rw = vm->rw;

    blk_node_unref(vm->node);
    free(vm);
    rw_done(&rw->req);
}

static int
vm_submit(struct io_rw *rw, bool save)
{
    struct io_state *st = rw->st;
    struct io_vm *vm = xzalloc(sizeof(*vm));

    vm->rw = rw;
    vm->node = st->node;
    vm->save = save;
    vm->flush = save && st->writethrough;
    blk_node_ref(vm->node);
    rw->req.err = (struct blk_error)BLK_ERROR_INIT;
    io_now(&rw->t1);
    uv_queue_work(blk_loop(), &vm->work, vm_work, vm_after);
    return IO_PENDING;
}

/* Allocate rw's buffer and one iovec per length in lens. */
static int
rw_buffers(struct io_rw *rw, const int64_t *lens, int n, int pattern)
{
    int64_t off = 0;

    rw->buf = io_buf_alloc(rw->st, (size_t)rw->count, pattern);
    if (rw->buf == NULL) {
        io_printf(rw->st, "%s failed: %s\n", rw->failname, strerror(ENOMEM));
        return -ENOMEM;
    }
    rw->iov = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*rw->iov));
    rw->iovcnt = n;
    for (int i = 0; i < n; i++) {
        rw->iov[i].iov_base = rw->buf + off;
        rw->iov[i].iov_len = (size_t)lens[i];
        off += lens[i];
    }
    return 0;
}

/* Parse "len [len..]" as readv/writev/aio_* do; lens gets n entries. */
static int
parse_lens(struct io_state *st, char **args, int n, int64_t **lens,
           int64_t *total)
{
    int64_t sum = 0, len;

    *lens = xcalloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        len = io_cvtnum(st, args[i]);
        if (len < 0) {
            io_print_cvtnum_error(st, len, args[i]);
            goto out_free;
        }
        if (len > IO_MAX_BYTES) {
            io_printf(st, "Argument '%s' exceeds maximum size %lld\n",
                      args[i], IO_MAX_BYTES);
            goto out_free;
        }
        if (sum > IO_MAX_BYTES - len) {
            io_printf(st, "The total number of bytes exceed the maximum "
                      "size %lld\n", IO_MAX_BYTES);
            goto out_free;
        }
        (*lens)[i] = len;
        sum += len;
    }
    *total = sum;
    return 0;

out_free:
    free(*lens);
    *lens = NULL;
    return -EINVAL;
}

static int
check_sector_aligned(struct io_state *st, int64_t off, int64_t count)
{
    if (off & 511) {
        io_printf(st, "%" PRId64 " is not a sector-aligned value for "
                  "'offset'\n", off);
        return -EINVAL;
    }
    if (count & 511) {
        io_printf(st, "%" PRId64 " is not a sector-aligned value for "
                  "'count'\n", count);
        return -EINVAL;
    }
    return 0;
}

int
io_cmd_read(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *self = io_cmd_find("read");
    bool bflag = false, csv = false, qflag = false, vflag = false;
    bool have_pat = false, have_s = false, have_l = false;
    int64_t off, count, pat_off = 0, pat_len = -1;
    int pattern = 0, c;
    struct io_rw *rw;

    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (c) {
        case 'b': bflag = true; break;
        case 'C': csv = true; break;
        case 'l':
            have_l = true;
            if (io_parse_num(st, optarg, &pat_len) < 0) {
                return -EINVAL;
            }
            break;
        case 'p': break;
        case 'P':
            have_pat = true;
            if (io_parse_pattern(st, optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'q': qflag = true; break;
        case 's':
            have_s = true;
            if (io_parse_num(st, optarg, &pat_off) < 0) {
                return -EINVAL;
            }
            break;
        case 'v': vflag = true; break;
        default:
            return io_cmd_usage(st, self);
        }
    }
    if (optind != argc - 2 || ((have_s || have_l) && !have_pat)) {
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
    if (have_pat) {
        if (pat_len < 0) {
            pat_len = count - pat_off;
        }
        if (pat_off > count || pat_len > count - pat_off) {
            io_printf(st, "pattern verification range exceeds end of read "
                      "data\n");
            return -EINVAL;
        }
    }
    if (bflag && check_sector_aligned(st, off, count) < 0) {
        return -EINVAL;
    }
    rw = rw_new(st, "read", "read");
    rw->offset = off;
    rw->count = count;
    rw->check = have_pat;
    rw->pattern = pattern;
    rw->pat_off = pat_off;
    rw->pat_len = pat_len;
    rw->qflag = qflag;
    rw->vflag = vflag;
    rw->csv = csv;
    if (rw_buffers(rw, &count, 1, 0xab) < 0) {
        rw_free(rw);
        return -ENOMEM;
    }
    if (bflag) {
        return vm_submit(rw, false);
    }
    return rw_submit(rw, BLK_OP_READ, 0);
}

/* readv and aio_read: off len [len..] into one buffer split in iovecs. */
static int
vread(struct io_state *st, int argc, char **argv, bool aio)
{
    const struct io_cmd *self = io_cmd_find(aio ? "aio_read" : "readv");
    bool csv = false, qflag = false, vflag = false, have_pat = false;
    int pattern = 0, c, n;
    int64_t off, total, *lens;
    struct io_rw *rw;

    while ((c = getopt(argc, argv, aio ? "CiP:qv" : "CP:qv")) != -1) {
        switch (c) {
        case 'C': csv = true; break;
        case 'i':
            io_printf(st, "injecting invalid read request\n");
            return 0;
        case 'P':
            have_pat = true;
            if (io_parse_pattern(st, optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'q': qflag = true; break;
        case 'v': vflag = true; break;
        default:
            return io_cmd_usage(st, self);
        }
    }
    if (optind > argc - 2) {
        return io_cmd_usage(st, self);
    }
    if (io_parse_num(st, argv[optind], &off) < 0) {
        return -EINVAL;
    }
    n = argc - optind - 1;
    if (parse_lens(st, argv + optind + 1, n, &lens, &total) < 0) {
        return -EINVAL;
    }
    rw = rw_new(st, "read", "readv");
    rw->offset = off;
    rw->count = total;
    rw->check = have_pat;
    rw->pattern = pattern;
    rw->pat_len = total;
    rw->qflag = qflag;
    rw->vflag = vflag;
    rw->csv = csv;
    rw->aio = aio;
    if (rw_buffers(rw, lens, n, 0xab) < 0) {
        free(lens);
        rw_free(rw);
        return -ENOMEM;
    }
    free(lens);
    return rw_submit(rw, BLK_OP_READ, 0);
}

int
io_cmd_readv(struct io_state *st, int argc, char **argv)
{
    return vread(st, argc, argv, false);
}

int
io_cmd_aio_read(struct io_state *st, int argc, char **argv)
{
    return vread(st, argc, argv, true);
}

/* write's option set, checked as qemu-io checks it. */
struct write_opts {
    bool b, c, csv, f, n, q, u, z;
    bool have_pat;
    int pattern;
    const char *file;
};

static int
write_check_opts(struct io_state *st, const struct write_opts *o)
{
    if (o->b && o->z) {
        io_printf(st, "-b and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    if (o->f && (o->b || o->c)) {
        io_printf(st, "-f and -b or -c cannot be specified at the same "
                  "time\n");
        return -EINVAL;
    }
    if (o->n && !o->z) {
        io_printf(st, "-n requires -z to be specified\n");
        return -EINVAL;
    }
    if (o->u && !o->z) {
        io_printf(st, "-u requires -z to be specified\n");
        return -EINVAL;
    }
    if ((int)o->z + (int)o->have_pat + (int)(o->file != NULL) > 1) {
        io_printf(st, "Only one of -z, -P, and -s can be specified at the "
                  "same time\n");
        return -EINVAL;
    }
    return 0;
}

int
io_cmd_write(struct io_state *st, int argc, char **argv)
{
    const struct io_cmd *self = io_cmd_find("write");
    struct write_opts o = { .pattern = 0xcd };
    int64_t off, count;
    unsigned flags = 0;
    struct io_rw *rw;
    int c;

    while ((c = getopt(argc, argv, "bcCfnpP:qs:uz")) != -1) {
        switch (c) {
        case 'b': o.b = true; break;
        case 'c': o.c = true; break;
        case 'C': o.csv = true; break;
        case 'f': o.f = true; break;
        case 'n': o.n = true; break;
        case 'p': break;
        case 'P':
            o.have_pat = true;
            if (io_parse_pattern(st, optarg, &o.pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'q': o.q = true; break;
        case 's': o.file = optarg; break;
        case 'u': o.u = true; break;
        case 'z': o.z = true; break;
        default:
            return io_cmd_usage(st, self);
        }
    }
    if (optind != argc - 2) {
        return io_cmd_usage(st, self);
    }
    if (write_check_opts(st, &o) < 0) {
        return -EINVAL;
    }
    if (io_parse_num(st, argv[optind], &off) < 0 ||
        io_parse_num(st, argv[optind + 1], &count) < 0) {
        return -EINVAL;
    }
    if (count > IO_MAX_BYTES && !(o.z && o.n)) {
        io_printf(st, "length cannot exceed %lld without -n, given %s\n",
                  IO_MAX_BYTES, argv[optind + 1]);
        return -EINVAL;
    }
    if ((o.b || o.c) && check_sector_aligned(st, off, count) < 0) {
        return -EINVAL;
    }
    rw = rw_new(st, "wrote", "write");
    rw->offset = off;
    rw->count = count;
    rw->qflag = o.q;
    rw->csv = o.csv;
    flags |= o.f ? BLK_REQ_FUA : 0;
    if (o.z) {
        flags |= (o.u ? BLK_REQ_MAY_UNMAP : 0) | (o.n ? BLK_REQ_NO_FALLBACK : 0);
        return rw_submit(rw, BLK_OP_ZERO, flags);
    }
    if (o.file != NULL) {
        rw->buf = io_buf_from_file(st, o.file, (size_t)count);
        if (rw->buf == NULL) {
            rw_free(rw);
            return -EINVAL;
        }
        rw->iov = xcalloc(1, sizeof(*rw->iov));
        rw->iov[0].iov_base = rw->buf;
        rw->iov[0].iov_len = (size_t)count;
        rw->iovcnt = 1;
    } else if (rw_buffers(rw, &count, 1, o.pattern) < 0) {
        rw_free(rw);
        return -ENOMEM;
    }
    if (o.b) {
        return vm_submit(rw, true);     /* -c means nothing there, as in qemu-io */
    }
    flags |= o.c ? BLK_REQ_COMPRESSED : 0;
    return rw_submit(rw, BLK_OP_WRITE, flags);
}

/* writev and aio_write. */
static int
vwrite(struct io_state *st, int argc, char **argv, bool aio)
{
    const struct io_cmd *self = io_cmd_find(aio ? "aio_write" : "writev");
    bool csv = false, qflag = false, fua = false, zflag = false, uflag = false;
    int pattern = 0xcd, c, n;
    int64_t off, total, *lens;
    struct io_rw *rw;
    unsigned flags;

    while ((c = getopt(argc, argv, aio ? "CfiqP:uz" : "CfqP:")) != -1) {
        switch (c) {
        case 'C': csv = true; break;
        case 'f': fua = true; break;
        case 'i':
            io_printf(st, "injecting invalid write request\n");
            return 0;
        case 'q': qflag = true; break;
        case 'P':
            if (io_parse_pattern(st, optarg, &pattern) < 0) {
                return -EINVAL;
            }
            break;
        case 'u': uflag = true; break;
        case 'z': zflag = true; break;
        default:
            return io_cmd_usage(st, self);
        }
    }
    if (optind > argc - 2) {
        return io_cmd_usage(st, self);
    }
    if (uflag && !zflag) {
        io_printf(st, "-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag && optind != argc - 2) {
        io_printf(st, "-z supports only a single length parameter\n");
        return -EINVAL;
    }
    if (io_parse_num(st, argv[optind], &off) < 0) {
        return -EINVAL;
    }
    n = argc - optind - 1;
    if (parse_lens(st, argv + optind + 1, n, &lens, &total) < 0) {
        return -EINVAL;
    }
    rw = rw_new(st, "wrote", aio ? "aio_write" : "writev");
    rw->offset = off;
    rw->count = total;
    rw->qflag = qflag;
    rw->csv = csv;
    rw->aio = aio;
    flags = fua ? BLK_REQ_FUA : 0;
    if (zflag) {
        free(lens);
        flags |= uflag ? BLK_REQ_MAY_UNMAP : 0;
        return rw_submit(rw, BLK_OP_ZERO, flags);
    }
    if (rw_buffers(rw, lens, n, pattern) < 0) {
        free(lens);
        rw_free(rw);
        return -ENOMEM;
    }
    free(lens);
    return rw_submit(rw, BLK_OP_WRITE, flags);
}

int
io_cmd_writev(struct io_state *st, int argc, char **argv)
{
    return vwrite(st, argc, argv, false);
}

int
io_cmd_aio_write(struct io_state *st, int argc, char **argv)
{
    return vwrite(st, argc, argv, true);
}

static void
aio_flush_done(struct io_state *st)
{
    io_cmd_finish(st, 0);
}

int
io_cmd_aio_flush(struct io_state *st, int argc, char **argv)
{
    if (st->aio_in_flight == 0) {
        return 0;
    }
    st->aio_drained = aio_flush_done;
    return IO_PENDING;
}
