/*
 * kv.h - blk's one option tree, parsed from dotted keyval strings or JSON,
 * and typed against the schema.  Parsers, the JSON bridge, the validator
 * and introspection all share this one type.
 * Loop-independent; a tree is owned by whoever parsed it and is not
 * thread-safe.
 */
#ifndef KEYVAL_KV_H
#define KEYVAL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/sbuf.h"

enum kv_type {
    KV_NULL,
    KV_BOOL,
    KV_INT,                     /* int64_t i */
    KV_UINT,                    /* uint64_t u, only for values > INT64_MAX */
    KV_NUMBER,                  /* double d (a JSON number with a fraction/exponent) */
    KV_STRING,                  /* char *s; keyval leaves are always strings */
    KV_OBJECT,                  /* members in input order */
    KV_LIST,
};

/*
 * A tree node.  Invariants: an object has n keys and n vals, keys unique;
 * a list has n vals and keys == NULL; scalars have n == 0.  Every child is
 * owned by its parent.  Change an object's membership only through
 * kv_set/kv_take (replacing vals[i] in place is fine): big objects keep a
 * private hash index of their keys so that kv_get is O(1).
 */
struct kv {
    enum kv_type type;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        char *s;
    } v;
    size_t n, cap;
    char **keys;                /* KV_OBJECT: member names */
    struct kv **vals;           /* KV_OBJECT / KV_LIST: children */
    struct kv_index *index;     /* private to kv.c: key hash of big objects */
};

/* Constructors; the caller owns the result and frees it with kv_free. */
struct kv *kv_new_null(void);
struct kv *kv_new_bool(bool b);
struct kv *kv_new_int(int64_t i);
struct kv *kv_new_uint(uint64_t u);     /* stored as KV_INT when it fits */
struct kv *kv_new_number(double d);
struct kv *kv_new_str(const char *s);   /* copies s */
struct kv *kv_new_object(void);
struct kv *kv_new_list(void);
void kv_free(struct kv *kv);            /* kv_free(NULL) is a no-op */
struct kv *kv_dup(const struct kv *kv); /* deep copy; kv_dup(NULL) is NULL */
/*
 * Deep equality: same types and values (1, 1.0 and "1" differ), lists in
 * the same order, objects with the same members in any order.
 */
bool kv_equal(const struct kv *a, const struct kv *b);

/* Objects.  kv_get returns a borrowed child or NULL. */
struct kv *kv_get(const struct kv *obj, const char *key);
/* Sets key to val (takes ownership of val); an existing member keeps its place. */
void kv_set(struct kv *obj, const char *key, struct kv *val);
/* Removes key and returns its value (caller owns), NULL if absent. */
struct kv *kv_take(struct kv *obj, const char *key);
/* Lists: append (takes ownership). */
void kv_append(struct kv *list, struct kv *val);

/* Convenience getters for typed trees; return dflt when absent or another type. */
const char *kv_get_str(const struct kv *obj, const char *key, const char *dflt);
bool kv_get_bool(const struct kv *obj, const char *key, bool dflt);
int64_t kv_get_int(const struct kv *obj, const char *key, int64_t dflt);
uint64_t kv_get_uint(const struct kv *obj, const char *key, uint64_t dflt);

/*
 * Walks a dotted path ("file.filename", "children.0") through objects and
 * lists; returns the borrowed node or NULL.  Member names containing dots
 * cannot be reached this way.
 */
struct kv *kv_lookup(const struct kv *root, const char *path);

/*
 * One line of JSON, members in order, integers exact, no spaces.  Strings
 * are escaped as QEMU writes them: output is ASCII, non-ASCII and control
 * characters as \uHHHH, invalid UTF-8 as U+FFFD (so non-UTF-8 keyval
 * values do not survive a trip through JSON).
 */
void kv_to_json(const struct kv *kv, struct sbuf *out);
/*
 * Pretty JSON as qemu-img prints it (4-space indent, "key": value, closing
 * bracket on its own line, an empty container as "{" newline "}").  indent
 * is the nesting level (in units of 4 spaces) the value starts at; 0 for a
 * top-level value.  No trailing newline.  Doubles print in the shortest
 * form that reads back exactly (with ".0" when integral), in both forms.
 */
void kv_to_json_pretty(const struct kv *kv, struct sbuf *out, int indent);

/*
 * Parsing.  See ../shared/docs/keyval.md.
 *
 * kv_parse_keyval: dotted keyval syntax.  implied_key (may be NULL) names
 * the key of a first item without '='.  help: if non-NULL, a help item
 * sets *help = true; if NULL, a help item is the error "Help is not
 * available for this option".  Returns a tree of objects, lists and
 * strings, or NULL with err set.
 */
struct kv *kv_parse_keyval(const char *s, const char *implied_key, bool *help,
                           struct blk_error *err);
/*
 * One JSON object (keyval.md section 6): RFC 8259 plus single-quoted
 * strings, QEMU 7.2's error texts ("JSON parse error, duplicate key", ...),
 * at most 1024 nested containers.  Integers are exact (KV_INT, KV_UINT
 * above INT64_MAX); an integer outside [-2^63, 2^64-1], or a number that
 * overflows a double, is the error "JSON number 'X' cannot be represented
 * exactly".  Numbers with a fraction or exponent are KV_NUMBER.  A valid
 * JSON value that is not an object is "Invalid JSON object given".  (Own
 * parser, not cJSON: see json.c.)
 */
struct kv *kv_parse_json(const char *s, struct blk_error *err);
/*
 * JSON if s starts with '{', else keyval; *is_json (may be NULL) says
 * which.  For JSON, *help (if non-NULL) is set to false.
 */
struct kv *kv_parse(const char *s, const char *implied_key, bool *help,
                    bool *is_json, struct blk_error *err);
/*
 * A `json:{...}` pseudo-filename (keyval.md section 7): JSON, then dotted
 * member names split into paths and merged like keyval items, objects
 * with index names turned into lists (section 3 errors).  JSON errors are
 * prefixed "Could not parse the JSON options: "; a non-object is
 * "Invalid JSON object given".  Leaves keep their JSON types.
 */
struct kv *kv_parse_json_filename(const char *filename, struct blk_error *err);
bool kv_is_json_filename(const char *filename);

/*
 * The reverse: one keyval string that kv_parse_keyval parses back to a tree
 * equal to kv after typing (strings escaped with ",,").  Fails with -EINVAL
 * for what keyval cannot say (empty list, empty object, keys that are not
 * valid keyval names).  Caller frees the result.
 */
char *kv_to_keyval(const struct kv *kv, struct blk_error *err);

#endif
