/*
 * keyval.c - bench-keyval: how long parsing (and, with --type, schema
 * validation) of big option strings takes, per leaf, so that growth with
 * the number of keys is visible.  bench/keyval.sh feeds it generated
 * strings; any file holding one option string (keyval or JSON) works.
 * Times are CPU time of the process, so a busy machine inflates them less.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyval/kv.h"
#include "keyval/schema.h"

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t len = 0, cap = 1 << 16, n;
    char *buf;

    if (f == NULL) {
        perror(path);
        exit(1);
    }
    buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    while (len > 0 && buf[len - 1] == '\n') {
        len--;
    }
    buf[len] = '\0';
    return buf;
}

static size_t
count_leaves(const struct kv *kv)
{
    size_t i, n = 0;

    if (kv->type != KV_OBJECT && kv->type != KV_LIST) {
        return 1;
    }
    for (i = 0; i < kv->n; i++) {
        n += count_leaves(kv->vals[i]);
    }
    return n;
}

/* Best of several runs, in seconds; validate only when type is set. */
static double
time_run(const char *s, const struct kv_schema_type *type, bool validate,
         size_t *leaves)
{
    const char *implied = type ? kv_schema_implied_key(type) : NULL;
    double best = 1e9, start, t, total = 0;
    int runs;

    for (runs = 0; runs < 3 || (total < 0.3 && runs < 1000); runs++) {
        struct blk_error err = BLK_ERROR_INIT;
        bool is_json;
        struct kv *kv;

        start = now();
        kv = kv_parse(s, implied, NULL, &is_json, &err);
        if (kv != NULL && validate &&
            kv_validate(kv, type, is_json ? KV_MODE_JSON : KV_MODE_KEYVAL,
                        &err) < 0) {
            kv_free(kv);
            kv = NULL;
        }
        t = now() - start;
        if (kv == NULL) {
            fprintf(stderr, "bench-keyval: %s\n", err.msg);
            exit(1);
        }
        *leaves = count_leaves(kv);
        kv_free(kv);
        total += t;
        if (t < best) {
            best = t;
        }
    }
    return best;
}

int
main(int argc, char **argv)
{
    const struct kv_schema_type *type = NULL;
    int i = 1;

    if (argc > 2 && strcmp(argv[1], "--type") == 0) {
        type = kv_schema_lookup(argv[2]);
        if (type == NULL) {
            fprintf(stderr, "bench-keyval: unknown type '%s'\n", argv[2]);
            return 1;
        }
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: bench-keyval [--type TYPE] FILE...\n");
        return 1;
    }
    printf("%-28s %9s %8s %12s %15s\n", "input", "bytes", "leaves",
           "parse us/key", type ? "+validate us/key" : "");
    for (; i < argc; i++) {
        char *s = slurp(argv[i]);
        const char *name = strrchr(argv[i], '/');
        size_t leaves = 0;
        double parse = time_run(s, type, false, &leaves);

        printf("%-28s %9zu %8zu %12.3f", name ? name + 1 : argv[i], strlen(s),
               leaves, parse * 1e6 / (double)leaves);
        if (type != NULL) {
            double both = time_run(s, type, true, &leaves);

            printf(" %15.3f", both * 1e6 / (double)leaves);
        }
        printf("\n");
        free(s);
    }
    return 0;
}
