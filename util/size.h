/*
 * size.h - byte sizes as users write them ("1.5G", "64k", "0x1000") and as
 * qemu-img and qemu-io print them ("1.5 GiB", "12.056 KiB").  Parsing is
 * exact (64-bit, with QEMU 7.2's fraction rounding); any thread.
 */
#ifndef UTIL_SIZE_H
#define UTIL_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Buffer sizes that always hold the results of the printers below. */
#define BLK_SIZE_STR_MAX 32
#define BLK_SIZE_STR_BYTES_MAX 64

/*
 * Parse a size (keyval.md section 9.2, QEMU's qemu_strtosz): optional
 * leading white space and '+', decimal digits, or 0x and hex digits (no
 * fraction, no suffix), or decimal digits with a '.' fraction; then one
 * optional suffix b k m g t p e (either case, powers of 1024).  Nothing
 * may follow.  A fraction needs a unit above bytes and is rounded half up
 * exactly as QEMU does (F64 = floor(F * 2^64) of the double F; a fraction
 * that rounds to 1.0 counts as 0, as QEMU 7.2 on x86-64 does).
 * Returns 0 and sets *out; -EINVAL for a malformed string (a '-' anywhere
 * included); -ERANGE for a well-formed value of 2^64 or more.  *out is
 * untouched on error.
 */
int blk_size_parse(const char *s, uint64_t *out);

/*
 * As blk_size_parse, but a number without suffix is in units of `unit`
 * bytes (1, or a power of 1024 up to 2^60; like QEMU's qemu_strtosz_MiB
 * with unit 2^20).  blk_size_parse(s, out) is blk_size_parse_unit(s, 1, out).
 *
 * Command-line sizes in qemu-img 7.2 (create's size argument, convert -S,
 * resize) and qemu-io 7.2 (offsets, lengths, patterns' sizes) use unit 1:
 * "1.5k" = 1536, "0x1000" = 4096, "1e" = 2^60, "010" = 10, " 5" = 5,
 * "+0x10" = 16; "1.5", "-1", "-0", "5 ", "0x", ".5k", "1.5e3" are invalid,
 * "16E" and "18446744073709551616" out of range.  qemu-img also rejects
 * values above INT64_MAX ("Must be between 0 and 9223372036854775807");
 * that range check is the caller's.  blk rejects "0x1k" (QEMU 7.2 warns
 * and accepts it).
 */
int blk_size_parse_unit(const char *s, uint64_t unit, uint64_t *out);

/*
 * Format v as QEMU's size_to_str does for qemu-img info: three significant
 * digits (printf "%0.3g") in the binary unit that keeps the number below
 * 1000: "0 B", "512 B", "977 KiB" (1000448), "1.5 GiB", "0.999 MiB",
 * "16 EiB".  QEMU's quirk is kept: 1023488 prints as "1e+03 KiB".
 * buf gets at most len bytes, NUL-terminated (BLK_SIZE_STR_MAX is enough).
 */
void blk_size_to_str(uint64_t v, char *buf, size_t len);

/*
 * qemu-img info's "virtual size" value: "64 MiB (67108864 bytes)".
 * BLK_SIZE_STR_BYTES_MAX is enough.
 */
void blk_size_to_str_bytes(uint64_t v, char *buf, size_t len);

/*
 * Format v as qemu-io's cvtstr does in its "N ops" lines: below 1 KiB
 * "1000 bytes"; else three decimals in the largest unit not above v,
 * "12.056 KiB", with an exact ".000" dropped ("1 MiB").  Also used for
 * rates (append "/sec" yourself).  BLK_SIZE_STR_MAX is enough.
 */
void blk_size_to_str_io(double v, char *buf, size_t len);

#endif
