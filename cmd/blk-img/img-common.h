/*
 * img-common.h - helpers shared by the blk-img image subcommands (create,
 * info, check, map, compare, resize, measure, amend, snapshot): option
 * errors worded like qemu-img 7.2, opening images, the -o option tables,
 * QEMU's JSON member order, and block status over a backing chain.
 * Single-threaded command code; everything prints to stdout/stderr.
 */
#ifndef CMD_BLK_IMG_IMG_COMMON_H
#define CMD_BLK_IMG_IMG_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "keyval/kv.h"
#include "util/sbuf.h"

enum img_output { IMG_OUTPUT_HUMAN, IMG_OUTPUT_JSON };

/* "blk-img: <msg>" then "Try 'blk-img --help' for more information". */
void img_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Report a getopt_long failure the way qemu-img does: c is what getopt
 * returned (':' missing argument, '?' unknown option; the optstring must
 * start with ':').  Always returns 1 (the exit status).
 */
int img_getopt_error(int c, char **argv);

/* Parse --output; prints qemu-img's error and returns -1 on a bad value. */
int img_parse_output(const char *s, enum img_output *out);

/*
 * Parse a command-line size (create, resize, measure --size) with
 * qemu-img's rules; *out <= INT64_MAX.  Returns 0, or -EINVAL.
 */
int img_parse_size(const char *s, uint64_t *out);
/* qemu-img's two-line "Invalid <what> specified. You may use k, M, ..." */
void img_size_error(const char *what);

/*
 * Open an image for a command: name is a filename, json:{...} or, with
 * image_opts, an option string.  Prints "blk-img: Could not open ..." (or
 * the --image-opts/--format conflict) and returns NULL on failure.
 * flags: BLK_OPEN_*.  The caller owns the node reference.
 */
struct blk_node *img_open(struct blk_graph *g, const char *name,
                          const char *fmt, bool image_opts, unsigned flags);

/* The format node's driver name ("qcow2", "raw"). */
const char *img_format_name(const struct blk_node *bs);

/*
 * The backing file name recorded in a qcow2 image, combined with the
 * image's own directory as QEMU does: "a.qcow2" next to "sub/top.qcow2"
 * is "sub/a.qcow2"; absolute names and json:/protocol names stay as they
 * are.  Caller frees.
 */
char *img_path_combine(const char *image, const char *backing);

/* ---- qcow2 header facts, read straight from the file node --------------- */

struct img_qcow2_header {
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t refcount_order;
    uint64_t incompatible, compatible, autoclear;
    uint8_t compression_type;   /* 0 zlib, 1 zstd */
    char *backing_file;         /* NULL if none; owned */
    char *backing_fmt;          /* NULL if none; owned */
    char *data_file;            /* NULL if none; owned */
};

/* Read the header of the qcow2 image stored in file.  0 or -errno. */
int img_qcow2_read_header(struct blk_node *file, struct img_qcow2_header *h,
                          struct blk_error *err);
void img_qcow2_header_release(struct img_qcow2_header *h);

/* ---- create/amend -o options ------------------------------------------- */

enum img_opt_type { IMG_OPT_STR, IMG_OPT_BOOL, IMG_OPT_SIZE, IMG_OPT_NUM };

/* One qemu-img -o option (QemuOpts name) and where it goes in blk. */
struct img_opt_desc {
    const char *name;           /* "cluster_size" */
    const char *member;         /* BlockdevCreateOptions member, "cluster-size" */
    enum img_opt_type type;
    const char *dflt;           /* printed in "Formatting ..." when unset */
    const char *help;
};

/* The -o options of a format ("qcow2", "raw", "file"), NULL-terminated; NULL if none. */
const struct img_opt_desc *img_create_opts(const char *fmt);
/* The -o options qemu-img amend accepts for fmt; NULL if none. */
const struct img_opt_desc *img_amend_opts(const char *fmt);
/* The protocol (file) options that create adds behind a format's own. */
const struct img_opt_desc *img_protocol_opts(void);
/* Find an option by name in a NULL-terminated table, or NULL. */
const struct img_opt_desc *img_opt_find(const struct img_opt_desc *t,
                                        const char *name);

/*
 * Print the help listing ("  name=<type> - help") of one or two tables,
 * merged and sorted by name (b may be NULL).
 */
void img_opts_help(const struct img_opt_desc *a, const struct img_opt_desc *b);

/*
 * Parse the -o string (several -o are joined with ',') with the keyval
 * parser.  Leaves are strings.  *help is set for a help item.  Returns the
 * tree or NULL with err set.
 */
struct kv *img_opts_parse(const char *s, bool *help, struct blk_error *err);

/*
 * Check every option of opts against the tables (a, then b; b may be
 * NULL): unknown names are "Invalid parameter 'x'", values of sizes,
 * numbers and booleans must parse.  Returns 0 or -EINVAL with err set.
 */
int img_opts_check(const struct kv *opts, const struct img_opt_desc *a,
                   const struct img_opt_desc *b, struct blk_error *err);

/* An option's value as given (borrowed), or NULL. */
const char *img_opt_str(const struct kv *opts, const char *name);
/* Size/number option value (already checked by img_opts_check). */
bool img_opt_u64(const struct kv *opts, const char *name, uint64_t *out);
/* Bool option value; dflt when absent. */
bool img_opt_bool(const struct kv *opts, const char *name, bool dflt);

/* ---- QEMU output conventions -------------------------------------------- */

/*
 * Reorder the members of every object in tree (recursively) into the
 * order QEMU's QDict iterates them (its 512-bucket hash of the key; a
 * later insertion comes first within a bucket), which is the member order
 * of qemu-img's JSON output and of its "Format specific information".
 */
void img_qdict_order(struct kv *tree);

/* Print tree as qemu-img's pretty JSON, then a newline. */
void img_print_json(const struct kv *tree);

/*
 * qemu-img's human dump of a format-specific "data" object: one
 * "key: value" line per member ('-' in keys shown as ' '), nested objects
 * and lists indented by 4 more, list items as "[i]:".
 */
void img_dump_specific(const struct kv *obj, int indent, struct sbuf *out);

/* The snapshot table of `snapshot -l` and `info` (header + rows). */
void img_dump_snapshots(const struct blk_snapshot_info *sn, size_t n,
                        struct sbuf *out);
/* Free a list from the driver's snapshot_list. */
void img_snapshots_free(struct blk_snapshot_info *sn, size_t n);

/* ---- block status across a backing chain -------------------------------- */

/*
 * Block status of bs at [off, off+len) taking the backing chain into
 * account, with QEMU's bdrv_block_status_above meaning: DATA/ZERO and the
 * mapping come from the first layer that has the range allocated;
 * ALLOCATED is set when some layer has it; a range no layer has reads as
 * ZERO.  *depth (may be NULL) is the layer index that answered (or the
 * depth of the last layer).  st->pnum >= 1 on success.
 */
int img_block_status_chain(struct blk_node *bs, uint64_t off, uint64_t len,
                           struct blk_status *st, int *depth,
                           struct blk_error *err);

#endif
