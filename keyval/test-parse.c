/*
 * test-parse.c - the dotted keyval parser (keyval.md sections 2, 3, 5):
 * one table of inputs with the tree (as JSON) or the exact error each must
 * give, covering what QEMU's own keyval unit tests check, plus the
 * corner cases of the spec and the kv_to_keyval round trip.
 */
#include <errno.h>
#include <stdlib.h>

#include "keyval/kv.h"
#include "tests/unit/unit.h"

enum help_mode { NO_HELP, HELP_OFFERED };

struct pcase {
    const char *in;
    const char *implied;        /* implied key or NULL */
    enum help_mode help;
    const char *tree;           /* expected tree as JSON, or NULL on error */
    const char *error;          /* expected error text when tree is NULL */
    bool want_help;             /* expected *help (HELP_OFFERED only) */
};

static char long127[128];                /* 127 times 'a', set by main */

static const struct pcase cases[] = {
    /* Items and values (2.2). */
    { "", NULL, NO_HELP, "{}", NULL, false },
    { "x=y,", NULL, NO_HELP, "{\"x\":\"y\"}", NULL, false },
    { ",", NULL, NO_HELP, NULL, "Invalid parameter ''", false },
    { ",a=1", NULL, NO_HELP, NULL, "Invalid parameter ''", false },
    { "a=1,,", NULL, NO_HELP, "{\"a\":\"1,\"}", NULL, false },
    { "a=1,,,", NULL, NO_HELP, "{\"a\":\"1,\"}", NULL, false },
    { "a=1,,,,", NULL, NO_HELP, "{\"a\":\"1,,\"}", NULL, false },
    { "a=1,,,,,", NULL, NO_HELP, "{\"a\":\"1,,\"}", NULL, false },
    { "a=1,b=2,", NULL, NO_HELP, "{\"a\":\"1\",\"b\":\"2\"}", NULL, false },
    { "a=1,b=2,,", NULL, NO_HELP, "{\"a\":\"1\",\"b\":\"2,\"}", NULL, false },
    { "a=1,,b=2", NULL, NO_HELP, "{\"a\":\"1,b=2\"}", NULL, false },
    { "a=", NULL, NO_HELP, "{\"a\":\"\"}", NULL, false },
    { "a=,b=", NULL, NO_HELP, "{\"a\":\"\",\"b\":\"\"}", NULL, false },
    { "a=b=c", NULL, NO_HELP, "{\"a\":\"b=c\"}", NULL, false },
    { "a=1,,b", NULL, NO_HELP, "{\"a\":\"1,b\"}", NULL, false },
    { "a=1,,,b=2", NULL, NO_HELP, "{\"a\":\"1,\",\"b\":\"2\"}", NULL, false },
    { "a=1,,,,b=2", NULL, NO_HELP, "{\"a\":\"1,,b=2\"}", NULL, false },
    { "a=x,,", NULL, NO_HELP, "{\"a\":\"x,\"}", NULL, false },
    { "a=x,,,", NULL, NO_HELP, "{\"a\":\"x,\"}", NULL, false },
    { "a= b ", NULL, NO_HELP, "{\"a\":\" b \"}", NULL, false },
    /* Values are bytes; JSON output escapes them as qemu-img does. */
    { "a=\xc3\xa9\xff", NULL, NO_HELP, "{\"a\":\"\\u00E9\\uFFFD\"}", NULL, false },
    { "x=,,id=bar", NULL, NO_HELP, "{\"x\":\",id=bar\"}", NULL, false },
    { "id=666", NULL, NO_HELP, "{\"id\":\"666\"}", NULL, false },
    { "a=1,b", NULL, NO_HELP, NULL, "Expected '=' after parameter 'b'", false },
    { "an,noaus,noaus=", NULL, NO_HELP, NULL,
      "Expected '=' after parameter 'an'", false },
    { "no", NULL, NO_HELP, NULL, "Expected '=' after parameter 'no'", false },
    { "a.b", NULL, NO_HELP, NULL, "Expected '=' after parameter 'a.b'", false },
    { "force-share", NULL, NO_HELP, NULL,
      "Expected '=' after parameter 'force-share'", false },

    /* Keys (2.3). */
    { "A=1,Ab-C_9=2", NULL, NO_HELP, "{\"A\":\"1\",\"Ab-C_9\":\"2\"}", NULL, false },
    { "a.b1=1,a.c-2=2", NULL, NO_HELP, "{\"a\":{\"b1\":\"1\",\"c-2\":\"2\"}}",
      NULL, false },
    { "_x=1", NULL, NO_HELP, NULL, "Invalid parameter '_x'", false },
    { "7up=val", NULL, NO_HELP, NULL, "Invalid parameter '7up'", false },
    { " a=1", NULL, NO_HELP, NULL, "Invalid parameter ' a'", false },
    { "a b=1", NULL, NO_HELP, NULL, "Invalid parameter 'a b'", false },
    { "\xc3\xa9=1", NULL, NO_HELP, NULL, "Invalid parameter '\xc3\xa9'", false },
    { "__com.redhat_foo=1", NULL, NO_HELP, "{\"__com.redhat_foo\":\"1\"}",
      NULL, false },
    { "__com.redhat_foo.bar=1", NULL, NO_HELP,
      "{\"__com.redhat_foo\":{\"bar\":\"1\"}}", NULL, false },
    { "a.__x-y_z=1", NULL, NO_HELP, "{\"a\":{\"__x-y_z\":\"1\"}}", NULL, false },
    { "__com=1", NULL, NO_HELP, NULL, "Invalid parameter '__com'", false },
    { "__com.redhat_=1", NULL, NO_HELP, NULL,
      "Invalid parameter '__com.redhat_'", false },
    { "a.0x=1", NULL, NO_HELP, NULL, "Invalid parameter 'a.0x'", false },
    { "a.-1=x", NULL, NO_HELP, NULL, "Invalid parameter 'a.-1'", false },
    { "a.00=1", NULL, NO_HELP, "{\"a\":[\"1\"]}", NULL, false },
    { ".=1", NULL, NO_HELP, NULL, "Invalid parameter '.'", false },
    { ".", NULL, NO_HELP, NULL, "Invalid parameter '.'", false },
    { "key.=1", NULL, NO_HELP, NULL, "Invalid parameter 'key.'", false },
    { "key.", NULL, NO_HELP, NULL, "Invalid parameter 'key.'", false },
    { ".a=1", NULL, NO_HELP, NULL, "Invalid parameter '.a'", false },
    { "a..b=1", NULL, NO_HELP, NULL, "Invalid parameter 'a..b'", false },
    { "=val", NULL, NO_HELP, NULL, "Invalid parameter ''", false },
    { "key[0]=val", NULL, NO_HELP, NULL, "Invalid parameter 'key[0]'", false },
    { "a=1,7up=2,b", NULL, NO_HELP, NULL, "Invalid parameter '7up'", false },

    /* Duplicates (2.4). */
    { "a=1,b=2,,x,a=3", NULL, NO_HELP, "{\"a\":\"3\",\"b\":\"2,x\"}", NULL, false },
    { "id=foo,id=bar", NULL, NO_HELP, "{\"id\":\"bar\"}", NULL, false },
    { "a.b.c=1,a.b.c=2,d=3", NULL, NO_HELP, "{\"a\":{\"b\":{\"c\":\"2\"}},\"d\":\"3\"}",
      NULL, false },

    /* The implied key (2.5). */
    { "an,aus=off,noaus=", "implied", NO_HELP,
      "{\"implied\":\"an\",\"aus\":\"off\",\"noaus\":\"\"}", NULL, false },
    { "val", "eins.zwei", NO_HELP, "{\"eins\":{\"zwei\":\"val\"}}", NULL, false },
    { "qcow2,file=f0", "driver", NO_HELP,
      "{\"driver\":\"qcow2\",\"file\":\"f0\"}", NULL, false },
    { "read-only=on,null-co", "driver", NO_HELP, NULL,
      "Expected '=' after parameter 'null-co'", false },
    { "null,,co", "driver", NO_HELP, NULL, "Invalid parameter ''", false },
    { "val,,ue", "implied", NO_HELP, NULL, "Invalid parameter ''", false },
    { ",,,read-only=on", "driver", NO_HELP, NULL, "Invalid parameter ''", false },
    { ",,,a=1", "implied", NO_HELP, NULL, "Invalid parameter ''", false },
    { "x.y,read-only=on", "driver", NO_HELP,
      "{\"driver\":\"x.y\",\"read-only\":\"on\"}", NULL, false },
    { "qcow2,read-only=on,driver=raw", "driver", NO_HELP,
      "{\"driver\":\"raw\",\"read-only\":\"on\"}", NULL, false },
    { "null-co,driver.x=1", "driver", NO_HELP, NULL,
      "Parameters 'driver.*' used inconsistently", false },
    { "=null-co", "driver", NO_HELP, NULL, "Invalid parameter ''", false },
    { "=val", "implied", NO_HELP, NULL, "Invalid parameter ''", false },
    { ",", "implied", NO_HELP, NULL, "Invalid parameter ''", false },
    { "v=a,l", "implied", NO_HELP, NULL, "Expected '=' after parameter 'l'", false },
    { "a b,c=d", "implied", NO_HELP, "{\"implied\":\"a b\",\"c\":\"d\"}", NULL, false },

    /* From items to a tree (3). */
    { "a.b=1,a=2", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently", false },
    { "a=1,a.b=2", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently", false },
    { "a.b=1,a.b.c=2", NULL, NO_HELP, NULL,
      "Parameters 'a.b.*' used inconsistently", false },
    { "a.b.c=1,a.b=2", NULL, NO_HELP, NULL,
      "Parameters 'a.b.*' used inconsistently", false },
    { "a=1,a.b", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently", false },
    /* Like QEMU: a fragment is checked, then its parent is entered. */
    { "a=1,a.b.%=2", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently",
      false },
    { "a=1,a.%=2", NULL, NO_HELP, NULL, "Invalid parameter 'a.%'", false },
    { "a=1,a.b.c=2", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently", false },
    { "list.0=null,list.2=zwei,list.1=eins", NULL, NO_HELP,
      "{\"list\":[\"null\",\"eins\",\"zwei\"]}", NULL, false },
    { "list.1=goner,list.0=null,list.01=eins,list.2=zwei", NULL, NO_HELP,
      "{\"list\":[\"null\",\"eins\",\"zwei\"]}", NULL, false },
    { "a.list.1=eins,a.list.00=null,a.list.2=zwei", NULL, NO_HELP,
      "{\"a\":{\"list\":[\"null\",\"eins\",\"zwei\"]}}", NULL, false },
    { "a.1.0=z,a.0.1=y,a.0.0=x", NULL, NO_HELP, "{\"a\":[[\"x\",\"y\"],[\"z\"]]}",
      NULL, false },
    { "a.0.b=1,a.1.b=2", NULL, NO_HELP, "{\"a\":[{\"b\":\"1\"},{\"b\":\"2\"}]}",
      NULL, false },
    { "a.0=,a.1=I,a.2.0=II", NULL, NO_HELP, "{\"a\":[\"\",\"I\",[\"II\"]]}",
      NULL, false },
    { "a.0=null,a.1=1", NULL, NO_HELP, "{\"a\":[\"null\",\"1\"]}", NULL, false },
    { "list.1=lonely", NULL, NO_HELP, NULL, "Parameter 'list.0' missing", false },
    { "list.0=a,list.2=b", NULL, NO_HELP, NULL, "Parameter 'list.1' missing", false },
    { "list.0=null,list.2=eins,list.02=zwei", NULL, NO_HELP, NULL,
      "Parameter 'list.1' missing", false },
    { "a.9999999999=x", NULL, NO_HELP, NULL, "Parameter 'a.0' missing", false },
    { "a.99999999999999999999999999=x", NULL, NO_HELP, NULL,
      "Parameter 'a.0' missing", false },
    { "x.a.0.2=q,x.a.0.0=p", NULL, NO_HELP, NULL, "Parameter 'x.a.0.1' missing", false },
    { "a.b.c=1,a.b.0=2", NULL, NO_HELP, NULL,
      "Parameters 'a.b.*' used inconsistently", false },
    { "a.0.c=1,a.b.c=2", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently",
      false },
    { "a.0=x,a.b=y", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently", false },
    { "0=1", NULL, NO_HELP, NULL, "Invalid parameter '0'", false },
    { "list.1=x,b=1,c", NULL, NO_HELP, NULL, "Expected '=' after parameter 'c'", false },

    /* Help (5). */
    { "help", NULL, HELP_OFFERED, "{}", NULL, true },
    { "?", NULL, HELP_OFFERED, "{}", NULL, true },
    { "help", "implied", HELP_OFFERED, "{}", NULL, true },
    { "help", NULL, NO_HELP, NULL, "Help is not available for this option", false },
    { "help", "implied", NO_HELP, NULL, "Help is not available for this option", false },
    { "a=1,?", NULL, NO_HELP, NULL, "Help is not available for this option", false },
    { "help=on", NULL, HELP_OFFERED, "{\"help\":\"on\"}", NULL, false },
    { "help.x=1", NULL, HELP_OFFERED, "{\"help\":{\"x\":\"1\"}}", NULL, false },
    { "a=help", NULL, HELP_OFFERED, "{\"a\":\"help\"}", NULL, false },
    { "helpme", NULL, HELP_OFFERED, NULL, "Expected '=' after parameter 'helpme'",
      false },
    { "help.abc", NULL, HELP_OFFERED, NULL,
      "Expected '=' after parameter 'help.abc'", false },
    { "help.abc", "implied", HELP_OFFERED, "{\"implied\":\"help.abc\"}", NULL, false },
    { "number=42,help,foo=bar", NULL, HELP_OFFERED,
      "{\"number\":\"42\",\"foo\":\"bar\"}", NULL, true },
    { "val,help,foo=bar", "implied", HELP_OFFERED,
      "{\"implied\":\"val\",\"foo\":\"bar\"}", NULL, true },
    { "qcow2,help", "driver", HELP_OFFERED, "{\"driver\":\"qcow2\"}", NULL, true },
    { "help,qcow2", "driver", HELP_OFFERED, NULL,
      "Expected '=' after parameter 'qcow2'", false },
    { "help,", NULL, HELP_OFFERED, "{}", NULL, true },
    { "help,,", NULL, HELP_OFFERED, NULL, "Invalid parameter ''", false },
    /* Syntax errors win over help, wherever they are. */
    { "driver=null-co,help,=x", NULL, HELP_OFFERED, NULL, "Invalid parameter ''",
      false },
    { "driver=null-co,help,=x", NULL, NO_HELP, NULL, "Invalid parameter ''", false },
    { "help,a=1,a.b=2", NULL, NO_HELP, NULL, "Parameters 'a.*' used inconsistently",
      false },
    /* ... and unwanted help wins over list assembly. */
    { "a.1=x,help", NULL, NO_HELP, NULL, "Help is not available for this option",
      false },
    { "a.1=x,help", NULL, HELP_OFFERED, NULL, "Parameter 'a.0' missing", false },

    /* Strings that look like JSON are keyval to this parser (1). */
    { " {\"a\":1}", NULL, NO_HELP, NULL, "Invalid parameter ' {\"a\":1}'", false },
    { "[1]", NULL, NO_HELP, NULL, "Invalid parameter '[1]'", false },
};

static void
test_table(void)
{
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pcase *c = &cases[i];
        struct blk_error err = BLK_ERROR_INIT;
        bool help = !c->want_help;
        struct kv *kv;

        kv = kv_parse_keyval(c->in, c->implied,
                             c->help == HELP_OFFERED ? &help : NULL, &err);
        if (c->tree != NULL) {
            struct sbuf sb = SBUF_INIT;

            if (!CHECK(kv != NULL)) {
                fprintf(stderr, "  input '%s': %s\n", c->in, err.msg);
                continue;
            }
            kv_to_json(kv, &sb);
            CHECK_STR(sb.buf, c->tree);
            if (c->help == HELP_OFFERED) {
                CHECK_INT(help, c->want_help);
            }
            sbuf_release(&sb);
            kv_free(kv);
        } else {
            if (!CHECK(kv == NULL)) {
                fprintf(stderr, "  input '%s' parsed\n", c->in);
                kv_free(kv);
                continue;
            }
            CHECK_INT(err.code, -EINVAL);
            CHECK_STR(err.msg, c->error);
        }
    }
}

/* Fragment length limits: 127 bytes pass, 128 fail (2.3). */
static void
test_long_keys(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    char in[512], want[512];
    struct kv *kv;

    snprintf(in, sizeof(in), "%s=v", long127);
    kv = kv_parse_keyval(in, NULL, NULL, &err);
    CHECK_STR(kv_get_str(kv, long127, NULL), "v");
    kv_free(kv);

    snprintf(in, sizeof(in), "k.%s=v", long127);
    kv = kv_parse_keyval(in, NULL, NULL, &err);
    CHECK_STR(kv_get_str(kv_get(kv, "k"), long127, NULL), "v");
    kv_free(kv);

    snprintf(in, sizeof(in), "%sz=v", long127);
    CHECK(kv_parse_keyval(in, NULL, NULL, &err) == NULL);
    snprintf(want, sizeof(want), "Parameter '%sz' is too long", long127);
    CHECK_STR(err.msg, want);

    blk_error_clear(&err);
    snprintf(in, sizeof(in), "k.%sz=v", long127);
    CHECK(kv_parse_keyval(in, NULL, NULL, &err) == NULL);
    snprintf(want, sizeof(want), "Parameter fragment '%sz' is too long", long127);
    CHECK_STR(err.msg, want);

    blk_error_clear(&err);
    snprintf(in, sizeof(in), "%sz.k=v", long127);
    CHECK(kv_parse_keyval(in, NULL, NULL, &err) == NULL);
    snprintf(want, sizeof(want), "Parameter fragment '%sz' is too long", long127);
    CHECK_STR(err.msg, want);

    /* A long index is too long as well, even if its value is small. */
    blk_error_clear(&err);
    snprintf(in, sizeof(in), "k.0%s=v", long127);
    memset(in + 3, '0', 127);
    CHECK(kv_parse_keyval(in, NULL, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "Parameter fragment '000") == err.msg);
}

/* Deep keys are fine up to the limit, and then an error, not a crash. */
static void
test_deep_keys(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf in = SBUF_INIT;
    struct kv *kv;
    int i;

    for (i = 0; i < 1024; i++) {
        sbuf_adds(&in, i ? ".a" : "a");
    }
    sbuf_adds(&in, "=1");
    kv = kv_parse_keyval(in.buf, NULL, NULL, &err);
    CHECK(kv != NULL);
    kv_free(kv);

    sbuf_reset(&in);
    for (i = 0; i < 1025; i++) {
        sbuf_adds(&in, i ? ".0" : "a");
    }
    sbuf_adds(&in, "=1");
    CHECK(kv_parse_keyval(in.buf, NULL, NULL, &err) == NULL);
    CHECK_STR(err.msg, "Parameter 'a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0....' has "
              "more than 1024 fragments");
    sbuf_release(&in);
}

/* *help is reset to false when there is no help request. */
static void
test_help_flag(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    bool help = true;
    struct kv *kv;

    kv = kv_parse_keyval("a=1", NULL, &help, &err);
    CHECK(kv != NULL && !help);
    kv_free(kv);
}

/* kv_parse dispatches on the first byte only. */
static void
test_dispatch(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    bool is_json = false, help = true;
    struct kv *kv;

    kv = kv_parse("{\"a\":1}", "driver", &help, &is_json, &err);
    CHECK(kv != NULL && is_json && !help);
    CHECK_INT(kv_get_int(kv, "a", 0), 1);
    kv_free(kv);

    kv = kv_parse("qcow2", "driver", &help, &is_json, &err);
    CHECK(kv != NULL && !is_json);
    CHECK_STR(kv_get_str(kv, "driver", NULL), "qcow2");
    kv_free(kv);

    kv = kv_parse("", NULL, NULL, NULL, &err);
    CHECK(kv != NULL && kv->type == KV_OBJECT && kv->n == 0);
    kv_free(kv);

    CHECK(kv_parse("{", NULL, NULL, &is_json, &err) == NULL && is_json);
    CHECK_STR(err.msg, "JSON parse error, premature EOI");
}

/* Keyval output parses back to the same tree (all leaves strings). */
static void
test_round_trip(void)
{
    static const char *inputs[] = {
        "a=1", "a=1,,2,b=,c= x ,d==", "a.b.c=1,a.d=2,e=3",
        "list.0=a,list.1=b,,c,list.2.x=y", "a.0.0=x,a.0.1=y,a.1.0=z",
        "__com.redhat_foo.bar=1,x-y_z=help", "driver=qcow2,file.driver=file,"
        "file.filename=a,,b.qcow2,read-only=on,cache.direct=off",
    };
    size_t i;

    for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct blk_error err = BLK_ERROR_INIT;
        struct kv *a, *b;
        char *s;

        a = kv_parse_keyval(inputs[i], NULL, NULL, &err);
        CHECK(a != NULL);
        s = kv_to_keyval(a, &err);
        CHECK_STR(s, inputs[i]);        /* these are written canonically */
        b = kv_parse_keyval(s, NULL, NULL, &err);
        CHECK(kv_equal(a, b));
        free(s);
        kv_free(a);
        kv_free(b);
    }
}

/* What kv_to_keyval writes for typed leaves, and what it refuses. */
static void
test_to_keyval(void)
{
    static const struct {
        const char *json, *keyval, *error;
    } cases2[] = {
        { "{}", "", NULL },
        { "{\"a\":true,\"b\":false,\"c\":null,\"d\":-5,\"e\":18446744073709551615,"
          "\"f\":1.5,\"g\":\"x,y\"}",
          "a=on,b=off,c=null,d=-5,e=18446744073709551615,f=1.5,g=x,,y", NULL },
        { "{\"a\":[{\"b\":[1,2]},\"s\"]}", "a.0.b.0=1,a.0.b.1=2,a.1=s", NULL },
        { "{\"a\":{}}", NULL, "keyval cannot express the empty object 'a'" },
        { "{\"a\":{\"b\":[]}}", NULL, "keyval cannot express the empty list 'a.b'" },
        { "{\"a\":[1,[]]}", NULL, "keyval cannot express the empty list 'a.1'" },
        { "{\"file.filename\":\"x\"}", NULL,
          "'file.filename' is not a valid keyval key" },
        { "{\"a\":{\"0\":1}}", NULL, "'a.0' is not a valid keyval key" },
        { "{\"a b\":1}", NULL, "'a b' is not a valid keyval key" },
        { "{\"\":1}", NULL, "'' is not a valid keyval key" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases2) / sizeof(cases2[0]); i++) {
        struct blk_error err = BLK_ERROR_INIT;
        struct kv *kv = kv_parse_json(cases2[i].json, &err);
        char *s;

        CHECK(kv != NULL);
        s = kv_to_keyval(kv, &err);
        CHECK_STR(s, cases2[i].keyval);
        if (cases2[i].error != NULL) {
            CHECK_INT(err.code, -EINVAL);
            CHECK_STR(err.msg, cases2[i].error);
        }
        free(s);
        kv_free(kv);
    }

    {
        struct blk_error err = BLK_ERROR_INIT;
        struct kv *list = kv_new_list();

        CHECK(kv_to_keyval(list, &err) == NULL);
        CHECK_STR(err.msg, "keyval can only express an object");
        kv_free(list);
    }
}

int
main(void)
{
    memset(long127, 'a', 127);
    test_table();
    test_long_keys();
    test_deep_keys();
    test_help_flag();
    test_dispatch();
    test_round_trip();
    test_to_keyval();
    return unit_done();
}
