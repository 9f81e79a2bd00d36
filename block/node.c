/*
 * node.c - the block graph: nodes (driver instances) with their generic
 * options, edges with roles and permissions, references, node names and
 * backends.  Everything here runs on the loop thread (or in an offline
 * tool's only thread); the graph never changes under a worker because
 * edges change only while the nodes concerned are drained.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/bitmap.h"
#include "block/node-int.h"
#include "util/xalloc.h"

/* Inherited from the parent (or the open flags) unless the options say otherwise. */
struct inherit {
    bool read_only;
    bool cache_direct;
    bool no_flush;
    bool force_share;
    bool discard_unmap;
    unsigned flags;
};

static struct blk_node *open_node(struct blk_graph *g,
                                  const struct blk_driver *drv,
                                  const struct kv *opts,
                                  const struct inherit *inh,
                                  struct blk_error *err);

struct blk_graph *
blk_graph_new(void)
{
    return xzalloc(sizeof(struct blk_graph));
}

void
blk_graph_free(struct blk_graph *g)
{
    if (g == NULL) {
        return;
    }
    while (g->backends != NULL) {
        blk_backend_free(g->backends);
    }
    /* Nodes still referenced by the caller are the caller's leak. */
    free(g);
}

/* ---- accessors ------------------------------------------------------------ */

void *
blk_node_state(struct blk_node *bs)
{
    return bs->state;
}

const char *
blk_node_get_name(const struct blk_node *bs)
{
    return bs->node_name;
}

const char *
blk_node_get_filename(const struct blk_node *bs)
{
    struct blk_child *c;

    if (bs->filename != NULL) {
        return bs->filename;
    }
    for (c = bs->children; c != NULL; c = c->next) {
        if (c->role & (BLK_ROLE_PRIMARY | BLK_ROLE_FILTERED)) {
            return blk_node_get_filename(c->child);
        }
    }
    return "";
}

void
blk_node_set_filename(struct blk_node *bs, const char *filename)
{
    free(bs->filename);
    bs->filename = filename ? xstrdup(filename) : NULL;
}

bool
blk_node_is_read_only(const struct blk_node *bs)
{
    return bs->read_only;
}

bool
blk_node_cache_direct(const struct blk_node *bs)
{
    return bs->cache_direct;
}

bool
blk_node_cache_no_flush(const struct blk_node *bs)
{
    return bs->no_flush;
}

bool
blk_node_force_share(const struct blk_node *bs)
{
    return bs->force_share;
}

bool
blk_node_discard_unmap(const struct blk_node *bs)
{
    return bs->discard_unmap;
}

unsigned
blk_node_open_flags(const struct blk_node *bs)
{
    return bs->open_flags;
}

void
blk_node_set_limits(struct blk_node *bs, const struct blk_limits *l)
{
    bs->limits = *l;
    if (bs->limits.request_alignment == 0) {
        bs->limits.request_alignment = 1;
    }
}

const struct blk_limits *
blk_node_get_limits(const struct blk_node *bs)
{
    return &bs->limits;
}

const struct blk_driver *
blk_node_driver(const struct blk_node *bs)
{
    return bs->drv;
}

const struct kv *
blk_node_options(const struct blk_node *bs)
{
    return bs->opts;
}

void
blk_node_get_perm(const struct blk_node *bs, unsigned *perm, unsigned *shared)
{
    *perm = bs->perm;
    *shared = bs->shared;
}

