/*
 * drivers.c - the driver registry: a plain const array, no constructors,
 * no dlopen.  A new driver adds one line here.
 */
#include <string.h>

#include "block/driver.h"

extern const struct blk_driver blk_driver_file, blk_driver_host_device;
extern const struct blk_driver blk_driver_raw;
extern const struct blk_driver blk_driver_null_co, blk_driver_null_aio;
extern const struct blk_driver blk_driver_qcow2;
extern const struct blk_driver blk_driver_copy_on_read;

const struct blk_driver *const blk_drivers[] = {
    &blk_driver_file,
    &blk_driver_host_device,
    &blk_driver_raw,
    &blk_driver_null_co,
    &blk_driver_null_aio,
    &blk_driver_qcow2,
    &blk_driver_copy_on_read,
    NULL
};

const struct blk_driver *
blk_driver_find(const char *name)
{
    size_t i;

    for (i = 0; blk_drivers[i] != NULL; i++) {
        if (strcmp(blk_drivers[i]->name, name) == 0) {
            return blk_drivers[i];
        }
    }
    return NULL;
}
