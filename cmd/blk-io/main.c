/*
 * main.c - blk-io: qemu-io's command line (options, the image, -c
 * commands run in order), then the interactive shell or the QMP machine
 * mode; the exit status follows qemu-io 7.2 (1 if the image cannot be
 * opened or any command failed).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cmd/blk-io/blk-io.h"
#include "keyval/schema.h"
#include "util/xalloc.h"

/* Enough workers for deep aio queues (the pool is sized before first use). */
#define IO_THREADS 64

static void
usage(FILE *f)
{
    fprintf(f,
"Usage: blk-io [OPTIONS]... [-c STRING]... [file]\n"
"blk disk exerciser (qemu-io's command language)\n"
"\n"
"  --image-opts         treat file as option string (keyval or JSON)\n"
"  -c, --cmd STRING     execute command with its arguments\n"
"                       from the given string\n"
"  -f, --format FMT     specifies the block driver to use\n"
"  -r, --read-only      export read-only\n"
"  -s, --snapshot       use snapshot file\n"
"  -n, --nocache        disable host cache, short for -t none\n"
"  -C, --copy-on-read   enable copy-on-read\n"
"  -m, --misalign       misalign allocations for O_DIRECT\n"
"  -k, --native-aio     accepted; blk always uses its thread pool\n"
"  -i, --aio=MODE       threads, native or io_uring (accepted, threads used)\n"
"  -t, --cache=MODE     use the given cache mode for the image\n"
"  -d, --discard=MODE   use the given discard mode for the image\n"
"  -T, --trace ...      accepted and ignored: blk has no trace events\n"
"  -U, --force-share    force shared permissions\n"
"      --qmp            machine mode: QMP-style JSON lines on stdin/stdout\n"
"  -h, --help           display this help and exit\n"
"  -V, --version        output version information and exit\n"
"\n"
"See 'blk-io -c help' for information on available commands.\n");
}

static void
set_done(struct io_state *st, int ret)
{
    bool *done = st->cmd_done_opaque;

    (void)ret;
    *done = true;
}

/* Run one command line to its end: the loop runs until its callback. */
static void
run_to_end(struct io_state *st, const char *line)
{
    bool done = false;

    st->cmd_done = set_done;
    st->cmd_done_opaque = &done;
    if (io_run_line(st, line) == IO_PENDING) {
        blk_loop_run_until(&done);
    }
    st->cmd_done = NULL;
    st->cmd_done_opaque = NULL;
}

static void
aio_drained(struct io_state *st)
{
    bool *done = st->aio_drained_opaque;

    *done = true;
}

void
io_wait_aio(struct io_state *st)
{
    bool done = false;

    if (st->aio_in_flight == 0) {
        return;
    }
    st->aio_drained_opaque = &done;
    st->aio_drained = aio_drained;
    blk_loop_run_until(&done);
    st->aio_drained = NULL;
    st->aio_drained_opaque = NULL;
}

enum {
    OPT_IMAGE_OPTS = 256,
    OPT_OBJECT,
    OPT_QMP,
};

static const struct option long_opts[] = {
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "cmd", required_argument, NULL, 'c' },
    { "format", required_argument, NULL, 'f' },
    { "read-only", no_argument, NULL, 'r' },
    { "snapshot", no_argument, NULL, 's' },
    { "nocache", no_argument, NULL, 'n' },
    { "copy-on-read", no_argument, NULL, 'C' },
    { "misalign", no_argument, NULL, 'm' },
    { "native-aio", no_argument, NULL, 'k' },
    { "aio", required_argument, NULL, 'i' },
    { "discard", required_argument, NULL, 'd' },
    { "cache", required_argument, NULL, 't' },
    { "trace", required_argument, NULL, 'T' },
    { "object", required_argument, NULL, OPT_OBJECT },
    { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
    { "force-share", no_argument, NULL, 'U' },
    { "qmp", no_argument, NULL, OPT_QMP },
    { NULL, 0, NULL, 0 },
};

/* The probe warning qemu-io prints when it guessed raw. */
static void
warn_probed_raw(struct io_state *st, const char *name)
{
    io_eprintf(st, "WARNING: Image format was not specified for '%s' and "
               "probing guessed raw.\n"
               "         Automatically detecting the format is dangerous for "
               "raw images, write operations on block 0 will be restricted.\n"
               "         Specify the 'raw' format explicitly to remove the "
               "restrictions.\n", name);
}

