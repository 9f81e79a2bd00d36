/*
 * test-json.c - JSON option strings and json: filenames (keyval.md
 * sections 6 and 7): exact 64-bit integers, QEMU's extensions, and every
 * error text as qemu-img 7.2 prints it.
 */
#include <errno.h>
#include <stdlib.h>

#include "keyval/kv.h"
#include "tests/unit/unit.h"

struct jcase {
    const char *in;
    const char *out;            /* kv_to_json of the result, or NULL */
    const char *error;          /* expected error when out is NULL */
};

static const struct jcase cases[] = {
    { "{}", "{}", NULL },
    { " {\t\"a\" :\r\n1 } \n", "{\"a\":1}", NULL },
    { "{\"a\":[],\"b\":{},\"c\":[1,[2,{}]]}", "{\"a\":[],\"b\":{},\"c\":[1,[2,{}]]}",
      NULL },
    { "{\"t\":true,\"f\":false,\"n\":null}", "{\"t\":true,\"f\":false,\"n\":null}",
      NULL },
    /* Member order is kept; names are literal. */
    { "{\"z\":1,\"a\":2,\"file.filename\":\"x\"}",
      "{\"z\":1,\"a\":2,\"file.filename\":\"x\"}", NULL },

    /* Integers are exact. */
    { "{\"a\":9223372036854775807}", "{\"a\":9223372036854775807}", NULL },
    { "{\"a\":-9223372036854775808}", "{\"a\":-9223372036854775808}", NULL },
    { "{\"a\":18446744073709551615}", "{\"a\":18446744073709551615}", NULL },
    { "{\"a\":9223372036854775808}", "{\"a\":9223372036854775808}", NULL },
    { "{\"a\":9007199254740993}", "{\"a\":9007199254740993}", NULL },
    { "{\"a\":-0}", "{\"a\":0}", NULL },
    { "{\"a\":18446744073709551616}", NULL,
      "JSON number '18446744073709551616' cannot be represented exactly" },
    { "{\"a\":-9223372036854775809}", NULL,
      "JSON number '-9223372036854775809' cannot be represented exactly" },
    /* Fractions and exponents are doubles. */
    { "{\"a\":1.5}", "{\"a\":1.5}", NULL },
    { "{\"a\":1.0}", "{\"a\":1.0}", NULL },
    { "{\"a\":0.1}", "{\"a\":0.1}", NULL },
    { "{\"a\":-2.5e-3}", "{\"a\":-0.0025}", NULL },
    { "{\"a\":1E+2}", "{\"a\":100.0}", NULL },
    { "{\"a\":1e300}", "{\"a\":1e+300}", NULL },
    { "{\"a\":0.0}", "{\"a\":0.0}", NULL },
    { "{\"a\":1e400}", NULL, "JSON number '1e400' cannot be represented exactly" },
    { "{\"a\":-1e400}", NULL, "JSON number '-1e400' cannot be represented exactly" },
    { "{\"a\":1e-400}", NULL, "JSON number '1e-400' cannot be represented exactly" },

    /* Strings: single quotes, escapes, UTF-8. */
    { "{'driver':'null-co'}", "{\"driver\":\"null-co\"}", NULL },
    { "{'a\\'b':\"c'd\\'\"}", "{\"a'b\":\"c'd'\"}", NULL },
    { "{\"a\":'say \"hi\"'}", "{\"a\":\"say \\\"hi\\\"\"}", NULL },
    { "{\"a\":\"n\\u0041\"}", "{\"a\":\"nA\"}", NULL },
    { "{\"a\":\"\\u00e9\\u20AC\"}", "{\"a\":\"\\u00E9\\u20AC\"}", NULL },
    { "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\uD83D\\uDE00\"}", NULL },
    { "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "{\"a\":\"\\\"\\\\/\\b\\f\\n\\r\\t\"}",
      NULL },
    { "{\"a\":\"\xc3\xa9\xf0\x9f\x98\x80\"}", "{\"a\":\"\\u00E9\\uD83D\\uDE00\"}",
      NULL },
    { "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\\u0000\"}", NULL },
    { "{\"a\":\"\\u0000\"}", "{\"a\":\"\\u0000\"}", NULL },
    { "{\"a\":\"\\x\"}", NULL, "JSON parse error, invalid escape sequence in string" },
    { "{\"a\":\"\\U0041\"}", NULL,
      "JSON parse error, invalid escape sequence in string" },
    { "{\"a\":\"\\u12\"}", NULL,
      "JSON parse error, \\u12\" is not a valid Unicode character" },
    { "{\"a\":\"\\u00\"}", NULL,
      "JSON parse error, \\u00\" is not a valid Unicode character" },
    { "{\"a\":\"\\ud800\"}", NULL,
      "JSON parse error, \\ud800 is not a valid Unicode character" },
    { "{\"a\":\"\\udc00\"}", NULL,
      "JSON parse error, \\udc00 is not a valid Unicode character" },
    { "{\"a\":\"\\ud83dx\"}", NULL,
      "JSON parse error, \\ud83d is not a valid Unicode character" },
    { "{\"a\":\"\xc3\"}", NULL, "JSON parse error, invalid UTF-8 sequence in string" },
    { "{\"a\":\"\xed\xa0\x80\"}", NULL,
      "JSON parse error, invalid UTF-8 sequence in string" },
    { "{\"a\":\"\xf4\x90\x80\x80\"}", NULL,
      "JSON parse error, invalid UTF-8 sequence in string" },
    { "{\"a\":\"\xe0\x80\xaf\"}", NULL,
      "JSON parse error, invalid UTF-8 sequence in string" },
    { "{\"a\":\"\xff\"}", NULL, "JSON parse error, stray '\"\xff'" },
    { "{\"a\":\"x\ty\"}", NULL, "JSON parse error, stray '\"x\t'" },
    { "{\"a\":\"abc", NULL, "JSON parse error, stray '\"abc'" },
    { "{\"a\":\"\\u004", NULL, "JSON parse error, stray '\"\\u004'" },

    /* Grammar errors. */
    { "{\"a\":1,\"a\":2}", NULL, "JSON parse error, duplicate key" },
    { "{\"a\":1,\"a\":2", NULL, "JSON parse error, duplicate key" },
    { "{\"a\":1,\"a\":tru}", NULL, "JSON parse error, invalid keyword 'tru'" },
    { "{\"a\":{\"b\":1},\"c\":{\"b\":2}}", "{\"a\":{\"b\":1},\"c\":{\"b\":2}}", NULL },
    { "{", NULL, "JSON parse error, premature EOI" },
    { "{\"a\"", NULL, "JSON parse error, premature EOI" },
    { "{\"a\":", NULL, "JSON parse error, premature EOI" },
    { "{\"a\":1", NULL, "JSON parse error, premature EOI" },
    { "{\"a\":[", NULL, "JSON parse error, premature EOI" },
    { "{\"a\":[1", NULL, "JSON parse error, premature EOI" },
    { "{\"a\":1,}", NULL, "JSON parse error, expecting value" },
    { "{\"a\":[1,]}", NULL, "JSON parse error, expecting value" },
    { "{,}", NULL, "JSON parse error, expecting value" },
    { "{\"a\":}", NULL, "JSON parse error, expecting value" },
    { "{\"a\":,1}", NULL, "JSON parse error, expecting value" },
    { "{\"a\":[,1]}", NULL, "JSON parse error, expecting value" },
    { "{\"a\":True}", NULL, "JSON parse error, stray 'T'" },
    { "{\"a\":tru}", NULL, "JSON parse error, invalid keyword 'tru'" },
    { "{\"a\":tru", NULL, "JSON parse error, invalid keyword 'tru'" },
    { "{\"a\":trueabc}", NULL, "JSON parse error, invalid keyword 'trueabc'" },
    { "{\"a\" 1}", NULL, "JSON parse error, missing : in object pair" },
    { "{1:2}", NULL, "JSON parse error, key is not a string in object" },
    { "{\"a\":1 \"b\":2}", NULL, "JSON parse error, expected separator in dict" },
    { "{\"a\":1]", NULL, "JSON parse error, expected separator in dict" },
    { "{\"a\":1x}", NULL, "JSON parse error, expected separator in dict" },
    { "{\"a\":[1 2]}", NULL, "JSON parse error, expected separator in list" },
    { "{\"a\":[1 }", NULL, "JSON parse error, expected separator in list" },
    { "{\"a\":-}", NULL, "JSON parse error, stray '-}'" },
    { "{\"a\":-", NULL, "JSON parse error, stray '-'" },
    { "{\"a\":01}", NULL, "JSON parse error, stray '01'" },
    { "{\"a\":1.}", NULL, "JSON parse error, stray '1.}'" },
    { "{\"a\":1.", NULL, "JSON parse error, stray '1.'" },
    { "{\"a\":.5}", NULL, "JSON parse error, stray '.'" },
    { "{\"a\":1e}", NULL, "JSON parse error, stray '1e}'" },
    { "{\"a\":%d}", NULL, "JSON parse error, stray '%'" },
    /* A stray character anywhere in the value wins over grammar errors. */
    { "{\"a\" 1, #}", NULL, "JSON parse error, stray '#'" },
    { "{\"a\":1}x", NULL, "Expecting at most one JSON value" },
    { "{\"a\":1} {}", NULL, "Expecting at most one JSON value" },
    { "{\"a\":1}}", NULL, "Expecting at most one JSON value" },
    { "{\"a\":1}]", NULL, "Expecting at most one JSON value" },
    { "{\"a\":1}\xff", NULL, "Expecting at most one JSON value" },
    { "", NULL, "Expecting a JSON value" },
    { "  ", NULL, "Expecting a JSON value" },
    { "}", NULL, "JSON parse error, expecting value" },
    /* The top level must be an object. */
    { "[1]", NULL, "Invalid JSON object given" },
    { "\"x\"", NULL, "Invalid JSON object given" },
    { "1", NULL, "Invalid JSON object given" },
};

static void
test_table(void)
{
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct blk_error err = BLK_ERROR_INIT;
        struct kv *kv = kv_parse_json(cases[i].in, &err);

        if (cases[i].out != NULL) {
            struct sbuf sb = SBUF_INIT;

            if (!CHECK(kv != NULL)) {
                fprintf(stderr, "  input '%s': %s\n", cases[i].in, err.msg);
                continue;
            }
            kv_to_json(kv, &sb);
            CHECK_STR(sb.buf, cases[i].out);
            sbuf_release(&sb);
            kv_free(kv);
        } else {
            if (!CHECK(kv == NULL)) {
                fprintf(stderr, "  input '%s' parsed\n", cases[i].in);
                kv_free(kv);
                continue;
            }
            CHECK_INT(err.code, -EINVAL);
            CHECK_STR(err.msg, cases[i].error);
        }
    }
}