struct blk_child *
blk_node_get_child(const struct blk_node *bs, const char *name)
{
    struct blk_child *c;

    for (c = bs->children; c != NULL; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

struct blk_child *
blk_node_next_child(const struct blk_node *bs, struct blk_child *prev)
{
    return prev == NULL ? bs->children : prev->next;
}

struct blk_node *
blk_child_node(const struct blk_child *c)
{
    return c->child;
}

const char *
blk_child_name(const struct blk_child *c)
{
    return c->name;
}

struct blk_node *
blk_node_backing(const struct blk_node *bs)
{
    struct blk_child *c = blk_node_get_child(bs, "backing");

    return c ? c->child : NULL;
}

struct blk_node *
blk_node_file(const struct blk_node *bs)
{
    struct blk_child *c;

    for (c = bs->children; c != NULL; c = c->next) {
        if (c->role & (BLK_ROLE_PRIMARY | BLK_ROLE_FILTERED)) {
            return c->child;
        }
    }
    return NULL;
}

struct blk_node *
blk_graph_find_node(struct blk_graph *g, const char *node_name)
{
    struct blk_node *bs;

    for (bs = g->nodes; bs != NULL; bs = bs->next_in_graph) {
        if (strcmp(bs->node_name, node_name) == 0) {
            return bs;
        }
    }
    return NULL;
}

struct blk_node *
blk_graph_next_node(struct blk_graph *g, struct blk_node *prev)
{
    return prev == NULL ? g->nodes : prev->next_in_graph;
}

/* ---- permissions ---------------------------------------------------------- */

const char *
blk_perm_name(unsigned bit)
{
    switch (bit) {
    case BLK_PERM_CONSISTENT_READ: return "consistent read";
    case BLK_PERM_WRITE: return "write";
    case BLK_PERM_WRITE_UNCHANGED: return "write unchanged";
    case BLK_PERM_RESIZE: return "resize";
    default: return "unknown";
    }
}

/*
 * What a parent takes and shares on a child of a given role.  Storage
 * (data/metadata) follows QEMU's defaults: a writable parent writes and
 * resizes, and nobody else may write or resize under a format driver.
 * Backing files are only read, and everything is shared on them.
 * Limitation: permissions follow the parent's read-only state, not the
 * permissions its own parents take (QEMU propagates those); tools open
 * their images directly, so the two agree for every tool.
 */
void
blk_child_default_perm(struct blk_node *parent, unsigned role,
                       unsigned *perm, unsigned *shared)
{
    bool writable = parent != NULL && !parent->read_only;

    if (role & BLK_ROLE_COW) {
        *perm = BLK_PERM_CONSISTENT_READ;
        *shared = BLK_PERM_ALL;
    } else if (role & BLK_ROLE_FILTERED) {
        /*
         * A filter (raw, throttle) stands for its parent: it reads, writes
         * when writable, and shares everything, as QEMU's qemu-io and
         * qemu-img do through a raw node (lock bytes 100 and 101 only).
         */
        *perm = BLK_PERM_CONSISTENT_READ;
        if (writable) {
            *perm |= BLK_PERM_WRITE;
        }
        *shared = BLK_PERM_ALL;
    } else {
        *perm = BLK_PERM_CONSISTENT_READ;
        if (writable) {
            *perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
        }
        *shared = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
    }
    if (parent != NULL && parent->force_share) {
        *shared = BLK_PERM_ALL;
    }
}

static const char *
child_user(const struct blk_child *c)
{
    return c->parent ? c->parent->node_name : c->be->name;
}

/*
 * Recompute the cumulative permissions of bs from its parents, refuse a
 * parent that takes what another does not share, and tell the driver
 * (which locks the image file).  On failure nothing changed.
 */
/* A filtered edge passes on what the filter's own parents take and share. */
static void
filtered_perm(const struct blk_node *parent, unsigned *perm, unsigned *shared)
{
    if (parent->parents != NULL) {
        *perm = parent->perm;
        *shared = parent->shared;
    } else {
        blk_child_default_perm((struct blk_node *)parent, BLK_ROLE_FILTERED,
                               perm, shared);
    }
}

int
blk_node_update_perm(struct blk_node *bs, struct blk_error *err)
{
    unsigned perm = 0, shared = BLK_PERM_ALL, old_perm, old_shared;
    struct blk_child *c, *o;
    unsigned bit;
    int r;

    for (c = bs->parents; c != NULL; c = c->next_parent) {
        for (o = bs->parents; o != NULL; o = o->next_parent) {
            unsigned clash;

            if (o == c) {
                continue;
            }
            clash = c->perm & ~o->shared;
            if (clash == 0) {
                continue;
            }
            for (bit = 1; !(clash & bit); bit <<= 1) {
            }
            return blk_error_set(err, -EPERM,
                                 "Conflicts with use by '%s' as '%s', which "
                                 "does not allow '%s' on %s",
                                 child_user(o), o->name, blk_perm_name(bit),
                                 bs->node_name);
        }
        perm |= c->perm;
        shared &= c->shared;
    }
    if ((perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED)) &&
        bs->read_only) {
        return blk_error_set(err, -EPERM, "Block node '%s' is read-only",
                             bs->node_name);
    }
    if (bs->drv->set_perm != NULL &&
        (perm != bs->perm || shared != bs->shared || bs->parents != NULL)) {
        r = bs->drv->set_perm(bs, perm, shared, err);
        if (r < 0) {
            return r;
        }
    }
    old_perm = bs->perm;
    old_shared = bs->shared;
    bs->perm = perm;
    bs->shared = shared;
    /* Filters pass their parents' permissions down (QEMU's filter perms). */
    for (c = bs->children; c != NULL; c = c->next) {
        unsigned cp, cs, op = c->perm, os = c->shared;

        if (!(c->role & BLK_ROLE_FILTERED)) {
            continue;
        }
        filtered_perm(bs, &cp, &cs);
        if (cp == op && cs == os) {
            continue;
        }
        c->perm = cp;
        c->shared = cs;
        r = blk_node_update_perm(c->child, err);
        if (r < 0) {
            c->perm = op;
            c->shared = os;
            blk_node_update_perm(c->child, NULL);
            bs->perm = old_perm;
            bs->shared = old_shared;
            if (bs->drv->set_perm != NULL) {
                bs->drv->set_perm(bs, old_perm, old_shared, NULL);
            }
            return r;
        }
    }
    return 0;
}

/* ---- edges ------------------------------------------------------------------ */

static struct blk_child *
edge_new(struct blk_node *parent, struct blk_node *child, const char *name,
         unsigned role)
{
    struct blk_child *c = xzalloc(sizeof(*c));

    c->parent = parent;
    c->child = child;
    c->name = xstrdup(name);
    c->role = role;
    if (role & BLK_ROLE_FILTERED) {
        filtered_perm(parent, &c->perm, &c->shared);
    } else {
        blk_child_default_perm(parent, role, &c->perm, &c->shared);
    }
    return c;
}

static void
edge_link(struct blk_child *c)
{
    struct blk_child **pp;

    if (c->parent != NULL) {
        for (pp = &c->parent->children; *pp != NULL; pp = &(*pp)->next) {
        }
        *pp = c;
    }
    c->next_parent = c->child->parents;
    c->child->parents = c;
}

static void
edge_unlink(struct blk_child *c)
{
    struct blk_child **pp;

    if (c->parent != NULL) {
        for (pp = &c->parent->children; *pp != c; pp = &(*pp)->next) {
        }
        *pp = c->next;
    }
    for (pp = &c->child->parents; *pp != c; pp = &(*pp)->next_parent) {
    }
    *pp = c->next_parent;
    c->next = NULL;
    c->next_parent = NULL;
}

/* Is target bs itself or below it? */
static bool
reaches(const struct blk_node *bs, const struct blk_node *target)
{
    const struct blk_child *c;

    if (bs == target) {
        return true;
    }
    for (c = bs->children; c != NULL; c = c->next) {
        if (reaches(c->child, target)) {
            return true;
        }
    }
    return false;
}

struct blk_child *
blk_node_attach_child(struct blk_node *parent, struct blk_node *child,
                      const char *child_name, unsigned role,
                      struct blk_error *err)
{
    struct blk_child *c;

    if (blk_node_get_child(parent, child_name) != NULL) {
        blk_error_set(err, -EEXIST, "node '%s' already has a child '%s'",
                      parent->node_name, child_name);
        return NULL;
    }
    if (child == parent) {
        blk_error_set(err, -EINVAL, "making '%s' a child of itself",
                      parent->node_name);
        return NULL;
    }
    /* The node being opened is in the graph already: a child may name it. */
    if (reaches(child, parent)) {
        blk_error_set(err, -EINVAL, "making '%s' a child of '%s' would "
                      "create a loop in the graph", child->node_name,
                      parent->node_name);
        return NULL;
    }
    c = edge_new(parent, child, child_name, role);
    edge_link(c);
    if (blk_node_update_perm(child, err) < 0) {
        edge_unlink(c);
        free(c->name);
        free(c);
        return NULL;
    }
    blk_node_ref(child);
    return c;
}

void
blk_node_detach_child(struct blk_node *parent, struct blk_child *c)
{
    struct blk_node *child = c->child;

    (void)parent;
    edge_unlink(c);
    /* Dropping permissions cannot conflict. */
    blk_node_update_perm(child, NULL);
    free(c->name);
    free(c);
    blk_node_unref(child);
}

/* ---- generic options --------------------------------------------------------- */

static bool
valid_node_name(const char *s)
{
    size_t i;

    if (!isalpha((unsigned char)s[0])) {
        return false;
    }
    for (i = 1; s[i]; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' &&
            s[i] != '.') {
            return false;
        }
    }
    return i <= 31;
}

