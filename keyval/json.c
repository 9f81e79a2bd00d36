/*
 * json.c - JSON option strings and `json:` pseudo-filenames into the same
 * tree as keyval (../shared/docs/keyval.md sections 6 and 7), with QEMU
 * 7.2's extensions (single-quoted strings) and its error texts.
 * Loop-independent; no global state.
 *
 * Why not cJSON: DESIGN.md puts cJSON at the text boundary, but cJSON
 * stores every number as a double (integers above 2^53 are rounded, which
 * the spec forbids), silently accepts duplicate member names (an error
 * here) and knows neither single quotes nor QEMU's error texts.  So this
 * file has its own small lexer and recursive-descent parser that builds
 * struct kv directly.  Like QEMU it works in two passes: the lexer first
 * collects the tokens of one top-level value (so a stray character or too
 * deep nesting anywhere in it wins over grammar errors), then the parser
 * builds the tree.
 *
 * Numbers: an integer literal is kept exactly (KV_INT, or KV_UINT above
 * INT64_MAX); one outside [-2^63, 2^64-1] is an error rather than a
 * rounded double.  A literal with a fraction or exponent becomes the
 * nearest double (KV_NUMBER); overflow to infinity or underflow of a
 * non-zero value to zero is an error.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keyval/kv-int.h"
#include "util/xalloc.h"

/* QEMU's limit: 1024 nested objects/arrays are fine, 1025 are not. */
#define JSON_NESTING_MAX 1024

enum tok_type {
    TOK_LCURLY, TOK_RCURLY, TOK_LSQUARE, TOK_RSQUARE, TOK_COLON, TOK_COMMA,
    TOK_STRING, TOK_INTEGER, TOK_FLOAT, TOK_KEYWORD,
};

struct tok {
    enum tok_type type;
    size_t start, len;          /* bytes of the input */
};

struct json {
    const char *s;
    size_t pos;                 /* lexer position */
    struct tok *toks;
    size_t n, cap, next;        /* collected tokens; next: parser cursor */
    struct blk_error *err;
};

static bool
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A lexer error: the token so far, including the byte at bad if any. */
static int
stray(struct json *js, size_t start, size_t bad)
{
    size_t end = js->s[bad] ? bad + 1 : bad;

    return blk_error_set(js->err, -EINVAL, "JSON parse error, stray '%.*s'",
                         (int)(end - start), js->s + start);
}

static int
lex_string(struct json *js, size_t start, size_t *end)
{
    const unsigned char *s = (const unsigned char *)js->s;
    unsigned char quote = s[start];
    size_t i = start + 1;

    for (;;) {
        if (s[i] == quote) {
            *end = i + 1;
            return 0;
        }
        if (s[i] == '\\') {
            i++;
        }
        if (s[i] < 0x20 || s[i] >= 0xfe) {       /* NUL (EOI) too */
            return stray(js, start, i);
        }
        i++;
    }
}

static int
lex_number(struct json *js, size_t start, size_t *end, enum tok_type *type)
{
    const char *s = js->s;
    size_t i = start;

    *type = TOK_INTEGER;
    if (s[i] == '-') {
        i++;
    }
    if (s[i] == '0') {
        i++;
        if (is_digit(s[i])) {
            return stray(js, start, i);
        }
    } else if (is_digit(s[i])) {
        while (is_digit(s[i])) {
            i++;
        }
    } else {
        return stray(js, start, i);
    }
    if (s[i] == '.') {
        *type = TOK_FLOAT;
        if (!is_digit(s[++i])) {
            return stray(js, start, i);
        }
        while (is_digit(s[i])) {
            i++;
        }
    }
    if (s[i] == 'e' || s[i] == 'E') {
        *type = TOK_FLOAT;
        i++;
        if (s[i] == '+' || s[i] == '-') {
            i++;
        }
        if (!is_digit(s[i])) {
            return stray(js, start, i);
        }
        while (is_digit(s[i])) {
            i++;
        }
    }
    *end = i;
    return 0;
}

