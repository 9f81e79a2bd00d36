/*
 * memdrv.h - a memory-backed test driver ("test-mem") shared by the unit
 * tests: MEMDRV_SIZE bytes, options delay (max random µs per request,
 * default 200), align (request_alignment), max-transfer.  It asserts the
 * core's promises: aligned offsets and lengths, max_transfer respected.
 * With a delay it also offers the loop's fast path (try ops) for about
 * half the requests (by offset), so tests mix both paths.
 */
#ifndef TESTS_UNIT_MEMDRV_H
#define TESTS_UNIT_MEMDRV_H

#include "block/driver.h"

#define MEMDRV_SIZE (4u << 20)

extern const struct blk_driver memdrv_driver;

#endif