static bool
get_bool_opt(const struct kv *opts, const char *path, bool dflt)
{
    const struct kv *v = kv_lookup(opts, path);

    return v != NULL && v->type == KV_BOOL ? v->v.b : dflt;
}

static int
apply_generic(struct blk_node *bs, const struct kv *opts,
              const struct inherit *inh, struct blk_error *err)
{
    const char *name = kv_get_str(opts, "node-name", NULL);
    const char *dz = kv_get_str(opts, "detect-zeroes", "off");
    const char *discard = kv_get_str(opts, "discard", NULL);

    if (name != NULL) {
        if (!valid_node_name(name)) {
            return blk_error_set(err, -EINVAL, "Invalid node-name: '%s'", name);
        }
        if (blk_graph_find_node(bs->g, name) != NULL) {
            return blk_error_set(err, -EEXIST,
                                 "Duplicate nodes with node-name='%s'", name);
        }
        bs->node_name = xstrdup(name);
    } else {
        bs->node_name = xasprintf("#block%03u", bs->g->next_auto_name++);
    }
    bs->read_only = get_bool_opt(opts, "read-only", inh->read_only);
    bs->cache_direct = get_bool_opt(opts, "cache.direct", inh->cache_direct);
    bs->no_flush = get_bool_opt(opts, "cache.no-flush", inh->no_flush);
    bs->force_share = get_bool_opt(opts, "force-share", inh->force_share);
    bs->discard_unmap = discard != NULL ? strcmp(discard, "unmap") == 0
                                        : inh->discard_unmap;
    if (bs->force_share && !bs->read_only) {
        return blk_error_set(err, -EINVAL, "force-share=on can only be used "
                             "with read-only images");
    }
    bs->detect_zeroes = strcmp(dz, "unmap") == 0 ? BLK_DZ_UNMAP :
                        strcmp(dz, "on") == 0 ? BLK_DZ_ON : BLK_DZ_OFF;
    if (bs->detect_zeroes == BLK_DZ_UNMAP && !bs->discard_unmap) {
        return blk_error_set(err, -EINVAL, "setting detect-zeroes to unmap is "
                             "not allowed without setting discard operation "
                             "to unmap");
    }
    return 0;
}

