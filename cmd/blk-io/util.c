/*
 * util.c - blk-io's output and argument helpers: qemu-io 7.2's number
 * parsing (cvtnum), size printing (cvtstr), report lines, pattern
 * buffers and the -v hex dump.  Loop thread.
 */
#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/blk-io/blk-io.h"
#include "util/size.h"
#include "util/xalloc.h"

/* Buffers are aligned like this (O_DIRECT); -m adds MISALIGN_OFFSET. */
#define BUF_ALIGN 4096
#define MISALIGN_OFFSET 16

void
io_printf(struct io_state *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(st->out, fmt, ap);
    va_end(ap);
}

void
io_eprintf(struct io_state *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(st->err, fmt, ap);
    va_end(ap);
}

void
io_report(struct io_state *st, const char *fmt, ...)
{
    va_list ap;

    fputs("blk-io: ", st->err);
    va_start(ap, fmt);
    vfprintf(st->err, fmt, ap);
    va_end(ap);
    fputc('\n', st->err);
}

void
io_flush_output(struct io_state *st)
{
    fflush(st->out);
    fflush(st->err);
}

static int
suffix_shift(char c)
{
    switch (tolower((unsigned char)c)) {
    case 'b': return 0;
    case 'k': return 10;
    case 'm': return 20;
    case 'g': return 30;
    case 't': return 40;
    case 'p': return 50;
    case 'e': return 60;
    default: return -1;
    }
}

/*
 * QEMU 7.2 still accepts a suffix after a hex number ("0x1k") with a
 * deprecation warning; util/size.c rejects it, so handle it here.
 */
static int
parse_hex_suffix(struct io_state *st, const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    int shift;
    char *hex, *end;
    uint64_t v;

    if (n < 4 || strncasecmp(s, "0x", 2) != 0) {
        return -EINVAL;
    }
    shift = suffix_shift(s[n - 1]);
    if (shift < 0) {
        return -EINVAL;
    }
    hex = xstrndup(s, n - 1);
    errno = 0;
    v = strtoull(hex, &end, 16);
    if (*end != '\0' || end == hex + 2 || errno != 0) {
        free(hex);
        return errno == ERANGE ? -ERANGE : -EINVAL;
    }
    free(hex);
    if (shift > 0 && v > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    io_report(st, "warning: Using a multiplier suffix on hex numbers is "
              "deprecated: %s", s);
    *out = v << shift;
    return 0;
}

int64_t
io_cvtnum(struct io_state *st, const char *s)
{
    uint64_t v;
    int r;

    r = blk_size_parse_unit(s, 1, &v);
    if (r == -EINVAL) {
        r = parse_hex_suffix(st, s, &v);
    }
    if (r < 0) {
        return r;
    }
    if (v > INT64_MAX) {
        return -ERANGE;
    }
    return (int64_t)v;
}

void
io_print_cvtnum_error(struct io_state *st, int64_t ret, const char *s)
{
    switch (ret) {
    case -EINVAL:
        io_printf(st, "Parsing error: non-numeric argument, or "
                  "extraneous/unrecognized suffix -- %s\n", s);
        break;
    case -ERANGE:
        io_printf(st, "Parsing error: argument too large -- %s\n", s);
        break;
    default:
        io_printf(st, "Parsing error: %s\n", s);
        break;
    }
}

int
io_parse_num(struct io_state *st, const char *s, int64_t *out)
{
    int64_t v = io_cvtnum(st, s);

    if (v < 0) {
        io_print_cvtnum_error(st, v, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int
io_parse_pattern(struct io_state *st, const char *s, int *pattern)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 255) {
        io_printf(st, "%s is not a valid pattern byte\n", s);
        return -EINVAL;
    }
    *pattern = (int)v;
    return 0;
}

void *
io_buf_alloc(struct io_state *st, size_t len, int pattern)
{
    size_t extra = st->misalign ? MISALIGN_OFFSET : 0;
    uint8_t *p = blk_try_memalign(BUF_ALIGN, len + extra + 1);

    if (p == NULL) {
        return NULL;
    }
    memset(p + extra, pattern, len);
    return p + extra;
}

void
io_buf_free(struct io_state *st, void *buf)
{
    if (buf != NULL) {
        free((uint8_t *)buf - (st->misalign ? MISALIGN_OFFSET : 0));
    }
}

void *
io_buf_from_file(struct io_state *st, const char *file, size_t len)
{
    uint8_t *buf;
    size_t have = 0;
    ssize_t n;
    int fd;

    fd = open(file, O_RDONLY);
    if (fd < 0) {
        io_eprintf(st, "%s: %s\n", file, strerror(errno));
        return NULL;
    }
    buf = io_buf_alloc(st, len, 0);
    if (buf == NULL) {
        close(fd);
        io_eprintf(st, "%s: %s\n", file, strerror(ENOMEM));
        return NULL;
    }
    while (have < len) {
        n = read(fd, buf + have, len - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            io_eprintf(st, "%s: %s\n", file, strerror(errno));
            goto out_free;
        }
        if (n == 0) {
            break;
        }
        have += (size_t)n;
    }
    close(fd);
    if (have == 0 && len > 0) {
        io_eprintf(st, "%s: file is empty\n", file);
        io_buf_free(st, buf);
        return NULL;
    }
    /* A short file repeats until the buffer is full, as in qemu-io. */
    for (size_t i = have; i < len; i++) {
        buf[i] = buf[i % have];
    }
    return buf;

out_free:
    close(fd);
    io_buf_free(st, buf);
    return NULL;
}

void
io_dump_buffer(struct io_state *st, const void *buf, int64_t offset,
               int64_t len)
{
    const uint8_t *p = buf;
    int64_t i, j;

    for (i = 0; i < len; i += 16) {
        int64_t n = len - i < 16 ? len - i : 16;

        io_printf(st, "%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (j = 0; j < n; j++) {
            io_printf(st, "%02x ", p[i + j]);
        }
        io_printf(st, " ");
        for (j = 0; j < n; j++) {
            int c = p[i + j];

            io_printf(st, "%c", isalnum(c) ? c : '.');
        }
        io_printf(st, "\n");
    }
}

int
io_check_pattern(struct io_state *st, const uint8_t *buf, int pattern,
                 int64_t disk_off, int64_t len)
{
    int64_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != (uint8_t)pattern) {
            io_printf(st, "Pattern verification failed at offset %" PRId64
                      ", %" PRId64 " bytes\n", disk_off, len);
            return -EINVAL;
        }
    }
    return 0;
}