/* The node types and values behind the exact integers. */
static void
test_types(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *kv;

    kv = kv_parse_json("{\"max\":9223372036854775807,\"min\":-9223372036854775808,"
                       "\"umax\":18446744073709551615,\"p\":9007199254740993,"
                       "\"d\":1.5,\"s\":\"x\",\"b\":true,\"n\":null}", &err);
    CHECK(kv != NULL);
    CHECK_INT(kv_get(kv, "max")->type, KV_INT);
    CHECK(kv_get_int(kv, "max", 0) == INT64_MAX);
    CHECK(kv_get_int(kv, "min", 0) == INT64_MIN);
    CHECK_INT(kv_get(kv, "umax")->type, KV_UINT);
    CHECK(kv_get_uint(kv, "umax", 0) == UINT64_MAX);
    CHECK(kv_get_int(kv, "p", 0) == 9007199254740993LL);
    CHECK_INT(kv_get(kv, "d")->type, KV_NUMBER);
    CHECK(kv_get(kv, "d")->v.d == 1.5);
    CHECK_STR(kv_get_str(kv, "s", NULL), "x");
    CHECK(kv_get_bool(kv, "b", false));
    CHECK_INT(kv_get(kv, "n")->type, KV_NULL);
    kv_free(kv);

    /* Escapes decode to UTF-8 bytes; U+0000 is modified UTF-8, as QEMU. */
    kv = kv_parse_json("{\"e\":\"\\u00e9\\u20AC\",\"p\":\"\\ud83d\\ude00\","
                       "\"z\":\"a\\u0000b\",\"r\":\"\xc3\xa9\"}", &err);
    CHECK_STR(kv_get_str(kv, "e", NULL), "\xc3\xa9\xe2\x82\xac");
    CHECK_STR(kv_get_str(kv, "p", NULL), "\xf0\x9f\x98\x80");
    CHECK_STR(kv_get_str(kv, "z", NULL), "a\xc0\x80" "b");
    CHECK_STR(kv_get_str(kv, "r", NULL), "\xc3\xa9");
    kv_free(kv);
}

