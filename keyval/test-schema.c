/*
 * test-schema.c - the built-in schema loads (it aborts if malformed, so
 * loading it is the test of the schema/ files), has QEMU 7.2's names where
 * the tests rely on them, and introspects in query-qmp-schema's shape.
 */
#include <pthread.h>
#include <stdlib.h>

#include "keyval/schema-int.h"
#include "tests/unit/unit.h"

static void *
init_thread(void *arg)
{
    kv_schema_init();
    return (void *)kv_schema_lookup((const char *)arg);
}

/* First use from several threads at once sees one fully built schema. */
static void
test_concurrent_init(void)
{
    pthread_t th[4];
    void *res[4];
    int i;

    for (i = 0; i < 4; i++) {
        CHECK_INT(pthread_create(&th[i], NULL, init_thread, "BlockdevOptions"), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], &res[i]);
        CHECK(res[i] != NULL && res[i] == res[0]);
    }
}

static void
test_lookup(void)
{
    const struct kv_schema_type *bd = kv_schema_lookup("BlockdevOptions");
    const struct kv_schema_type *drv = kv_schema_lookup("BlockdevDriver");
    const struct kv_schema_type *cr = kv_schema_lookup("BlockdevCreateOptions");

    CHECK(bd != NULL && cr != NULL && drv != NULL);
    CHECK(kv_schema_lookup("blockdev") == bd);
    CHECK(kv_schema_lookup("NoSuchType") == NULL);
    CHECK_STR(kv_schema_implied_key(bd), "driver");
    CHECK_STR(kv_schema_implied_key(cr), "driver");
    CHECK(kv_schema_implied_key(kv_schema_lookup("BlockdevOptionsFile")) == NULL);
    CHECK(kv_schema_implied_key(NULL) == NULL);
    CHECK_STR(kv_schema_type_name(bd), "BlockdevOptions");

    /* QEMU 7.2 knows 42 drivers; blk has branches for some of them. */
    CHECK_INT(drv->nvalues, 42);
    CHECK(sch_enum_index(drv, "vvfat") >= 0 && sch_enum_index(drv, "snapshot-access") >= 0);
    CHECK(sch_union_branch(bd, "qcow2") == kv_schema_lookup("BlockdevOptionsQcow2"));
    CHECK(sch_union_branch(bd, "host_device") == sch_union_branch(bd, "file"));
    CHECK(sch_union_branch(bd, "null-aio") == sch_union_branch(bd, "null-co"));
    CHECK(sch_union_branch(bd, "nbd") == NULL);
    CHECK(sch_union_branch(cr, "qcow2") != NULL && sch_union_branch(cr, "raw") == NULL);

    /* Bases are flattened: qcow2 has GenericCOWFormat's members first. */
    {
        const struct kv_schema_type *q = kv_schema_lookup("BlockdevOptionsQcow2");

        CHECK_STR(q->members[0].name, "file");
        CHECK_STR(q->members[1].name, "backing");
        CHECK_STR(q->base_name, "BlockdevOptionsGenericCOWFormat");
        CHECK_STR(sch_find_member(q, "backing")->type->name, "BlockdevRefOrNull");
        CHECK_STR(sch_find_member(q, "cache-size")->type->name, "int");
    }
    CHECK(sch_find_member(kv_schema_lookup("BlockdevOptionsFile"),
                          "x-check-cache-dropped")->features & SCH_F_UNSTABLE);
}

static void
test_defaults(void)
{
    const struct kv_schema_type *bd = kv_schema_lookup("BlockdevOptions");
    const struct kv_schema_type *null = kv_schema_lookup("BlockdevOptionsNull");
    const struct kv *d;

    d = kv_schema_member_default(null, "size");
    CHECK(d != NULL && d->type == KV_INT && d->v.i == 1073741824);
    d = kv_schema_member_default(bd, "cache.direct");
    CHECK(d != NULL && d->type == KV_BOOL && !d->v.b);
    d = kv_schema_member_default(bd, "discard");
    CHECK(d != NULL && d->type == KV_STRING && strcmp(d->v.s, "ignore") == 0);
    d = kv_schema_member_default(kv_schema_lookup("BlockdevOptionsFile"), "locking");
    CHECK(d != NULL && strcmp(d->v.s, "auto") == 0);
    CHECK(kv_schema_member_default(bd, "node-name") == NULL);
    CHECK(kv_schema_member_default(bd, "nosuch") == NULL);
    CHECK(kv_schema_member_default(bd, "cache.nosuch") == NULL);
    CHECK(kv_schema_member_default(bd, "driver.x") == NULL);
}

