/*
 * parse.c - the dotted keyval syntax ("driver=qcow2,file.filename=a,,b")
 * into an untyped tree of objects, lists and strings.  The rules and every
 * error text are those of ../shared/docs/keyval.md sections 2, 3 and 5.
 * Loop-independent; no global state.
 *
 * Grammar (ABNF-ish EBNF; ALPHA and DIGIT are ASCII):
 *
 *   options       = [ item { "," item } [ "," ] ]
 *   item          = key "=" value
 *                 | help-item                  (anywhere)
 *                 | implied-value              (first item only)
 *   key           = name { "." ( name | index ) }
 *   name          = [ "__" rfqdn "_" ] ALPHA { ALPHA | DIGIT | "-" | "_" }
 *   rfqdn         = { ALPHA | DIGIT | "-" | "." }
 *   index         = DIGIT { DIGIT }
 *   value         = { any byte but "," | ",," }
 *   help-item     = "help" | "?"
 *   implied-value = any byte but "=" and "," { any byte but "=" and "," }
 *
 * Every fragment is 1..127 bytes.  Each item names a path from the root;
 * all but its last fragment are objects; the leaf is a string; the last
 * item naming a leaf wins.  Indexes are compared by value ("01" is "1").
 * After all items, objects whose members are all indexes become lists,
 * which must have no gaps.
 *
 * Error order: item syntax (and string/object conflicts) left to right,
 * then an unwanted help request, then list assembly.
 *
 * Limitation: every leaf is a string, and an empty list or an empty
 * nested object cannot be written; a schema gives strings their types.
 * Limitation: a key has at most 1024 fragments (so that trees stay
 * shallow enough for recursive walks); QEMU has no such limit.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/kv-int.h"
#include "util/xalloc.h"

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

size_t
kv_name_len(const char *s)
{
    const char *p = s;

    if (*p == '_') {
        if (p[1] != '_') {
            return 0;
        }
        for (p += 2; is_alpha(*p) || is_digit(*p) || *p == '-' || *p == '.';
             p++) {
            continue;
        }
        if (*p != '_') {
            return 0;
        }
        p++;
    }
    if (!is_alpha(*p)) {
        return 0;
    }
    for (p++; is_alpha(*p) || is_digit(*p) || *p == '-' || *p == '_'; p++) {
        continue;
    }
    return (size_t)(p - s);
}

void
kv_index_normalize(char *buf, const char *s, size_t len)
{
    while (len > 1 && *s == '0') {
        s++;
        len--;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
}

/* ---- list assembly ---------------------------------------------------- */

static int listify(struct kv **slot, struct sbuf *path, bool root,
                   struct blk_error *err);

/* Listify the objects among (or inside lists among) container's children. */
static int
listify_children(struct kv *c, struct sbuf *path, struct blk_error *err)
{
    size_t i, mark = path->len;
    int r = 0;

    for (i = 0; i < c->n && r == 0; i++) {
        if (c->vals[i]->type != KV_OBJECT && c->vals[i]->type != KV_LIST) {
            continue;
        }
        if (c->type == KV_OBJECT) {
            sbuf_adds(path, c->keys[i]);
        } else {
            sbuf_addf(path, "%zu", i);
        }
        sbuf_addch(path, '.');
        if (c->vals[i]->type == KV_OBJECT) {
            r = listify(&c->vals[i], path, false, err);
        } else {
            r = listify_children(c->vals[i], path, err);
        }
        sbuf_setlen(path, mark);
    }
    return r;
}

/*
 * *slot is an object; path is its dotted path plus "." (empty for the
 * root).  The root stays an object: keyval cannot give it index members,
 * and from a json: filename such members are left for the schema to
 * reject.
 */