/* 1024 nested containers are fine (QEMU's limit); 1025 are an error. */
static void
test_depth(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf sb = SBUF_INIT;
    struct kv *kv;
    int i;

    for (i = 0; i < 1024; i++) {
        sbuf_adds(&sb, i % 2 ? "[" : "{\"a\":");
    }
    for (i = 1023; i >= 0; i--) {
        sbuf_adds(&sb, i % 2 ? "]" : "}");
    }
    /* Odd levels are lists holding nothing but the next object. */
    kv = kv_parse_json(sb.buf, &err);
    CHECK(kv != NULL);
    kv_free(kv);

    sbuf_reset(&sb);
    for (i = 0; i < 1025; i++) {
        sbuf_adds(&sb, "{\"a\":");
    }
    sbuf_adds(&sb, "1");
    for (i = 0; i < 1025; i++) {
        sbuf_adds(&sb, "}");
    }
    CHECK(kv_parse_json(sb.buf, &err) == NULL);
    CHECK_STR(err.msg, "JSON nesting depth limit exceeded");

    /* Far deeper input, even unterminated, stops at the limit. */
    blk_error_clear(&err);
    sbuf_reset(&sb);
    for (i = 0; i < 100000; i++) {
        sbuf_addch(&sb, '[');
    }
    CHECK(kv_parse_json(sb.buf, &err) == NULL);
    CHECK_STR(err.msg, "JSON nesting depth limit exceeded");
    sbuf_release(&sb);
}

