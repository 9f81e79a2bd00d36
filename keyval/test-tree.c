/*
 * test-tree.c - the option tree in kv.c: constructors, member access
 * (small and hash-indexed big objects), copies, comparison, path lookup
 * and both JSON printers.
 */
#include <math.h>
#include <stdlib.h>

#include "keyval/kv.h"
#include "tests/unit/unit.h"

static char *
json(const struct kv *kv)
{
    struct sbuf sb = SBUF_INIT;

    kv_to_json(kv, &sb);
    return sbuf_detach(&sb);
}

static char *
pretty(const struct kv *kv)
{
    struct sbuf sb = SBUF_INIT;

    kv_to_json_pretty(kv, &sb, 0);
    return sbuf_detach(&sb);
}

#define CHECK_JSON(kv, want) do { \
        char *s_ = json(kv); CHECK_STR(s_, want); free(s_); \
    } while (0)

static void
test_scalars(void)
{
    struct kv *kv;

    kv = kv_new_uint(5);
    CHECK_INT(kv->type, KV_INT);                /* fits: stored as KV_INT */
    CHECK_JSON(kv, "5");
    kv_free(kv);
    kv = kv_new_uint(UINT64_MAX);
    CHECK_INT(kv->type, KV_UINT);
    CHECK_JSON(kv, "18446744073709551615");
    kv_free(kv);
    kv = kv_new_int(INT64_MIN);
    CHECK_JSON(kv, "-9223372036854775808");
    kv_free(kv);
    kv = kv_new_number(0.1);
    CHECK_JSON(kv, "0.1");
    kv_free(kv);
    kv = kv_new_number(1.0 / 3);
    CHECK_JSON(kv, "0.3333333333333333");
    kv_free(kv);
    kv = kv_new_number(-2);
    CHECK_JSON(kv, "-2.0");
    kv_free(kv);
    kv = kv_new_number(1e300);
    CHECK_JSON(kv, "1e+300");
    kv_free(kv);
    kv = kv_new_number(INFINITY);
    CHECK_JSON(kv, "null");                     /* JSON has no infinity */
    kv_free(kv);
    kv = kv_new_str("a\"b\\c\n\x01");
    CHECK_JSON(kv, "\"a\\\"b\\\\c\\n\\u0001\"");
    kv_free(kv);
    /* Like qemu-img: ASCII only, \\u upper case, U+FFFD for bad bytes. */
    kv = kv_new_str("\xc3\xa9\x7f\xf0\x9f\x98\x80\x01\"q\xff.\xc0\x80\xed\xa0\x80\xe2\x82");
    CHECK_JSON(kv, "\"\\u00E9\\u007F\\uD83D\\uDE00\\u0001\\\"q\\uFFFD.\\u0000"
               "\\uFFFD\\uFFFD\"");
    kv_free(kv);
    kv = kv_new_bool(false);
    CHECK_JSON(kv, "false");
    kv_free(kv);
    kv = kv_new_null();
    CHECK_JSON(kv, "null");
    kv_free(kv);
    kv_free(NULL);
}

static void
test_members(void)
{
    struct kv *obj = kv_new_object(), *v;

    kv_set(obj, "b", kv_new_str("1"));
    kv_set(obj, "a", kv_new_int(2));
    kv_set(obj, "b", kv_new_str("3"));          /* replaces, keeps its place */
    CHECK_JSON(obj, "{\"b\":\"3\",\"a\":2}");
    CHECK_STR(kv_get_str(obj, "b", NULL), "3");
    CHECK_STR(kv_get_str(obj, "a", "dflt"), "dflt");    /* wrong type */
    CHECK_STR(kv_get_str(obj, "zz", "dflt"), "dflt");
    CHECK_INT(kv_get_int(obj, "a", 0), 2);
    CHECK_INT(kv_get_uint(obj, "a", 0), 2);
    CHECK(kv_get_bool(obj, "a", true));
    CHECK(kv_get(obj, "c") == NULL);

    v = kv_take(obj, "b");
    CHECK_STR(v->v.s, "3");
    kv_free(v);
    CHECK(kv_take(obj, "b") == NULL);
    CHECK_JSON(obj, "{\"a\":2}");

    /* kv_get on a non-object is NULL, not a crash. */
    v = kv_new_list();
    CHECK(kv_get(v, "a") == NULL);
    kv_append(v, kv_new_int(-1));
    CHECK_INT(kv_get_uint(obj, "nope", 7), 7);
    kv_set(obj, "l", v);
    CHECK(kv_get_uint(obj, "l", 9) == 9);       /* a list is not an integer */
    kv_set(obj, "neg", kv_new_int(-1));
    CHECK(kv_get_uint(obj, "neg", 0) == UINT64_MAX);    /* modulo 2^64 */
    kv_free(obj);
}

/* Objects big enough for the hash index behave exactly like small ones. */
static void
test_big_objects(void)
{
    struct kv *obj = kv_new_object(), *v;
    char key[32];
    int i, ok = 1;

    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        kv_set(obj, key, kv_new_int(i));
    }
    CHECK_INT(obj->n, 20000);
    for (i = 0; i < 20000; i += 7) {
        snprintf(key, sizeof(key), "k%d", i);
        ok &= kv_get_int(obj, key, -1) == i;
    }
    CHECK(ok);
    CHECK(kv_get(obj, "k20000") == NULL);

    /* Replacing keeps the count; taking removes and shifts. */
    kv_set(obj, "k5", kv_new_str("five"));
    CHECK_INT(obj->n, 20000);
    CHECK_STR(obj->keys[5], "k5");
    v = kv_take(obj, "k3");
    CHECK_INT(v->v.i, 3);
    kv_free(v);
    CHECK_INT(obj->n, 19999);
    CHECK(kv_get(obj, "k3") == NULL);
    CHECK_STR(kv_get_str(obj, "k5", NULL), "five");
    CHECK_INT(kv_get_int(obj, "k19999", -1), 19999);
    kv_set(obj, "k3", kv_new_int(33));
    CHECK_STR(obj->keys[obj->n - 1], "k3");
    CHECK_INT(kv_get_int(obj, "k3", -1), 33);

    /* Take down to a small object and back. */
    for (i = 0; i < 19995; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        kv_free(kv_take(obj, key));
    }
    CHECK_INT(obj->n, 5);
    CHECK_INT(kv_get_int(obj, "k19997", -1), 19997);
    CHECK(kv_get(obj, "k100") == NULL);
    kv_free(obj);
}

