/*
 * kv.c - the option tree itself: constructors, copies, comparison, member
 * access and JSON output.  Objects above a few members carry a hash index
 * of their keys so that building or reading a 100k-member object stays
 * linear.  Loop-independent; a tree is not thread-safe.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/kv.h"
#include "util/xalloc.h"

/* Objects with fewer members are searched linearly. */
#define KV_INDEX_MIN 16

/*
 * Open-addressing hash of an object's keys.  slots[h] is a member position
 * plus one (0 = empty); at most half the slots are used.  Invariant: an
 * object has an index iff it has at least KV_INDEX_MIN members, and the
 * index covers exactly keys[0..n-1] (kv_set and kv_take keep it so).
 */
struct kv_index {
    size_t mask;                /* slot count - 1, a power of two minus 1 */
    size_t count;               /* members indexed */
    size_t *slots;
};

static struct kv *
kv_alloc(enum kv_type type)
{
    struct kv *kv = xzalloc(sizeof(*kv));

    kv->type = type;
    return kv;
}

struct kv *
kv_new_null(void)
{
    return kv_alloc(KV_NULL);
}

struct kv *
kv_new_bool(bool b)
{
    struct kv *kv = kv_alloc(KV_BOOL);

    kv->v.b = b;
    return kv;
}

struct kv *
kv_new_int(int64_t i)
{
    struct kv *kv = kv_alloc(KV_INT);

    kv->v.i = i;
    return kv;
}

struct kv *
kv_new_uint(uint64_t u)
{
    struct kv *kv;

    if (u <= INT64_MAX) {
        return kv_new_int((int64_t)u);
    }
    kv = kv_alloc(KV_UINT);
    kv->v.u = u;
    return kv;
}

struct kv *
kv_new_number(double d)
{
    struct kv *kv = kv_alloc(KV_NUMBER);

    kv->v.d = d;
    return kv;
}

struct kv *
kv_new_str(const char *s)
{
    struct kv *kv = kv_alloc(KV_STRING);

    assert(s != NULL);
    kv->v.s = xstrdup(s);
    return kv;
}

struct kv *
kv_new_object(void)
{
    return kv_alloc(KV_OBJECT);
}

struct kv *
kv_new_list(void)
{
    return kv_alloc(KV_LIST);
}

static void
index_drop(struct kv *obj)
{
    if (obj->index != NULL) {
        free(obj->index->slots);
        free(obj->index);
        obj->index = NULL;
    }
}

void
kv_free(struct kv *kv)
{
    size_t i;

    if (kv == NULL) {
        return;
    }
    for (i = 0; i < kv->n; i++) {
        if (kv->keys != NULL) {
            free(kv->keys[i]);
        }
        kv_free(kv->vals[i]);
    }
    free(kv->keys);
    free(kv->vals);
    index_drop(kv);
    if (kv->type == KV_STRING) {
        free(kv->v.s);
    }
    free(kv);
}

/* Room for one more child. */
static void
grow(struct kv *kv)
{
    if (kv->n < kv->cap) {
        return;
    }
    kv->cap = kv->cap ? kv->cap * 2 : 4;
    kv->vals = xrealloc(kv->vals, kv->cap * sizeof(*kv->vals));
    if (kv->type == KV_OBJECT) {
        kv->keys = xrealloc(kv->keys, kv->cap * sizeof(*kv->keys));
    }
}

struct kv *
kv_dup(const struct kv *kv)
{
    struct kv *c;
    size_t i;

    if (kv == NULL) {
        return NULL;
    }
    c = kv_alloc(kv->type);
    c->v = kv->v;
    if (kv->type == KV_STRING) {
        c->v.s = xstrdup(kv->v.s);
    }
    for (i = 0; i < kv->n; i++) {
        if (kv->type == KV_OBJECT) {
            kv_set(c, kv->keys[i], kv_dup(kv->vals[i]));
        } else {
            kv_append(c, kv_dup(kv->vals[i]));
        }
    }
    return c;
}

