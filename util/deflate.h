/*
 * deflate.h - a fast one-shot raw deflate encoder for qcow2's zlib-type
 * compressed clusters: at most a 4 KiB window, because QEMU inflates
 * those clusters with inflateInit2(-12).  ISA-L's igzip when the build
 * found it (HAVE_ISAL), zlib otherwise.  Pure; any thread.
 */
#ifndef UTIL_DEFLATE_H
#define UTIL_DEFLATE_H

#include <stddef.h>
#include <sys/types.h>

/* The window every encoder here stays within: 2^12 = 4 KiB. */
#define BLK_DEFLATE_WINDOW_BITS 12

/*
 * Compress the inlen bytes at in as one complete raw deflate stream (no
 * zlib or gzip wrapper, final block set, back-references at most 4 KiB)
 * into out, which has room for outcap bytes.  Returns the number of bytes
 * written, -ENOSPC when the stream does not fit in outcap (the caller then
 * stores the data uncompressed), -ENOMEM or -EIO on an encoder failure.
 * inlen must be at most 2^31.  Thread-safe: no shared state besides a
 * per-thread scratch buffer (see blk_deflate_thread_release).
 */
ssize_t blk_deflate_raw(const void *in, size_t inlen, void *out,
                        size_t outcap);

/* The same contract, always with zlib (level 1): for tests and benchmarks. */
ssize_t blk_deflate_raw_zlib(const void *in, size_t inlen, void *out,
                             size_t outcap);

/*
 * The encoder in use, for messages and benchmarks: "isa-l" or "zlib".
 */
const char *blk_deflate_impl(void);

/*
 * Free the calling thread's scratch buffer, if any (tests under ASan call
 * it before exit; worker threads keep theirs for the process lifetime).
 */
void blk_deflate_thread_release(void);

#endif