int
main(int argc, char **argv)
{
    struct io_state st = { 0 };
    struct io_open_spec *spec = xzalloc(sizeof(*spec));
    char **cmds = NULL;
    int ncmds = 0, c, i;
    bool qmp = false;

    spec->flags = BLK_OPEN_RDWR | BLK_OPEN_UNMAP;
    spec->writethrough = true;  /* qemu-io's default cache mode */
    st.out = stdout;
    st.err = stderr;
    while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmki:t:T:U", long_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            io_open_spec_free(spec);
            free(cmds);
            return 0;
        case 'V':
            printf("blk-io version " BLK_VERSION "\n");
            io_open_spec_free(spec);
            free(cmds);
            return 0;
        case 'c':
            cmds = xrealloc(cmds, (size_t)(ncmds + 1) * sizeof(*cmds));
            cmds[ncmds++] = optarg;
            break;
        case 'f':
            free(spec->fmt);
            spec->fmt = xstrdup(optarg);
            break;
        case 'r': spec->flags &= ~BLK_OPEN_RDWR; break;
        case 's': spec->snapshot = true; break;
        case 'n':
            spec->flags |= BLK_OPEN_NOCACHE;
            spec->writethrough = false;
            break;
        case 'C': spec->cor = true; break;
        case 'm': st.misalign = true; break;
        case 'k': break;
        case 'i':
            if (io_parse_aio(optarg) < 0) {
                io_report(&st, "Invalid aio option: %s", optarg);
                goto out_usage_fail;
            }
            break;
        case 'd':
            if (io_parse_discard(optarg, &spec->flags) < 0) {
                io_report(&st, "Invalid discard option: %s", optarg);
                goto out_usage_fail;
            }
            break;
        case 't':
            if (io_parse_cache(optarg, &spec->flags, &spec->writethrough) < 0) {
                io_report(&st, "Invalid cache option: %s", optarg);
                goto out_usage_fail;
            }
            break;
        case 'T':
            io_report(&st, "warning: tracing is not supported, -T ignored");
            break;
        case 'U': spec->flags |= BLK_OPEN_FORCE_SHARE; break;
        case OPT_IMAGE_OPTS: spec->image_opts = true; break;
        case OPT_OBJECT:
            io_report(&st, "--object is not supported");
            goto out_usage_fail;
        case OPT_QMP: qmp = true; break;
        default:
            usage(stdout);
            goto out_usage_fail;
        }
    }
    if (argc - optind > 1) {
        usage(stdout);
        goto out_usage_fail;
    }
    if (spec->image_opts && spec->fmt != NULL) {
        io_report(&st, "--image-opts and -f are mutually exclusive");
        goto out_usage_fail;
    }

    blk_loop_init(IO_THREADS);
    kv_schema_init();
    st.graph = blk_graph_new();
    if (optind < argc) {
        spec->name = xstrdup(argv[optind]);
        if (io_open_image(&st, spec) < 0) {
            free(cmds);
            blk_graph_free(st.graph);
            return 1;
        }
        if (st.spec->fmt == NULL && !st.spec->image_opts &&
            strncmp(st.spec->name, "json:", 5) != 0 && !st.spec->snapshot &&
            strcmp(blk_node_driver(io_image_node(&st))->name, "raw") == 0) {
            warn_probed_raw(&st, st.spec->name);
        }
    } else {
        io_open_spec_free(spec);
    }

    if (qmp) {
        io_qmp_run(&st);
    } else if (ncmds == 0) {
        io_shell_run(&st);
    } else {
        for (i = 0; i < ncmds && !st.quit; i++) {
            run_to_end(&st, cmds[i]);
        }
    }
    free(cmds);

    /* qemu-io drains at exit: pending aio requests report now. */
    io_wait_aio(&st);
    io_close_image(&st);
    io_graph_release(&st);
    blk_graph_free(st.graph);
    io_open_spec_free(st.spec);
    io_flush_output(&st);
    return st.failed ? 1 : 0;

out_usage_fail:
    io_open_spec_free(spec);
    free(cmds);
    return 1;
}