bool
kv_equal(const struct kv *a, const struct kv *b)
{
    size_t i;

    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (a->type != b->type || a->n != b->n) {
        return false;
    }
    switch (a->type) {
    case KV_NULL:
        return true;
    case KV_BOOL:
        return a->v.b == b->v.b;
    case KV_INT:
        return a->v.i == b->v.i;
    case KV_UINT:
        return a->v.u == b->v.u;
    case KV_NUMBER:
        return a->v.d == b->v.d || (isnan(a->v.d) && isnan(b->v.d));
    case KV_STRING:
        return strcmp(a->v.s, b->v.s) == 0;
    case KV_OBJECT:
        /* Member order does not matter; keys are unique, so n == n suffices. */
        for (i = 0; i < a->n; i++) {
            if (!kv_equal(a->vals[i], kv_get(b, a->keys[i]))) {
                return false;
            }
        }
        return true;
    case KV_LIST:
        for (i = 0; i < a->n; i++) {
            if (!kv_equal(a->vals[i], b->vals[i])) {
                return false;
            }
        }
        return true;
    }
    return false;
}

/* ---- objects ---------------------------------------------------------- */

/* FNV-1a. */
static size_t
hash_str(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 32));
}

static void
index_insert(struct kv_index *ix, const char *key, size_t pos)
{
    size_t h = hash_str(key) & ix->mask;

    while (ix->slots[h] != 0) {
        h = (h + 1) & ix->mask;
    }
    ix->slots[h] = pos + 1;
    ix->count++;
}

/* (Re)build obj's index with room for twice its members. */
static void
index_build(struct kv *obj)
{
    struct kv_index *ix;
    size_t size = 64, i;

    index_drop(obj);
    while (size < obj->n * 2 + 2) {
        size *= 2;
    }
    ix = xzalloc(sizeof(*ix));
    ix->mask = size - 1;
    ix->slots = xcalloc(size, sizeof(*ix->slots));
    for (i = 0; i < obj->n; i++) {
        index_insert(ix, obj->keys[i], i);
    }
    obj->index = ix;
}

/*
 * Position of key in obj, or -1.  Never writes: readers of a tree nobody
 * modifies may share it.  An index that does not cover the members (they
 * were changed behind kv_set's back) is ignored for a linear search.
 */
static long long
find(const struct kv *obj, const char *key)
{
    const struct kv_index *ix;
    size_t i, h;

    if (obj == NULL || obj->type != KV_OBJECT) {
        return -1;
    }
    ix = obj->index;
    if (ix == NULL || ix->count != obj->n) {
        for (i = 0; i < obj->n; i++) {
            if (strcmp(obj->keys[i], key) == 0) {
                return (long long)i;
            }
        }
        return -1;
    }
    for (h = hash_str(key) & ix->mask; ix->slots[h] != 0;
         h = (h + 1) & ix->mask) {
        i = ix->slots[h] - 1;
        if (strcmp(obj->keys[i], key) == 0) {
            return (long long)i;
        }
    }
    return -1;
}

struct kv *
kv_get(const struct kv *obj, const char *key)
{
    long long i = find(obj, key);

    return i < 0 ? NULL : obj->vals[i];
}

void
kv_set(struct kv *obj, const char *key, struct kv *val)
{
    long long i;

    assert(obj->type == KV_OBJECT && val != NULL);
    i = find(obj, key);
    if (i >= 0) {
        if (obj->vals[i] != val) {
            kv_free(obj->vals[i]);
        }
        obj->vals[i] = val;
        return;
    }
    grow(obj);
    obj->keys[obj->n] = xstrdup(key);
    obj->vals[obj->n] = val;
    obj->n++;
    /* Built here, never on a lookup, so that readers don't write. */
    if (obj->index != NULL && obj->index->count == obj->n - 1 &&
        obj->index->count * 2 + 2 <= obj->index->mask) {
        index_insert(obj->index, key, obj->n - 1);
    } else if (obj->n >= KV_INDEX_MIN) {
        index_build(obj);
    }
}

