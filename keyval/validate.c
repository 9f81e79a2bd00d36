/*
 * validate.c - type an option tree against a schema type, in place
 * (keyval.md sections 8-10): walk tree and type together in schema order,
 * convert keyval strings to their member types, check JSON values, stop
 * at the first error with the member's full path in the message.
 * Loop-independent; any thread once the schema is loaded.
 *
 * Paths.  Keyval and lenient (json: filename) trees name list elements
 * "children.0", JSON trees "children[0]" -- exactly what QEMU 7.2 prints
 * for the same input, so messages compare equal.  Unlike QEMU, every
 * message names the full path, also for enum values and for alternates
 * inside lists (QEMU: the member name alone, or 'null').
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/schema-int.h"
#include "util/size.h"
#include "util/xalloc.h"

static atomic_int policy_deprecated = KV_POLICY_ACCEPT;
static atomic_int policy_unstable = KV_POLICY_ACCEPT;

void
kv_schema_set_policy(enum kv_policy deprecated_input, enum kv_policy unstable_input)
{
    atomic_store(&policy_deprecated, (int)deprecated_input);
    atomic_store(&policy_unstable, (int)unstable_input);
}

struct vctx {
    enum kv_mode mode;
    struct sbuf path;           /* full path of the node being visited */
    struct blk_error *err;
};

static const char *
path(const struct vctx *c)
{
    return c->path.buf;
}

static int
err_type(struct vctx *c, const char *expected)
{
    if (c->path.len == 0) {
        return blk_error_set(c->err, -EINVAL,
                             "Invalid parameter type, expected: %s", expected);
    }
    return blk_error_set(c->err, -EINVAL,
                         "Invalid parameter type for '%s', expected: %s",
                         path(c), expected);
}

static int
err_expects(struct vctx *c, const char *what)
{
    return blk_error_set(c->err, -EINVAL, "Parameter '%s' expects %s",
                         path(c), what);
}

const char *
sch_builtin_ctype(enum sch_builtin b)
{
    switch (b) {
    case B_INT8: return "int8_t";
    case B_INT16: return "int16_t";
    case B_INT32: return "int32_t";
    case B_UINT8: return "uint8_t";
    case B_UINT16: return "uint16_t";
    case B_UINT32: return "uint32_t";
    default: return NULL;
    }
}

static bool
is_signed(enum sch_builtin b)
{
    return b == B_INT || b == B_INT8 || b == B_INT16 || b == B_INT32 || b == B_INT64;
}

static bool
is_unsigned(enum sch_builtin b)
{
    return b == B_UINT8 || b == B_UINT16 || b == B_UINT32 || b == B_UINT64
        || b == B_SIZE;
}

static void
replace(struct kv **slot, struct kv *val)
{
    kv_free(*slot);
    *slot = val;
}

static int
check_signed_range(struct vctx *c, enum sch_builtin b, int64_t v)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;

    switch (b) {
    case B_INT8: lo = INT8_MIN; hi = INT8_MAX; break;
    case B_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case B_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    default: break;
    }
    if (v < lo || v > hi) {
        return err_expects(c, sch_builtin_ctype(b));
    }
    return 0;
}

static int
check_unsigned_range(struct vctx *c, enum sch_builtin b, uint64_t v)
{
    uint64_t hi = UINT64_MAX;

    switch (b) {
    case B_UINT8: hi = UINT8_MAX; break;
    case B_UINT16: hi = UINT16_MAX; break;
    case B_UINT32: hi = UINT32_MAX; break;
    default: break;
    }
    if (v > hi) {
        return err_expects(c, sch_builtin_ctype(b));
    }
    return 0;
}

/* keyval.md 9.1: strtoll/strtoull base 0 over the whole string. */
static bool
parse_int(const char *s, bool sign, int64_t *i, uint64_t *u)
{
    char *end;

    errno = 0;
    if (sign) {
        *i = strtoll(s, &end, 0);
    } else {
        *u = strtoull(s, &end, 0);
    }
    return errno == 0 && end != s && *end == '\0';
}