/* Big objects: duplicate detection stays exact with the key index. */
static void
test_big_object(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf sb = SBUF_INIT;
    struct kv *kv;
    int i;

    sbuf_addch(&sb, '{');
    for (i = 0; i < 5000; i++) {
        sbuf_addf(&sb, "%s\"k%d\":%d", i ? "," : "", i, i);
    }
    sbuf_addch(&sb, '}');
    kv = kv_parse_json(sb.buf, &err);
    CHECK(kv != NULL && kv->n == 5000);
    CHECK_INT(kv_get_int(kv, "k4321", -1), 4321);
    kv_free(kv);

    sbuf_setlen(&sb, sb.len - 1);
    sbuf_adds(&sb, ",\"k17\":0}");
    CHECK(kv_parse_json(sb.buf, &err) == NULL);
    CHECK_STR(err.msg, "JSON parse error, duplicate key");
    sbuf_release(&sb);
}

struct fcase {
    const char *in;
    const char *out;
    const char *error;
};

static const struct fcase fcases[] = {
    { "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"a.qcow2\"}}",
      "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"a.qcow2\"}}",
      NULL },
    { "json: \n{\"driver\":\"qcow2\",\"file.driver\":\"file\",\"file.filename\":\"a.qcow2\"}",
      "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"a.qcow2\"}}",
      NULL },
    /* Dotted and nested names merge. */
    { "json:{\"file\":{\"driver\":\"file\"},\"file.filename\":\"a\"}",
      "{\"file\":{\"driver\":\"file\",\"filename\":\"a\"}}", NULL },
    { "json:{\"file.filename\":\"a\",\"file\":{\"driver\":\"file\"}}",
      "{\"file\":{\"filename\":\"a\",\"driver\":\"file\"}}", NULL },
    { "json:{\"a\":{\"b.c\":1},\"a.b.d\":2}", "{\"a\":{\"b\":{\"c\":1,\"d\":2}}}", NULL },
    /* The same leaf twice: the last one wins, as for keyval items. */
    { "json:{\"a\":{\"b\":1},\"a.b\":2}", "{\"a\":{\"b\":2}}", NULL },
    /* Leaves keep their JSON types; strings stay strings. */
    { "json:{\"read-only\":\"on\",\"size\":1024,\"x.y\":null,\"z\":[1,{\"p.q\":true}]}",
      "{\"read-only\":\"on\",\"size\":1024,\"x\":{\"y\":null},\"z\":[1,{\"p\":{\"q\":true}}]}",
      NULL },
    /* Index names become lists, like keyval's. */
    { "json:{\"children.1\":\"b\",\"children.0\":\"a\"}", "{\"children\":[\"a\",\"b\"]}",
      NULL },
    { "json:{\"c.0.driver\":\"file\",\"c.00.filename\":\"x\"}",
      "{\"c\":[{\"driver\":\"file\",\"filename\":\"x\"}]}", NULL },
    { "json:{\"a\":{}}", "{\"a\":{}}", NULL },
    { "json:{}", "{}", NULL },
    /* Conflicts are section 3's errors. */
    { "json:{\"file\":\"x\",\"file.filename\":\"a\"}", NULL,
      "Parameters 'file.*' used inconsistently" },
    { "json:{\"file.filename\":\"a\",\"file\":\"x\"}", NULL,
      "Parameters 'file.*' used inconsistently" },
    { "json:{\"a\":{\"b\":1},\"a.b.c\":2}", NULL,
      "Parameters 'a.b.*' used inconsistently" },
    { "json:{\"a.1\":\"b\"}", NULL, "Parameter 'a.0' missing" },
    { "json:{\"a\":{\"0\":1,\"b\":2}}", NULL, "Parameters 'a.*' used inconsistently" },
    /* JSON errors get QEMU's prefix. */
    { "json:{", NULL, "Could not parse the JSON options: JSON parse error, premature EOI" },
    { "json:", NULL, "Could not parse the JSON options: Expecting a JSON value" },
    { "json:{\"a\":1,\"a\":2}", NULL,
      "Could not parse the JSON options: JSON parse error, duplicate key" },
    { "json:{'a':1} x", NULL,
      "Could not parse the JSON options: Expecting at most one JSON value" },
    { "json:[1]", NULL, "Invalid JSON object given" },
    { "json:\"x\"", NULL, "Invalid JSON object given" },
    { "json:1", NULL, "Invalid JSON object given" },
    { "a.qcow2", NULL, "'a.qcow2' is not a json: filename" },
};

