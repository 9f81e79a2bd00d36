/*
 * iov.c - scatter/gather list helpers: copy, fill, zero tests, slicing,
 * and the growable struct iov_vec.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/iov.h"
#include "util/xalloc.h"

size_t
iov_size(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    int i;

    for (i = 0; i < cnt; i++) {
        n += iov[i].iov_len;
    }
    return n;
}

/*
 * Find the entry holding byte *off of the list; on return *off is the
 * offset inside that entry.  Returns cnt if the list is shorter.
 */
static int
iov_find(const struct iovec *iov, int cnt, size_t *off)
{
    int i = 0;

    while (i < cnt && *off >= iov[i].iov_len) {
        *off -= iov[i].iov_len;
        i++;
    }
    return i;
}

size_t
iov_memset(const struct iovec *iov, int cnt, size_t off, int c, size_t n)
{
    size_t done = 0;
    int i = iov_find(iov, cnt, &off);

    for (; i < cnt && done < n; i++, off = 0) {
        size_t k = iov[i].iov_len - off;

        if (k > n - done) {
            k = n - done;
        }
        memset((char *)iov[i].iov_base + off, c, k);
        done += k;
    }
    return done;
}

size_t
iov_from_buf(const struct iovec *iov, int cnt, size_t off, const void *buf,
             size_t n)
{
    size_t done = 0;
    int i = iov_find(iov, cnt, &off);

    for (; i < cnt && done < n; i++, off = 0) {
        size_t k = iov[i].iov_len - off;

        if (k > n - done) {
            k = n - done;
        }
        memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, k);
        done += k;
    }
    return done;
}

size_t
iov_to_buf(const struct iovec *iov, int cnt, size_t off, void *buf, size_t n)
{
    size_t done = 0;
    int i = iov_find(iov, cnt, &off);

    for (; i < cnt && done < n; i++, off = 0) {
        size_t k = iov[i].iov_len - off;

        if (k > n - done) {
            k = n - done;
        }
        memcpy((char *)buf + done, (const char *)iov[i].iov_base + off, k);
        done += k;
    }
    return done;
}

size_t
iov_copy(const struct iovec *dst, int dcnt, size_t doff,
         const struct iovec *src, int scnt, size_t soff, size_t n)
{
    size_t done = 0;
    int s = iov_find(src, scnt, &soff);

    for (; s < scnt && done < n; s++, soff = 0) {
        size_t k = src[s].iov_len - soff;
        size_t got;

        if (k > n - done) {
            k = n - done;
        }
        got = iov_from_buf(dst, dcnt, doff + done,
                           (const char *)src[s].iov_base + soff, k);
        done += got;
        if (got < k) {
            break;
        }
    }
    return done;
}

static inline uint64_t
load64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

bool
buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end = p + len;

    /* Small buffers, and the bytes up to the first aligned word. */
    while (p < end && ((uintptr_t)p & 7) != 0) {
        if (*p++ != 0) {
            return false;
        }
    }
    /* 64 bytes per step; the OR lets the compiler vectorize. */
    while (end - p >= 64) {
        uint64_t t = load64(p) | load64(p + 8) | load64(p + 16) |
                     load64(p + 24) | load64(p + 32) | load64(p + 40) |
                     load64(p + 48) | load64(p + 56);

        if (t != 0) {
            return false;
        }
        p += 64;
    }
    while (end - p >= 8) {
        if (load64(p) != 0) {
            return false;
        }
        p += 8;
    }
    while (p < end) {
        if (*p++ != 0) {
            return false;
        }
    }
    return true;
}

bool
iov_is_zero(const struct iovec *iov, int cnt, size_t off, size_t n)
{
    size_t done = 0;
    int i = iov_find(iov, cnt, &off);

    for (; i < cnt && done < n; i++, off = 0) {
        size_t k = iov[i].iov_len - off;

        if (k > n - done) {
            k = n - done;
        }
        if (!buffer_is_zero((const char *)iov[i].iov_base + off, k)) {
            return false;
        }
        done += k;
    }
    return true;
}

int
iov_slice(const struct iovec *src, int srccnt, size_t off, size_t len,
          struct iovec *dst, int dstmax)
{
    size_t done = 0;
    int used = 0;
    int i = iov_find(src, srccnt, &off);

    for (; i < srccnt && done < len; i++, off = 0) {
        size_t k = src[i].iov_len - off;

        if (k == 0) {
            continue;
        }
        if (k > len - done) {
            k = len - done;
        }
        if (used == dstmax) {
            return -1;
        }
        dst[used].iov_base = (char *)src[i].iov_base + off;
        dst[used].iov_len = k;
        used++;
        done += k;
    }
    return used;
}

void
iov_vec_init(struct iov_vec *v)
{
    v->iov = NULL;
    v->cnt = 0;
    v->alloc = 0;
}

void
iov_vec_release(struct iov_vec *v)
{
    free(v->iov);
    iov_vec_init(v);
}

void
iov_vec_reset(struct iov_vec *v)
{
    v->cnt = 0;
}

void
iov_vec_add(struct iov_vec *v, void *base, size_t len)
{
    struct iovec *last;

    if (len == 0) {
        return;
    }
    last = v->cnt > 0 ? &v->iov[v->cnt - 1] : NULL;
    if (last != NULL && (char *)last->iov_base + last->iov_len == base) {
        last->iov_len += len;
        return;
    }
    if (v->cnt == v->alloc) {
        v->alloc = v->alloc ? v->alloc * 2 : 8;
        v->iov = xrealloc(v->iov, (size_t)v->alloc * sizeof(*v->iov));
    }
    v->iov[v->cnt].iov_base = base;
    v->iov[v->cnt].iov_len = len;
    v->cnt++;
}

void
iov_vec_add_slice(struct iov_vec *v, const struct iovec *src, int srccnt,
                  size_t off, size_t len)
{
    size_t done = 0;
    int i = iov_find(src, srccnt, &off);

    for (; i < srccnt && done < len; i++, off = 0) {
        size_t k = src[i].iov_len - off;

        if (k > len - done) {
            k = len - done;
        }
        iov_vec_add(v, (char *)src[i].iov_base + off, k);
        done += k;
    }
}

size_t
iov_vec_size(const struct iov_vec *v)
{
    return iov_size(v->iov, v->cnt);
}