/* ---- opening and closing -------------------------------------------------------- */

static struct blk_node *
node_alloc(struct blk_graph *g, const struct blk_driver *drv, unsigned flags)
{
    struct blk_node *bs = xzalloc(sizeof(*bs));

    bs->g = g;
    bs->drv = drv;
    bs->refcnt = 1;
    bs->open_flags = flags;
    bs->limits.request_alignment = 1;
    pthread_mutex_init(&bs->serial_lock, NULL);
    pthread_mutex_init(&bs->track_lock, NULL);
    pthread_mutex_init(&bs->bitmap_lock, NULL);
    pthread_cond_init(&bs->track_cond, NULL);
    if (drv->state_size) {
        bs->state = xzalloc(drv->state_size);
    }
    return bs;
}

static void
node_release(struct blk_node *bs)
{
    while (bs->children != NULL) {
        blk_node_detach_child(bs, bs->children);
    }
    pthread_mutex_destroy(&bs->serial_lock);
    blk_bitmaps_release_all(bs);
    pthread_mutex_destroy(&bs->track_lock);
    pthread_mutex_destroy(&bs->bitmap_lock);
    pthread_cond_destroy(&bs->track_cond);
    if (bs->throttle_timer != NULL) {
        /* The timer is freed by its close callback (libuv's rule). */
        uv_close((uv_handle_t *)bs->throttle_timer, (uv_close_cb)free);
    }
    kv_free(bs->opts);
    free(bs->state);
    free(bs->node_name);
    free(bs->filename);
    free(bs);
}

