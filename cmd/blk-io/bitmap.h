/*
 * bitmap.h - blk-io's dirty bitmap commands: block-dirty-bitmap-add,
 * -remove, -clear, -enable, -disable and -merge (QEMU 7.2's arguments,
 * keyval or JSON in the shell, JSON in --qmp), `bitmap dump`, and the
 * "dirty-bitmaps" member of query-named-block-nodes.  Loop thread.
 */
#ifndef CMD_BLK_IO_BITMAP_H
#define CMD_BLK_IO_BITMAP_H

#include "cmd/blk-io/blk-io.h"
#include "keyval/kv.h"

struct qmp;                     /* qmp.c's session state (not used here) */

/* Shell commands (rows in cmdtab.c). */
io_cmd_fn io_cmd_bitmap_add, io_cmd_bitmap_remove, io_cmd_bitmap_clear;
io_cmd_fn io_cmd_bitmap_enable, io_cmd_bitmap_disable, io_cmd_bitmap_merge;
io_cmd_fn io_cmd_bitmap_dump;
void io_help_bitmap_add(struct io_state *st);
void io_help_bitmap_merge(struct io_state *st);
void io_help_bitmap_dump(struct io_state *st);

/*
 * The same commands for --qmp (rows in qmp.c's table): args is the JSON
 * "arguments" object (may be NULL), validated against the schema type;
 * *ret stays NULL ({} is returned).  0, or -errno with err set.
 */
int io_qmp_bitmap_add(struct io_state *st, struct qmp *q, const struct kv *args,
                      struct kv **ret, struct blk_error *err);
int io_qmp_bitmap_remove(struct io_state *st, struct qmp *q,
                         const struct kv *args, struct kv **ret,
                         struct blk_error *err);
int io_qmp_bitmap_clear(struct io_state *st, struct qmp *q,
                        const struct kv *args, struct kv **ret,
                        struct blk_error *err);
int io_qmp_bitmap_enable(struct io_state *st, struct qmp *q,
                         const struct kv *args, struct kv **ret,
                         struct blk_error *err);
int io_qmp_bitmap_disable(struct io_state *st, struct qmp *q,
                          const struct kv *args, struct kv **ret,
                          struct blk_error *err);
int io_qmp_bitmap_merge(struct io_state *st, struct qmp *q,
                        const struct kv *args, struct kv **ret,
                        struct blk_error *err);

/*
 * QEMU's "dirty-bitmaps" list of a node for query-named-block-nodes
 * (newest first: name, recording, persistent, busy, granularity, count,
 * and inconsistent when true), or NULL when the node has no bitmap.
 * Caller frees.
 */
struct kv *io_bitmap_query(struct blk_node *bs);

#endif
