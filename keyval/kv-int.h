/*
 * kv-int.h - helpers shared by keyval's own parsers (parse.c, json.c,
 * to-keyval.c): name syntax and turning index-keyed objects into lists.
 * Not for use outside keyval/.
 */
#ifndef KEYVAL_KV_INT_H
#define KEYVAL_KV_INT_H

#include <stddef.h>

#include "keyval/kv.h"

/* Longest key fragment, in bytes (QEMU's limit). */
#define KV_FRAGMENT_MAX 127

/* Most fragments in one keyval key; keeps every tree shallow enough to walk recursively. */
#define KV_KEY_DEPTH_MAX 1024

/*
 * Length of the name fragment at s: [ "__" rfqdn "_" ] ALPHA *( ALPHA |
 * DIGIT | "-" | "_" ), ASCII only.  0 if s does not start with a name.
 */
size_t kv_name_len(const char *s);

/*
 * Store the index fragment s[0..len) (all digits) into buf without its
 * leading zeros, so that "00" and "0" name the same member.  buf has room
 * for len + 1 bytes.
 */
void kv_index_normalize(char *buf, const char *s, size_t len);

/*
 * Section 3 list assembly: below root, every object whose member names
 * are all (normalized) indexes becomes a list.  Errors: mixed members
 * "Parameters 'P.*' used inconsistently", gaps "Parameter 'P.N' missing".
 * On failure the tree is left valid (the caller frees it).
 */
int kv_listify(struct kv *root, struct blk_error *err);

#endif
