/*
 * error.c - the blk_error idiom: first error wins, NULL err is allowed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

int
blk_error_set(struct blk_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (code >= 0) {
        code = -EIO;
    }
    if (err == NULL || err->code < 0) {
        return code;
    }
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int
blk_error_setsys(struct blk_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    if (code >= 0) {
        code = -EIO;
    }
    if (err == NULL || err->code < 0) {
        return code;
    }
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    n = strlen(err->msg);
    snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(-code));
    return code;
}

void
blk_error_prefix(struct blk_error *err, const char *fmt, ...)
{
    char prefix[sizeof(err->msg)];
    char old[sizeof(err->msg)];
    va_list ap;

    if (err == NULL || err->code >= 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    {
        size_t pl = strnlen(prefix, sizeof(err->msg) - 1);
        size_t ol = strnlen(old, sizeof(err->msg) - 1 - pl);

        memcpy(err->msg, prefix, pl);
        memcpy(err->msg + pl, old, ol);
        err->msg[pl + ol] = '\0';
    }
}

void
blk_error_clear(struct blk_error *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

int
blk_error_propagate(struct blk_error *dst, const struct blk_error *src)
{
    if (dst != NULL && dst->code >= 0 && src->code < 0) {
        *dst = *src;
    }
    return src->code;
}