void
io_cvtstr(double v, char *buf, size_t len)
{
    blk_size_to_str_io(v, buf, len);
}

void
io_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

static double
elapsed(const struct timespec *t1, const struct timespec *t2)
{
    return (double)(t2->tv_sec - t1->tv_sec) +
           (double)(t2->tv_nsec - t1->tv_nsec) / 1e9;
}

/* qemu-io's time format: "SS.CC sec" under a minute, else "H:MM:SS.CC". */
static void
timestr(double t, bool fixed, char *buf, size_t len)
{
    unsigned long long cs = (unsigned long long)(t * 100.0 + 0.5);
    unsigned long long secs = cs / 100, frac = cs % 100;

    if (fixed || secs >= 60) {
        snprintf(buf, len, "%llu:%02llu:%02llu.%02llu", secs / 3600,
                 (secs / 60) % 60, secs % 60, frac);
    } else {
        snprintf(buf, len, "%02llu.%02llu sec", secs, frac);
    }
}

void
io_print_report(struct io_state *st, const struct timespec *t1,
                const struct timespec *t2, int64_t bytes, int ops,
                int total, bool csv)
{
    double t = elapsed(t1, t2);
    char ts[64], s1[BLK_SIZE_STR_MAX], s2[BLK_SIZE_STR_MAX];

    (void)total;
    if (t <= 0) {
        t = 1e-9;
    }
    if (csv) {
        timestr(t, true, ts, sizeof(ts));
        io_printf(st, "%" PRId64 ",%d,%s,%.3f,%.3f\n", bytes, ops, ts,
                  (double)bytes / t, (double)ops / t);
        return;
    }
    timestr(t, false, ts, sizeof(ts));
    io_cvtstr((double)bytes, s1, sizeof(s1));
    io_cvtstr((double)bytes / t, s2, sizeof(s2));
    io_printf(st, "%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, ops, ts,
              s2, (double)ops / t);
}
