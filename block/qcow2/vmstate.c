/*
 * vmstate.c - qcow2's VM state area (qemu-io read -b / write -b, savevm).
 * QEMU keeps it in the guest address space, starting at the first L1
 * entry past the virtual disk (l1_vm_state_index), so it is ordinary
 * cluster data: writes allocate clusters and grow the L1 table, and
 * check and refcounts see it like any other cluster.
 */
#include <errno.h>
#include <inttypes.h>

#include "block/qcow2/qcow2-int.h"

/* Guest offset where the VM state starts (QEMU's qcow2_vm_state_offset). */
static uint64_t
vm_state_offset(const struct qcow2 *q)
{
    return q->l1_vm_state_index << (q->cluster_bits + q->l2_bits);
}

/*
 * Position pos of the VM state as a guest offset.  Past the largest
 * offset, writes fail with -EFBIG and reads with -EIO (QEMU 7.2's errors).
 */
static int
vm_state_range(const struct qcow2 *q, uint64_t pos, uint64_t len, bool save,
               uint64_t *off, struct blk_error *err)
{
    uint64_t base = vm_state_offset(q);

    if (pos > INT64_MAX - base || len > INT64_MAX - base - pos) {
        return blk_error_set(err, save ? -EFBIG : -EIO, "VM state position %"
                             PRIu64 " is past the largest qcow2 offset", pos);
    }
    *off = base + pos;
    return 0;
}

int
qcow2_load_vmstate(struct blk_node *bs, uint64_t pos, uint64_t len,
                   struct iovec *iov, int iovcnt, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t off = 0;
    int r = vm_state_range(q, pos, len, false, &off, err);

    return r < 0 ? r : qcow2_preadv(bs, off, len, iov, iovcnt, 0, err);
}

int
qcow2_save_vmstate(struct blk_node *bs, uint64_t pos, uint64_t len,
                   struct iovec *iov, int iovcnt, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    uint64_t off = 0;
    int r = vm_state_range(q, pos, len, true, &off, err);

    return r < 0 ? r : qcow2_pwritev(bs, off, len, iov, iovcnt, 0, err);
}
