/*
 * sbuf.h - a growable NUL-terminated string buffer (git's strbuf, small).
 * Invariant: buf is never NULL after sbuf_init; buf[len] == '\0'.
 */
#ifndef UTIL_SBUF_H
#define UTIL_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
    char *buf;
    size_t len;                 /* bytes used, excluding the NUL */
    size_t alloc;               /* bytes allocated; 0 while buf is the empty "" */
};

#define SBUF_INIT { sbuf_empty, 0, 0 }
extern char sbuf_empty[];

void sbuf_init(struct sbuf *sb);
void sbuf_release(struct sbuf *sb);             /* frees; sb is re-initialized */
char *sbuf_detach(struct sbuf *sb);             /* caller frees the result */
void sbuf_grow(struct sbuf *sb, size_t extra);
void sbuf_add(struct sbuf *sb, const void *data, size_t n);
void sbuf_adds(struct sbuf *sb, const char *s);
void sbuf_addch(struct sbuf *sb, char c);
void sbuf_addf(struct sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap);
void sbuf_reset(struct sbuf *sb);               /* len = 0, keeps memory */
void sbuf_setlen(struct sbuf *sb, size_t len);  /* len <= sb->len */
/* Append s as a JSON string literal, quotes included. */
void sbuf_add_json_str(struct sbuf *sb, const char *s);

#endif
