/*
 * compress.c - qcow2 cluster compression: zlib raw deflate with a 4 KiB
 * window (what QEMU writes and expects) and zstd frames.  Pure functions,
 * any thread; zlib-type clusters are encoded by util/deflate.h (ISA-L
 * igzip when available).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "block/qcow2/qcow2-int.h"
#include "util/deflate.h"

/* Raw deflate, 4 KiB window (what QEMU inflates): util/deflate.h's encoder. */
static int64_t
zlib_compress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    ssize_t n = blk_deflate_raw(src, src_len, dst, dst_len);

    if (n < 0) {
        return n == -ENOSPC ? -ENOSPC : -EIO;
    }
    return (int64_t)n;
}

static int
zlib_decompress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    z_stream s;
    int r, ret = 0;

    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, -12) != Z_OK) {
        return -EIO;
    }
    s.next_in = (Bytef *)src;
    s.avail_in = (uInt)src_len;
    s.next_out = dst;
    s.avail_out = (uInt)dst_len;
    r = inflate(&s, Z_FINISH);
    /* The input may have slack after the stream; a full output is success. */
    if ((r != Z_STREAM_END && r != Z_BUF_ERROR) || s.avail_out != 0) {
        ret = -EIO;
    }
    inflateEnd(&s);
    return ret;
}

/*
 * zstd level for compressed clusters.  QEMU 7.2 uses zstd's default (3);
 * level 1 is the fast end of zstd's regular levels: measured on the
 * bench/convert.sh data set it encodes 64 KiB clusters in 0.6 of the time
 * of level 3, with output no larger (small frames gain little from level
 * 3's deeper search).  Any level gives frames QEMU decodes; this is the
 * same trade as the zlib type's 4 KiB-window ISA-L encoder.
 */
#define ZSTD_CLUSTER_LEVEL 1

static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void
zstd_cctx_free(void *p)
{
    ZSTD_freeCCtx(p);
}

static void
zstd_key_init(void)
{
    if (pthread_key_create(&zstd_key, zstd_cctx_free) != 0) {
        abort();
    }
}

/*
 * This thread's compression context: creating one per cluster costs its
 * tables' allocation and set-up each time; pool threads keep theirs until
 * they exit.
 */
static ZSTD_CCtx *
zstd_cctx(void)
{
    ZSTD_CCtx *c;

    pthread_once(&zstd_once, zstd_key_init);
    c = pthread_getspecific(zstd_key);
    if (c == NULL) {
        c = ZSTD_createCCtx();
        if (c == NULL || pthread_setspecific(zstd_key, c) != 0) {
            ZSTD_freeCCtx(c);
            return NULL;
        }
    } else {
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    }
    return c;
}

static int64_t
zstd_compress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    ZSTD_CCtx *cctx = zstd_cctx();
    size_t r;

    if (cctx == NULL) {
        return -EIO;
    }
    r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel,
                               ZSTD_CLUSTER_LEVEL);
    if (ZSTD_isError(r)) {
        return -EIO;
    }
    /*
     * One-shot: the frame records its content size and zstd reads the
     * input in place (the streaming call copies it into its window).
     */
    r = ZSTD_compress2(cctx, dst, dst_len, src, src_len);
    if (ZSTD_isError(r)) {
        return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? -ENOSPC
                                                                   : -EIO;
    }
    return (int64_t)r;
}

static int
zstd_decompress(void *dst, size_t dst_len, const void *src, size_t src_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer in = { src, src_len, 0 };
    ZSTD_outBuffer out = { dst, dst_len, 0 };
    int ret = 0;

    if (dctx == NULL) {
        return -EIO;
    }
    /* Streaming: the stored size is rounded up to sectors, so frames may
     * be followed by slack; stop once the output is full. */
    while (out.pos < out.size) {
        size_t last_in = in.pos, last_out = out.pos;
        size_t r = ZSTD_decompressStream(dctx, &out, &in);

        if (ZSTD_isError(r)) {
            ret = -EIO;
            break;
        }
        if (r == 0 && out.pos < out.size && in.pos >= in.size) {
            ret = -EIO;
            break;
        }
        if (in.pos == last_in && out.pos == last_out) {
            ret = -EIO;
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}

int64_t
qcow2_compress(enum qcow2_compression type, void *dst, size_t dst_len,
               const void *src, size_t src_len)
{
    if (type == QCOW2_COMPRESSION_ZSTD) {
        return zstd_compress(dst, dst_len, src, src_len);
    }
    return zlib_compress(dst, dst_len, src, src_len);
}

int
qcow2_decompress(enum qcow2_compression type, void *dst, size_t dst_len,
                 const void *src, size_t src_len)
{
    if (type == QCOW2_COMPRESSION_ZSTD) {
        return zstd_decompress(dst, dst_len, src, src_len);
    }
    return zlib_decompress(dst, dst_len, src, src_len);
}