static const struct kv *
entry(const struct kv *schema, const char *name)
{
    size_t i;

    for (i = 0; i < schema->n; i++) {
        if (strcmp(kv_get_str(schema->vals[i], "name", ""), name) == 0) {
            return schema->vals[i];
        }
    }
    return NULL;
}

/* Every type an entry names is itself an entry. */
static void
check_refs(const struct kv *schema)
{
    size_t i, j;

    for (i = 0; i < schema->n; i++) {
        const struct kv *e = schema->vals[i];
        const struct kv *members = kv_get(e, "members");
        const struct kv *variants = kv_get(e, "variants");
        const char *elem = kv_get_str(e, "element-type", NULL);

        if (elem != NULL) {
            CHECK(entry(schema, elem) != NULL);
        }
        for (j = 0; members != NULL && j < members->n; j++) {
            const char *t = kv_get_str(members->vals[j], "type", NULL);

            if (t != NULL && !CHECK(entry(schema, t) != NULL)) {
                fprintf(stderr, "  %s refers to unknown %s\n",
                        kv_get_str(e, "name", "?"), t);
            }
        }
        for (j = 0; variants != NULL && j < variants->n; j++) {
            CHECK(entry(schema, kv_get_str(variants->vals[j], "type", "")) != NULL);
        }
    }
}

static void
test_introspect(void)
{
    struct kv *schema = kv_schema_introspect();
    const struct kv *e, *m;
    struct sbuf js = SBUF_INIT;

    CHECK(schema != NULL && schema->type == KV_LIST && schema->n > 50);
    check_refs(schema);

    e = entry(schema, "BlockdevOptionsFile");
    CHECK(e != NULL);
    CHECK_STR(kv_get_str(e, "meta-type", NULL), "object");
    kv_to_json(kv_get(e, "features"), &js);
    CHECK_STR(js.buf, "[\"dynamic-auto-read-only\"]");
    sbuf_reset(&js);
    m = kv_lookup(e, "members.0");
    kv_to_json(m, &js);
    CHECK_STR(js.buf, "{\"name\":\"filename\",\"type\":\"str\"}");
    sbuf_reset(&js);
    kv_to_json(kv_lookup(e, "members.6"), &js);
    CHECK_STR(js.buf, "{\"name\":\"x-check-cache-dropped\",\"type\":\"bool\","
              "\"default\":false,\"features\":[\"unstable\"]}");
    sbuf_reset(&js);

    e = entry(schema, "BlockdevOptions");
    CHECK_STR(kv_get_str(e, "tag", NULL), "driver");
    kv_to_json(kv_lookup(e, "variants.0"), &js);
    CHECK_STR(js.buf, "{\"case\":\"blkdebug\",\"type\":\"BlockdevOptionsBlkdebug\"}");
    sbuf_reset(&js);
    kv_to_json(kv_lookup(e, "members.1"), &js);
    CHECK_STR(js.buf, "{\"name\":\"node-name\",\"type\":\"str\",\"default\":null}");
    sbuf_reset(&js);

    e = entry(schema, "BlockdevRefOrNull");
    kv_to_json(e, &js);
    CHECK_STR(js.buf, "{\"name\":\"BlockdevRefOrNull\",\"meta-type\":\"alternate\","
              "\"members\":[{\"type\":\"BlockdevOptions\"},{\"type\":\"str\"},"
              "{\"type\":\"null\"}]}");
    sbuf_reset(&js);

    e = entry(schema, "OnOffAuto");
    kv_to_json(e, &js);
    CHECK_STR(js.buf, "{\"name\":\"OnOffAuto\",\"meta-type\":\"enum\","
              "\"values\":[\"auto\",\"on\",\"off\"],\"members\":[{\"name\":\"auto\"},"
              "{\"name\":\"on\"},{\"name\":\"off\"}]}");
    sbuf_reset(&js);

    e = entry(schema, "[BlockdevRef]");
    kv_to_json(e, &js);
    CHECK_STR(js.buf, "{\"name\":\"[BlockdevRef]\",\"meta-type\":\"array\","
              "\"element-type\":\"BlockdevRef\"}");
    sbuf_reset(&js);

    e = entry(schema, "uint64");
    kv_to_json(e, &js);
    CHECK_STR(js.buf, "{\"name\":\"uint64\",\"meta-type\":\"builtin\",\"json-type\":\"int\"}");
    sbuf_reset(&js);

    e = entry(schema, "q_obj_block-commit-arg");
    kv_to_json(kv_lookup(e, "members.3"), &js);
    CHECK_STR(js.buf, "{\"name\":\"base\",\"type\":\"str\",\"default\":null,"
              "\"features\":[\"deprecated\"]}");
    sbuf_release(&js);
    kv_free(schema);
}

int
main(void)
{
    test_concurrent_init();
    test_lookup();
    test_defaults();
    test_introspect();
    return unit_done();
}
