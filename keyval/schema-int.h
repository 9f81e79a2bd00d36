/*
 * schema-int.h - the in-memory schema shared by schema-load.c (building
 * it from the schema/ JSON files), validate.c (typing option trees) and
 * introspect.c (help listings and query-qmp-schema).  Built once, then
 * read-only: every pointer here stays valid until the process exits.
 */
#ifndef KEYVAL_SCHEMA_INT_H
#define KEYVAL_SCHEMA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyval/kv.h"
#include "keyval/schema.h"

enum sch_kind {
    SCH_BUILTIN,
    SCH_ENUM,
    SCH_STRUCT,                 /* also the implicit base of a union */
    SCH_UNION,
    SCH_ALTERNATE,
    SCH_ARRAY,
};

enum sch_builtin {
    B_STR, B_BOOL,
    B_INT, B_INT8, B_INT16, B_INT32, B_INT64,
    B_UINT8, B_UINT16, B_UINT32, B_UINT64,
    B_SIZE, B_NUMBER, B_NULL, B_ANY,
};

/* Feature bits of members, enum values and types. */
#define SCH_F_DEPRECATED 1u
#define SCH_F_UNSTABLE   2u

struct sch_member {
    char *name;                 /* without QAPI's leading '*' */
    const struct kv_schema_type *type;
    bool optional;
    unsigned features;          /* SCH_F_* */
    struct kv *dflt;            /* documented default, NULL if none */
};

struct sch_variant {
    char *name;                 /* union: the discriminator value; alternate: the branch name */
    const struct kv_schema_type *type;
};

/*
 * One named type.  Invariants: a struct or union lists its base's
 * members first (flattened), so walking members in order visits a
 * union's discriminator before anything that depends on it; a union's
 * discriminator is one of its members and has enum type; every variant
 * of a union names a struct; array types are named "[T]".
 */
struct kv_schema_type {
    char *name;
    enum sch_kind kind;
    enum sch_builtin builtin;   /* SCH_BUILTIN only */
    unsigned features;          /* SCH_F_* */
    char **extra_features;      /* other feature names ("dynamic-auto-read-only") */
    size_t nextra_features;

    char **values;              /* SCH_ENUM */
    unsigned *value_features;
    size_t nvalues;

    struct sch_member *members; /* SCH_STRUCT, SCH_UNION */
    size_t nmembers;
    size_t nbase;               /* leading members that came from the base */
    char *base_name;            /* named base type, NULL if inline or none */

    const struct sch_member *discriminator;     /* SCH_UNION */
    struct sch_variant *variants;               /* SCH_UNION, SCH_ALTERNATE */
    size_t nvariants;

    const struct kv_schema_type *element;       /* SCH_ARRAY */
};

/* All types in definition order (builtins first); valid after kv_schema_init. */
const struct kv_schema_type *const *sch_types(size_t *n);

/* The member of a struct/union by name, NULL if none. */
const struct sch_member *sch_find_member(const struct kv_schema_type *t,
                                         const char *name);

/* The branch struct of a union for a discriminator value, NULL if none. */
const struct kv_schema_type *sch_union_branch(const struct kv_schema_type *t,
                                              const char *value);

/* Index of value in an enum, -1 if absent. */
int sch_enum_index(const struct kv_schema_type *t, const char *value);

/* The C-ish spelling used in range errors ("uint16_t"), or NULL for int/uint64. */
const char *sch_builtin_ctype(enum sch_builtin b);

#endif
