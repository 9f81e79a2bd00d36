/*
 * error.h - blk's one error idiom: actions return 0 or -errno and fill a
 * caller-owned struct blk_error with a one-phrase message.
 * Any thread; a blk_error is owned by whoever declared it.
 */
#ifndef UTIL_ERROR_H
#define UTIL_ERROR_H

#include <stdbool.h>

struct blk_error {
    int code;                   /* < 0 once set, 0 while clear */
    char msg[512];              /* one phrase, lower case, no trailing period */
};

#define BLK_ERROR_INIT { 0, { 0 } }

/*
 * Record an error.  Keeps only the first one: a second call on a set error
 * changes nothing.  err may be NULL (the error is dropped).  code must be
 * negative.  Returns code, so callers write `return blk_error_set(...)`.
 */
int blk_error_set(struct blk_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As blk_error_set, with the message followed by ": strerror(-code)". */
int blk_error_setsys(struct blk_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend context to a set error ("opening 'a.qcow2': ").  No-op if clear. */
void blk_error_prefix(struct blk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Forget the error (code 0, empty message). */
void blk_error_clear(struct blk_error *err);

static inline bool
blk_error_is_set(const struct blk_error *err)
{
    return err != NULL && err->code < 0;
}

/*
 * Copy src into dst if dst is still clear (first error wins).  Returns
 * src->code.
 */
int blk_error_propagate(struct blk_error *dst, const struct blk_error *src);

#endif
