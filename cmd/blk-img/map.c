/*
 * map.c - `blk-img map`: the allocation map of an image and its backing
 * chain, human or JSON, merged into extents exactly as qemu-img 7.2 does.
 * Each block status call asks for the whole remaining range, so the cost
 * follows the allocated metadata, not the virtual size.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "util/xalloc.h"

struct map_entry {
    uint64_t start, length, offset;
    int depth;
    bool data, zero, present, has_offset;
    const char *filename;       /* borrowed from a node; NULL without offset */
};

static int
get_entry(struct blk_node *bs, uint64_t off, uint64_t len, struct map_entry *e,
          struct blk_error *err)
{
    struct blk_status st;
    int depth, r;

    r = img_block_status_chain(bs, off, len, &st, &depth, err);
    if (r < 0) {
        return r;
    }
    memset(e, 0, sizeof(*e));
    e->start = off;
    e->length = st.pnum;
    e->depth = depth;
    e->data = (st.flags & BLK_STATUS_DATA) != 0;
    e->zero = (st.flags & BLK_STATUS_ZERO) != 0;
    e->present = (st.flags & BLK_STATUS_ALLOCATED) != 0;
    e->has_offset = (st.flags & BLK_STATUS_OFFSET_VALID) != 0 &&
                    !(st.flags & BLK_STATUS_COMPRESSED);
    e->offset = e->has_offset ? st.map : 0;
    e->filename = e->has_offset && st.file != NULL ?
                  blk_node_get_filename(st.file) : NULL;
    return 0;
}

static bool
mergeable(const struct map_entry *a, const struct map_entry *b)
{
    if (a->length == 0 || a->zero != b->zero || a->data != b->data ||
        a->depth != b->depth || a->present != b->present ||
        (a->filename == NULL) != (b->filename == NULL) ||
        a->has_offset != b->has_offset) {
        return false;
    }
    if (a->filename != NULL && strcmp(a->filename, b->filename) != 0) {
        return false;
    }
    return !a->has_offset || a->offset + a->length == b->offset;
}

/* Print one merged extent; next (may be NULL) is the one that follows. */
static int
dump_entry(enum img_output of, const struct map_entry *e, struct map_entry *next)
{
    if (of == IMG_OUTPUT_HUMAN) {
        if (e->data && !e->has_offset) {
            fflush(stdout);
            blk_img_error("File contains external, encrypted or compressed clusters.");
            return -1;
        }
        if (e->data && !e->zero) {
            char a[24], b[24], c[24];

            snprintf(a, sizeof(a), "%#" PRIx64, e->start);
            snprintf(b, sizeof(b), "%#" PRIx64, e->length);
            snprintf(c, sizeof(c), "%#" PRIx64, e->has_offset ? e->offset : 0);
            printf("%-16s%-16s%-16s%s\n", a, b, c,
                   e->filename != NULL ? e->filename : "");
        }
        /* the human form does not tell zero from unallocated: merge more */
        if (next != NULL && (!next->data || next->zero)) {
            next->data = false;
            next->zero = true;
        }
        return 0;
    }
    printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, "
           "\"present\": %s, \"zero\": %s, \"data\": %s", e->start, e->length,
           e->depth, e->present ? "true" : "false", e->zero ? "true" : "false",
           e->data ? "true" : "false");
    if (e->has_offset) {
        printf(", \"offset\": %" PRIu64, e->offset);
    }
    putchar('}');
    if (next != NULL) {
        puts(",");
    }
    return 0;
}

static int
do_map(struct blk_node *bs, enum img_output of, uint64_t start, uint64_t max_len,
       bool have_max)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct map_entry curr, next;
    int64_t len = blk_node_get_length(bs);
    uint64_t end;

    if (len < 0) {
        blk_img_error("Failed to get size for '%s'", blk_node_get_filename(bs));
        return 1;
    }
    end = (uint64_t)len;
    if (have_max && start + max_len < end) {
        end = start + max_len;
    }
    if (of == IMG_OUTPUT_HUMAN) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    } else {
        putchar('[');
    }
    memset(&curr, 0, sizeof(curr));
    curr.start = start;
    while (curr.start + curr.length < end) {
        uint64_t off = curr.start + curr.length;

        if (get_entry(bs, off, end - off, &next, &err) < 0) {
            fflush(stdout);
            blk_img_error("Could not read file metadata: %s", err.msg);
            return 1;
        }
        if (mergeable(&curr, &next)) {
            curr.length += next.length;
            continue;
        }
        if (curr.length > 0 && dump_entry(of, &curr, &next) < 0) {
            return 1;
        }
        curr = next;
    }
    if (dump_entry(of, &curr, NULL) < 0) {
        return 1;
    }
    if (of == IMG_OUTPUT_JSON) {
        puts("]");
    }
    return 0;
}

int
cmd_map(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_START, OPT_MAXLEN, OPT_IMAGE_OPTS };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "start-offset", required_argument, NULL, OPT_START },
        { "max-length", required_argument, NULL, OPT_MAXLEN },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = NULL;
    bool image_opts = false, have_max = false;
    uint64_t start = 0, max_len = 0;
    unsigned flags = 0;
    enum img_output of;
    struct blk_graph *g;
    struct blk_node *bs;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'U':
            flags |= BLK_OPEN_FORCE_SHARE;
            break;
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_START:
            if (img_parse_size(optarg, &start) < 0) {
                img_size_error("start offset");
                return 1;
            }
            break;
        case OPT_MAXLEN:
            if (img_parse_size(optarg, &max_len) < 0) {
                img_size_error("max length");
                return 1;
            }
            have_max = true;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img map [--image-opts] [-f fmt] [--start-offset=offset] "
                   "[--max-length=len] [--output=ofmt] [-U] filename\n");
            return 0;
        default:
            return img_getopt_error(c, argv);
        }
    }
    if (optind != argc - 1) {
        img_usage_error("Expecting one image file name");
        return 1;
    }
    if (img_parse_output(output, &of) < 0) {
        return 1;
    }
    g = blk_graph_new();
    bs = img_open(g, argv[optind], fmt, image_opts, flags);
    if (bs == NULL) {
        blk_graph_free(g);
        return 1;
    }
    ret = do_map(bs, of, start, max_len, have_max);
    blk_node_unref(bs);
    blk_graph_free(g);
    return ret;
}
