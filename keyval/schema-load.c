/*
 * schema-load.c - build the in-memory schema from the embedded
 * schema/ JSON files, once (pthread_once), and check it: a malformed
 * schema is a build bug, so it aborts with a message instead of failing.
 *
 * The file format is QAPI's, as JSON data.  Each file is an object with
 * a "types" array; each entry is one of
 *   {"enum": NAME, "data": [VALUE...]}
 *   {"struct": NAME, "base"?: NAME, "data": {MEMBER: SPEC...}}
 *   {"union": NAME, "base": NAME | {MEMBER: SPEC...},
 *    "discriminator": MEMBER, "data": {VALUE: STRUCT-NAME...}}
 *   {"alternate": NAME, "data": {BRANCH: TYPE...}}
 * plus optional "features": [NAME...] and "doc" (ignored).  A MEMBER
 * name starting with '*' is optional.  SPEC is a TYPE or
 * {"type": TYPE, "default"?: VALUE, "features"?: [...]}; TYPE is a type
 * name or ["T"] for a list of T.  An enum VALUE is a string or
 * {"name": VALUE, "features": [...]}.  Names starting with "x-" get the
 * "unstable" feature whether or not it is written.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/schema-data.h"
#include "keyval/schema-int.h"
#include "util/xalloc.h"

static struct kv_schema_type **types;
static size_t ntypes, types_cap;

/* Load-time bookkeeping, parallel to types[] while loading. */
struct pending {
    const struct kv *def;       /* the type's entry in its file; NULL for builtins/arrays */
    const char *file;
    int state;                  /* 0 new, 1 completing, 2 done */
};
static struct pending *pend;

static const struct {
    const char *name;
    enum sch_builtin b;
} builtins[] = {
    { "str", B_STR }, { "bool", B_BOOL }, { "int", B_INT },
    { "int8", B_INT8 }, { "int16", B_INT16 }, { "int32", B_INT32 },
    { "int64", B_INT64 }, { "uint8", B_UINT8 }, { "uint16", B_UINT16 },
    { "uint32", B_UINT32 }, { "uint64", B_UINT64 }, { "size", B_SIZE },
    { "number", B_NUMBER }, { "null", B_NULL }, { "any", B_ANY },
};