struct kv *
kv_take(struct kv *obj, const char *key)
{
    long long i = find(obj, key);
    struct kv *val;

    if (i < 0) {
        return NULL;
    }
    val = obj->vals[i];
    free(obj->keys[i]);
    memmove(&obj->keys[i], &obj->keys[i + 1],
            (obj->n - (size_t)i - 1) * sizeof(*obj->keys));
    memmove(&obj->vals[i], &obj->vals[i + 1],
            (obj->n - (size_t)i - 1) * sizeof(*obj->vals));
    obj->n--;
    if (obj->n >= KV_INDEX_MIN) {
        index_build(obj);       /* positions moved; O(n) like the memmove */
    } else {
        index_drop(obj);
    }
    return val;
}

void
kv_append(struct kv *list, struct kv *val)
{
    assert(list->type == KV_LIST && val != NULL);
    grow(list);
    list->vals[list->n++] = val;
}

const char *
kv_get_str(const struct kv *obj, const char *key, const char *dflt)
{
    const struct kv *v = kv_get(obj, key);

    return v != NULL && v->type == KV_STRING ? v->v.s : dflt;
}

bool
kv_get_bool(const struct kv *obj, const char *key, bool dflt)
{
    const struct kv *v = kv_get(obj, key);

    return v != NULL && v->type == KV_BOOL ? v->v.b : dflt;
}

int64_t
kv_get_int(const struct kv *obj, const char *key, int64_t dflt)
{
    const struct kv *v = kv_get(obj, key);

    return v != NULL && v->type == KV_INT ? v->v.i : dflt;
}

uint64_t
kv_get_uint(const struct kv *obj, const char *key, uint64_t dflt)
{
    const struct kv *v = kv_get(obj, key);

    if (v != NULL && v->type == KV_UINT) {
        return v->v.u;
    }
    if (v != NULL && v->type == KV_INT) {
        return (uint64_t)v->v.i;        /* negatives modulo 2^64, as QEMU */
    }
    return dflt;
}

struct kv *
kv_lookup(const struct kv *root, const char *path)
{
    const struct kv *cur = root;
    char frag[256];
    const char *p = path, *dot;
    size_t len;

    while (cur != NULL) {
        dot = strchr(p, '.');
        len = dot ? (size_t)(dot - p) : strlen(p);
        if (len >= sizeof(frag)) {
            return NULL;
        }
        memcpy(frag, p, len);
        frag[len] = '\0';
        if (cur->type == KV_OBJECT) {
            cur = kv_get(cur, frag);
        } else if (cur->type == KV_LIST) {
            char *end;
            unsigned long long i;

            if (len == 0 || frag[0] < '0' || frag[0] > '9') {
                return NULL;
            }
            i = strtoull(frag, &end, 10);
            cur = *end == '\0' && i < cur->n ? cur->vals[i] : NULL;
        } else {
            return NULL;
        }
        if (dot == NULL) {
            return (struct kv *)cur;
        }
        p = dot + 1;
    }
    return NULL;
}

/* ---- JSON output ------------------------------------------------------ */

/*
 * One code point of the (modified) UTF-8 at *p: its value, or -1 for an
 * invalid sequence; *p moves past what was read (past a bad lead byte,
 * or up to the byte that broke a sequence).  C0 80 is U+0000.
 */
static long
utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    long cp, min;
    int n, i;

    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    }
    if (s[0] >= 0xc0 && s[0] <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf7) {
        n = 4;
        min = 0x10000;
    } else {
        *p = s + 1;
        return -1;
    }
    cp = s[0] & (0x7f >> n);
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *p = s + i;
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *p = s + n;
    if (n == 2 && cp == 0) {
        return 0;                       /* C0 80 */
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -1;
    }
    return cp;
}

/*
 * A JSON string literal the way QEMU writes one: the usual two-character
 * escapes, \uHHHH (upper case) for control characters and everything
 * beyond ASCII (surrogate pairs above the BMP), U+FFFD for invalid UTF-8.
 * So output is always ASCII and byte-identical to qemu-img's.
 */
