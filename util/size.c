/*
 * size.c - parse and print byte sizes the way QEMU 7.2 does (qemu_strtosz,
 * size_to_str, qemu-io's cvtstr), with exact 64-bit arithmetic.
 */
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* The fraction ".digits" at p as a double, independent of the locale. */
static double
parse_fraction(const char *p, const char **end)
{
    char *e;
    double f;

    pthread_once(&c_locale_once, make_c_locale);
    if (c_locale != (locale_t)0) {
        f = strtod_l(p, &e, c_locale);
    } else {
        f = strtod(p, &e);
    }
    *end = e;
    return f;
}

static bool
is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Multiplier for a suffix byte, or 0 if c is not a suffix. */
static uint64_t
suffix_mul(char c)
{
    switch (c) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return UINT64_C(1) << 10;
    case 'm': case 'M': return UINT64_C(1) << 20;
    case 'g': case 'G': return UINT64_C(1) << 30;
    case 't': case 'T': return UINT64_C(1) << 40;
    case 'p': case 'P': return UINT64_C(1) << 50;
    case 'e': case 'E': return UINT64_C(1) << 60;
    }
    return 0;
}

/*
 * Read digits in base (10 or 16) at *pp into *v.  Returns the number of
 * digits read; *overflow tells whether the value exceeded 2^64-1.
 */
static size_t
read_digits(const char **pp, unsigned base, uint64_t *v, bool *overflow)
{
    const char *p = *pp;
    uint64_t x = 0;
    size_t n = 0;
    int d;

    *overflow = false;
    while ((d = hex_digit(*p)) >= 0 && (unsigned)d < base) {
        if (x > (UINT64_MAX - (unsigned)d) / base) {
            *overflow = true;
        } else {
            x = x * base + (unsigned)d;
        }
        p++;
        n++;
    }
    *pp = p;
    *v = x;
    return n;
}

int
blk_size_parse_unit(const char *s, uint64_t unit, uint64_t *out)
{
    const char *p = s;
    const char *digits;
    uint64_t ival, f64 = 0, mul;
    unsigned __int128 v;
    bool overflow;
    size_t n;

    while (is_space(*p)) {
        p++;
    }
    if (*p == '+') {
        p++;
    }
    digits = p;
    n = read_digits(&p, 10, &ival, &overflow);
    if (n == 0) {
        return -EINVAL;
    }
    if (overflow) {
        return *p == '\0' ? -ERANGE : -EINVAL;
    }

    if (n == 1 && *digits == '0' && (*p == 'x' || *p == 'X')) {
        /* Hexadecimal: no fraction, and (in blk) no suffix either. */
        p++;
        if (read_digits(&p, 16, &ival, &overflow) == 0 || *p != '\0') {
            return -EINVAL;
        }
        if (overflow) {
            return -ERANGE;
        }
        v = (unsigned __int128)ival * unit;
        if (v > UINT64_MAX) {
            return -ERANGE;
        }
        *out = (uint64_t)v;
        return 0;
    }

    if (*p == '.') {
        const char *end;
        double f;

        if (p[1] >= '0' && p[1] <= '9') {
            f = parse_fraction(p, &end);
            if (memchr(p, 'e', end - p) != NULL ||
                memchr(p, 'E', end - p) != NULL) {
                return -EINVAL;             /* an exponent: "1.5e3" */
            }
            /*
             * Scaling by 2^64 is exact; the conversion truncates.  A
             * fraction that rounded up to 1.0 wraps to 0 like QEMU's
             * (uint64_t)(1.0 * 0x1p64) does on x86-64.
             */
            if (f < 1.0) {
                f64 = (uint64_t)(f * 0x1p64);
            }
            p = end;
        } else {
            p++;                            /* "1." and "1.k" */
        }
    }

    mul = suffix_mul(*p);
    if (mul != 0) {
        p++;
    } else {
        mul = unit;
    }
    if (*p != '\0') {
        return -EINVAL;
    }
    if (mul == 1) {
        if (f64 != 0) {
            return -EINVAL;                 /* "1.5" or "0.5b" */
        }
        *out = ival;
        return 0;
    }
    v = (unsigned __int128)ival * mul;
    {
        unsigned __int128 frac = (unsigned __int128)f64 * mul;

        v += frac >> 64;
        v += ((uint64_t)frac >> 63) & 1;    /* round half up */
    }
    if (v > UINT64_MAX) {
        return -ERANGE;
    }
    *out = (uint64_t)v;
    return 0;
}

int
blk_size_parse(const char *s, uint64_t *out)
{
    return blk_size_parse_unit(s, 1, out);
}

void
blk_size_to_str(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = {
        "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
    };
    int e = 0, i;

    /*
     * The unit is 1024^i where 10*i + 1 <= binary exponent of v*1.024,
     * so the number printed stays below 1000 (except where %0.3g rounds
     * 999.5 up, as QEMU does too).
     */
    frexp((double)v / (1000.0 / 1024.0), &e);
    i = (e - 1) / 10;
    if (i < 0) {
        i = 0;
    }
    snprintf(buf, len, "%0.3g %s",
             (double)v / (double)(UINT64_C(1) << (i * 10)), units[i]);
}

void
blk_size_to_str_bytes(uint64_t v, char *buf, size_t len)
{
    char s[BLK_SIZE_STR_MAX];

    blk_size_to_str(v, s, sizeof(s));
    snprintf(buf, len, "%s (%" PRIu64 " bytes)", s, v);
}

void
blk_size_to_str_io(double v, char *buf, size_t len)
{
    static const char *const units[] = {
        " KiB", " MiB", " GiB", " TiB", " PiB", " EiB",
    };
    char num[BLK_SIZE_STR_MAX];
    const char *unit = " bytes";
    char *dot;
    int i;

    snprintf(num, sizeof(num), "%f", v);
    for (i = (int)(sizeof(units) / sizeof(units[0])) - 1; i >= 0; i--) {
        double u = ldexp(1.0, 10 * (i + 1));

        if (v >= u) {
            snprintf(num, sizeof(num), "%.3f", v / u);
            unit = units[i];
            break;
        }
    }
    dot = strstr(num, ".000");
    if (dot != NULL) {
        *dot = '\0';
    }
    snprintf(buf, len, "%s%s", num, unit);
}
