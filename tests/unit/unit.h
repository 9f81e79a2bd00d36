/*
 * unit.h - the tiny harness every C unit test (the test-NAME.c files) uses.
 * CHECK() records a failure and goes on; the test's main() ends with
 * `return unit_done();`, which prints "N passed, N failed" (one check
 * is one pass or fail) and returns the exit code.
 */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H

#undef NDEBUG
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

extern unsigned unit_pass, unit_fail;

/* The six placeholder characters mkstemp(3)/mkdtemp(3) replace. */
#define UNIT_MKTEMP_SUFFIX "\x58\x58\x58\x58\x58\x58"

#define CHECK(cond) unit_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_STR(got, want) unit_check_str((got), (want), #got, __FILE__, __LINE__)
#define CHECK_INT(got, want) \
    unit_check_int((long long)(got), (long long)(want), #got, __FILE__, __LINE__)

int unit_check(int ok, const char *what, const char *file, int line);
int unit_check_str(const char *got, const char *want, const char *what,
                   const char *file, int line);
int unit_check_int(long long got, long long want, const char *what,
                   const char *file, int line);
int unit_done(void);

/* Run a shell command built with printf's format; returns system(3)'s status. */
int unit_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, returning its standard output (at most 64 KiB; caller frees). */
char *unit_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