static void
add_str(struct sbuf *out, const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    long cp;

    sbuf_addch(out, '"');
    while (*p) {
        cp = utf8_next(&p);
        switch (cp) {
        case '"':  sbuf_adds(out, "\\\""); break;
        case '\\': sbuf_adds(out, "\\\\"); break;
        case '\b': sbuf_adds(out, "\\b"); break;
        case '\f': sbuf_adds(out, "\\f"); break;
        case '\n': sbuf_adds(out, "\\n"); break;
        case '\r': sbuf_adds(out, "\\r"); break;
        case '\t': sbuf_adds(out, "\\t"); break;
        default:
            if (cp < 0) {
                cp = 0xfffd;
            }
            if (cp > 0xffff) {
                sbuf_addf(out, "\\u%04lX\\u%04lX", 0xd800 + ((cp - 0x10000) >> 10),
                          0xdc00 + ((cp - 0x10000) & 0x3ff));
            } else if (cp < 0x20 || cp >= 0x7f) {
                sbuf_addf(out, "\\u%04lX", cp);
            } else {
                sbuf_addch(out, (char)cp);
            }
        }
    }
    sbuf_addch(out, '"');
}

/* The shortest %g form that reads back to d; integral values get ".0". */
static void
add_double(struct sbuf *out, double d)
{
    char buf[64];
    int prec;

    if (!isfinite(d)) {
        sbuf_adds(out, "null");         /* JSON has no inf/nan */
        return;
    }
    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    snprintf(buf, sizeof(buf), "%.*g", prec, d);
    sbuf_adds(out, buf);
    if (strpbrk(buf, ".eEn") == NULL) {
        sbuf_adds(out, ".0");
    }
}

static void
add_scalar(const struct kv *kv, struct sbuf *out)
{
    switch (kv->type) {
    case KV_NULL:
        sbuf_adds(out, "null");
        break;
    case KV_BOOL:
        sbuf_adds(out, kv->v.b ? "true" : "false");
        break;
    case KV_INT:
        sbuf_addf(out, "%" PRId64, kv->v.i);
        break;
    case KV_UINT:
        sbuf_addf(out, "%" PRIu64, kv->v.u);
        break;
    case KV_NUMBER:
        add_double(out, kv->v.d);
        break;
    case KV_STRING:
        add_str(out, kv->v.s);
        break;
    case KV_OBJECT:
    case KV_LIST:
        assert(!"not a scalar");
    }
}

void
kv_to_json(const struct kv *kv, struct sbuf *out)
{
    size_t i;

    if (kv->type != KV_OBJECT && kv->type != KV_LIST) {
        add_scalar(kv, out);
        return;
    }
    sbuf_addch(out, kv->type == KV_OBJECT ? '{' : '[');
    for (i = 0; i < kv->n; i++) {
        if (i > 0) {
            sbuf_addch(out, ',');
        }
        if (kv->type == KV_OBJECT) {
            add_str(out, kv->keys[i]);
            sbuf_addch(out, ':');
        }
        kv_to_json(kv->vals[i], out);
    }
    sbuf_addch(out, kv->type == KV_OBJECT ? '}' : ']');
}

static void
newline(struct sbuf *out, int level)
{
    sbuf_addch(out, '\n');
    sbuf_addf(out, "%*s", level * 4, "");
}

/*
 * qemu-img's layout: each member on its own line, 4 spaces per level,
 * "key": value, the closing bracket on its own line at the parent's level.
 * An empty container prints its brackets with a line break between them.
 */
void
kv_to_json_pretty(const struct kv *kv, struct sbuf *out, int indent)
{
    size_t i;

    if (kv->type != KV_OBJECT && kv->type != KV_LIST) {
        add_scalar(kv, out);
        return;
    }
    sbuf_addch(out, kv->type == KV_OBJECT ? '{' : '[');
    for (i = 0; i < kv->n; i++) {
        if (i > 0) {
            sbuf_addch(out, ',');
        }
        newline(out, indent + 1);
        if (kv->type == KV_OBJECT) {
            add_str(out, kv->keys[i]);
            sbuf_adds(out, ": ");
        }
        kv_to_json_pretty(kv->vals[i], out, indent + 1);
    }
    newline(out, indent);
    sbuf_addch(out, kv->type == KV_OBJECT ? '}' : ']');
}
