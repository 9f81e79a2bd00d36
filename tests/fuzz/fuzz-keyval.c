/*
 * fuzz-keyval.c - libFuzzer entry for blk's option parsers: every input
 * goes through kv_parse (keyval with implied key "driver", help offered,
 * or JSON), kv_parse_json_filename, schema validation against
 * BlockdevOptions, and the kv_to_keyval round trip, which must give back
 * an equal tree whenever it succeeds.  Crashes, sanitizer reports and
 * abort() on a broken invariant are findings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/kv.h"
#include "keyval/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: report it the way libFuzzer notices (abort). */
static void
fail(const char *what, const char *input)
{
    fprintf(stderr, "fuzz-keyval: %s for input '%s'\n", what, input);
    abort();
}

/* kv_to_keyval of tree must parse back to a tree equal after typing. */
static void
check_round_trip(const struct kv *tree, bool typed, const char *input)
{
    struct blk_error err = BLK_ERROR_INIT;
    const struct kv_schema_type *type;
    struct kv *again;
    char *s;

    s = kv_to_keyval(tree, &err);
    if (s == NULL) {
        return;                 /* keyval cannot say it: fine */
    }
    again = kv_parse_keyval(s, NULL, NULL, &err);
    if (again == NULL) {
        fail("kv_to_keyval output does not parse", input);
    }
    if (typed) {
        type = kv_schema_lookup("BlockdevOptions");
        if (kv_validate(again, type, KV_MODE_KEYVAL, &err) < 0) {
            fail("kv_to_keyval output does not validate", input);
        }
    }
    if (!kv_equal(tree, again)) {
        fail("kv_to_keyval round trip changed the tree", input);
    }
    kv_free(again);
    free(s);
}

/* Is s valid UTF-8 (C0 80 allowed, as the JSON parser allows it)? */
static bool
utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int n, i;

    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        if (p[0] == 0xc0 && p[1] == 0x80) {
            p += 2;
            continue;
        }
        n = *p >= 0xf0 && *p <= 0xf4 ? 4 : *p >= 0xe0 && *p <= 0xef ? 3 :
            *p >= 0xc2 && *p <= 0xdf ? 2 : 0;
        if (n == 0 || (*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] > 0x9f) ||
            (*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] > 0x8f)) {
            return false;
        }
        for (i = 1; i < n; i++) {
            if (p[i] < 0x80 || p[i] > 0xbf) {
                return false;
            }
        }
        p += n;
    }
    return true;
}

/* Are all leaves of tree strings (as keyval makes them)? */
static bool
all_strings(const struct kv *tree)
{
    size_t i;

    if (tree->type == KV_STRING) {
        return true;
    }
    if (tree->type != KV_OBJECT && tree->type != KV_LIST) {
        return false;
    }
    for (i = 0; i < tree->n; i++) {
        if (!all_strings(tree->vals[i])) {
            return false;
        }
    }
    return true;
}

/* Do all strings of tree hold valid UTF-8? */
static bool
tree_utf8(const struct kv *tree)
{
    size_t i;

    if (tree->type == KV_STRING) {
        return utf8_ok(tree->v.s);
    }
    for (i = 0; i < tree->n; i++) {
        if ((tree->keys != NULL && !utf8_ok(tree->keys[i])) ||
            !tree_utf8(tree->vals[i])) {
            return false;
        }
    }
    return true;
}

/* JSON output must be parseable JSON describing an equal tree. */
static void
check_json(const struct kv *tree, const char *input)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf sb = SBUF_INIT;
    struct kv *again;

    kv_to_json(tree, &sb);
    if (tree_utf8(tree)) {      /* keyval values may be any bytes */
        again = kv_parse_json(sb.buf, &err);
        if (again == NULL || !kv_equal(tree, again)) {
            fail("kv_to_json output does not parse back", input);
        }
        kv_free(again);
    }
    sbuf_reset(&sb);
    kv_to_json_pretty(tree, &sb, 0);
    sbuf_release(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct kv_schema_type *type;
    struct blk_error err = BLK_ERROR_INIT;
    char *s = malloc(size + 1);
    struct kv *tree;
    bool help = false, is_json = false;

    memcpy(s, data, size);
    s[size] = '\0';
    kv_schema_init();
    type = kv_schema_lookup("BlockdevOptions");

    tree = kv_parse(s, "driver", &help, &is_json, &err);
    if (tree != NULL) {
        check_json(tree, s);
        if (all_strings(tree)) {
            check_round_trip(tree, false, s);
        }
        blk_error_clear(&err);
        if (kv_validate(tree, type, is_json ? KV_MODE_JSON : KV_MODE_KEYVAL,
                        &err) == 0) {
            check_json(tree, s);
            if (!is_json) {
                /* Keyval in, typed, keyval out: the same typed tree. */
                check_round_trip(tree, true, s);
            }
        }
        kv_free(tree);
    }

    /* The same bytes as a json: pseudo-filename. */
    if (size < 4096) {
        char *name = malloc(size + 6);

        memcpy(name, "json:", 5);
        memcpy(name + 5, s, size + 1);
        blk_error_clear(&err);
        tree = kv_parse_json_filename(name, &err);
        if (tree != NULL) {
            check_json(tree, s);
            blk_error_clear(&err);
            kv_validate(tree, type, KV_MODE_LENIENT, &err);
            kv_free(tree);
        }
        free(name);
    }

    /* And as a string with no implied key and no help. */
    blk_error_clear(&err);
    tree = kv_parse_keyval(s, NULL, NULL, &err);
    if (tree != NULL) {
        check_round_trip(tree, false, s);
        kv_free(tree);
    }
    free(s);
    return 0;
}
