/*
 * main.c - blk-img: the command table, --help, --version and dispatch.
 * Every subcommand is one row here; --help and the man page check
 * (tests/cli/blk-img-help.bats) both read this table.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "block/block.h"
#include "cmd/blk-img/blk-img.h"

static const struct blk_img_cmd commands[] = {
    { "amend", cmd_amend,
      "[--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename",
      "change format options of an image in place" },
    { "bench", cmd_bench,
      "[-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename",
      "run a simple I/O benchmark (requests in flight on the loop)" },
    { "bitmap", cmd_bitmap,
      "(--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--image-opts | -f fmt] filename bitmap | dump [--output=ofmt] [--start-offset=offset] [--max-length=len] [--image-opts | -f fmt] [-U] filename bitmap",
      "change the persistent dirty bitmaps of an image, or dump one's dirty extents" },
    { "check", cmd_check,
      "[--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename",
      "check an image for consistency, optionally repairing it" },
    { "commit", cmd_commit,
      "[--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] [--progress=json|plain|bar] filename",
      "write the data of an overlay into its backing file" },
    { "compare", cmd_compare,
      "[--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2",
      "compare the contents of two images" },
    { "convert", cmd_convert,
      "[--image-opts] [--target-image-opts] [--target-is-zero] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-r rate_limit] [-m num_requests] [-W] [--salvage] [--progress=json|plain|bar] filename [filename2 [...]] output_filename",
      "convert or copy an image, sparse-aware, with requests in flight" },
    { "create", cmd_create,
      "[-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]",
      "create a new image" },
    { "dd", cmd_dd,
      "[--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output",
      "copy part of an image into a new image, like dd(1)" },
    { "info", cmd_info,
      "[--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename",
      "show facts about an image (and its backing chain)" },
    { "map", cmd_map,
      "[--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename",
      "print the allocation map of an image" },
    { "measure", cmd_measure,
      "[--output=ofmt] [-O output_fmt] [-o options] [--size N | [--image-opts] [-f fmt] filename]",
      "compute the size a new image needs" },
    { "rebase", cmd_rebase,
      "[--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [--progress=json|plain|bar] [-u] -b backing_file [-F backing_fmt] filename",
      "change the backing file of an image, keeping its contents (unless -u)" },
    { "resize", cmd_resize,
      "[--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size",
      "change the virtual size of an image" },
    { "snapshot", cmd_snapshot,
      "[--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename",
      "list, apply, create or delete internal snapshots" },
    { "keyval", cmd_keyval,
      "[--schema blockdev|TYPE] [--to-keyval] [--introspect] STRING|-",
      "parse an option string (keyval or JSON) and print it as a typed JSON tree" },
};

void
blk_img_error(const char *fmt, ...)
{
    va_list ap;

    fputs("blk-img: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
usage(FILE *f)
{
    size_t i;

    fprintf(f, "blk-img version " BLK_VERSION "\n"
            "usage: blk-img [standard options] command [command options]\n"
            "Disk image utility\n\n"
            "    '-h', '--help'       display this help and exit\n"
            "    '-V', '--version'    output version information and exit\n\n"
            "Command syntax:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(f, "  %s %s\n", commands[i].name, commands[i].synopsis);
    }
    fprintf(f, "\nCommands:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    }
    fprintf(f, "\nSee blk-img(1) for the options of each command.\n");
}

int
main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        blk_img_error("Not enough arguments");
        fprintf(stderr, "Try 'blk-img --help' for more information\n");
        return 1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("blk-img version " BLK_VERSION "\n");
        return 0;
    }
    /*
     * Every blk-img command is the loop's only user: small buffered
     * writes may run on it (block.h), unless BLK_INLINE_WRITES=0.
     */
    {
        const char *iw = getenv("BLK_INLINE_WRITES");

        blk_loop_set_inline_writes(iw == NULL || strcmp(iw, "0") != 0);
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    blk_img_error("Command not found: %s", argv[1]);
    return 1;
}
