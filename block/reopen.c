/*
 * reopen.c - changing a live node's options and read-only state as one
 * transaction over the node and the children that hold its data: every
 * driver prepares, then all commit (or all abort); then the new
 * permissions are taken, which moves the image locks.  If another
 * process holds a lock we now need, the transaction runs backwards to
 * the old state and fails, so nothing changed.  Backing children keep
 * their own state (reopen them by name, as blockdev-reopen does).
 *
 * Why locks come after commit: a driver may need a new file descriptor
 * (the file driver reopens read-write), and the locks must be taken on
 * the descriptor that will stay.  Loop thread, nodes drained.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/node-int.h"
#include "util/xalloc.h"

/* The generic options a reopen may change (node.c reads them at open). */
struct generic {
    bool discard_unmap;
    bool no_flush;
    enum blk_detect_zeroes detect_zeroes;
};

struct reopen_entry {
    struct blk_node *bs;
    bool new_ro, old_ro;
    struct generic new_gen, old_gen;
    struct kv *new_opts;        /* owned; NULL: this node keeps its options */
    struct kv *old_opts;        /* owned after commit, for the way back */
    void *state;                /* the driver's prepare state */
    bool prepared;
};

/* Merge changes (typed, may be NULL) over a copy of the node's options. */
static struct kv *
merged_options(const struct blk_node *bs, const struct kv *changes,
               bool read_only)
{
    struct kv *o = kv_dup(bs->opts);
    size_t i;

    if (changes != NULL) {
        for (i = 0; i < changes->n; i++) {
            kv_set(o, changes->keys[i], kv_dup(changes->vals[i]));
        }
    }
    kv_set(o, "read-only", kv_new_bool(read_only));
    return o;
}

/*
 * The generic options in opts (the node's merged options), validated as
 * at open; absent ones keep the node's current values.
 */
static int
parse_generic(const struct blk_node *bs, const struct kv *opts,
              struct generic *gen, struct blk_error *err)
{
    const char *name = kv_get_str(opts, "node-name", NULL);
    const char *discard = kv_get_str(opts, "discard", NULL);
    const char *dz = kv_get_str(opts, "detect-zeroes", NULL);
    const struct kv *nf = kv_lookup(opts, "cache.no-flush");

    if (name != NULL && strcmp(name, bs->node_name) != 0) {
        return blk_error_set(err, -EINVAL, "Cannot change the option "
                             "'node-name'");
    }
    gen->discard_unmap = discard != NULL ? strcmp(discard, "unmap") == 0
                                         : bs->discard_unmap;
    gen->no_flush = nf != NULL && nf->type == KV_BOOL ? nf->v.b
                                                      : bs->no_flush;
    gen->detect_zeroes = dz == NULL ? bs->detect_zeroes :
                         strcmp(dz, "unmap") == 0 ? BLK_DZ_UNMAP :
                         strcmp(dz, "on") == 0 ? BLK_DZ_ON : BLK_DZ_OFF;
    if (gen->detect_zeroes == BLK_DZ_UNMAP && !gen->discard_unmap) {
        return blk_error_set(err, -EINVAL, "setting detect-zeroes to unmap "
                             "is not allowed without setting discard "
                             "operation to unmap");
    }
    return 0;
}

static size_t
collect(struct blk_node *bs, bool ro, struct reopen_entry **list, size_t n,
        size_t *cap)
{
    struct blk_child *c;
    size_t i;

    for (i = 0; i < n; i++) {
        if ((*list)[i].bs == bs) {
            return n;
        }
    }
    if (n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *list = xrealloc(*list, *cap * sizeof(**list));
    }
    memset(&(*list)[n], 0, sizeof((*list)[n]));
    (*list)[n].bs = bs;
    (*list)[n].new_ro = ro;
    (*list)[n].old_ro = bs->read_only;
    (*list)[n].old_gen.discard_unmap = bs->discard_unmap;
    (*list)[n].old_gen.no_flush = bs->no_flush;
    (*list)[n].old_gen.detect_zeroes = bs->detect_zeroes;
    (*list)[n].new_gen = (*list)[n].old_gen;
    n++;
    for (c = bs->children; c != NULL; c = c->next) {
        if (!(c->role & BLK_ROLE_COW)) {
            n = collect(c->child, ro, list, n, cap);
        }
    }
    return n;
}

/* Recompute the permissions of bs's non-backing child edges. */
static int
update_child_perms(struct blk_node *bs, struct blk_error *err)
{
    struct blk_child *c;
    int r;

    for (c = bs->children; c != NULL; c = c->next) {
        if (c->role & (BLK_ROLE_COW | BLK_ROLE_FILTERED)) {
            continue;       /* filtered edges follow in update_perm */
        }
        blk_child_default_perm(bs, c->role, &c->perm, &c->shared);
        r = blk_node_update_perm(c->child, err);
        if (r < 0) {
            return r;
        }
    }
    return blk_node_update_perm(bs, err);
}

static bool
entry_changes(const struct reopen_entry *e)
{
    return e->new_ro != e->old_ro || e->new_opts != NULL ||
           e->new_gen.discard_unmap != e->old_gen.discard_unmap ||
           e->new_gen.no_flush != e->old_gen.no_flush;
}

