/*
 * xalloc.c - allocation helpers that abort, and try-helpers that do not.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void
die_oom(size_t n)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        die_oom(n);
    }
    return p;
}

void *
xzalloc(size_t n)
{
    return xcalloc(1, n ? n : 1);
}

void *
xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL) {
        die_oom(nmemb * size);
    }
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        die_oom(n);
    }
    return p;
}

char *
xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

char *
xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *
xmemdup(const void *src, size_t n)
{
    void *p = xmalloc(n);

    memcpy(p, src, n);
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0) {
        die_oom(0);
    }
    return s;
}

void *
blk_try_malloc(size_t n)
{
    return n ? malloc(n) : NULL;
}

void *
blk_try_zalloc(size_t n)
{
    return n ? calloc(1, n) : NULL;
}

void *
blk_try_memalign(size_t align, size_t n)
{
    void *p = NULL;

    if (posix_memalign(&p, align, n ? n : align) != 0) {
        return NULL;
    }
    return p;
}