static void
graph_unlink(struct blk_node *bs)
{
    struct blk_node **pp;

    for (pp = &bs->g->nodes; *pp != NULL; pp = &(*pp)->next_in_graph) {
        if (*pp == bs) {
            *pp = bs->next_in_graph;
            return;
        }
    }
}

static struct blk_node *
open_node(struct blk_graph *g, const struct blk_driver *drv,
          const struct kv *opts, const struct inherit *inh,
          struct blk_error *err)
{
    struct blk_node *bs = node_alloc(g, drv, inh->flags);
    struct blk_node **pp;
    int r;

    bs->opts = kv_dup(opts);
    r = apply_generic(bs, opts, inh, err);
    if (r < 0) {
        goto out_release;
    }
    if (!bs->read_only && bs->probed_raw) {
        r = blk_error_set(err, -EPERM, "a probed raw image is never opened "
                          "read-write; give the format explicitly");
        goto out_release;
    }
    /* Registered before open so children can name it in messages. */
    for (pp = &g->nodes; *pp != NULL; pp = &(*pp)->next_in_graph) {
    }
    *pp = bs;
    r = drv->open ? drv->open(bs, opts, err) : 0;
    if (r < 0) {
        goto out_unlink;
    }
    return bs;

out_unlink:
    graph_unlink(bs);
out_release:
    node_release(bs);
    return NULL;
}

static void
inherit_from_flags(struct inherit *inh, unsigned flags)
{
    inh->read_only = !(flags & BLK_OPEN_RDWR);
    inh->cache_direct = flags & BLK_OPEN_NOCACHE;
    inh->no_flush = flags & BLK_OPEN_NO_FLUSH;
    inh->force_share = flags & BLK_OPEN_FORCE_SHARE;
    inh->discard_unmap = flags & BLK_OPEN_UNMAP;
    inh->flags = flags;
}

struct blk_node *
blk_node_open(struct blk_graph *g, const struct kv *opts, unsigned flags,
              struct blk_error *err)
{
    const char *name = kv_get_str(opts, "driver", NULL);
    const struct blk_driver *drv;
    struct inherit inh;

    if (name == NULL) {
        blk_error_set(err, -EINVAL, "Parameter 'driver' is missing");
        return NULL;
    }
    drv = blk_driver_find(name);
    if (drv == NULL) {
        blk_error_set(err, -ENOTSUP, "Unknown driver '%s'", name);
        return NULL;
    }
    inherit_from_flags(&inh, flags);
    return open_node(g, drv, opts, &inh, err);
}

struct blk_node *
blk_node_open_driver(struct blk_graph *g, const struct blk_driver *drv,
                     const struct kv *opts, unsigned flags,
                     struct blk_error *err)
{
    struct inherit inh;

    inherit_from_flags(&inh, flags);
    return open_node(g, drv, opts, &inh, err);
}

static void
inherit_from_parent(struct inherit *inh, const struct blk_node *parent,
                    unsigned role)
{
    inh->read_only = parent->read_only || (role & BLK_ROLE_COW);
    inh->cache_direct = parent->cache_direct;
    inh->no_flush = parent->no_flush;
    inh->force_share = parent->force_share;
    /*
     * As in QEMU, the layers under a format take discards by default: the
     * format decides what to discard (freed clusters), its storage obeys.
     */
    inh->discard_unmap = (role & (BLK_ROLE_DATA | BLK_ROLE_METADATA)) ?
                         true : parent->discard_unmap;
    inh->flags = parent->open_flags;
    if (role & BLK_ROLE_COW) {
        inh->flags &= ~BLK_OPEN_RDWR;
    }
}

