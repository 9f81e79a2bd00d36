/*
 * copyfloor.c - the least work any tool must do to write a sparse copy of
 * a raw image: the data ranges of SRC (its allocated ranges, minus 4 KiB
 * blocks of zeroes, as convert's default -S 4k) are found first, not
 * timed; then the same ranges are written into a new file DST in pieces
 * of up to 2 MiB in offset order, from one buffer that stays in the CPU
 * cache (the page cache's cost does not depend on the bytes, and a tool
 * writes what it has just read), each piece of 128 KiB or more after a
 * fallocate() of its range (on ext4 cheaper than delayed allocation, as
 * blk's file driver does; elsewhere no dearer), and that alone is timed
 * (wall and CPU).  bench/convert.sh
 * uses it to show how close qemu-img and blk-img are to the page cache's
 * own write cost on this machine.
 *
 * usage: copyfloor SRC DST     prints "WALL_SECONDS CPU_SECONDS"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PIECE (2u << 20)
#define BLOCK 4096u

struct extent {
    off_t off;
    size_t len;
};

static int
block_is_zero(const unsigned char *p, size_t n)
{
    static const unsigned char zero[BLOCK];

    return memcmp(p, zero, n) == 0;
}

static double
now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double
cpu(void)
{
    struct rusage u;

    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

/* Append the non-zero 4 KiB runs of buf (at image offset off) to ext. */
static void
add_runs(struct extent **ext, size_t *n, size_t *cap, const unsigned char *buf,
         size_t len, off_t off)
{
    size_t i = 0;

    while (i < len) {
        size_t b = len - i < BLOCK ? len - i : BLOCK;
        size_t start;

        if (block_is_zero(buf + i, b)) {
            i += b;
            continue;
        }
        start = i;
        while (i < len) {
            b = len - i < BLOCK ? len - i : BLOCK;
            if (block_is_zero(buf + i, b)) {
                break;
            }
            i += b;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 1024;
            *ext = realloc(*ext, *cap * sizeof(**ext));
            if (*ext == NULL) {
                perror("realloc");
                exit(1);
            }
        }
        (*ext)[*n].off = off + (off_t)start;
        (*ext)[*n].len = i - start;
        (*n)++;
    }
}

int
main(int argc, char **argv)
{
    struct extent *ext = NULL;
    size_t n = 0, cap = 0;
    unsigned char *buf;
    struct stat st;
    off_t pos = 0;
    double t0, c0;
    int in, out;

    if (argc != 3) {
        fprintf(stderr, "usage: copyfloor SRC DST\n");
        return 2;
    }
    in = open(argv[1], O_RDONLY);
    if (in < 0 || fstat(in, &st) < 0) {
        fprintf(stderr, "copyfloor: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    buf = malloc(PIECE);
    if (buf == NULL) {
        perror("malloc");
        return 1;
    }
    while (pos < st.st_size) {
        off_t d = lseek(in, pos, SEEK_DATA), h;

        if (d < 0) {
            break;
        }
        h = lseek(in, d, SEEK_HOLE);
        for (off_t o = d; o < h; o += PIECE) {
            size_t len = h - o < (off_t)PIECE ? (size_t)(h - o) : PIECE;

            if (pread(in, buf, len, o) != (ssize_t)len) {
                fprintf(stderr, "copyfloor: short read at %lld\n",
                        (long long)o);
                return 1;
            }
            add_runs(&ext, &n, &cap, buf, len, o);
        }
        pos = h;
    }
    close(in);
    memset(buf, 0x5a, PIECE);
    unlink(argv[2]);
    t0 = now();
    c0 = cpu();
    out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || ftruncate(out, st.st_size) < 0) {
        fprintf(stderr, "copyfloor: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < ext[i].len; k += PIECE) {
            size_t len = ext[i].len - k < PIECE ? ext[i].len - k : PIECE;

            if (len >= 128 * 1024) {
                /* unsupported here: the write allocates, as without */
                (void)fallocate(out, 0, ext[i].off + (off_t)k, (off_t)len);
            }
            if (pwrite(out, buf, len, ext[i].off + (off_t)k) !=
                (ssize_t)len) {
                fprintf(stderr, "copyfloor: write failed: %s\n",
                        strerror(errno));
                return 1;
            }
        }
    }
    close(out);
    printf("%.3f %.3f\n", now() - t0, cpu() - c0);
    free(ext);
    free(buf);
    return 0;
}
