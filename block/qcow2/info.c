/*
 * info.c - qcow2's format-specific facts for `info`: QEMU 7.2's
 * ImageInfoSpecificQCow2 ({"type": "qcow2", "data": {...}}), members in
 * the order qemu-img prints them, persistent bitmaps included.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2-int.h"

int
qcow2_get_info(struct blk_node *bs, struct kv *info, struct blk_error *err)
{
    struct qcow2 *q = qcow2_state(bs);
    struct kv *data = kv_new_object(), *bitmaps = NULL;
    const char *ctype;

    pthread_mutex_lock(&q->lock);
    ctype = q->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib";
    if (q->version == 2) {
        kv_set(data, "compat", kv_new_str("0.10"));
        kv_set(data, "compression-type", kv_new_str(ctype));
        kv_set(data, "refcount-bits", kv_new_int(q->refcount_bits));
        goto out;
    }
    if (q->has_bitmaps_ext) {
        int r;

        bitmaps = kv_new_list();
        r = qcow2_bitmaps_info(q, bitmaps, err);
        if (r < 0) {
            pthread_mutex_unlock(&q->lock);
            kv_free(bitmaps);
            kv_free(data);
            return r;
        }
    }
    kv_set(data, "compat", kv_new_str("1.1"));
    kv_set(data, "compression-type", kv_new_str(ctype));
    kv_set(data, "lazy-refcounts",
           kv_new_bool((q->h.compatible_features &
                        QCOW2_COMPAT_LAZY_REFCOUNTS) != 0));
    if (bitmaps != NULL && bitmaps->n > 0) {
        kv_set(data, "bitmaps", bitmaps);
    } else {
        kv_free(bitmaps);
    }
    kv_set(data, "refcount-bits", kv_new_int(q->refcount_bits));
    if (q->data_file_name != NULL) {
        kv_set(data, "data-file", kv_new_str(q->data_file_name));
    }
    if (q->data_file != q->file || q->data_file_name != NULL) {
        kv_set(data, "data-file-raw", kv_new_bool(q->data_file_raw));
    }
    kv_set(data, "corrupt",
           kv_new_bool((q->h.incompatible_features &
                        QCOW2_INCOMPAT_CORRUPT) != 0));
    kv_set(data, "extended-l2", kv_new_bool(q->extended_l2));
out:
    pthread_mutex_unlock(&q->lock);
    kv_set(info, "type", kv_new_str("qcow2"));
    kv_set(info, "data", data);
    return 0;
}
