/*
 * compare.c - `blk-img compare`: do two images (with their backing chains)
 * read the same?  Block status skips ranges both read as zeroes; only
 * allocated ranges are read.  Exit 0 identical, 1 different, 2 open
 * error, 3 block status error, 4 read error (qemu-img 7.2's codes).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"
#include "util/progress.h"
#include "util/xalloc.h"

#define IO_BUF_SIZE (2 * 1024 * 1024)
#define SECTOR 512

struct cmp {
    struct blk_node *bs1, *bs2;
    const char *name1, *name2;
    uint8_t *buf1, *buf2;
    bool quiet, progress;
    double base;                /* bytes: the larger image's size */
    struct blk_progress *prog;
};

static void
progress(struct cmp *c, uint64_t bytes)
{
    if (c->base > 0) {
        blk_progress_print(c->prog, (float)((double)bytes / c->base * 100.0), 100);
    }
}

static void
qprint(const struct cmp *c, const char *fmt, uint64_t v)
{
    if (!c->quiet) {
        printf(fmt, v);
    }
}

/* First 512-byte sector of buf holding a non-zero byte, or -1. */
static int64_t
find_nonzero(const uint8_t *buf, uint64_t n)
{
    uint64_t i, j;

    for (i = 0; i < n; i += SECTOR) {
        uint64_t end = i + SECTOR < n ? i + SECTOR : n;

        for (j = i; j < end; j++) {
            if (buf[j] != 0) {
                return (int64_t)i;
            }
        }
    }
    return -1;
}

/* 1 if the range of bs (allocated in one image only) is not all zeroes. */
static int
check_empty(struct cmp *c, struct blk_node *bs, const char *name, uint64_t off,
            uint64_t len)
{
    struct blk_error err = BLK_ERROR_INIT;
    int64_t idx;

    if (blk_node_pread(bs, off, c->buf1, len, &err) < 0) {
        blk_img_error("Error while reading offset %" PRIu64 " of %s: %s",
                      off, name, err.msg);
        return 4;
    }
    idx = find_nonzero(c->buf1, len);
    if (idx >= 0) {
        qprint(c, "Content mismatch at offset %" PRIu64 "!\n", off + (uint64_t)idx);
        return 1;
    }
    return 0;
}

/* Compare in 512-byte steps; returns whether the first sector differs, *pnum the run. */
static bool
compare_buffers(const uint8_t *a, const uint8_t *b, uint64_t n, uint64_t *pnum)
{
    uint64_t i = n < SECTOR ? n : SECTOR;
    bool res = memcmp(a, b, i) != 0;

    while (i < n) {
        uint64_t len = n - i < SECTOR ? n - i : SECTOR;

        if ((memcmp(a + i, b + i, len) != 0) != res) {
            break;
        }
        i += len;
    }
    *pnum = i;
    return res;
}

static int
read_both(struct cmp *c, uint64_t off, uint64_t len)
{
    struct blk_error err = BLK_ERROR_INIT;

    if (blk_node_pread(c->bs1, off, c->buf1, len, &err) < 0) {
        blk_img_error("Error while reading offset %" PRIu64 " of %s: %s",
                      off, c->name1, err.msg);
        return 4;
    }
    if (blk_node_pread(c->bs2, off, c->buf2, len, &err) < 0) {
        blk_img_error("Error while reading offset %" PRIu64 " of %s: %s",
                      off, c->name2, err.msg);
        return 4;
    }
    return 0;
}

static void
qputs(const struct cmp *c, const char *s)
{
    if (!c->quiet) {
        fputs(s, stdout);
    }
}

static unsigned
strict_flags(const struct blk_status *st)
{
    return st->flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO | BLK_STATUS_ALLOCATED |
                        BLK_STATUS_OFFSET_VALID);
}

static int
compare_common(struct cmp *c, uint64_t total1, uint64_t total2, bool strict,
               uint64_t *offp)
{
    uint64_t total = total1 < total2 ? total1 : total2, off = 0;
    struct blk_error err = BLK_ERROR_INIT;

    while (off < total) {
        struct blk_status st1, st2;
        bool a1, a2;
        uint64_t chunk;
        int r;

        if (img_block_status_chain(c->bs1, off, total1 - off, &st1, NULL, &err) < 0) {
            blk_img_error("Sector allocation test failed for %s", c->name1);
            return 3;
        }
        if (img_block_status_chain(c->bs2, off, total2 - off, &st2, NULL, &err) < 0) {
            blk_img_error("Sector allocation test failed for %s", c->name2);
            return 3;
        }
        a1 = st1.flags & BLK_STATUS_ALLOCATED;
        a2 = st2.flags & BLK_STATUS_ALLOCATED;
        chunk = st1.pnum < st2.pnum ? st1.pnum : st2.pnum;
        if (off + chunk > total) {
            chunk = total - off;
        }
        if (strict && strict_flags(&st1) != strict_flags(&st2)) {
            qprint(c, "Strict mode: Offset %" PRIu64 " block status mismatch!\n", off);
            return 1;
        }
        if ((st1.flags & BLK_STATUS_ZERO) && (st2.flags & BLK_STATUS_ZERO)) {
            /* both read as zeroes */
        } else if (a1 == a2) {
            if (a1) {
                uint64_t pnum;
                bool differ;

                chunk = chunk < IO_BUF_SIZE ? chunk : IO_BUF_SIZE;
                r = read_both(c, off, chunk);
                if (r != 0) {
                    return r;
                }
                differ = compare_buffers(c->buf1, c->buf2, chunk, &pnum);
                if (differ || pnum != chunk) {
                    qprint(c, "Content mismatch at offset %" PRIu64 "!\n",
                           off + (differ ? 0 : pnum));
                    return 1;
                }
            }
        } else {
            chunk = chunk < IO_BUF_SIZE ? chunk : IO_BUF_SIZE;
            r = a1 ? check_empty(c, c->bs1, c->name1, off, chunk)
                   : check_empty(c, c->bs2, c->name2, off, chunk);
            if (r != 0) {
                return r;
            }
        }
        off += chunk;
        progress(c, chunk);
    }
    *offp = off;
    return 0;
}