/* A keyval string for a builtin scalar: convert it (section 9). */
static int
convert_builtin(struct vctx *c, struct kv **slot, enum sch_builtin b)
{
    const char *s = (*slot)->v.s;
    int64_t i = 0;
    uint64_t u = 0;
    double d;
    char *end;

    switch (b) {
    case B_STR:
    case B_ANY:
        return 0;
    case B_BOOL:
        if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true")
            || !strcmp(s, "y")) {
            replace(slot, kv_new_bool(true));
        } else if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false")
                   || !strcmp(s, "n")) {
            replace(slot, kv_new_bool(false));
        } else {
            return err_expects(c, "'on' or 'off'");
        }
        return 0;
    case B_SIZE:
        if (blk_size_parse(s, &u) < 0) {
            return err_expects(c, "size");
        }
        replace(slot, kv_new_uint(u));
        return 0;
    case B_NUMBER:
        errno = 0;
        d = strtod(s, &end);
        if (end == s || *end != '\0' || !isfinite(d)) {
            return err_type(c, "number");
        }
        replace(slot, kv_new_number(d));
        return 0;
    case B_NULL:
        if (strcmp(s, "null") != 0) {
            return err_type(c, "null");
        }
        replace(slot, kv_new_null());
        return 0;
    default:
        break;
    }
    if (is_signed(b)) {
        if (!parse_int(s, true, &i, &u)) {
            return err_expects(c, "integer");
        }
        if (check_signed_range(c, b, i) < 0) {
            return -EINVAL;
        }
        replace(slot, kv_new_int(i));
        return 0;
    }
    if (!parse_int(s, false, &i, &u)) {
        return err_expects(c, "integer");
    }
    if (check_unsigned_range(c, b, u) < 0) {
        return -EINVAL;
    }
    replace(slot, kv_new_uint(u));
    return 0;
}

/* A JSON value for a builtin scalar: check it (section 8.3). */
static int
check_builtin(struct vctx *c, struct kv **slot, enum sch_builtin b)
{
    const struct kv *v = *slot;

    if (b == B_ANY) {
        return 0;
    }
    if (is_signed(b)) {
        if (v->type != KV_INT) {
            return err_type(c, "integer");
        }
        return check_signed_range(c, b, v->v.i);
    }
    if (is_unsigned(b)) {
        /* QEMU takes -2^63..2^64-1 and stores negatives modulo 2^64. */
        if (v->type == KV_INT && v->v.i < 0) {
            replace(slot, kv_new_uint((uint64_t)v->v.i));
        } else if (v->type != KV_INT && v->type != KV_UINT) {
            return err_expects(c, "uint64");
        }
        v = *slot;
        return check_unsigned_range(c, b, v->type == KV_UINT ? v->v.u
                                    : (uint64_t)v->v.i);
    }
    switch (b) {
    case B_STR:
        return v->type == KV_STRING ? 0 : err_type(c, "string");
    case B_BOOL:
        return v->type == KV_BOOL ? 0 : err_type(c, "boolean");
    case B_NUMBER:
        if (v->type == KV_NUMBER || v->type == KV_INT || v->type == KV_UINT) {
            return 0;
        }
        return err_type(c, "number");
    case B_NULL:
        return v->type == KV_NULL ? 0 : err_type(c, "null");
    default:
        return err_type(c, "integer");
    }
}

static int
policy_check(struct vctx *c, unsigned features, const char *kind, const char *name)
{
    if ((features & SCH_F_DEPRECATED)
        && atomic_load(&policy_deprecated) == KV_POLICY_REJECT) {
        return blk_error_set(c->err, -EINVAL,
                             "Deprecated %s '%s' disabled by policy", kind, name);
    }
    if ((features & SCH_F_UNSTABLE)
        && atomic_load(&policy_unstable) == KV_POLICY_REJECT) {
        return blk_error_set(c->err, -EINVAL,
                             "Unstable %s '%s' disabled by policy", kind, name);
    }
    return 0;
}

static int
check_enum(struct vctx *c, const struct kv *v, const struct kv_schema_type *t)
{
    int idx;

    if (v->type != KV_STRING) {
        return err_type(c, "string");
    }
    idx = sch_enum_index(t, v->v.s);
    if (idx < 0) {
        return blk_error_set(c->err, -EINVAL,
                             "Parameter '%s' does not accept value '%s'",
                             path(c), v->v.s);
    }
    return policy_check(c, t->value_features[idx], "value", v->v.s);
}

