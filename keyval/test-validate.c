/*
 * test-validate.c - typing option trees against the built-in schema
 * (keyval.md sections 8-10): conversions, unions, alternates, lists,
 * error texts with full paths, JSON strictness, the feature policy, and
 * the typed visitor cases of QEMU's tests/unit/test-keyval.c retold
 * against ad-hoc struct types.  Every accepted string is also printed
 * back with kv_to_keyval and must parse to the same typed tree.
 */
#include <stdlib.h>

#include "keyval/schema-int.h"
#include "tests/unit/unit.h"
#include "util/xalloc.h"

struct tcase {
    const char *type;           /* schema type name */
    const char *in;
    const char *out;            /* typed tree as JSON, or NULL for an error */
    const char *err;            /* expected message when out is NULL */
    bool no_round_trip;         /* keyval cannot say this tree (see below) */
};

#define OK(t, in, out) { t, in, out, NULL, false }
#define ERR(t, in, msg) { t, in, NULL, msg, false }
#define BD "BlockdevOptions"
#define CR "BlockdevCreateOptions"

static const struct tcase cases[] = {
    /* keyval.md section 13 */
    OK(BD, "qcow2,file.driver=file,file.filename=a,,b.qcow2,read-only=on,cache.direct=off",
       "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"a,b.qcow2\"},"
       "\"read-only\":true,\"cache\":{\"direct\":false}}"),
    OK(BD, "driver=qcow2,file=f0,backing=null,l2-cache-size=0x10000",
       "{\"driver\":\"qcow2\",\"file\":\"f0\",\"backing\":null,\"l2-cache-size\":65536}"),
    OK(BD, "driver=quorum,vote-threshold=2,children.0=f0,children.1.driver=file,"
       "children.1.filename=b.img",
       "{\"driver\":\"quorum\",\"vote-threshold\":2,\"children\":[\"f0\","
       "{\"driver\":\"file\",\"filename\":\"b.img\"}]}"),
    OK(CR, "qcow2,file=f0,size=1.5G,cluster-size=64k",
       "{\"driver\":\"qcow2\",\"file\":\"f0\",\"size\":1610612736,\"cluster-size\":65536}"),
    ERR(BD, "driver=null-co,read-only=ON", "Parameter 'read-only' expects 'on' or 'off'"),
    ERR(BD, "{\"driver\":\"null-co\",\"size\":\"1024\"}",
        "Invalid parameter type for 'size', expected: integer"),

    /* booleans */
    OK(BD, "null-co,read-only=on,force-share=yes,auto-read-only=true,read-zeroes=y",
       "{\"driver\":\"null-co\",\"read-only\":true,\"force-share\":true,"
       "\"auto-read-only\":true,\"read-zeroes\":true}"),
    OK(BD, "null-co,read-only=off,force-share=no,auto-read-only=false,read-zeroes=n",
       "{\"driver\":\"null-co\",\"read-only\":false,\"force-share\":false,"
       "\"auto-read-only\":false,\"read-zeroes\":false}"),
    ERR(BD, "null-co,read-only=1", "Parameter 'read-only' expects 'on' or 'off'"),
    ERR(BD, "null-co,read-only=", "Parameter 'read-only' expects 'on' or 'off'"),
    ERR(BD, "null-co,read-only=offer", "Parameter 'read-only' expects 'on' or 'off'"),

    /* integers (9.1) */
    OK(BD, "null-co,size=0x10000", "{\"driver\":\"null-co\",\"size\":65536}"),
    OK(BD, "null-co,size=010", "{\"driver\":\"null-co\",\"size\":8}"),
    OK(BD, "null-co,size=052", "{\"driver\":\"null-co\",\"size\":42}"),
    OK(BD, "null-co,size= +5", "{\"driver\":\"null-co\",\"size\":5}"),
    OK(BD, "null-co,size=-0x10", "{\"driver\":\"null-co\",\"size\":-16}"),
    OK(BD, "null-co,size=-9223372036854775808",
       "{\"driver\":\"null-co\",\"size\":-9223372036854775808}"),
    ERR(BD, "null-co,size=9223372036854775808", "Parameter 'size' expects integer"),
    ERR(BD, "null-co,size=08", "Parameter 'size' expects integer"),
    ERR(BD, "null-co,size=3.14", "Parameter 'size' expects integer"),
    ERR(BD, "null-co,size=1M", "Parameter 'size' expects integer"),
    ERR(BD, "null-co,size=5 ", "Parameter 'size' expects integer"),
    ERR(BD, "null-co,size=0x", "Parameter 'size' expects integer"),
    ERR(BD, "null-co,size=", "Parameter 'size' expects integer"),
    OK(BD, "null-co,latency-ns=0", "{\"driver\":\"null-co\",\"latency-ns\":0}"),
    OK(BD, "null-co,latency-ns=-1",
       "{\"driver\":\"null-co\",\"latency-ns\":18446744073709551615}"),
    OK(BD, "null-co,latency-ns=18446744073709551615",
       "{\"driver\":\"null-co\",\"latency-ns\":18446744073709551615}"),
    OK(BD, "null-co,latency-ns=0x2a", "{\"driver\":\"null-co\",\"latency-ns\":42}"),
    ERR(BD, "null-co,latency-ns=18446744073709551616", "Parameter 'latency-ns' expects integer"),
    ERR(BD, "null-co,latency-ns=-18446744073709551616", "Parameter 'latency-ns' expects integer"),
    /* narrow integers */
    OK(BD, "blkdebug,image=i,max-transfer=2147483647",
       "{\"driver\":\"blkdebug\",\"image\":\"i\",\"max-transfer\":2147483647}"),
    OK(BD, "blkdebug,image=i,max-transfer=-2147483648",
       "{\"driver\":\"blkdebug\",\"image\":\"i\",\"max-transfer\":-2147483648}"),
    ERR(BD, "blkdebug,image=i,max-transfer=2147483648", "Parameter 'max-transfer' expects int32_t"),
    ERR(BD, "blkdebug,image=i,max-transfer=0x7fffffff0", "Parameter 'max-transfer' expects int32_t"),
    ERR(BD, "blkdebug,image=i,max-transfer=x", "Parameter 'max-transfer' expects integer"),
    ERR(BD, "{\"driver\":\"blkdebug\",\"image\":\"i\",\"max-transfer\":4294967296}",
        "Parameter 'max-transfer' expects int32_t"),

    /* sizes (9.2), through BlockdevCreateOptionsFile */
    OK(CR, "file,filename=f,size=0", "{\"driver\":\"file\",\"filename\":\"f\",\"size\":0}"),
    OK(CR, "file,filename=f,size=1.5k", "{\"driver\":\"file\",\"filename\":\"f\",\"size\":1536}"),
    OK(CR, "file,filename=f,size=010", "{\"driver\":\"file\",\"filename\":\"f\",\"size\":10}"),
    OK(CR, "file,filename=f,size=0.1G", "{\"driver\":\"file\",\"filename\":\"f\",\"size\":107374182}"),
    OK(CR, "file,filename=f,size=9007199254740993",
       "{\"driver\":\"file\",\"filename\":\"f\",\"size\":9007199254740993}"),
    OK(CR, "file,filename=f,size=18446744073709551615",
       "{\"driver\":\"file\",\"filename\":\"f\",\"size\":18446744073709551615}"),
    OK(CR, "file,filename=f,size=16777215T",
       "{\"driver\":\"file\",\"filename\":\"f\",\"size\":18446742974197923840}"),
    OK(CR, "file,filename=f,size=8b,extent-size-hint=1M",
       "{\"driver\":\"file\",\"filename\":\"f\",\"size\":8,\"extent-size-hint\":1048576}"),
    ERR(CR, "file,filename=f,size=-1", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=18446744073709551616", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=16777216T", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=0Z", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=16Gi", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=0x1k", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=1.5", "Parameter 'size' expects size"),
    ERR(CR, "file,filename=f,size=4kB", "Parameter 'size' expects size"),

    /* enums */
    OK(BD, "null-co,discard=unmap,detect-zeroes=unmap",
       "{\"driver\":\"null-co\",\"discard\":\"unmap\",\"detect-zeroes\":\"unmap\"}"),
    ERR(BD, "null-co,discard=UNMAP", "Parameter 'discard' does not accept value 'UNMAP'"),
    ERR(BD, "null-co,discard=", "Parameter 'discard' does not accept value ''"),
    ERR(BD, "null-co,discard.x=1", "Parameters 'discard.*' are unexpected"),
    ERR(BD, "qcow2,file.driver=file,file.filename=a,file.locking=maybe",
        "Parameter 'file.locking' does not accept value 'maybe'"),
    ERR(BD, "driver=bogus", "Parameter 'driver' does not accept value 'bogus'"),
    /* an enum value of QEMU's without a blk branch */
    ERR(BD, "driver=nbd", "Parameter 'driver' does not accept value 'nbd'"),
    ERR(CR, "driver=raw", "Parameter 'driver' does not accept value 'raw'"),

    /* structure: missing, unexpected, wrong shape, schema order */
    ERR(BD, "", "Parameter 'driver' is missing"),
    ERR(BD, "foo=bar", "Parameter 'driver' is missing"),
    ERR(BD, "driver=qcow2", "Parameter 'file' is missing"),
    ERR(BD, "driver=qcow2,file.filenam=x", "Parameter 'file.driver' is missing"),
    ERR(BD, "driver=qcow2,file.driver=file,file.filenam=x",
        "Parameter 'file.filename' is missing"),
    ERR(BD, "driver=null-co,foo=bar", "Parameter 'foo' is unexpected"),
    ERR(BD, "driver=null-co,filename=x", "Parameter 'filename' is unexpected"),
    ERR(BD, "driver=null-co,cache.foo=on", "Parameter 'cache.foo' is unexpected"),
    ERR(BD, "driver=null-co,cache=on", "Invalid parameter type for 'cache', expected: object"),
    ERR(BD, "driver=null-co,read-only.x=1", "Parameters 'read-only.*' are unexpected"),
    ERR(BD, "driver=null-co,node-name.0=x", "Parameters 'node-name.*' are unexpected"),
    /* a missing member is reported before an unexpected one */
    ERR(BD, "driver=qcow2,foo=1", "Parameter 'file' is missing"),
    /* the base is visited before the branch */
    ERR(BD, "driver=qcow2,file=f,cache.x=1,lazy-refcounts=maybe",
        "Parameter 'cache.x' is unexpected"),
    ERR(BD, "qcow2,file=f,encrypt.foo=1", "Parameter 'encrypt.format' is missing"),
    ERR(BD, "qcow2,file=f,encrypt.format=luks,encrypt.foo=1",
        "Parameter 'encrypt.foo' is unexpected"),
    OK(BD, "qcow2,file=f,encrypt.format=luks,encrypt.key-secret=s0",
       "{\"driver\":\"qcow2\",\"file\":\"f\",\"encrypt\":{\"format\":\"luks\","
       "\"key-secret\":\"s0\"}}"),
    OK(BD, "driver=null-co,node-name=1abc", "{\"driver\":\"null-co\",\"node-name\":\"1abc\"}"),
    OK(BD, "null-co,driver=raw,file=f", "{\"driver\":\"raw\",\"file\":\"f\"}"),

    /* lists */
    ERR(BD, "driver=quorum,vote-threshold=1,children=f0",
        "Invalid parameter type for 'children', expected: array"),
    ERR(BD, "driver=quorum,vote-threshold=1,children.0.driver=file",
        "Parameter 'children.0.filename' is missing"),
    ERR(BD, "driver=quorum,vote-threshold=1,children.0=a,children.1.driver=file,"
        "children.1.filename=x,children.1.foo=1", "Parameter 'children.1.foo' is unexpected"),
    ERR(BD, "driver=quorum,vote-threshold=1,children.0.driver=file,children.0.filename=x,"
        "children.0.locking=maybe", "Parameter 'children.0.locking' does not accept value 'maybe'"),
    OK(BD, "quorum,vote-threshold=1,children.0=,children.1=I",
       "{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":[\"\",\"I\"]}"),
    OK(BD, "blkdebug,image=i,take-child-perms.0=write,take-child-perms.1=resize",
       "{\"driver\":\"blkdebug\",\"image\":\"i\",\"take-child-perms\":[\"write\",\"resize\"]}"),
    ERR(BD, "blkdebug,image=i,take-child-perms.0=write,take-child-perms.1=all",
        "Parameter 'take-child-perms.1' does not accept value 'all'"),
    OK(BD, "blkdebug,image=i,inject-error.0.event=l2_load,inject-error.0.errno=28,"
       "inject-error.0.once=on",
       "{\"driver\":\"blkdebug\",\"image\":\"i\",\"inject-error\":[{\"event\":\"l2_load\","
       "\"errno\":28,\"once\":true}]}"),
    ERR(BD, "blkdebug,image=i,set-state.0.event=l2_load",
        "Parameter 'set-state.0.new_state' is missing"),

    /* alternates (8.4) */
    OK(BD, "qcow2,file=null", "{\"driver\":\"qcow2\",\"file\":\"null\"}"),
    OK(BD, "qcow2,file=1", "{\"driver\":\"qcow2\",\"file\":\"1\"}"),
    OK(BD, "qcow2,file=f,backing=", "{\"driver\":\"qcow2\",\"file\":\"f\",\"backing\":\"\"}"),
    OK(BD, "qcow2,file=f,backing.driver=null-co",
       "{\"driver\":\"qcow2\",\"file\":\"f\",\"backing\":{\"driver\":\"null-co\"}}"),
    OK(BD, "qcow2,file=f,overlap-check=none",
       "{\"driver\":\"qcow2\",\"file\":\"f\",\"overlap-check\":\"none\"}"),
    OK(BD, "qcow2,file=f,overlap-check.template=all,overlap-check.main-header=off",
       "{\"driver\":\"qcow2\",\"file\":\"f\",\"overlap-check\":{\"template\":\"all\","
       "\"main-header\":false}}"),
    ERR(BD, "qcow2,file=f,overlap-check=on", "Parameter 'overlap-check' does not accept value 'on'"),
    ERR(BD, "qcow2,file=f,overlap-check=2", "Parameter 'overlap-check' does not accept value '2'"),
    ERR(BD, "qcow2,file=f,overlap-check.bogus=1", "Parameter 'overlap-check.bogus' is unexpected"),
    ERR(BD, "{\"driver\":\"qcow2\",\"file\":5}", "Invalid parameter type for 'file', expected: BlockdevRef"),
    ERR(BD, "{\"driver\":\"qcow2\",\"file\":null}", "Invalid parameter type for 'file', expected: BlockdevRef"),
    OK(BD, "{\"driver\":\"qcow2\",\"file\":\"f\",\"backing\":null}",
       "{\"driver\":\"qcow2\",\"file\":\"f\",\"backing\":null}"),
    /* The node name "null" for a member that allows null: JSON only. */
    { BD, "{\"driver\":\"qcow2\",\"file\":\"f\",\"backing\":\"null\"}",
      "{\"driver\":\"qcow2\",\"file\":\"f\",\"backing\":\"null\"}", NULL, true },
    ERR(BD, "{\"driver\":\"qcow2\",\"file\":\"f\",\"overlap-check\":true}",
        "Invalid parameter type for 'overlap-check', expected: Qcow2OverlapChecks"),
    ERR(BD, "{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":[5]}",
        "Invalid parameter type for 'children[0]', expected: BlockdevRef"),

    /* JSON: strict types, children[N] paths */
    OK(BD, "{\"driver\":\"null-co\",\"size\":1024,\"read-only\":true,\"latency-ns\":5}",
       "{\"driver\":\"null-co\",\"size\":1024,\"read-only\":true,\"latency-ns\":5}"),
    ERR(BD, "{\"driver\":\"null-co\",\"read-only\":\"on\"}",
        "Invalid parameter type for 'read-only', expected: boolean"),
    ERR(BD, "{\"driver\":\"null-co\",\"size\":1024.0}",
        "Invalid parameter type for 'size', expected: integer"),
    ERR(BD, "{\"driver\":\"null-co\",\"size\":true}",
        "Invalid parameter type for 'size', expected: integer"),
    ERR(BD, "{\"driver\":\"null-co\",\"discard\":1}",
        "Invalid parameter type for 'discard', expected: string"),
    ERR(BD, "{\"driver\":\"null-co\",\"node-name\":{\"x\":1}}",
        "Invalid parameter type for 'node-name', expected: string"),
    ERR(BD, "{\"driver\":\"null-co\",\"read-only\":{\"x\":1}}",
        "Invalid parameter type for 'read-only', expected: boolean"),
    ERR(BD, "{\"driver\":\"null-co\",\"cache\":{\"direct\":\"off\"}}",
        "Invalid parameter type for 'cache.direct', expected: boolean"),
    ERR(BD, "{\"driver\":\"null-co\",\"cache\":5}", "Invalid parameter type for 'cache', expected: object"),
    ERR(BD, "{\"driver\":\"null-co\",\"size\":18446744073709551615}",
        "Invalid parameter type for 'size', expected: integer"),
    OK(BD, "{\"driver\":\"null-co\",\"latency-ns\":-1}",
       "{\"driver\":\"null-co\",\"latency-ns\":18446744073709551615}"),
    OK(BD, "{\"driver\":\"null-co\",\"latency-ns\":18446744073709551615}",
       "{\"driver\":\"null-co\",\"latency-ns\":18446744073709551615}"),
    ERR(BD, "{\"driver\":\"null-co\",\"latency-ns\":\"1\"}", "Parameter 'latency-ns' expects uint64"),
    ERR(BD, "{\"driver\":\"null-co\",\"latency-ns\":1.5}", "Parameter 'latency-ns' expects uint64"),
    ERR(BD, "{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":[{\"driver\":\"file\"}]}",
        "Parameter 'children[0].filename' is missing"),
    ERR(BD, "{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":[{\"driver\":\"file\","
        "\"filename\":\"x\",\"foo\":1}]}", "Parameter 'children[0].foo' is unexpected"),
    ERR(BD, "{\"driver\":\"qcow2\",\"file.filename\":\"a\"}", "Parameter 'file' is missing"),
    ERR(CR, "{\"driver\":\"file\",\"filename\":\"f\",\"size\":\"1M\"}", "Parameter 'size' expects uint64"),
    OK(CR, "{\"driver\":\"file\",\"filename\":\"f\",\"size\":-1}",
       "{\"driver\":\"file\",\"filename\":\"f\",\"size\":18446744073709551615}"),

    /* help is not offered through kv_parse_typed(help = NULL) */
    ERR(BD, "driver=null-co,help", "Help is not available for this option"),
    /* parse errors come first */
    ERR(BD, "driver=null-co,read-only=ON,=x", "Invalid parameter ''"),
    ERR(BD, "read-only=on,null-co", "Expected '=' after parameter 'null-co'"),
    ERR(BD, "file=f0,file.driver=file", "Parameters 'file.*' used inconsistently"),

    /* other types */
    OK("q_obj_block-commit-arg", "device=d0,top=t,speed=1,on-error=enospc",
       "{\"device\":\"d0\",\"top\":\"t\",\"speed\":1,\"on-error\":\"enospc\"}"),
    OK("ThrottleLimits", "iops-total=100,bps-read=0x100",
       "{\"iops-total\":100,\"bps-read\":256}"),
    OK(CR, "qcow2,file=f,size=1G,encrypt.format=luks,encrypt.cipher-alg=aes-128,"
       "encrypt.iter-time=10",
       "{\"driver\":\"qcow2\",\"file\":\"f\",\"size\":1073741824,\"encrypt\":"
       "{\"format\":\"luks\",\"cipher-alg\":\"aes-128\",\"iter-time\":10}}"),
    ERR(CR, "qcow2,file=f,size=1G,backing-fmt=nope",
        "Parameter 'backing-fmt' does not accept value 'nope'"),
    OK(BD, "throttle,throttle-group=g0,file=f",
       "{\"driver\":\"throttle\",\"throttle-group\":\"g0\",\"file\":\"f\"}"),
    OK(BD, "copy-on-read,file=f,bottom=b", "{\"driver\":\"copy-on-read\",\"file\":\"f\",\"bottom\":\"b\"}"),
    OK(BD, "blkverify,test=t,raw=r", "{\"driver\":\"blkverify\",\"test\":\"t\",\"raw\":\"r\"}"),
    OK(BD, "host_device,filename=/dev/sda,aio=io_uring",
       "{\"driver\":\"host_device\",\"filename\":\"/dev/sda\",\"aio\":\"io_uring\"}"),
};

static void
run_case(const struct tcase *c)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf js = SBUF_INIT;
    struct kv *tree, *again;
    char *kvs;

    tree = kv_parse_typed(c->in, c->type, NULL, NULL, &err);
    if (c->out == NULL) {
        if (!CHECK(tree == NULL)) {
            fprintf(stderr, "  input: %s\n", c->in);
        }
        if (!CHECK_STR(err.msg, c->err)) {
            fprintf(stderr, "  input: %s\n", c->in);
        }
        kv_free(tree);
        return;
    }
    if (!CHECK(tree != NULL)) {
        fprintf(stderr, "  input: %s\n  error: %s\n", c->in, err.msg);
        return;
    }
    kv_to_json(tree, &js);
    if (!CHECK_STR(js.buf, c->out)) {
        fprintf(stderr, "  input: %s\n", c->in);
    }
    if (c->no_round_trip) {
        goto out;
    }
    /* Round trip: typed tree -> keyval -> typed tree. */
    kvs = kv_to_keyval(tree, &err);
    if (CHECK(kvs != NULL)) {
        again = kv_parse_typed(kvs, c->type, NULL, NULL, &err);
        if (!CHECK(again != NULL && kv_equal(tree, again))) {
            fprintf(stderr, "  input: %s\n  keyval: %s\n  error: %s\n", c->in, kvs,
                    err.msg);
        }
        kv_free(again);
        free(kvs);
    } else {
        fprintf(stderr, "  input: %s\n  error: %s\n", c->in, err.msg);
    }
out:
    sbuf_release(&js);
    kv_free(tree);
}

/* ---- QEMU's typed visitor tests, against ad-hoc struct types --------- */

/* A struct "name" whose members are all of type member_type. */
static struct kv_schema_type *
adhoc_struct(const char *member_type, const char *const *names)
{
    struct kv_schema_type *t = xzalloc(sizeof(*t));
    size_t n = 0;

    while (names[n] != NULL) {
        n++;
    }
    t->name = xstrdup("adhoc");
    t->kind = SCH_STRUCT;
    t->members = xcalloc(n, sizeof(*t->members));
    for (t->nmembers = 0; t->nmembers < n; t->nmembers++) {
        struct sch_member *m = &t->members[t->nmembers];

        m->name = (char *)names[t->nmembers];
        m->type = kv_schema_lookup(member_type);
        m->optional = true;
        assert(m->type != NULL);
    }
    return t;
}

static void
adhoc_free(struct kv_schema_type *t)
{
    free(t->members);
    free(t->name);
    free(t);
}

/* Validate keyval string s against t; returns the typed JSON or the error. */
static char *
typed(const struct kv_schema_type *t, const char *s)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf out = SBUF_INIT;
    struct kv *tree = kv_parse_keyval(s, NULL, NULL, &err);

    if (tree != NULL && kv_validate(tree, t, KV_MODE_KEYVAL, &err) == 0) {
        kv_to_json(tree, &out);
    } else {
        sbuf_addf(&out, "error: %s", err.msg);
    }
    kv_free(tree);
    return sbuf_detach(&out);
}

#define CHECK_TYPED(t, s, want) do { \
        char *got_ = typed((t), (s)); \
        CHECK_STR(got_, (want)); \
        free(got_); \
    } while (0)

static void
test_qemu_visitors(void)
{
    static const char *const bools[] = { "bool1", "bool2", NULL };
    static const char *const nums[] = { "number1", "number2", NULL };
    static const char *const szs[] = { "sz1", "sz2", "sz3", "sz4", "sz5", NULL };
    static const char *const one[] = { "a", NULL };
    struct kv_schema_type *t;

    t = adhoc_struct("bool", bools);
    CHECK_TYPED(t, "bool1=on,bool2=off", "{\"bool1\":true,\"bool2\":false}");
    CHECK_TYPED(t, "bool1=yes,bool2=no", "{\"bool1\":true,\"bool2\":false}");
    CHECK_TYPED(t, "bool1=offer", "error: Parameter 'bool1' expects 'on' or 'off'");
    adhoc_free(t);

    t = adhoc_struct("uint64", nums);
    CHECK_TYPED(t, "number1=0", "{\"number1\":0}");
    CHECK_TYPED(t, "number1=18446744073709551615,number2=-1",
                "{\"number1\":18446744073709551615,\"number2\":18446744073709551615}");
    CHECK_TYPED(t, "number1=18446744073709551616", "error: Parameter 'number1' expects integer");
    CHECK_TYPED(t, "number1=-18446744073709551616", "error: Parameter 'number1' expects integer");
    CHECK_TYPED(t, "number1=0x2a,number2=052", "{\"number1\":42,\"number2\":42}");
    CHECK_TYPED(t, "number1=3.14", "error: Parameter 'number1' expects integer");
    CHECK_TYPED(t, "number2=08", "error: Parameter 'number2' expects integer");
    adhoc_free(t);

    t = adhoc_struct("size", szs);
    CHECK_TYPED(t, "sz1=0", "{\"sz1\":0}");
    CHECK_TYPED(t, "sz1=9007199254740991,sz2=9007199254740992,sz3=9007199254740993",
                "{\"sz1\":9007199254740991,\"sz2\":9007199254740992,\"sz3\":9007199254740993}");
    CHECK_TYPED(t, "sz1=9223372036854775807,sz2=9223372036854775808,sz3=9223372036854775809",
                "{\"sz1\":9223372036854775807,\"sz2\":9223372036854775808,"
                "\"sz3\":9223372036854775809}");
    CHECK_TYPED(t, "sz1=18446744073709549568,sz2=18446744073709550591",
                "{\"sz1\":18446744073709549568,\"sz2\":18446744073709550591}");
    CHECK_TYPED(t, "sz1=18446744073709551615", "{\"sz1\":18446744073709551615}");
    CHECK_TYPED(t, "sz1=-1", "error: Parameter 'sz1' expects size");
    CHECK_TYPED(t, "sz2=18446744073709551616", "error: Parameter 'sz2' expects size");
    CHECK_TYPED(t, "sz1=8b,sz2=1.5k,sz3=2M,sz4=0.1G,sz5=16777215T",
                "{\"sz1\":8,\"sz2\":1536,\"sz3\":2097152,\"sz4\":107374182,"
                "\"sz5\":18446742974197923840}");
    CHECK_TYPED(t, "sz1=16777216T", "error: Parameter 'sz1' expects size");
    CHECK_TYPED(t, "sz1=0Z", "error: Parameter 'sz1' expects size");
    CHECK_TYPED(t, "sz2=16Gi", "error: Parameter 'sz2' expects size");
    adhoc_free(t);

    t = adhoc_struct("number", one);
    CHECK_TYPED(t, "a=1.5", "{\"a\":1.5}");
    CHECK_TYPED(t, "a=-2e3", "{\"a\":-2000.0}");
    CHECK_TYPED(t, "a=x", "error: Invalid parameter type for 'a', expected: number");
    CHECK_TYPED(t, "a=inf", "error: Invalid parameter type for 'a', expected: number");
    CHECK_TYPED(t, "a=", "error: Invalid parameter type for 'a', expected: number");
    adhoc_free(t);

    t = adhoc_struct("null", one);
    CHECK_TYPED(t, "a=null", "{\"a\":null}");
    CHECK_TYPED(t, "a=", "error: Invalid parameter type for 'a', expected: null");
    adhoc_free(t);

    /* 'any' keeps the string tree as it is */
    t = adhoc_struct("any", one);
    CHECK_TYPED(t, "a.0=null,a.1=1", "{\"a\":[\"null\",\"1\"]}");
    CHECK_TYPED(t, "a.b.c=1", "{\"a\":{\"b\":{\"c\":\"1\"}}}");
    adhoc_free(t);

    /* int members, nested: last one wins, unknown members are named */
    t = adhoc_struct("int8", one);
    CHECK_TYPED(t, "a=127", "{\"a\":127}");
    CHECK_TYPED(t, "a=-129", "error: Parameter 'a' expects int8_t");
    CHECK_TYPED(t, "b=1", "error: Parameter 'b' is unexpected");
    adhoc_free(t);
    t = adhoc_struct("uint16", one);
    CHECK_TYPED(t, "a=65535", "{\"a\":65535}");
    CHECK_TYPED(t, "a=65536", "error: Parameter 'a' expects uint16_t");
    CHECK_TYPED(t, "a=-1", "error: Parameter 'a' expects uint16_t");
    adhoc_free(t);
    t = adhoc_struct("uint8", one);
    CHECK_TYPED(t, "a=256", "error: Parameter 'a' expects uint8_t");
    adhoc_free(t);
    t = adhoc_struct("int16", one);
    CHECK_TYPED(t, "a=-32768", "{\"a\":-32768}");
    CHECK_TYPED(t, "a=32768", "error: Parameter 'a' expects int16_t");
    adhoc_free(t);
    t = adhoc_struct("uint32", one);
    CHECK_TYPED(t, "a=4294967296", "error: Parameter 'a' expects uint32_t");
    adhoc_free(t);
    t = adhoc_struct("str", one);
    CHECK_TYPED(t, "a.0=x", "error: Parameters 'a.*' are unexpected");
    CHECK_TYPED(t, "a=", "{\"a\":\"\"}");
    adhoc_free(t);
}

/* JSON-mode checks for narrow unsigned and signed types. */
static void
test_json_narrow(void)
{
    static const char *const one[] = { "a", NULL };
    struct kv_schema_type *t = adhoc_struct("uint8", one);
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *tree;

    tree = kv_parse_json("{\"a\":256}", &err);
    CHECK(kv_validate(tree, t, KV_MODE_JSON, &err) < 0);
    CHECK_STR(err.msg, "Parameter 'a' expects uint8_t");
    kv_free(tree);
    blk_error_clear(&err);
    tree = kv_parse_json("{\"a\":\"1\"}", &err);
    CHECK(kv_validate(tree, t, KV_MODE_JSON, &err) < 0);
    CHECK_STR(err.msg, "Parameter 'a' expects uint64");
    kv_free(tree);
    adhoc_free(t);
}

/* Lenient mode (json: filenames): strings converted, native leaves checked. */
static void
test_lenient(void)
{
    const struct kv_schema_type *bd = kv_schema_lookup("BlockdevOptions");
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf out = SBUF_INIT;
    struct kv *tree;

    tree = kv_parse_json_filename("json:{\"driver\":\"qcow2\",\"file.driver\":\"file\","
                                  "\"file.filename\":\"a.qcow2\",\"read-only\":\"on\","
                                  "\"cache\":{\"direct\":true},\"l2-cache-size\":\"0x100\","
                                  "\"backing\":null}", &err);
    CHECK(tree != NULL);
    CHECK_INT(kv_validate(tree, bd, KV_MODE_LENIENT, &err), 0);
    kv_to_json(tree, &out);
    CHECK_STR(out.buf, "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\","
              "\"filename\":\"a.qcow2\"},\"read-only\":true,\"cache\":{\"direct\":true},"
              "\"l2-cache-size\":256,\"backing\":null}");
    kv_free(tree);

    tree = kv_parse_json_filename("json:{\"driver\":\"null-co\",\"read-only\":1}", &err);
    CHECK(kv_validate(tree, bd, KV_MODE_LENIENT, &err) < 0);
    CHECK_STR(err.msg, "Invalid parameter type for 'read-only', expected: boolean");
    kv_free(tree);
    blk_error_clear(&err);

    tree = kv_parse_json_filename("json:{\"driver\":\"null-co\",\"read-only\":{\"a\":1}}", &err);
    CHECK(kv_validate(tree, bd, KV_MODE_LENIENT, &err) < 0);
    CHECK_STR(err.msg, "Invalid parameter type for 'read-only', expected: boolean");
    kv_free(tree);
    blk_error_clear(&err);

    tree = kv_parse_json_filename("json:{\"driver\":\"quorum\",\"vote-threshold\":\"1\","
                                  "\"children\":[{\"driver\":\"file\"}]}", &err);
    CHECK(kv_validate(tree, bd, KV_MODE_LENIENT, &err) < 0);
    CHECK_STR(err.msg, "Parameter 'children.0.filename' is missing");
    kv_free(tree);
    sbuf_release(&out);
}

/* The compatibility policy for deprecated and unstable members. */
static void
test_policy(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *t;

    t = kv_parse_typed("device=d,top=t", "q_obj_block-commit-arg", NULL, NULL, &err);
    CHECK(t != NULL);
    kv_free(t);
    t = kv_parse_typed("file,filename=f,x-check-cache-dropped=on", BD, NULL, NULL, &err);
    CHECK(t != NULL);
    kv_free(t);

    kv_schema_set_policy(KV_POLICY_REJECT, KV_POLICY_ACCEPT);
    t = kv_parse_typed("device=d,top=t", "q_obj_block-commit-arg", NULL, NULL, &err);
    CHECK(t == NULL);
    CHECK_STR(err.msg, "Deprecated parameter 'top' disabled by policy");
    blk_error_clear(&err);
    t = kv_parse_typed("device=d,top-node=t", "q_obj_block-commit-arg", NULL, NULL, &err);
    CHECK(t != NULL);
    kv_free(t);
    t = kv_parse_typed("file,filename=f,x-check-cache-dropped=on", BD, NULL, NULL, &err);
    CHECK(t != NULL);
    kv_free(t);

    kv_schema_set_policy(KV_POLICY_ACCEPT, KV_POLICY_REJECT);
    t = kv_parse_typed("file,filename=f,x-check-cache-dropped=on", BD, NULL, NULL, &err);
    CHECK(t == NULL);
    CHECK_STR(err.msg, "Unstable parameter 'x-check-cache-dropped' disabled by policy");
    blk_error_clear(&err);
    t = kv_parse_typed("{\"driver\":\"quorum\",\"vote-threshold\":1,\"children\":[{\"driver\":"
                       "\"file\",\"filename\":\"f\",\"x-check-cache-dropped\":true}]}",
                       BD, NULL, NULL, &err);
    CHECK(t == NULL);
    CHECK_STR(err.msg,
              "Unstable parameter 'children[0].x-check-cache-dropped' disabled by policy");
    blk_error_clear(&err);
    kv_schema_set_policy(KV_POLICY_ACCEPT, KV_POLICY_ACCEPT);
}

/* Enum values with features follow the same policy. */
static void
test_policy_enum_value(void)
{
    static char *values[] = { "old", "new", "x-exp" };
    static unsigned features[] = { SCH_F_DEPRECATED, 0, SCH_F_UNSTABLE };
    struct kv_schema_type en = {
        .name = "AdhocEnum", .kind = SCH_ENUM,
        .values = values, .value_features = features, .nvalues = 3,
    };
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *v;

    v = kv_new_str("old");
    CHECK_INT(kv_validate(v, &en, KV_MODE_KEYVAL, &err), 0);
    kv_free(v);
    kv_schema_set_policy(KV_POLICY_REJECT, KV_POLICY_REJECT);
    v = kv_new_str("old");
    CHECK(kv_validate(v, &en, KV_MODE_KEYVAL, &err) < 0);
    CHECK_STR(err.msg, "Deprecated value 'old' disabled by policy");
    kv_free(v);
    blk_error_clear(&err);
    v = kv_new_str("x-exp");
    CHECK(kv_validate(v, &en, KV_MODE_JSON, &err) < 0);
    CHECK_STR(err.msg, "Unstable value 'x-exp' disabled by policy");
    kv_free(v);
    v = kv_new_str("new");
    CHECK_INT(kv_validate(v, &en, KV_MODE_JSON, NULL), 0);
    kv_free(v);
    kv_schema_set_policy(KV_POLICY_ACCEPT, KV_POLICY_ACCEPT);
}

/* kv_validate keeps the caller's root pointer valid, also for a scalar root. */
static void
test_root_scalar(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct kv *s = kv_new_str("on");

    CHECK_INT(kv_validate(s, kv_schema_lookup("bool"), KV_MODE_KEYVAL, &err), 0);
    CHECK(s->type == KV_BOOL && s->v.b);
    kv_free(s);
    s = kv_new_str("x");
    CHECK(kv_validate(s, kv_schema_lookup("BlockdevOptions"), KV_MODE_KEYVAL, &err) < 0);
    CHECK_STR(err.msg, "Invalid parameter type, expected: object");
    kv_free(s);
}

/* kv_parse_typed with help offered: listing instead of validation. */
static void
test_help(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf text = SBUF_INIT;
    bool help = true;
    struct kv *t;

    t = kv_parse_typed("driver=null-co,read-only=on", BD, &help, &text, &err);
    CHECK(t != NULL && !help && text.len == 0);
    kv_free(t);
    t = kv_parse_typed("null-co,bogus=1,size=x,help", BD, &help, &text, &err);
    CHECK(t != NULL && help);
    CHECK(strstr(text.buf, "BlockdevOptions options (driver=null-co):\n") == text.buf);
    CHECK(strstr(text.buf, "  latency-ns=<uint64>") != NULL);
    CHECK(strstr(text.buf, "  filename=") == NULL);
    kv_free(t);
    sbuf_reset(&text);
    t = kv_parse_typed("?", BD, &help, &text, &err);
    CHECK(t != NULL && help);
    CHECK(strstr(text.buf, "Accepted values for 'driver': blkdebug") != NULL);
    kv_free(t);
    /* syntax errors still win over help */
    t = kv_parse_typed("driver=null-co,help,=x", BD, &help, &text, &err);
    CHECK(t == NULL);
    CHECK_STR(err.msg, "Invalid parameter ''");
    blk_error_clear(&err);
    t = kv_parse_typed("x", "NoSuchType", &help, &text, &err);
    CHECK(t == NULL);
    CHECK_STR(err.msg, "unknown schema type 'NoSuchType'");
    sbuf_release(&text);
}

int
main(void)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        run_case(&cases[i]);
    }
    test_qemu_visitors();
    test_json_narrow();
    test_lenient();
    test_policy();
    test_policy_enum_value();
    test_root_scalar();
    test_help();
    return unit_done();
}
