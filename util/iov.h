/*
 * iov.h - helpers for scatter/gather lists (struct iovec arrays): sizes,
 * copying to and from flat buffers, zero tests, and slicing a request's
 * list into pieces.  Pure functions on caller-owned memory; any thread.
 */
#ifndef UTIL_IOV_H
#define UTIL_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Total bytes in the cnt entries of iov. */
size_t iov_size(const struct iovec *iov, int cnt);

/*
 * Set n bytes of the list, starting at byte off of it, to c.  Stops at the
 * end of the list; returns the number of bytes set.
 */
size_t iov_memset(const struct iovec *iov, int cnt, size_t off, int c,
                  size_t n);

/* Copy n bytes from buf into the list at byte off; returns bytes copied. */
size_t iov_from_buf(const struct iovec *iov, int cnt, size_t off,
                    const void *buf, size_t n);

/* Copy n bytes from the list at byte off into buf; returns bytes copied. */
size_t iov_to_buf(const struct iovec *iov, int cnt, size_t off, void *buf,
                  size_t n);

/*
 * Copy n bytes from src (at byte soff) to dst (at byte doff); the lists
 * must not overlap.  Returns bytes copied (less than n at either end).
 */
size_t iov_copy(const struct iovec *dst, int dcnt, size_t doff,
                const struct iovec *src, int scnt, size_t soff, size_t n);

/*
 * Whether all len bytes at buf are zero.  Fast: compares machine words,
 * 64 bytes per step, and returns at the first non-zero block.
 */
bool buffer_is_zero(const void *buf, size_t len);

/*
 * Whether the n bytes of the list at byte off are all zero (bytes past the
 * end of the list don't count).
 */
bool iov_is_zero(const struct iovec *iov, int cnt, size_t off, size_t n);

/*
 * Describe bytes [off, off+len) of src with entries pointing into the same
 * memory, written to dst (room for dstmax entries).  Returns the number of
 * entries used, or -1 if dstmax is too small; a range past the end of src
 * is cut at the end.  dst may not alias src.
 */
int iov_slice(const struct iovec *src, int srccnt, size_t off, size_t len,
              struct iovec *dst, int dstmax);

/*
 * A growable list of iovec entries.  Invariant: iov holds cnt used
 * entries of alloc allocated ones (iov is NULL while alloc is 0).  The
 * memory the entries point to is never owned by the list.
 */
struct iov_vec {
    struct iovec *iov;
    int cnt;
    int alloc;
};

#define IOV_VEC_INIT { NULL, 0, 0 }

void iov_vec_init(struct iov_vec *v);
/* Free the entry array; v is empty (re-initialized) afterwards. */
void iov_vec_release(struct iov_vec *v);
/* Forget the entries, keeping the array. */
void iov_vec_reset(struct iov_vec *v);
/* Append one entry (merged into the last one if it continues it). */
void iov_vec_add(struct iov_vec *v, void *base, size_t len);
/* Append the entries describing [off, off+len) of src (see iov_slice). */
void iov_vec_add_slice(struct iov_vec *v, const struct iovec *src, int srccnt,
                       size_t off, size_t len);
/* Total bytes of the entries. */
size_t iov_vec_size(const struct iov_vec *v);

#endif
