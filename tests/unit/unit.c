/*
 * unit.c - counters and reports for tests/unit/unit.h.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "tests/unit/unit.h"

unsigned unit_pass, unit_fail;

int
unit_check(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        unit_pass++;
    } else {
        unit_fail++;
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    }
    return ok;
}

int
unit_check_str(const char *got, const char *want, const char *what,
               const char *file, int line)
{
    int ok = (got == NULL && want == NULL) ||
             (got != NULL && want != NULL && strcmp(got, want) == 0);

    if (!ok) {
        fprintf(stderr, "%s:%d: %s\n    got:  %s\n    want: %s\n", file, line,
                what, got ? got : "(null)", want ? want : "(null)");
    }
    return unit_check(ok, what, file, line);
}

int
unit_check_int(long long got, long long want, const char *what,
               const char *file, int line)
{
    if (got != want) {
        fprintf(stderr, "%s:%d: %s: got %lld, want %lld\n", file, line, what,
                got, want);
    }
    return unit_check(got == want, what, file, line);
}

int
unit_done(void)
{
    printf("%u passed, %u failed\n", unit_pass, unit_fail);
    return unit_fail ? 1 : 0;
}

int
unit_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

char *
unit_sh_out(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    FILE *f;
    char *buf = calloc(1, 1 << 16);
    size_t n;

    if (buf == NULL) {
        abort();
    }
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    f = popen(cmd, "r");
    if (f == NULL) {
        return buf;
    }
    n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    pclose(f);
    return buf;
}
