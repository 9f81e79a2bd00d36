/*
 * introspect.c - the schema seen from outside: help listings for
 * `driver=qcow2,help` (keyval.md section 5) and the query-qmp-schema
 * array that lets scripts discover members, enum values and features.
 * Read-only over the loaded schema; any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "keyval/schema-int.h"
#include "util/xalloc.h"

/* Help column where the notes start. */
#define HELP_NOTE_COL 44
/* Nested plain structs are listed as dotted members down to this depth. */
#define HELP_MAX_DEPTH 3

static void
add_type_hint(struct sbuf *out, const struct kv_schema_type *t)
{
    size_t i;

    if (t->kind == SCH_ENUM && t->nvalues <= 6) {
        sbuf_addch(out, '<');
        for (i = 0; i < t->nvalues; i++) {
            sbuf_addf(out, "%s%s", i ? "|" : "", t->values[i]);
        }
        sbuf_addch(out, '>');
        return;
    }
    sbuf_addf(out, "<%s>", t->name);
}

static void
add_default(struct sbuf *out, const struct kv *d)
{
    if (d->type == KV_STRING) {
        sbuf_adds(out, d->v.s);
    } else if (d->type == KV_BOOL) {
        sbuf_adds(out, d->v.b ? "on" : "off");
    } else {
        kv_to_json(d, out);
    }
}

static void
help_members(struct sbuf *out, const struct sch_member *ms, size_t n,
             const char *prefix, int depth)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const struct sch_member *m = &ms[i];
        const struct kv_schema_type *t = m->type;
        size_t start = out->len;
        char *sub;

        if (t->kind == SCH_STRUCT && depth < HELP_MAX_DEPTH) {
            sub = xasprintf("%s%s.", prefix, m->name);
            help_members(out, t->members, t->nmembers, sub, depth + 1);
            free(sub);
            continue;
        }
        sbuf_addf(out, "  %s%s", prefix, m->name);
        if (t->kind == SCH_ARRAY) {
            sbuf_adds(out, ".N");
            t = t->element;
        }
        sbuf_addch(out, '=');
        add_type_hint(out, t);
        if (m->optional || m->features) {
            do {
                sbuf_addch(out, ' ');
            } while (out->len - start < HELP_NOTE_COL);
            sbuf_addch(out, '(');
            sbuf_adds(out, m->optional ? "optional" : "mandatory");
            if (m->dflt != NULL) {
                sbuf_adds(out, ", default: ");
                add_default(out, m->dflt);
            }
            if (m->features & SCH_F_DEPRECATED) {
                sbuf_adds(out, ", deprecated");
            }
            if (m->features & SCH_F_UNSTABLE) {
                sbuf_adds(out, ", unstable");
            }
            sbuf_addch(out, ')');
        }
        sbuf_addch(out, '\n');
    }
}

void
kv_schema_help(const struct kv_schema_type *type, const struct kv *tree,
               struct sbuf *out)
{
    const struct kv_schema_type *branch = NULL;
    const char *disc = NULL, *value = NULL;
    size_t i, n = 0;

    if (type->kind == SCH_UNION) {
        disc = type->discriminator->name;
        value = tree != NULL ? kv_get_str(tree, disc, NULL) : NULL;
        branch = value != NULL ? sch_union_branch(type, value) : NULL;
    }
    if (type->kind != SCH_STRUCT && type->kind != SCH_UNION) {
        sbuf_addf(out, "%s: no members (a %s type)\n", type->name,
                  type->kind == SCH_ENUM ? "enum" : "scalar");
        return;
    }
    if (branch != NULL) {
        sbuf_addf(out, "%s options (%s=%s):\n", type->name, disc, value);
    } else {
        sbuf_addf(out, "%s options:\n", type->name);
    }
    help_members(out, type->members, type->nmembers, "", 0);
    if (branch != NULL) {
        help_members(out, branch->members, branch->nmembers, "", 0);
        return;
    }
    if (disc == NULL) {
        return;
    }
    if (value != NULL) {
        sbuf_addf(out, "Value '%s' of '%s' is not accepted.\n", value, disc);
    }
    sbuf_addf(out, "Accepted values for '%s':", disc);
    n = strlen(disc) + 23;
    for (i = 0; i < type->nvariants; i++) {
        if (n + 1 + strlen(type->variants[i].name) > 78) {
            sbuf_adds(out, "\n   ");
            n = 3;
        }
        sbuf_addf(out, " %s", type->variants[i].name);
        n += strlen(type->variants[i].name) + 1;
    }
    sbuf_addf(out, "\nAdd '%s=VALUE,help' to list the members that VALUE adds.\n",
              disc);
}