/*
 * A child follows the discard and cache.no-flush changes of the node
 * reopened, as at open, unless its own options set them.
 */
static void
inherit_generic(struct reopen_entry *child, const struct reopen_entry *top)
{
    if (top->new_gen.discard_unmap != top->old_gen.discard_unmap &&
        kv_get(child->bs->opts, "discard") == NULL) {
        child->new_gen.discard_unmap = top->new_gen.discard_unmap;
    }
    if (top->new_gen.no_flush != top->old_gen.no_flush &&
        kv_lookup(child->bs->opts, "cache.no-flush") == NULL) {
        child->new_gen.no_flush = top->new_gen.no_flush;
    }
}

/*
 * Prepare every entry, then commit all or abort all.  On commit the node
 * takes new_opts (its old options go to old_opts) and new_ro.
 */
static int
prepare_commit(struct reopen_entry *list, size_t n, struct blk_error *err)
{
    size_t i;
    int r = 0;

    for (i = 0; i < n && r == 0; i++) {
        struct reopen_entry *e = &list[i];
        const struct blk_driver *drv = e->bs->drv;
        struct kv *opts;

        e->prepared = false;
        if (!entry_changes(e)) {
            continue;
        }
        if (!e->new_ro && e->bs->probed_raw) {
            r = blk_error_set(err, -EPERM, "'%s' was probed as raw and "
                              "cannot become writable; give its format",
                              blk_node_get_filename(e->bs));
            break;
        }
        if (!e->new_ro && e->bs->force_share) {
            r = blk_error_set(err, -EINVAL, "force-share=on can only be used "
                              "with read-only images");
            break;
        }
        if (drv->reopen_prepare == NULL) {
            r = blk_error_set(err, -ENOTSUP, "Block format '%s' used by node "
                              "'%s' does not support reopening files",
                              drv->name, e->bs->node_name);
            break;
        }
        opts = e->new_opts ? e->new_opts
                           : merged_options(e->bs, NULL, e->new_ro);
        r = drv->reopen_prepare(e->bs, opts, e->new_ro, &e->state, err);
        if (opts != e->new_opts) {
            kv_free(opts);
        }
        e->prepared = r == 0;
    }
    for (i = n; i-- > 0;) {
        struct reopen_entry *e = &list[i];

        if (!e->prepared) {
            continue;
        }
        if (r < 0) {
            if (e->bs->drv->reopen_abort != NULL) {
                e->bs->drv->reopen_abort(e->bs, e->state);
            }
            continue;
        }
        /* Children commit first, so a parent's commit may write through them. */
        e->bs->read_only = e->new_ro;
        e->bs->discard_unmap = e->new_gen.discard_unmap;
        e->bs->no_flush = e->new_gen.no_flush;
        e->bs->detect_zeroes = e->new_gen.detect_zeroes;
        if (e->bs->drv->reopen_commit != NULL) {
            e->bs->drv->reopen_commit(e->bs, e->state);
        }
    }
    if (r == 0) {
        for (i = 0; i < n; i++) {
            struct reopen_entry *e = &list[i];

            if (!entry_changes(e)) {
                continue;
            }
            if (e->new_opts != NULL) {
                kv_free(e->old_opts);
                e->old_opts = e->bs->opts;
                e->bs->opts = e->new_opts;
                e->new_opts = NULL;
            }
        }
    }
    return r;
}

int
blk_node_reopen(struct blk_node *bs, const struct kv *changes, bool read_only,
                struct blk_error *err)
{
    struct reopen_entry *list = NULL;
    size_t n, cap = 0, i;
    int r;

    n = collect(bs, read_only, &list, 0, &cap);
    r = 0;
    for (i = 0; i < n && r == 0; i++) {
        if (list[i].new_ro != list[i].old_ro || (i == 0 && changes != NULL)) {
            list[i].new_opts = merged_options(list[i].bs,
                                              i == 0 ? changes : NULL,
                                              list[i].new_ro);
            r = parse_generic(list[i].bs, list[i].new_opts, &list[i].new_gen,
                              err);
        }
    }
    for (i = 1; i < n && r == 0; i++) {
        inherit_generic(&list[i], &list[0]);
    }
    if (r == 0) {
        r = prepare_commit(list, n, err);
    }
    if (r == 0) {
        for (i = 0; i < n && r == 0; i++) {
            r = update_child_perms(list[i].bs, err);
        }
        if (r < 0) {
            /* A lock we need is held elsewhere: back to where we were. */
            for (i = 0; i < n; i++) {
                bool t = list[i].new_ro;

                list[i].new_ro = list[i].old_ro;
                list[i].old_ro = t;
                list[i].new_opts = list[i].old_opts;
                list[i].old_opts = NULL;
                list[i].new_gen = list[i].old_gen;
            }
            prepare_commit(list, n, NULL);
            for (i = 0; i < n; i++) {
                update_child_perms(list[i].bs, NULL);
            }
        }
    }
    for (i = 0; i < n; i++) {
        kv_free(list[i].new_opts);
        kv_free(list[i].old_opts);
    }
    free(list);
    return r;
}
