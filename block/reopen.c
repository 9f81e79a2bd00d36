/*
 * reopen.c - changing a live node's options and read-only state as one
 * transaction over the node and the children that hold its data: every
 * driver prepares, the new permissions are taken (image locks move), and
 * only then does everything commit; any failure aborts all of it and
 * nothing changed.  Backing children keep their own state (reopen them
 * by name, as blockdev-reopen does).  Loop thread, nodes drained.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/node-int.h"
#include "util/xalloc.h"

struct reopen_entry {
    struct blk_node *bs;
    bool new_ro, old_ro;
    struct kv *new_opts;        /* owned until commit; NULL: unchanged */
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

int
blk_node_reopen(struct blk_node *bs, const struct kv *changes, bool read_only,
                struct blk_error *err)
{
    struct reopen_entry *list = NULL;
    size_t n, cap = 0, i;
    int r = 0;

    n = collect(bs, read_only, &list, 0, &cap);
    for (i = 0; i < n && r == 0; i++) {
        struct reopen_entry *e = &list[i];
        const struct blk_driver *drv = e->bs->drv;
        bool changed = e->new_ro != e->old_ro || (i == 0 && changes != NULL);

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
        if (i == 0 || changed) {
            e->new_opts = merged_options(e->bs, i == 0 ? changes : NULL,
                                         e->new_ro);
        }
        if (!changed) {
            continue;
        }
        if (drv->reopen_prepare == NULL) {
            r = blk_error_set(err, -ENOTSUP, "Block format '%s' used by node "
                              "'%s' does not support reopening files",
                              drv->name, e->bs->node_name);
            break;
        }
        r = drv->reopen_prepare(e->bs, e->new_opts, e->new_ro, &e->state, err);
        e->prepared = r == 0;
    }
    if (r == 0) {
        /* New permissions (and image locks) before anything commits. */
        for (i = 0; i < n; i++) {
            list[i].bs->read_only = list[i].new_ro;
        }
        for (i = 0; i < n && r == 0; i++) {
            r = update_child_perms(list[i].bs, err);
        }
        if (r < 0) {
            for (i = 0; i < n; i++) {
                list[i].bs->read_only = list[i].old_ro;
            }
            for (i = 0; i < n; i++) {
                update_child_perms(list[i].bs, NULL);
            }
        }
    }
    for (i = n; i-- > 0;) {
        struct reopen_entry *e = &list[i];

        if (r == 0) {
            if (e->prepared && e->bs->drv->reopen_commit != NULL) {
                e->bs->drv->reopen_commit(e->bs, e->state);
            }
            if (e->new_opts != NULL) {
                kv_free(e->bs->opts);
                e->bs->opts = e->new_opts;
                e->new_opts = NULL;
            }
        } else if (e->prepared && e->bs->drv->reopen_abort != NULL) {
            e->bs->drv->reopen_abort(e->bs, e->state);
        }
        kv_free(e->new_opts);
    }
    if (r == 0) {
        /*
         * A driver may have swapped its file descriptor in commit (the file
         * driver reopens read-write): take the same locks on the new one.
         */
        for (i = 0; i < n && r == 0; i++) {
            r = update_child_perms(list[i].bs, err);
        }
    }
    free(list);
    return r;
}
