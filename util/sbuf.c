/*
 * sbuf.c - growable string buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"
#include "util/xalloc.h"

char sbuf_empty[1];

void
sbuf_init(struct sbuf *sb)
{
    sb->buf = sbuf_empty;
    sb->len = 0;
    sb->alloc = 0;
}

void
sbuf_release(struct sbuf *sb)
{
    if (sb->alloc) {
        free(sb->buf);
    }
    sbuf_init(sb);
}

char *
sbuf_detach(struct sbuf *sb)
{
    char *s;

    if (sb->alloc == 0) {
        return xstrdup("");
    }
    s = sb->buf;
    sbuf_init(sb);
    return s;
}

void
sbuf_grow(struct sbuf *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;

    if (need <= sb->alloc) {
        return;
    }
    if (need < sb->alloc * 2) {
        need = sb->alloc * 2;
    }
    if (need < 64) {
        need = 64;
    }
    if (sb->alloc == 0) {
        sb->buf = xmalloc(need);
        sb->buf[0] = '\0';
    } else {
        sb->buf = xrealloc(sb->buf, need);
    }
    sb->alloc = need;
}

void
sbuf_add(struct sbuf *sb, const void *data, size_t n)
{
    sbuf_grow(sb, n);
    memcpy(sb->buf + sb->len, data, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void
sbuf_adds(struct sbuf *sb, const char *s)
{
    sbuf_add(sb, s, strlen(s));
}

void
sbuf_addch(struct sbuf *sb, char c)
{
    sbuf_grow(sb, 1);
    sb->buf[sb->len++] = c;
    sb->buf[sb->len] = '\0';
}

void
sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    char probe[1];
    int n;

    if (fmt == NULL) {
        return;
    }
    va_copy(cp, ap);
    n = vsnprintf(probe, sizeof(probe), fmt, cp);
    va_end(cp);
    if (n < 0) {
        return;
    }
    sbuf_grow(sb, (size_t)n);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void
sbuf_addf(struct sbuf *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sbuf_vaddf(sb, fmt, ap);
    va_end(ap);
}

void
sbuf_reset(struct sbuf *sb)
{
    sbuf_setlen(sb, 0);
}

void
sbuf_setlen(struct sbuf *sb, size_t len)
{
    if (sb->alloc == 0) {
        return;
    }
    sb->len = len;
    sb->buf[len] = '\0';
}

void
sbuf_add_json_str(struct sbuf *sb, const char *s)
{
    const unsigned char *p;

    sbuf_addch(sb, '"');
    for (p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':  sbuf_adds(sb, "\\\""); break;
        case '\\': sbuf_adds(sb, "\\\\"); break;
        case '\n': sbuf_adds(sb, "\\n"); break;
        case '\r': sbuf_adds(sb, "\\r"); break;
        case '\t': sbuf_adds(sb, "\\t"); break;
        case '\b': sbuf_adds(sb, "\\b"); break;
        case '\f': sbuf_adds(sb, "\\f"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                sbuf_addf(sb, "\\u%04x", *p);
            } else {
                sbuf_addch(sb, (char)*p);
            }
        }
    }
    sbuf_addch(sb, '"');
}