static int visit(struct vctx *c, struct kv **slot, const struct kv_schema_type *t);

static size_t
push(struct vctx *c, const char *name)
{
    size_t len = c->path.len;

    if (len > 0) {
        sbuf_addch(&c->path, '.');
    }
    sbuf_adds(&c->path, name);
    return len;
}

static size_t
push_index(struct vctx *c, size_t i)
{
    size_t len = c->path.len;

    sbuf_addf(&c->path, c->mode == KV_MODE_JSON ? "[%zu]" : ".%zu", i);
    return len;
}

static ssize_t
find_key(const struct kv *obj, const char *name)
{
    size_t i;

    for (i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], name) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

static int
visit_member(struct vctx *c, struct kv *obj, const struct sch_member *m)
{
    ssize_t idx = find_key(obj, m->name);
    size_t saved;
    int r;

    saved = push(c, m->name);
    if (idx < 0) {
        r = m->optional ? 0
            : blk_error_set(c->err, -EINVAL, "Parameter '%s' is missing", path(c));
    } else {
        r = policy_check(c, m->features, "parameter", path(c));
        if (r == 0) {
            r = visit(c, &obj->vals[idx], m->type);
        }
    }
    sbuf_setlen(&c->path, saved);
    return r;
}

static bool
known(const struct kv_schema_type *t, const struct kv_schema_type *branch,
      const char *name)
{
    return sch_find_member(t, name) != NULL
        || (branch != NULL && sch_find_member(branch, name) != NULL);
}

/* Struct or union: members in schema order, then anything left over. */
static int
visit_object(struct vctx *c, struct kv *obj, const struct kv_schema_type *t)
{
    const struct kv_schema_type *branch = NULL;
    size_t i, saved;
    int r;

    if (obj->type != KV_OBJECT) {
        return err_type(c, "object");
    }
    for (i = 0; i < t->nmembers; i++) {
        r = visit_member(c, obj, &t->members[i]);
        if (r < 0) {
            return r;
        }
    }
    if (t->kind == SCH_UNION) {
        const char *disc = kv_get_str(obj, t->discriminator->name, "");

        branch = sch_union_branch(t, disc);
        if (branch == NULL) {
            saved = push(c, t->discriminator->name);
            r = blk_error_set(c->err, -EINVAL,
                              "Parameter '%s' does not accept value '%s'",
                              path(c), disc);
            sbuf_setlen(&c->path, saved);
            return r;
        }
        for (i = 0; i < branch->nmembers; i++) {
            r = visit_member(c, obj, &branch->members[i]);
            if (r < 0) {
                return r;
            }
        }
    }
    for (i = 0; i < obj->n; i++) {
        if (!known(t, branch, obj->keys[i])) {
            saved = push(c, obj->keys[i]);
            r = blk_error_set(c->err, -EINVAL, "Parameter '%s' is unexpected",
                              path(c));
            sbuf_setlen(&c->path, saved);
            return r;
        }
    }
    return 0;
}