static void
test_filenames(void)
{
    size_t i;

    CHECK(kv_is_json_filename("json:{}"));
    CHECK(kv_is_json_filename("json:"));
    CHECK(!kv_is_json_filename("JSON:{}"));
    CHECK(!kv_is_json_filename(" json:{}"));
    CHECK(!kv_is_json_filename("a.qcow2"));

    for (i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
        struct blk_error err = BLK_ERROR_INIT;
        struct kv *kv = kv_parse_json_filename(fcases[i].in, &err);

        if (fcases[i].out != NULL) {
            struct sbuf sb = SBUF_INIT;

            if (!CHECK(kv != NULL)) {
                fprintf(stderr, "  input '%s': %s\n", fcases[i].in, err.msg);
                continue;
            }
            kv_to_json(kv, &sb);
            CHECK_STR(sb.buf, fcases[i].out);
            sbuf_release(&sb);
            kv_free(kv);
        } else {
            if (!CHECK(kv == NULL)) {
                kv_free(kv);
                continue;
            }
            CHECK_STR(err.msg, fcases[i].error);
        }
    }
}

/* JSON -> keyval -> parse gives the original back when leaves are strings. */
static void
test_round_trip(void)
{
    static const char *inputs[] = {
        "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"a,b\"}}",
        "{\"children\":[\"f0\",{\"driver\":\"file\",\"filename\":\"b.img\"}],"
        "\"vote-threshold\":\"2\"}",
        "{\"a\":[[\"x\",\"y,,\"],[\"\"]],\"b\":\"=\"}",
        "{\"s\":\"help\",\"t\":\"?\",\"u\":\" sp ace \"}",
    };
    size_t i;

    for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct blk_error err = BLK_ERROR_INIT;
        struct kv *a = kv_parse_json(inputs[i], &err), *b;
        char *s;

        CHECK(a != NULL);
        s = kv_to_keyval(a, &err);
        CHECK(s != NULL);
        b = kv_parse_keyval(s, NULL, NULL, &err);
        if (!CHECK(kv_equal(a, b))) {
            fprintf(stderr, "  %s -> %s\n", inputs[i], s);
        }
        free(s);
        kv_free(a);
        kv_free(b);
    }
}

int
main(void)
{
    test_table();
    test_types();
    test_depth();
    test_big_object();
    test_filenames();
    test_round_trip();
    return unit_done();
}