static int
listify(struct kv **slot, struct sbuf *path, bool root, struct blk_error *err)
{
    struct kv *obj = *slot, *list, **elt;
    size_t i, n_index = 0;
    int r;

    r = listify_children(obj, path, err);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < obj->n; i++) {
        if (is_digit(obj->keys[i][0])) {
            n_index++;
        }
    }
    if (n_index == 0 || root) {
        return 0;
    }
    if (n_index != obj->n) {
        return blk_error_set(err, -EINVAL,
                             "Parameters '%s*' used inconsistently", path->buf);
    }

    /* Keys are unique and normalized, so n in-range indexes fill 0..n-1. */
    elt = xcalloc(obj->n, sizeof(*elt));
    for (i = 0; i < obj->n; i++) {
        unsigned long long idx;

        if (strlen(obj->keys[i]) > 19) {
            continue;                   /* far beyond any possible n */
        }
        idx = strtoull(obj->keys[i], NULL, 10);
        if (idx < obj->n) {
            elt[idx] = obj->vals[i];
        }
    }
    for (i = 0; i < obj->n; i++) {
        if (elt[i] == NULL) {
            free(elt);
            return blk_error_set(err, -EINVAL, "Parameter '%s%zu' missing",
                                 path->buf, i);
        }
    }
    list = kv_new_list();
    for (i = 0; i < obj->n; i++) {
        kv_append(list, elt[i]);
        free(obj->keys[i]);
    }
    free(elt);
    obj->n = 0;                 /* the members now belong to list */
    kv_free(obj);
    *slot = list;
    return 0;
}

int
kv_listify(struct kv *root, struct blk_error *err)
{
    struct sbuf path = SBUF_INIT;
    struct kv *r = root;
    int ret;

    ret = listify(&r, &path, true, err);
    sbuf_release(&path);
    assert(r == root);
    return ret;
}

/* ---- items ------------------------------------------------------------ */

struct parser {
    struct kv *root;
    const char *implied_key;    /* NULL after the first item */
    bool help_seen;
    struct sbuf value;          /* scratch for the current value */
    struct blk_error *err;
};

/* Bytes of the fragment at s: an index (not first) or a name; 0 if none. */
static size_t
fragment_len(const char *s, bool first)
{
    size_t len = 0;

    if (first || !is_digit(*s)) {
        return kv_name_len(s);
    }
    while (is_digit(s[len])) {
        len++;
    }
    return len;
}

/* The conflict error, naming the key up to end; returns NULL. */
static struct kv *
inconsistent(struct parser *ps, const char *key, const char *end)
{
    blk_error_set(ps->err, -EINVAL, "Parameters '%.*s.*' used inconsistently",
                  (int)(end - key), key);
    return NULL;
}

/*
 * Walk key[0..key_end) from the root, creating objects for all but the
 * last fragment, and store the last fragment (normalized) in leaf.
 * Returns the object the leaf belongs to, or NULL with the error set.
 * *end is where the key scan stopped.
 */
static struct kv *
walk_key(struct parser *ps, const char *key, const char *key_end,
         char leaf[KV_FRAGMENT_MAX + 1], const char **end)
{
    struct kv *cur = ps->root, *child;
    const char *s = key;
    size_t len, depth = 0;

    for (;;) {
        len = fragment_len(s, s == key);
        if (len == 0 || (s + len < key_end && s[len] != '.')) {
            blk_error_set(ps->err, -EINVAL, "Invalid parameter '%.*s'",
                          (int)(key_end - key), key);
            return NULL;
        }
        if (len > KV_FRAGMENT_MAX) {
            bool whole = s == key && s + len == key_end;

            blk_error_set(ps->err, -EINVAL, "Parameter%s '%.*s' is too long",
                          whole ? "" : " fragment", (int)len, s);
            return NULL;
        }
        if (++depth > KV_KEY_DEPTH_MAX) {
            blk_error_set(ps->err, -EINVAL,
                          "Parameter '%.*s...' has more than %d fragments",
                          32, key, KV_KEY_DEPTH_MAX);
            return NULL;
        }
        if (s != key) {
            /* The previous fragment names an object. */
            child = kv_get(cur, leaf);
            if (child == NULL) {
                child = kv_new_object();
                kv_set(cur, leaf, child);
            } else if (child->type != KV_OBJECT) {
                return inconsistent(ps, key, s - 1);
            }
            cur = child;
        }
        if (is_digit(*s)) {
            kv_index_normalize(leaf, s, len);
        } else {
            memcpy(leaf, s, len);
            leaf[len] = '\0';
        }
        s += len;
        if (s >= key_end || *s != '.') {
            break;
        }
        s++;
    }
    *end = s;
    return cur;
}