static int
visit_list(struct vctx *c, struct kv *list, const struct kv_schema_type *t)
{
    size_t i, saved;
    int r;

    if (list->type != KV_LIST) {
        return err_type(c, "array");
    }
    for (i = 0; i < list->n; i++) {
        saved = push_index(c, i);
        r = visit(c, &list->vals[i], t->element);
        sbuf_setlen(&c->path, saved);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* The alternate's branch for a value (keyval.md 8.4), NULL if none. */
static const struct kv_schema_type *
pick_branch(const struct vctx *c, const struct kv_schema_type *t, const struct kv *v)
{
    const struct kv_schema_type *str = NULL, *en = NULL, *nul = NULL;
    const struct kv_schema_type *boo = NULL, *integer = NULL, *num = NULL;
    const struct kv_schema_type *obj = NULL, *arr = NULL;
    size_t i;

    for (i = 0; i < t->nvariants; i++) {
        const struct kv_schema_type *b = t->variants[i].type;

        switch (b->kind) {
        case SCH_STRUCT:
        case SCH_UNION:
            obj = b;
            break;
        case SCH_ARRAY:
            arr = b;
            break;
        case SCH_ENUM:
            en = b;
            break;
        case SCH_ALTERNATE:
            break;
        case SCH_BUILTIN:
            if (b->builtin == B_STR) {
                str = b;
            } else if (b->builtin == B_NULL) {
                nul = b;
            } else if (b->builtin == B_BOOL) {
                boo = b;
            } else if (b->builtin == B_NUMBER) {
                num = b;
            } else if (b->builtin != B_ANY) {
                integer = b;
            }
            break;
        }
    }
    switch (v->type) {
    case KV_OBJECT:
        return obj;
    case KV_LIST:
        return arr;
    case KV_NULL:
        return nul;
    case KV_BOOL:
        return boo;
    case KV_INT:
    case KV_UINT:
        return integer != NULL ? integer : num;
    case KV_NUMBER:
        return num;
    case KV_STRING:
        /* blk: the keyval string "null" means null where null is allowed. */
        if (c->mode != KV_MODE_JSON && nul != NULL && strcmp(v->v.s, "null") == 0) {
            return nul;
        }
        return str != NULL ? str : en;
    }
    return NULL;
}

static int
visit_alternate(struct vctx *c, struct kv **slot, const struct kv_schema_type *t)
{
    const struct kv_schema_type *b = pick_branch(c, t, *slot);

    if (b == NULL) {
        return err_type(c, t->name);
    }
    return visit(c, slot, b);
}

static int
visit(struct vctx *c, struct kv **slot, const struct kv_schema_type *t)
{
    struct kv *v = *slot;
    bool container = v->type == KV_OBJECT || v->type == KV_LIST;

    switch (t->kind) {
    case SCH_STRUCT:
    case SCH_UNION:
        return visit_object(c, v, t);
    case SCH_ARRAY:
        return visit_list(c, v, t);
    case SCH_ALTERNATE:
        return visit_alternate(c, slot, t);
    case SCH_ENUM:
    case SCH_BUILTIN:
        break;
    }
    if (t->kind == SCH_BUILTIN && t->builtin == B_ANY) {
        return 0;
    }
    if (container && c->mode == KV_MODE_KEYVAL) {
        return blk_error_set(c->err, -EINVAL, "Parameters '%s.*' are unexpected",
                             path(c));
    }
    if (t->kind == SCH_ENUM) {
        return check_enum(c, v, t);
    }
    if (v->type == KV_STRING && c->mode != KV_MODE_JSON) {
        return convert_builtin(c, slot, t->builtin);
    }
    return check_builtin(c, slot, t->builtin);
}

int
kv_validate(struct kv *tree, const struct kv_schema_type *type,
            enum kv_mode mode, struct blk_error *err)
{
    struct vctx c = { .mode = mode, .err = err };
    struct kv *holder, *slot;
    int r;

    /*
     * Conversion replaces nodes; the caller's root pointer must stay valid,
     * so visit a shallow copy and move the result back into *tree.  If the
     * copy was replaced, kv_free(holder) already freed the old contents.
     */
    holder = xmemdup(tree, sizeof(*tree));
    slot = holder;
    sbuf_init(&c.path);
    r = visit(&c, &slot, type);
    sbuf_release(&c.path);
    *tree = *slot;
    free(slot);
    return r;
}

struct kv *
kv_parse_typed(const char *s, const char *type_name, bool *help,
               struct sbuf *help_text, struct blk_error *err)
{
    const struct kv_schema_type *type = kv_schema_lookup(type_name);
    bool want_help = false, is_json = false;
    struct kv *tree;

    if (help != NULL) {
        *help = false;
    }
    if (type == NULL) {
        blk_error_set(err, -EINVAL, "unknown schema type '%s'", type_name);
        return NULL;
    }
    tree = kv_parse(s, kv_schema_implied_key(type), help != NULL ? &want_help : NULL,
                    &is_json, err);
    if (tree == NULL) {
        return NULL;
    }
    if (want_help) {
        *help = true;
        if (help_text != NULL) {
            kv_schema_help(type, tree, help_text);
        }
        return tree;
    }
    if (kv_validate(tree, type, is_json ? KV_MODE_JSON : KV_MODE_KEYVAL, err) < 0) {
        kv_free(tree);
        return NULL;
    }
    return tree;
}
