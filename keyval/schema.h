/*
 * schema.h - the QAPI-like schema (the JSON files in schema/, compiled in): typing and
 * validating option trees, help listings and query-qmp-schema output.
 * The schema is loaded once on first use and is read-only afterwards, so
 * these functions may be called from any thread after kv_schema_init().
 */
#ifndef KEYVAL_SCHEMA_H
#define KEYVAL_SCHEMA_H

#include <stdbool.h>

#include "keyval/kv.h"

struct kv_schema_type;          /* opaque: one named type of the schema */

/* Parse the embedded schema; aborts with a message if it is malformed (a bug). */
void kv_schema_init(void);

/*
 * A type by its QAPI name ("BlockdevOptions"; "blockdev" is accepted as
 * an alias for it); NULL if unknown.
 */
const struct kv_schema_type *kv_schema_lookup(const char *name);

/* The discriminator of a union type ("driver"), else NULL: the implied key. */
const char *kv_schema_implied_key(const struct kv_schema_type *type);

/*
 * Check tree against type and convert it in place (keyval.md section 8, 9).
 * from_keyval: string leaves are converted to the member types; otherwise
 * leaves must already have the right JSON type.  json_filename: the lenient
 * mode of `json:` filenames (strings converted, native leaves checked).
 * Errors name the full path (`Parameter 'file.filename' is missing`);
 * list elements are `children.0` in keyval and lenient mode and
 * `children[0]` in JSON mode, as QEMU writes them.  tree itself stays
 * valid (converted in place) even when its root is a scalar.
 */
enum kv_mode { KV_MODE_JSON, KV_MODE_KEYVAL, KV_MODE_LENIENT };
int kv_validate(struct kv *tree, const struct kv_schema_type *type,
                enum kv_mode mode, struct blk_error *err);

/*
 * Parse + validate in one call: s is keyval or JSON (by its first byte),
 * typed as type_name with its implied key.  If help is non-NULL and the
 * string asks for help, *help is set and the help text is appended to
 * help_text (both may be NULL when help is not offered); the tree is
 * then returned parsed but not validated, so check *help first.  Returns
 * the typed tree (caller frees) or NULL with err set; an unknown
 * type_name is the error "unknown schema type 'X'".
 */
struct kv *kv_parse_typed(const char *s, const char *type_name, bool *help,
                          struct sbuf *help_text, struct blk_error *err);

/* The member listing for a help request against tree (section 5). */
void kv_schema_help(const struct kv_schema_type *type, const struct kv *tree,
                    struct sbuf *out);

/*
 * The schema in the shape of QEMU's query-qmp-schema (a JSON array; caller
 * frees).  Unlike QEMU, type names are the real ones, not numbers, and an
 * optional member's "default" holds its documented default where there is
 * one (null otherwise), as QEMU's introspection docs anticipate.
 */
struct kv *kv_schema_introspect(void);

/* The type's QAPI name ("BlockdevOptions"; "[BlockdevRef]" for lists). */
const char *kv_schema_type_name(const struct kv_schema_type *type);

/*
 * The documented default of a member of a struct or union (its base
 * members only), by name or dotted path through struct members
 * ("cache.direct"); a borrowed, read-only typed leaf, or NULL when the
 * member is unknown or has no documented default.  Drivers use it so the
 * default lives in one place.
 */
const struct kv *kv_schema_member_default(const struct kv_schema_type *type,
                                          const char *member);

/*
 * Compatibility policy for deprecated and unstable input (QEMU's -compat
 * deprecated-input=, unstable-input=).  Default: accept both.  Under
 * KV_POLICY_REJECT, kv_validate fails on a member or enum value that has
 * the feature ("Deprecated parameter 'P' disabled by policy",
 * "Unstable value 'V' disabled by policy").  Process-wide; any thread.
 */
enum kv_policy { KV_POLICY_ACCEPT, KV_POLICY_REJECT };
void kv_schema_set_policy(enum kv_policy deprecated_input,
                          enum kv_policy unstable_input);

#endif
