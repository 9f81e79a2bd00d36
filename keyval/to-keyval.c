/*
 * to-keyval.c - the reverse of parse.c: write a tree as one dotted keyval
 * string (objects as dotted keys, lists as .N, ',' doubled in values) that
 * parses back to the same tree once a schema has typed its strings.
 * Loop-independent; no global state.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/kv-int.h"
#include "util/xalloc.h"

/* A value with each ',' doubled. */
static void
add_value(struct sbuf *out, const char *s)
{
    const char *comma;

    while ((comma = strchr(s, ',')) != NULL) {
        sbuf_add(out, s, (size_t)(comma - s + 1));
        sbuf_addch(out, ',');
        s = comma + 1;
    }
    sbuf_adds(out, s);
}

static void
add_number(struct sbuf *out, double d)
{
    char buf[64];
    int prec;

    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    snprintf(buf, sizeof(buf), "%.*g", prec, d);
    sbuf_adds(out, buf);
}

/* path: the key of kv so far (without a trailing dot). */
static int
emit(const struct kv *kv, struct sbuf *path, struct sbuf *out,
     struct blk_error *err)
{
    size_t i, mark = path->len;
    int r = 0;

    switch (kv->type) {
    case KV_OBJECT:
    case KV_LIST:
        if (kv->n == 0) {
            return blk_error_set(err, -EINVAL,
                                 "keyval cannot express the empty %s '%s'",
                                 kv->type == KV_OBJECT ? "object" : "list",
                                 path->buf);
        }
        for (i = 0; i < kv->n && r == 0; i++) {
            if (mark > 0) {
                sbuf_addch(path, '.');
            }
            if (kv->type == KV_LIST) {
                sbuf_addf(path, "%zu", i);
            } else {
                const char *key = kv->keys[i];
                size_t len = kv_name_len(key);

                sbuf_adds(path, key);
                if (len == 0 || key[len] != '\0' || len > KV_FRAGMENT_MAX) {
                    r = blk_error_set(err, -EINVAL,
                                      "'%s' is not a valid keyval key",
                                      path->buf);
                    break;
                }
            }
            r = emit(kv->vals[i], path, out, err);
            sbuf_setlen(path, mark);
        }
        return r;
    default:
        break;
    }

    if (out->len > 0) {
        sbuf_addch(out, ',');
    }
    sbuf_add(out, path->buf, path->len);
    sbuf_addch(out, '=');
    switch (kv->type) {
    case KV_NULL:
        sbuf_adds(out, "null");
        break;
    case KV_BOOL:
        sbuf_adds(out, kv->v.b ? "on" : "off");
        break;
    case KV_INT:
        sbuf_addf(out, "%" PRId64, kv->v.i);
        break;
    case KV_UINT:
        sbuf_addf(out, "%" PRIu64, kv->v.u);
        break;
    case KV_NUMBER:
        if (!isfinite(kv->v.d)) {
            return blk_error_set(err, -EINVAL,
                                 "keyval cannot express the number in '%s'",
                                 path->buf);
        }
        add_number(out, kv->v.d);
        break;
    case KV_STRING:
        add_value(out, kv->v.s);
        break;
    default:
        break;
    }
    return 0;
}

char *
kv_to_keyval(const struct kv *kv, struct blk_error *err)
{
    struct sbuf path = SBUF_INIT, out = SBUF_INIT;

    if (kv->type != KV_OBJECT) {
        blk_error_set(err, -EINVAL, "keyval can only express an object");
        return NULL;
    }
    if (kv->n > 0 && emit(kv, &path, &out, err) < 0) {
        sbuf_release(&path);
        sbuf_release(&out);
        return NULL;
    }
    sbuf_release(&path);
    return sbuf_detach(&out);
}