/* The next token into *t: 1, or 0 at the end of input, or -EINVAL. */
static int
lex(struct json *js, struct tok *t)
{
    const char *s = js->s;
    size_t i = js->pos, end = i + 1;
    int r = 0;

    while (is_ws(s[i])) {
        i++;
    }
    if (s[i] == '\0') {
        js->pos = i;
        return 0;
    }
    end = i + 1;
    switch (s[i]) {
    case '{': t->type = TOK_LCURLY; break;
    case '}': t->type = TOK_RCURLY; break;
    case '[': t->type = TOK_LSQUARE; break;
    case ']': t->type = TOK_RSQUARE; break;
    case ':': t->type = TOK_COLON; break;
    case ',': t->type = TOK_COMMA; break;
    case '"':
    case '\'':
        t->type = TOK_STRING;
        r = lex_string(js, i, &end);
        break;
    default:
        if (s[i] == '-' || is_digit(s[i])) {
            r = lex_number(js, i, &end, &t->type);
        } else if (s[i] >= 'a' && s[i] <= 'z') {
            t->type = TOK_KEYWORD;
            for (end = i; s[end] >= 'a' && s[end] <= 'z'; end++) {
                continue;
            }
        } else {
            r = stray(js, i, i);
        }
    }
    if (r < 0) {
        return r;
    }
    t->start = i;
    t->len = end - i;
    js->pos = end;
    return 1;
}

/*
 * Collect the tokens of the first top-level value: until the brackets
 * balance, one closes too many, or the input ends.
 */
static int
collect(struct json *js)
{
    long braces = 0, brackets = 0;
    struct tok t;
    int r;

    for (;;) {
        r = lex(js, &t);
        if (r <= 0) {
            return r;
        }
        if (js->n == js->cap) {
            js->cap = js->cap ? js->cap * 2 : 64;
            js->toks = xrealloc(js->toks, js->cap * sizeof(*js->toks));
        }
        js->toks[js->n++] = t;
        switch (t.type) {
        case TOK_LCURLY: braces++; break;
        case TOK_RCURLY: braces--; break;
        case TOK_LSQUARE: brackets++; break;
        case TOK_RSQUARE: brackets--; break;
        default: break;
        }
        if (braces + brackets > JSON_NESTING_MAX) {
            return blk_error_set(js->err, -EINVAL,
                                 "JSON nesting depth limit exceeded");
        }
        if (braces < 0 || brackets < 0 || (braces == 0 && brackets == 0)) {
            return 0;
        }
    }
}

/* ---- the parser ------------------------------------------------------- */

static int
parse_error(struct json *js, const char *what)
{
    return blk_error_set(js->err, -EINVAL, "JSON parse error, %s", what);
}

static const struct tok *
peek(struct json *js)
{
    return js->next < js->n ? &js->toks[js->next] : NULL;
}

static const struct tok *
pop(struct json *js)
{
    return js->next < js->n ? &js->toks[js->next++] : NULL;
}

static int
hex4(const char *p, unsigned *cp)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *cp = v;
    return 0;
}

