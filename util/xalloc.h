/*
 * xalloc.h - allocation helpers.  x* abort with a message on failure (for
 * small, program-controlled sizes); blk_try_malloc returns NULL (for sizes
 * read from images, which must become -ENOMEM).  Any thread.
 */
#ifndef UTIL_XALLOC_H
#define UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xzalloc(size_t n);                        /* zero-filled */
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xmemdup(const void *p, size_t n);

/* NULL when n is 0 or memory is short; never aborts. */
void *blk_try_malloc(size_t n);
void *blk_try_zalloc(size_t n);

/*
 * Memory aligned to align (a power of two, >= sizeof(void *)) for O_DIRECT
 * bounce buffers; free with free().  NULL on failure.
 */
void *blk_try_memalign(size_t align, size_t n);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef container_of
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#endif