struct blk_child *
blk_node_open_child(struct blk_node *parent, const struct kv *opts,
                    const char *key, const char *child_name, unsigned role,
                    bool allow_none, struct blk_error *err)
{
    const struct kv *ref = kv_get(opts, key);
    const struct blk_driver *drv;
    struct blk_node *child;
    struct blk_child *c;
    struct inherit inh;

    if (ref == NULL || ref->type == KV_NULL) {
        if (!allow_none) {
            blk_error_set(err, -EINVAL, "A block device must be specified "
                          "for \"%s\"", key);
        }
        return NULL;
    }
    if (ref->type == KV_STRING) {
        child = blk_graph_find_node(parent->g, ref->v.s);
        if (child == NULL) {
            blk_error_set(err, -ENOENT, "Cannot find device='%s' nor "
                          "node-name='%s'", ref->v.s, ref->v.s);
            return NULL;
        }
        return blk_node_attach_child(parent, child, child_name, role, err);
    }
    if (ref->type != KV_OBJECT) {
        blk_error_set(err, -EINVAL, "Invalid parameter type for '%s', "
                      "expected: BlockdevRef", key);
        return NULL;
    }
    inherit_from_parent(&inh, parent, role);
    if (kv_get_str(ref, "driver", NULL) == NULL) {
        blk_error_set(err, -EINVAL, "Parameter '%s.driver' is missing", key);
        return NULL;
    }
    drv = blk_driver_find(kv_get_str(ref, "driver", ""));
    if (drv == NULL) {
        blk_error_set(err, -ENOTSUP, "Unknown driver '%s'",
                      kv_get_str(ref, "driver", ""));
        return NULL;
    }
    child = open_node(parent->g, drv, ref, &inh, err);
    if (child == NULL) {
        return NULL;
    }
    c = blk_node_attach_child(parent, child, child_name, role, err);
    blk_node_unref(child);      /* the edge holds it now */
    return c;
}

void
blk_node_ref(struct blk_node *bs)
{
    bs->refcnt++;
}

void
blk_node_unref(struct blk_node *bs)
{
    if (bs == NULL) {
        return;
    }
    assert(bs->refcnt > 0);
    if (--bs->refcnt > 0) {
        return;
    }
    assert(bs->parents == NULL);
    assert(bs->running == 0);
    if (bs->drv->close != NULL) {
        bs->drv->close(bs);
    }
    graph_unlink(bs);
    node_release(bs);
}

/* ---- backends --------------------------------------------------------------------- */

struct blk_backend *
blk_backend_new(struct blk_graph *g, const char *name, struct blk_node *root,
                unsigned perm, unsigned shared, struct blk_error *err)
{
    struct blk_backend *be;

    if (name != NULL && blk_graph_find_backend(g, name) != NULL) {
        blk_error_set(err, -EEXIST, "Duplicate backend name '%s'", name);
        return NULL;
    }
    be = xzalloc(sizeof(*be));
    be->g = g;
    be->name = xstrdup(name ? name : "");
    be->root.be = be;
    be->root.child = root;
    be->root.name = xstrdup("root");
    be->root.perm = perm;
    be->root.shared = shared;
    edge_link(&be->root);
    if (blk_node_update_perm(root, err) < 0) {
        edge_unlink(&be->root);
        free(be->root.name);
        free(be->name);
        free(be);
        return NULL;
    }
    blk_node_ref(root);
    be->next = g->backends;
    g->backends = be;
    return be;
}

void
blk_backend_free(struct blk_backend *be)
{
    struct blk_backend **pp;
    struct blk_node *root;

    if (be == NULL) {
        return;
    }
    for (pp = &be->g->backends; *pp != be; pp = &(*pp)->next) {
    }
    *pp = be->next;
    root = be->root.child;
    edge_unlink(&be->root);
    blk_node_update_perm(root, NULL);
    free(be->root.name);
    free(be->name);
    free(be);
    blk_node_unref(root);
}

struct blk_node *
blk_backend_root(const struct blk_backend *be)
{
    return be->root.child;
}

struct blk_backend *
blk_graph_find_backend(struct blk_graph *g, const char *name)
{
    struct blk_backend *be;

    for (be = g->backends; be != NULL; be = be->next) {
        if (strcmp(be->name, name) == 0) {
            return be;
        }
    }
    return NULL;
}