static void
add_utf8(struct sbuf *sb, unsigned cp)
{
    if (cp == 0) {
        sbuf_add(sb, "\xc0\x80", 2);    /* modified UTF-8, as QEMU */
    } else if (cp < 0x80) {
        sbuf_addch(sb, (char)cp);
    } else if (cp < 0x800) {
        sbuf_addch(sb, (char)(0xc0 | (cp >> 6)));
        sbuf_addch(sb, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        sbuf_addch(sb, (char)(0xe0 | (cp >> 12)));
        sbuf_addch(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sbuf_addch(sb, (char)(0x80 | (cp & 0x3f)));
    } else {
        sbuf_addch(sb, (char)(0xf0 | (cp >> 18)));
        sbuf_addch(sb, (char)(0x80 | ((cp >> 12) & 0x3f)));
        sbuf_addch(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sbuf_addch(sb, (char)(0x80 | (cp & 0x3f)));
    }
}

/* Bytes of the valid UTF-8 sequence at p (C0 80 included), else 0. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xbf;

    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] == 0xc0) {
        return end - p >= 2 && p[1] == 0x80 ? 2 : 0;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        lo = p[0] == 0xe0 ? 0xa0 : 0x80;       /* no overlongs */
        hi = p[0] == 0xed ? 0x9f : 0xbf;       /* no surrogates */
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        lo = p[0] == 0xf0 ? 0x90 : 0x80;
        hi = p[0] == 0xf4 ? 0x8f : 0xbf;       /* <= U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

/* "\uHHHH" at p (token ends at tend) into *cp, surrogate pairs joined. */
static int
unicode_escape(struct json *js, const char *p, const char *tend,
               const char **after, unsigned *cp)
{
    unsigned lo;
    size_t show = (size_t)(tend - p) < 6 ? (size_t)(tend - p) : 6;

    if ((size_t)(tend - p) < 6 || hex4(p + 2, cp) < 0) {
        goto bad;
    }
    *after = p + 6;
    if (*cp >= 0xdc00 && *cp <= 0xdfff) {
        goto bad;
    }
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        if (tend - *after < 6 || (*after)[0] != '\\' || (*after)[1] != 'u' ||
            hex4(*after + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
            goto bad;
        }
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
        *after += 6;
    }
    return 0;

bad:
    return blk_error_set(js->err, -EINVAL,
                         "JSON parse error, %.*s is not a valid Unicode character",
                         (int)show, p);
}

static struct kv *
parse_string(struct json *js, const struct tok *t)
{
    const char *p = js->s + t->start + 1;
    const char *tend = js->s + t->start + t->len;       /* after the quote */
    const char *end = tend - 1;
    struct sbuf sb = SBUF_INIT;
    struct kv *kv;
    unsigned cp;
    size_t n;

    while (p < end) {
        if (*p != '\\') {
            n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (n == 0) {
                parse_error(js, "invalid UTF-8 sequence in string");
                goto out_release;
            }
            sbuf_add(&sb, p, n);
            p += n;
            continue;
        }
        switch (p[1]) {
        case '"': case '\'': case '\\': case '/':
            sbuf_addch(&sb, p[1]);
            break;
        case 'b': sbuf_addch(&sb, '\b'); break;
        case 'f': sbuf_addch(&sb, '\f'); break;
        case 'n': sbuf_addch(&sb, '\n'); break;
        case 'r': sbuf_addch(&sb, '\r'); break;
        case 't': sbuf_addch(&sb, '\t'); break;
        case 'u':
            if (unicode_escape(js, p, tend, &p, &cp) < 0) {
                goto out_release;
            }
            add_utf8(&sb, cp);
            continue;
        default:
            parse_error(js, "invalid escape sequence in string");
            goto out_release;
        }
        p += 2;
    }
    kv = kv_new_str("");
    free(kv->v.s);
    kv->v.s = sbuf_detach(&sb);
    return kv;

out_release:
    sbuf_release(&sb);
    return NULL;
}

static struct kv *
parse_number(struct json *js, const struct tok *t)
{
    char *text = xstrndup(js->s + t->start, t->len), *p;
    struct kv *kv = NULL;
    bool nonzero = false;
    double d;

    errno = 0;
    if (t->type == TOK_INTEGER) {
        long long i = strtoll(text, NULL, 10);

        if (errno == 0) {
            kv = kv_new_int(i);
        } else if (text[0] != '-') {
            unsigned long long u;

            errno = 0;
            u = strtoull(text, NULL, 10);
            if (errno == 0) {
                kv = kv_new_uint(u);
            }
        }
    } else {
        d = strtod(text, NULL);
        for (p = text; *p && *p != 'e' && *p != 'E'; p++) {
            nonzero |= *p >= '1' && *p <= '9';
        }
        if (isfinite(d) && (d != 0 || !nonzero)) {
            kv = kv_new_number(d);
        }
    }
    if (kv == NULL) {
        blk_error_set(js->err, -EINVAL,
                      "JSON number '%s' cannot be represented exactly", text);
    }
    free(text);
    return kv;
}

static struct kv *parse_value(struct json *js);

/* One "key": value into obj; 0 or -EINVAL. */
static int
parse_member(struct json *js, struct kv *obj)
{
    const struct tok *t;
    struct kv *key, *val;
    int r = -EINVAL;

    if (peek(js) == NULL) {
        return parse_error(js, "premature EOI");
    }
    key = parse_value(js);
    if (key == NULL || key->type != KV_STRING) {
        parse_error(js, "key is not a string in object");   /* unless set */
        goto out_free_key;
    }
    t = pop(js);
    if (t == NULL) {
        parse_error(js, "premature EOI");
        goto out_free_key;
    }
    if (t->type != TOK_COLON) {
        parse_error(js, "missing : in object pair");
        goto out_free_key;
    }
    val = parse_value(js);
    if (val == NULL) {
        goto out_free_key;
    }
    /* Like QEMU, the value is parsed before the duplicate is noticed. */
    if (kv_get(obj, key->v.s) != NULL) {
        kv_free(val);
        parse_error(js, "duplicate key");
        goto out_free_key;
    }
    kv_set(obj, key->v.s, val);
    r = 0;

out_free_key:
    kv_free(key);
    return r;
}

static struct kv *
parse_object(struct json *js)
{
    struct kv *obj = kv_new_object();
    const struct tok *t;

    pop(js);                                    /* '{' */
    t = peek(js);
    if (t == NULL) {
        parse_error(js, "premature EOI");
        goto out_free;
    }
    if (t->type == TOK_RCURLY) {
        pop(js);
        return obj;
    }
    for (;;) {
        if (parse_member(js, obj) < 0) {
            goto out_free;
        }
        t = pop(js);
        if (t == NULL) {
            parse_error(js, "premature EOI");
            goto out_free;
        }
        if (t->type == TOK_RCURLY) {
            return obj;
        }
        if (t->type != TOK_COMMA) {
            parse_error(js, "expected separator in dict");
            goto out_free;
        }
    }

out_free:
    kv_free(obj);
    return NULL;
}

static struct kv *
parse_array(struct json *js)
{
    struct kv *list = kv_new_list(), *val;
    const struct tok *t;

    pop(js);                                    /* '[' */
    t = peek(js);
    if (t == NULL) {
        parse_error(js, "premature EOI");
        goto out_free;
    }
    if (t->type == TOK_RSQUARE) {
        pop(js);
        return list;
    }
    for (;;) {
        val = parse_value(js);
        if (val == NULL) {
            goto out_free;
        }
        kv_append(list, val);
        t = pop(js);
        if (t == NULL) {
            parse_error(js, "premature EOI");
            goto out_free;
        }
        if (t->type == TOK_RSQUARE) {
            return list;
        }
        if (t->type != TOK_COMMA) {
            parse_error(js, "expected separator in list");
            goto out_free;
        }
    }

out_free:
    kv_free(list);
    return NULL;
}

/* Recursion is bounded by JSON_NESTING_MAX, checked while collecting. */
static struct kv *
parse_value(struct json *js)
{
    const struct tok *t = peek(js);
    const char *text;

    if (t == NULL) {
        parse_error(js, "premature EOI");
        return NULL;
    }
    switch (t->type) {
    case TOK_LCURLY:
        return parse_object(js);
    case TOK_LSQUARE:
        return parse_array(js);
    case TOK_STRING:
        return parse_string(js, pop(js));
    case TOK_INTEGER:
    case TOK_FLOAT:
        return parse_number(js, pop(js));
    case TOK_KEYWORD:
        pop(js);
        text = js->s + t->start;
        if (t->len == 4 && memcmp(text, "true", 4) == 0) {
            return kv_new_bool(true);
        }
        if (t->len == 5 && memcmp(text, "false", 5) == 0) {
            return kv_new_bool(false);
        }
        if (t->len == 4 && memcmp(text, "null", 4) == 0) {
            return kv_new_null();
        }
        blk_error_set(js->err, -EINVAL, "JSON parse error, invalid keyword '%.*s'",
                      (int)t->len, text);
        return NULL;
    default:
        parse_error(js, "expecting value");
        return NULL;
    }
}

/* Any one JSON value (the caller checks its type). */
static struct kv *
parse_any(const char *s, struct blk_error *err)
{
    struct json js = { .s = s, .err = err };
    struct kv *kv = NULL;

    if (collect(&js) < 0) {
        goto out;
    }
    if (js.n == 0) {
        blk_error_set(err, -EINVAL, "Expecting a JSON value");
        goto out;
    }
    kv = parse_value(&js);
    if (kv == NULL) {
        goto out;
    }
    while (is_ws(s[js.pos])) {
        js.pos++;
    }
    if (s[js.pos] != '\0') {
        blk_error_set(err, -EINVAL, "Expecting at most one JSON value");
        kv_free(kv);
        kv = NULL;
    }
out:
    free(js.toks);
    return kv;
}

struct kv *
kv_parse_json(const char *s, struct blk_error *err)
{
    struct kv *kv = parse_any(s, err);

    if (kv != NULL && kv->type != KV_OBJECT) {
        kv_free(kv);
        blk_error_set(err, -EINVAL, "Invalid JSON object given");
        return NULL;
    }
    return kv;
}

/* ---- json: filenames -------------------------------------------------- */

static int merge_member(struct kv *dst, const char *name, struct kv *val,
                        struct sbuf *path, struct blk_error *err);

/* Split the dotted names of src's members (recursively) into dst. */
static int
merge_object(struct kv *dst, struct kv *src, struct sbuf *path,
             struct blk_error *err)
{
    size_t i;
    int r = 0;

    for (i = 0; i < src->n; i++) {
        if (r == 0) {
            r = merge_member(dst, src->keys[i], src->vals[i], path, err);
        } else {
            kv_free(src->vals[i]);
        }
        free(src->keys[i]);
    }
    src->n = 0;                 /* every value was handed on or freed */
    kv_free(src);
    return r;
}

/* Split the names inside objects held in list (recursively), in place. */
static int
split_list(struct kv *list, struct sbuf *path, struct blk_error *err)
{
    size_t i, mark = path->len;
    struct kv *obj;
    int r;

    for (i = 0; i < list->n; i++) {
        sbuf_addf(path, "%zu.", i);
        if (list->vals[i]->type == KV_OBJECT) {
            obj = kv_new_object();
            r = merge_object(obj, list->vals[i], path, err);
            list->vals[i] = obj;
        } else if (list->vals[i]->type == KV_LIST) {
            r = split_list(list->vals[i], path, err);
        } else {
            r = 0;
        }
        sbuf_setlen(path, mark);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* A fragment of a member name as a key: index fragments normalized. */
static char *
fragment(const char *p, size_t len)
{
    char *frag = xstrndup(p, len);

    if (len > 0 && strspn(frag, "0123456789") == len) {
        kv_index_normalize(frag, p, len);
    }
    return frag;
}

/*
 * The object member p[0..len) of cur, created if absent; path (cur's path
 * plus ".") grows by "p.".  NULL with the section 3 error if the member
 * is there but not an object.
 */
static struct kv *
enter(struct kv *cur, const char *p, size_t len, struct sbuf *path,
      struct blk_error *err)
{
    char *frag = fragment(p, len);
    struct kv *child = kv_get(cur, frag);

    sbuf_add(path, p, len);
    if (child == NULL) {
        child = kv_new_object();
        kv_set(cur, frag, child);
    } else if (child->type != KV_OBJECT) {
        blk_error_set(err, -EINVAL, "Parameters '%s.*' used inconsistently",
                      path->buf);
        child = NULL;
    }
    sbuf_addch(path, '.');
    free(frag);
    return child;
}

/*
 * Put member name (dotted: a path) with value val (taken) into dst, as a
 * keyval item would: objects merge, other values replace (last wins), and
 * an object meeting a non-object is an error.  path is dst's path plus "."
 * (empty for the root), for messages.
 */
static int
merge_member(struct kv *dst, const char *name, struct kv *val,
             struct sbuf *path, struct blk_error *err)
{
    size_t mark = path->len;
    struct kv *cur = dst, *old;
    const char *p = name, *dot;
    char *frag;
    int r = 0;

    while ((dot = strchr(p, '.')) != NULL) {
        cur = enter(cur, p, (size_t)(dot - p), path, err);
        if (cur == NULL) {
            r = -EINVAL;
            kv_free(val);
            goto out;
        }
        p = dot + 1;
    }
    if (val->type == KV_OBJECT) {
        cur = enter(cur, p, strlen(p), path, err);
        if (cur == NULL) {
            r = -EINVAL;
            kv_free(val);
            goto out;
        }
        r = merge_object(cur, val, path, err);
        goto out;
    }
    frag = fragment(p, strlen(p));
    old = kv_get(cur, frag);
    sbuf_adds(path, p);
    if (old != NULL && old->type == KV_OBJECT) {
        r = blk_error_set(err, -EINVAL, "Parameters '%s.*' used inconsistently",
                          path->buf);
        kv_free(val);
    } else {
        sbuf_addch(path, '.');
        if (val->type == KV_LIST) {
            r = split_list(val, path, err);
        }
        kv_set(cur, frag, val);
    }
    free(frag);
out:
    sbuf_setlen(path, mark);
    return r;
}

bool
kv_is_json_filename(const char *filename)
{
    return strncmp(filename, "json:", 5) == 0;
}

struct kv *
kv_parse_json_filename(const char *filename, struct blk_error *err)
{
    struct sbuf path = SBUF_INIT;
    struct kv *json, *tree;

    if (!kv_is_json_filename(filename)) {
        blk_error_set(err, -EINVAL, "'%s' is not a json: filename", filename);
        return NULL;
    }
    json = parse_any(filename + 5, err);
    if (json == NULL) {
        blk_error_prefix(err, "Could not parse the JSON options: ");
        return NULL;
    }
    if (json->type != KV_OBJECT) {
        kv_free(json);
        blk_error_set(err, -EINVAL, "Invalid JSON object given");
        return NULL;
    }
    tree = kv_new_object();
    if (merge_object(tree, json, &path, err) < 0 ||
        kv_listify(tree, err) < 0) {
        kv_free(tree);
        tree = NULL;
    }
    sbuf_release(&path);
    return tree;
}