static void
test_dup_equal(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *a, *b, *c;

    a = kv_parse_json("{\"x\":[1,2.5,\"s\",null,true,{\"y\":18446744073709551615}],"
                      "\"z\":{}}", &err);
    b = kv_dup(a);
    CHECK(a != b && kv_equal(a, b));
    CHECK_JSON(b, "{\"x\":[1,2.5,\"s\",null,true,{\"y\":18446744073709551615}],"
               "\"z\":{}}");

    /* Member order does not matter for objects, element order does for lists. */
    c = kv_parse_json("{\"z\":{},\"x\":[1,2.5,\"s\",null,true,"
                      "{\"y\":18446744073709551615}]}", &err);
    CHECK(kv_equal(a, c));
    kv_free(c);
    c = kv_parse_json("{\"z\":{},\"x\":[2.5,1,\"s\",null,true,"
                      "{\"y\":18446744073709551615}]}", &err);
    CHECK(!kv_equal(a, c));
    kv_free(c);

    /* Types matter: 1 is not 1.0 nor "1". */
    kv_free(b);
    c = kv_parse_json("{\"a\":1}", &err);
    b = kv_parse_json("{\"a\":1.0}", &err);
    CHECK(!kv_equal(c, b));
    kv_free(b);
    b = kv_parse_json("{\"a\":\"1\"}", &err);
    CHECK(!kv_equal(c, b));
    kv_free(b);
    b = kv_parse_json("{\"a\":1,\"b\":1}", &err);
    CHECK(!kv_equal(c, b));
    CHECK(!kv_equal(b, c));
    kv_free(b);
    CHECK(kv_equal(NULL, NULL));
    CHECK(!kv_equal(c, NULL));
    kv_free(c);
    CHECK(kv_dup(NULL) == NULL);
    kv_free(a);
}

static void
test_lookup(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *t = kv_parse_keyval("file.filename=a,children.0=f0,"
                                   "children.1.driver=file,x.y.z=1", NULL,
                                   NULL, &err);

    CHECK_STR(kv_lookup(t, "file.filename")->v.s, "a");
    CHECK_STR(kv_lookup(t, "children.0")->v.s, "f0");
    CHECK_STR(kv_lookup(t, "children.1.driver")->v.s, "file");
    CHECK_INT(kv_lookup(t, "children")->type, KV_LIST);
    CHECK_INT(kv_lookup(t, "x.y")->type, KV_OBJECT);
    CHECK(kv_lookup(t, "children.2") == NULL);
    CHECK(kv_lookup(t, "children.x") == NULL);
    CHECK(kv_lookup(t, "children.-1") == NULL);
    CHECK(kv_lookup(t, "file.filename.x") == NULL);
    CHECK(kv_lookup(t, "nope") == NULL);
    CHECK(kv_lookup(t, "file.") == NULL);
    kv_free(t);
}

/* qemu-img info --output=json layout (observed with qemu-img 7.2). */
static void
test_pretty(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *t;
    char *s;

    t = kv_parse_json("{\"virtual-size\":1048576,\"filename\":\"a.qcow2\","
                      "\"format-specific\":{\"type\":\"qcow2\",\"data\":"
                      "{\"compat\":\"1.1\",\"bitmaps\":[],\"x\":{}}},"
                      "\"l\":[1,[2],{\"k\":true}],\"dirty-flag\":false}", &err);
    s = pretty(t);
    CHECK_STR(s,
              "{\n"
              "    \"virtual-size\": 1048576,\n"
              "    \"filename\": \"a.qcow2\",\n"
              "    \"format-specific\": {\n"
              "        \"type\": \"qcow2\",\n"
              "        \"data\": {\n"
              "            \"compat\": \"1.1\",\n"
              "            \"bitmaps\": [\n"
              "            ],\n"
              "            \"x\": {\n"
              "            }\n"
              "        }\n"
              "    },\n"
              "    \"l\": [\n"
              "        1,\n"
              "        [\n"
              "            2\n"
              "        ],\n"
              "        {\n"
              "            \"k\": true\n"
              "        }\n"
              "    ],\n"
              "    \"dirty-flag\": false\n"
              "}");
    free(s);
    kv_free(t);

    t = kv_new_object();
    s = pretty(t);
    CHECK_STR(s, "{\n}");
    free(s);
    kv_free(t);

    t = kv_new_int(3);
    s = pretty(t);
    CHECK_STR(s, "3");
    free(s);
    kv_free(t);

    /* A starting level indents the closing bracket (for embedding). */
    {
        struct sbuf sb = SBUF_INIT;

        t = kv_parse_json("{\"a\":1}", &err);
        kv_to_json_pretty(t, &sb, 1);
        CHECK_STR(sb.buf, "{\n        \"a\": 1\n    }");
        sbuf_release(&sb);
        kv_free(t);
    }
}

int
main(void)
{
    test_scalars();
    test_members();
    test_big_objects();
    test_dup_equal();
    test_lookup();
    test_pretty();
    return unit_done();
}
