/*
 * vmstate.c - VM state I/O (qemu-io's read -b / write -b): find the node
 * whose driver keeps a VM state area (qcow2) at or below the node asked,
 * going down filters and raw as QEMU does, and run the request there.
 * Blocking; a worker thread or an offline tool.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

#include "block/node-int.h"

/* The largest byte position plus length QEMU accepts (BDRV_MAX_LENGTH). */
#define VMSTATE_MAX_END ((uint64_t)INT64_MAX & ~(uint64_t)511)

/* bs, or the first node below it through filtered/primary edges with op. */
static struct blk_node *
vmstate_node(struct blk_node *bs, bool save)
{
    while (bs != NULL) {
        const struct blk_driver *drv = bs->drv;
        struct blk_child *c;

        if ((save ? drv->save_vmstate : drv->load_vmstate) != NULL) {
            return bs;
        }
        for (c = bs->children; c != NULL; c = c->next) {
            if (c->role & (BLK_ROLE_FILTERED | BLK_ROLE_PRIMARY)) {
                break;
            }
        }
        bs = c != NULL ? c->child : NULL;
    }
    return NULL;
}

static int
vmstate_io(struct blk_node *bs, bool save, uint64_t pos, void *buf,
           size_t len, struct blk_error *err)
{
    struct iovec v = { buf, len };
    struct blk_node *n;

    if (pos > VMSTATE_MAX_END || len > VMSTATE_MAX_END - pos) {
        return blk_error_set(err, -EIO, "VM state request at %" PRIu64
                             " is out of range", pos);
    }
    n = vmstate_node(bs, save);
    if (n == NULL) {
        return blk_error_set(err, -ENOTSUP, "'%s' has no VM state area",
                             bs->node_name);
    }
    if (save && n->read_only) {
        return blk_error_set(err, -EPERM, "Block node '%s' is read-only",
                             n->node_name);
    }
    if (len == 0) {
        return 0;
    }
    return save ? n->drv->save_vmstate(n, pos, len, &v, 1, err)
                : n->drv->load_vmstate(n, pos, len, &v, 1, err);
}

int
blk_node_load_vmstate(struct blk_node *bs, uint64_t pos, void *buf,
                      size_t len, struct blk_error *err)
{
    return vmstate_io(bs, false, pos, buf, len, err);
}

int
blk_node_save_vmstate(struct blk_node *bs, uint64_t pos, const void *buf,
                      size_t len, struct blk_error *err)
{
    return vmstate_io(bs, true, pos, (void *)buf, len, err);
}