static void die(const char *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
die(const char *file, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "blk: schema/%s: ", file != NULL ? file : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (a bug in the built-in schema)\n", stderr);
    abort();
}

static struct kv_schema_type *
find_type(const char *name)
{
    size_t i;

    for (i = 0; i < ntypes; i++) {
        if (strcmp(types[i]->name, name) == 0) {
            return types[i];
        }
    }
    return NULL;
}

static struct kv_schema_type *
add_type(const char *name, enum sch_kind kind, const struct kv *def,
         const char *file)
{
    struct kv_schema_type *t;

    if (find_type(name) != NULL) {
        die(file, "type '%s' is defined twice", name);
    }
    if (ntypes == types_cap) {
        types_cap = types_cap ? types_cap * 2 : 64;
        types = xrealloc(types, types_cap * sizeof(*types));
        pend = xrealloc(pend, types_cap * sizeof(*pend));
    }
    t = xzalloc(sizeof(*t));
    t->name = xstrdup(name);
    t->kind = kind;
    types[ntypes] = t;
    pend[ntypes].def = def;
    pend[ntypes].file = file;
    pend[ntypes].state = def != NULL ? 0 : 2;
    ntypes++;
    return t;
}

/* A TYPE reference: a name, or ["T"] (the array type is made on demand). */
static const struct kv_schema_type *
resolve(const struct kv *ref, const char *file, const char *where)
{
    const struct kv_schema_type *t, *elem;
    struct kv_schema_type *arr;
    char *name;

    if (ref->type == KV_STRING) {
        t = find_type(ref->v.s);
        if (t == NULL) {
            die(file, "%s: unknown type '%s'", where, ref->v.s);
        }
        return t;
    }
    if (ref->type != KV_LIST || ref->n != 1 || ref->vals[0]->type != KV_STRING) {
        die(file, "%s: a type must be a name or [\"name\"]", where);
    }
    elem = resolve(ref->vals[0], file, where);
    name = xasprintf("[%s]", elem->name);
    t = find_type(name);
    if (t == NULL) {
        arr = add_type(name, SCH_ARRAY, NULL, file);
        arr->element = elem;
        t = arr;
    }
    free(name);
    return t;
}

static bool
is_unstable_name(const char *name)
{
    return strncmp(name, "x-", 2) == 0;
}

/* Parse "features": known ones become bits, others are kept by name. */
static unsigned
parse_features(const struct kv *list, const char *file, const char *where,
               char ***extra, size_t *nextra)
{
    unsigned f = 0;
    size_t i;

    if (list == NULL) {
        return 0;
    }
    if (list->type != KV_LIST) {
        die(file, "%s: \"features\" must be a list", where);
    }
    for (i = 0; i < list->n; i++) {
        const struct kv *v = list->vals[i];

        if (v->type != KV_STRING) {
            die(file, "%s: a feature must be a string", where);
        }
        if (strcmp(v->v.s, "deprecated") == 0) {
            f |= SCH_F_DEPRECATED;
        } else if (strcmp(v->v.s, "unstable") == 0) {
            f |= SCH_F_UNSTABLE;
        } else if (extra != NULL) {
            *extra = xrealloc(*extra, (*nextra + 1) * sizeof(**extra));
            (*extra)[(*nextra)++] = xstrdup(v->v.s);
        } else {
            die(file, "%s: unknown feature '%s'", where, v->v.s);
        }
    }
    return f;
}

static void
load_enum(struct kv_schema_type *t, const struct kv *def, const char *file)
{
    const struct kv *data = kv_get(def, "data");
    size_t i;

    if (data == NULL || data->type != KV_LIST || data->n == 0) {
        die(file, "enum '%s' needs a non-empty \"data\" list", t->name);
    }
    t->values = xcalloc(data->n, sizeof(*t->values));
    t->value_features = xcalloc(data->n, sizeof(*t->value_features));
    for (i = 0; i < data->n; i++) {
        const struct kv *v = data->vals[i];
        const char *name;

        if (v->type == KV_OBJECT) {
            name = kv_get_str(v, "name", NULL);
            t->value_features[i] = parse_features(kv_get(v, "features"),
                                                  file, t->name, NULL, NULL);
        } else if (v->type == KV_STRING) {
            name = v->v.s;
        } else {
            name = NULL;
        }
        if (name == NULL || *name == '\0') {
            die(file, "enum '%s': value %zu is not a name", t->name, i);
        }
        if (sch_enum_index(t, name) >= 0) {
            die(file, "enum '%s': value '%s' twice", t->name, name);
        }
        if (is_unstable_name(name)) {
            t->value_features[i] |= SCH_F_UNSTABLE;
        }
        t->values[t->nvalues++] = xstrdup(name);
    }
}

static void complete(struct kv_schema_type *t);

static void
add_member(struct kv_schema_type *t, const char *key, const struct kv *spec,
           const char *file)
{
    struct sch_member *m;
    const struct kv *tref = spec, *dflt = NULL, *feat = NULL;
    const char *name = key[0] == '*' ? key + 1 : key;

    if (*name == '\0') {
        die(file, "'%s': empty member name", t->name);
    }
    if (sch_find_member(t, name) != NULL) {
        die(file, "'%s': member '%s' twice (or clashes with its base)",
            t->name, name);
    }
    if (spec->type == KV_OBJECT) {
        tref = kv_get(spec, "type");
        dflt = kv_get(spec, "default");
        feat = kv_get(spec, "features");
        if (tref == NULL) {
            die(file, "'%s': member '%s' has no \"type\"", t->name, name);
        }
    }
    t->members = xrealloc(t->members, (t->nmembers + 1) * sizeof(*t->members));
    m = &t->members[t->nmembers++];
    memset(m, 0, sizeof(*m));
    m->name = xstrdup(name);
    m->optional = key[0] == '*';
    m->type = resolve(tref, file, t->name);
    m->features = parse_features(feat, file, t->name, NULL, NULL);
    if (is_unstable_name(name)) {
        m->features |= SCH_F_UNSTABLE;
    }
    if (dflt != NULL) {
        if (!m->optional) {
            die(file, "'%s': mandatory member '%s' has a default", t->name, name);
        }
        m->dflt = kv_dup(dflt);
    }
}

static void
copy_members(struct kv_schema_type *t, const struct kv_schema_type *base)
{
    size_t i;

    t->members = xcalloc(base->nmembers ? base->nmembers : 1, sizeof(*t->members));
    for (i = 0; i < base->nmembers; i++) {
        t->members[i] = base->members[i];       /* names/defaults shared, read-only */
    }
    t->nmembers = base->nmembers;
}

static void
add_members(struct kv_schema_type *t, const struct kv *data, const char *file)
{
    size_t i;

    if (data == NULL) {
        return;
    }
    if (data->type != KV_OBJECT) {
        die(file, "'%s': \"data\" must be an object", t->name);
    }
    for (i = 0; i < data->n; i++) {
        add_member(t, data->keys[i], data->vals[i], file);
    }
}

/* Struct and union members: the base's first (flattened), then our own. */
static void
complete_members(struct kv_schema_type *t, const struct kv *def, const char *file)
{
    const struct kv *base = kv_get(def, "base");

    if (base != NULL && base->type == KV_STRING) {
        struct kv_schema_type *b = find_type(base->v.s);

        if (b == NULL || b->kind != SCH_STRUCT) {
            die(file, "'%s': base '%s' is not a struct", t->name, base->v.s);
        }
        complete(b);
        copy_members(t, b);
        t->base_name = xstrdup(b->name);
    } else if (base != NULL && base->type == KV_OBJECT) {
        if (t->kind != SCH_UNION) {
            die(file, "'%s': only a union may have an inline base", t->name);
        }
        add_members(t, base, file);
    } else if (base != NULL) {
        die(file, "'%s': \"base\" must be a name or an object", t->name);
    }
    t->nbase = t->nmembers;
    if (t->kind == SCH_STRUCT) {
        add_members(t, kv_get(def, "data"), file);
    }
}

static void
complete_union(struct kv_schema_type *t, const struct kv *def, const char *file)
{
    const char *disc = kv_get_str(def, "discriminator", NULL);
    const struct kv *data = kv_get(def, "data");
    size_t i;

    if (disc == NULL || (t->discriminator = sch_find_member(t, disc)) == NULL
        || t->discriminator->optional || t->discriminator->type->kind != SCH_ENUM) {
        die(file, "union '%s': the discriminator must be a mandatory enum "
            "member of the base", t->name);
    }
    if (data == NULL || data->type != KV_OBJECT) {
        die(file, "union '%s' needs a \"data\" object", t->name);
    }
    t->variants = xcalloc(data->n ? data->n : 1, sizeof(*t->variants));
    for (i = 0; i < data->n; i++) {
        struct kv_schema_type *b;

        if (sch_enum_index(t->discriminator->type, data->keys[i]) < 0) {
            die(file, "union '%s': '%s' is not a value of %s", t->name,
                data->keys[i], t->discriminator->type->name);
        }
        if (data->vals[i]->type != KV_STRING
            || (b = find_type(data->vals[i]->v.s)) == NULL
            || b->kind != SCH_STRUCT) {
            die(file, "union '%s': branch '%s' must name a struct", t->name,
                data->keys[i]);
        }
        complete(b);
        for (size_t j = 0; j < b->nmembers; j++) {
            if (sch_find_member(t, b->members[j].name) != NULL) {
                die(file, "union '%s': branch '%s' member '%s' clashes with "
                    "the base", t->name, data->keys[i], b->members[j].name);
            }
        }
        t->variants[i].name = xstrdup(data->keys[i]);
        t->variants[i].type = b;
        t->nvariants++;
    }
}

/* An alternate's branches must be told apart by JSON type. */
static int
alt_class(const struct kv_schema_type *b)
{
    switch (b->kind) {
    case SCH_STRUCT:
    case SCH_UNION:
        return 0;               /* object */
    case SCH_ENUM:
        return 1;               /* string */
    case SCH_ARRAY:
        return 5;
    case SCH_BUILTIN:
        break;
    case SCH_ALTERNATE:
        return -1;
    }
    switch (b->builtin) {
    case B_STR:
        return 1;
    case B_BOOL:
        return 2;
    case B_NULL:
        return 4;
    case B_ANY:
        return -1;
    default:
        return 3;               /* numbers */
    }
}

static void
complete_alternate(struct kv_schema_type *t, const struct kv *def, const char *file)
{
    const struct kv *data = kv_get(def, "data");
    unsigned seen = 0;
    size_t i;

    if (data == NULL || data->type != KV_OBJECT || data->n == 0) {
        die(file, "alternate '%s' needs a \"data\" object", t->name);
    }
    t->variants = xcalloc(data->n, sizeof(*t->variants));
    for (i = 0; i < data->n; i++) {
        const struct kv_schema_type *b = resolve(data->vals[i], file, t->name);
        int c = alt_class(b);

        if (c < 0 || (seen & (1u << c))) {
            die(file, "alternate '%s': branch '%s' is ambiguous", t->name,
                data->keys[i]);
        }
        seen |= 1u << c;
        t->variants[i].name = xstrdup(data->keys[i]);
        t->variants[i].type = b;
        t->nvariants++;
    }
}

static void
complete(struct kv_schema_type *t)
{
    size_t idx;
    const struct kv *def;
    const char *file;

    for (idx = 0; types[idx] != t; idx++) {
    }
    if (pend[idx].state == 2) {
        return;
    }
    def = pend[idx].def;
    file = pend[idx].file;
    if (pend[idx].state == 1) {
        die(file, "'%s' is its own base", t->name);
    }
    pend[idx].state = 1;
    t->features = parse_features(kv_get(def, "features"), file, t->name,
                                 &t->extra_features, &t->nextra_features);
    switch (t->kind) {
    case SCH_ENUM:
        load_enum(t, def, file);
        break;
    case SCH_STRUCT:
        complete_members(t, def, file);
        break;
    case SCH_UNION:
        complete_members(t, def, file);
        complete_union(t, def, file);
        break;
    case SCH_ALTERNATE:
        complete_alternate(t, def, file);
        break;
    case SCH_BUILTIN:
    case SCH_ARRAY:
        break;
    }
    pend[idx].state = 2;
}

static const char *const kind_keys[] = { "enum", "struct", "union", "alternate" };
static const enum sch_kind kind_vals[] = { SCH_ENUM, SCH_STRUCT, SCH_UNION, SCH_ALTERNATE };

static void
declare(const struct kv *entry, const char *file)
{
    size_t k;

    if (entry->type != KV_OBJECT) {
        die(file, "a type entry must be an object");
    }
    for (k = 0; k < ARRAY_SIZE(kind_keys); k++) {
        const char *name = kv_get_str(entry, kind_keys[k], NULL);

        if (name != NULL) {
            add_type(name, kind_vals[k], entry, file);
            return;
        }
    }
    die(file, "a type entry needs one of \"enum\", \"struct\", \"union\", "
        "\"alternate\"");
}

/* Defaults are typed values; check them against the member's type. */
static void
check_defaults(void)
{
    size_t i, j;

    for (i = 0; i < ntypes; i++) {
        const struct kv_schema_type *t = types[i];

        for (j = 0; j < t->nmembers; j++) {
            const struct sch_member *m = &t->members[j];
            struct blk_error err = BLK_ERROR_INIT;
            struct kv *copy;

            if (m->dflt == NULL) {
                continue;
            }
            copy = kv_dup(m->dflt);
            if (kv_validate(copy, m->type, KV_MODE_JSON, &err) < 0) {
                die(NULL, "'%s': default of '%s': %s", t->name, m->name, err.msg);
            }
            kv_free(copy);
        }
    }
}

static void
load(void)
{
    struct kv **trees = xcalloc(kv_schema_nfiles + 1, sizeof(*trees));
    size_t f, i;

    for (i = 0; i < ARRAY_SIZE(builtins); i++) {
        add_type(builtins[i].name, SCH_BUILTIN, NULL, NULL)->builtin = builtins[i].b;
    }
    for (f = 0; f < kv_schema_nfiles; f++) {
        struct blk_error err = BLK_ERROR_INIT;
        const struct kv *list;

        trees[f] = kv_parse_json(kv_schema_files[f].text, &err);
        if (trees[f] == NULL) {
            die(kv_schema_files[f].name, "%s", err.msg);
        }
        list = kv_get(trees[f], "types");
        if (list == NULL || list->type != KV_LIST) {
            die(kv_schema_files[f].name, "needs a \"types\" list");
        }
        for (i = 0; i < list->n; i++) {
            declare(list->vals[i], kv_schema_files[f].name);
        }
    }
    for (i = 0; i < ntypes; i++) {
        complete(types[i]);
    }
    for (f = 0; f < kv_schema_nfiles; f++) {
        kv_free(trees[f]);
    }
    free(trees);
    free(pend);
    pend = NULL;
    check_defaults();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

void
kv_schema_init(void)
{
    pthread_once(&once, load);
}

const struct kv_schema_type *const *
sch_types(size_t *n)
{
    kv_schema_init();
    *n = ntypes;
    return (const struct kv_schema_type *const *)types;
}

const struct kv_schema_type *
kv_schema_lookup(const char *name)
{
    kv_schema_init();
    if (strcmp(name, "blockdev") == 0) {
        name = "BlockdevOptions";
    }
    return find_type(name);
}

const char *
kv_schema_type_name(const struct kv_schema_type *type)
{
    return type->name;
}

const char *
kv_schema_implied_key(const struct kv_schema_type *type)
{
    if (type == NULL || type->kind != SCH_UNION) {
        return NULL;
    }
    return type->discriminator->name;
}

const struct sch_member *
sch_find_member(const struct kv_schema_type *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->nmembers; i++) {
        if (strcmp(t->members[i].name, name) == 0) {
            return &t->members[i];
        }
    }
    return NULL;
}

const struct kv_schema_type *
sch_union_branch(const struct kv_schema_type *t, const char *value)
{
    size_t i;

    for (i = 0; i < t->nvariants; i++) {
        if (strcmp(t->variants[i].name, value) == 0) {
            return t->variants[i].type;
        }
    }
    return NULL;
}

int
sch_enum_index(const struct kv_schema_type *t, const char *value)
{
    size_t i;

    for (i = 0; i < t->nvalues; i++) {
        if (strcmp(t->values[i], value) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const struct kv *
kv_schema_member_default(const struct kv_schema_type *type, const char *member)
{
    const char *dot = strchr(member, '.');
    const struct sch_member *m;
    char *head;

    if (type == NULL || (type->kind != SCH_STRUCT && type->kind != SCH_UNION)) {
        return NULL;
    }
    if (dot == NULL) {
        m = sch_find_member(type, member);
        return m != NULL ? m->dflt : NULL;
    }
    head = xstrndup(member, (size_t)(dot - member));
    m = sch_find_member(type, head);
    free(head);
    return m != NULL ? kv_schema_member_default(m->type, dot + 1) : NULL;
}