/* Copy a value up to a single ',' into ps->value; returns the next item. */
static const char *
read_value(struct parser *ps, const char *s)
{
    const char *comma;

    sbuf_reset(&ps->value);
    for (;;) {
        comma = strchr(s, ',');
        if (comma == NULL) {
            sbuf_adds(&ps->value, s);
            return s + strlen(s);
        }
        sbuf_add(&ps->value, s, (size_t)(comma - s));
        if (comma[1] != ',') {
            return comma + 1;
        }
        sbuf_addch(&ps->value, ',');
        s = comma + 2;
    }
}

/* Parse one item at s; returns the start of the next, NULL on error. */
static const char *
parse_item(struct parser *ps, const char *s)
{
    size_t run = strcspn(s, "=,");
    const char *key = s, *key_end = s + run, *next, *end;
    char leaf[KV_FRAGMENT_MAX + 1];
    bool implied = false;
    struct kv *obj, *old;

    if (run > 0 && s[run] != '=') {
        if ((run == 4 && memcmp(s, "help", 4) == 0) ||
            (run == 1 && s[0] == '?')) {
            ps->help_seen = true;
            s += run;
            return *s == ',' ? s + 1 : s;
        }
        if (ps->implied_key != NULL) {
            implied = true;
            key = ps->implied_key;
            key_end = key + strlen(key);
        }
    }

    obj = walk_key(ps, key, key_end, leaf, &end);
    if (obj == NULL) {
        return NULL;
    }
    if (implied) {
        sbuf_reset(&ps->value);
        sbuf_add(&ps->value, s, run);
        next = s + run;
        if (*next == ',') {
            next++;
        }
    } else {
        if (*end != '=') {
            blk_error_set(ps->err, -EINVAL,
                          "Expected '=' after parameter '%.*s'",
                          (int)(end - key), key);
            return NULL;
        }
        next = read_value(ps, end + 1);
    }

    old = kv_get(obj, leaf);
    if (old == NULL) {
        old = kv_new_str("");
        free(old->v.s);
        old->v.s = sbuf_detach(&ps->value);
        kv_set(obj, leaf, old);
    } else if (old->type == KV_STRING) {
        free(old->v.s);                 /* last one wins */
        old->v.s = sbuf_detach(&ps->value);
    } else {
        inconsistent(ps, key, key_end);
        return NULL;
    }
    return next;
}

struct kv *
kv_parse_keyval(const char *s, const char *implied_key, bool *help,
                struct blk_error *err)
{
    struct parser ps = {
        .root = kv_new_object(),
        .implied_key = implied_key,
        .value = SBUF_INIT,
        .err = err,
    };

    if (help != NULL) {
        *help = false;
    }
    while (*s) {
        s = parse_item(&ps, s);
        if (s == NULL) {
            goto out_free;
        }
        ps.implied_key = NULL;
    }
    if (ps.help_seen && help == NULL) {
        blk_error_set(err, -EINVAL, "Help is not available for this option");
        goto out_free;
    }
    if (kv_listify(ps.root, err) < 0) {
        goto out_free;
    }
    sbuf_release(&ps.value);
    if (help != NULL) {
        *help = ps.help_seen;
    }
    return ps.root;

out_free:
    sbuf_release(&ps.value);
    kv_free(ps.root);
    return NULL;
}

struct kv *
kv_parse(const char *s, const char *implied_key, bool *help, bool *is_json,
         struct blk_error *err)
{
    bool json = s[0] == '{';

    if (is_json != NULL) {
        *is_json = json;
    }
    if (json) {
        if (help != NULL) {
            *help = false;              /* JSON has no help request */
        }
        return kv_parse_json(s, err);
    }
    return kv_parse_keyval(s, implied_key, help, err);
}