/* ---- query-qmp-schema ------------------------------------------------ */

static void
set_str(struct kv *obj, const char *key, const char *s)
{
    kv_set(obj, key, kv_new_str(s));
}

static struct kv *
features_list(unsigned f, char *const *extra, size_t nextra)
{
    struct kv *l = kv_new_list();
    size_t i;

    if (f & SCH_F_DEPRECATED) {
        kv_append(l, kv_new_str("deprecated"));
    }
    if (f & SCH_F_UNSTABLE) {
        kv_append(l, kv_new_str("unstable"));
    }
    for (i = 0; i < nextra; i++) {
        kv_append(l, kv_new_str(extra[i]));
    }
    return l;
}

static void
set_features(struct kv *obj, unsigned f, char *const *extra, size_t nextra)
{
    if (f != 0 || nextra != 0) {
        kv_set(obj, "features", features_list(f, extra, nextra));
    }
}

static const char *
json_type(enum sch_builtin b)
{
    switch (b) {
    case B_STR: return "string";
    case B_BOOL: return "boolean";
    case B_NUMBER: return "number";
    case B_NULL: return "null";
    case B_ANY: return "value";
    default: return "int";
    }
}

static struct kv *
object_members(const struct kv_schema_type *t)
{
    struct kv *l = kv_new_list();
    size_t i;

    for (i = 0; i < t->nmembers; i++) {
        const struct sch_member *m = &t->members[i];
        struct kv *o = kv_new_object();

        set_str(o, "name", m->name);
        set_str(o, "type", m->type->name);
        if (m->optional) {
            kv_set(o, "default", m->dflt != NULL ? kv_dup(m->dflt) : kv_new_null());
        }
        set_features(o, m->features, NULL, 0);
        kv_append(l, o);
    }
    return l;
}

static struct kv *
describe(const struct kv_schema_type *t)
{
    struct kv *o = kv_new_object(), *l;
    size_t i;

    set_str(o, "name", t->name);
    switch (t->kind) {
    case SCH_BUILTIN:
        set_str(o, "meta-type", "builtin");
        set_str(o, "json-type", json_type(t->builtin));
        break;
    case SCH_ENUM:
        set_str(o, "meta-type", "enum");
        l = kv_new_list();
        for (i = 0; i < t->nvalues; i++) {
            kv_append(l, kv_new_str(t->values[i]));
        }
        kv_set(o, "values", l);
        l = kv_new_list();
        for (i = 0; i < t->nvalues; i++) {
            struct kv *m = kv_new_object();

            set_str(m, "name", t->values[i]);
            set_features(m, t->value_features[i], NULL, 0);
            kv_append(l, m);
        }
        kv_set(o, "members", l);
        break;
    case SCH_STRUCT:
    case SCH_UNION:
        set_str(o, "meta-type", "object");
        kv_set(o, "members", object_members(t));
        if (t->kind == SCH_UNION) {
            set_str(o, "tag", t->discriminator->name);
            l = kv_new_list();
            for (i = 0; i < t->nvariants; i++) {
                struct kv *v = kv_new_object();

                set_str(v, "case", t->variants[i].name);
                set_str(v, "type", t->variants[i].type->name);
                kv_append(l, v);
            }
            kv_set(o, "variants", l);
        }
        break;
    case SCH_ALTERNATE:
        set_str(o, "meta-type", "alternate");
        l = kv_new_list();
        for (i = 0; i < t->nvariants; i++) {
            struct kv *v = kv_new_object();

            set_str(v, "type", t->variants[i].type->name);
            kv_append(l, v);
        }
        kv_set(o, "members", l);
        break;
    case SCH_ARRAY:
        set_str(o, "meta-type", "array");
        set_str(o, "element-type", t->element->name);
        break;
    }
    set_features(o, t->features, t->extra_features, t->nextra_features);
    return o;
}

struct kv *
kv_schema_introspect(void)
{
    const struct kv_schema_type *const *all;
    struct kv *list = kv_new_list();
    size_t i, n;

    all = sch_types(&n);
    for (i = 0; i < n; i++) {
        kv_append(list, describe(all[i]));
    }
    return list;
}