/* The tail of the larger image must read as zeroes. */
static int
compare_tail(struct cmp *c, uint64_t total1, uint64_t total2, uint64_t off)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *over = total1 > total2 ? c->bs1 : c->bs2;
    const char *name = total1 > total2 ? c->name1 : c->name2;
    uint64_t end = total1 > total2 ? total1 : total2;

    qputs(c, "Warning: Image size mismatch!\n");
    while (off < end) {
        struct blk_status st;
        uint64_t chunk;
        int r;

        if (img_block_status_chain(over, off, end - off, &st, NULL, &err) < 0) {
            blk_img_error("Sector allocation test failed for %s", name);
            return 3;
        }
        chunk = st.pnum;
        if ((st.flags & BLK_STATUS_ALLOCATED) && !(st.flags & BLK_STATUS_ZERO)) {
            chunk = chunk < IO_BUF_SIZE ? chunk : IO_BUF_SIZE;
            r = check_empty(c, over, name, off, chunk);
            if (r != 0) {
                return r;
            }
        }
        off += chunk;
        progress(c, chunk);
    }
    return 0;
}

static int
do_compare(struct cmp *c, bool strict)
{
    int64_t t1 = blk_node_get_length(c->bs1), t2 = blk_node_get_length(c->bs2);
    uint64_t off = 0;
    int r;

    if (t1 < 0 || t2 < 0) {
        blk_img_error("Can't get size of %s: %s", t1 < 0 ? c->name1 : c->name2,
                      strerror((int)-(t1 < 0 ? t1 : t2)));
        return 4;
    }
    c->base = (double)(t1 > t2 ? t1 : t2);
    blk_progress_print(c->prog, 0, 100);
    if (strict && t1 != t2) {
        qputs(c, "Strict mode: Image size mismatch!\n");
        return 1;
    }
    r = compare_common(c, (uint64_t)t1, (uint64_t)t2, strict, &off);
    if (r == 0 && t1 != t2) {
        r = compare_tail(c, (uint64_t)t1, (uint64_t)t2, off);
    }
    if (r == 0) {
        qputs(c, "Images are identical.\n");
    }
    return r;
}

int
cmd_compare(int argc, char **argv)
{
    enum { OPT_IMAGE_OPTS = 256 };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct cmp c = { 0 };
    struct blk_graph *g;
    const char *fmt1 = NULL, *fmt2 = NULL;
    bool image_opts = false, strict = false;
    unsigned flags = 0;
    int ch, ret = 2;

    while ((ch = getopt_long(argc, argv, ":hf:F:T:pqsU", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            fmt1 = optarg;
            break;
        case 'F':
            fmt2 = optarg;
            break;
        case 'T':
            break;
        case 'p':
            c.progress = true;
            break;
        case 'q':
            c.quiet = true;
            break;
        case 's':
            strict = true;
            break;
        case 'U':
            flags |= BLK_OPEN_FORCE_SHARE;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img compare [--image-opts] [-f fmt] [-F fmt] [-p] [-q] "
                   "[-s] [-U] filename1 filename2\n");
            return 0;
        default:
            return img_getopt_error(ch, argv);
        }
    }
    if (c.quiet) {
        c.progress = false;
    }
    if (optind != argc - 2) {
        img_usage_error("Expecting two image file names");
        return 1;
    }
    c.name1 = argv[optind];
    c.name2 = argv[optind + 1];
    c.prog = blk_progress_new(c.progress ? BLK_PROGRESS_ON : BLK_PROGRESS_OFF,
                              2.0f, stdout);
    g = blk_graph_new();
    c.bs1 = img_open(g, c.name1, fmt1, image_opts, flags);
    if (c.bs1 == NULL) {
        goto out;
    }
    c.bs2 = img_open(g, c.name2, fmt2, image_opts, flags);
    if (c.bs2 == NULL) {
        goto out;
    }
    c.buf1 = xmalloc(IO_BUF_SIZE);
    c.buf2 = xmalloc(IO_BUF_SIZE);
    ret = do_compare(&c, strict);
out:
    blk_progress_end(c.prog);
    free(c.buf1);
    free(c.buf2);
    if (c.bs2 != NULL) {
        blk_node_unref(c.bs2);
    }
    if (c.bs1 != NULL) {
        blk_node_unref(c.bs1);
    }
    blk_graph_free(g);
    return ret;
}
