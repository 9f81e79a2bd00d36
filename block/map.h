/*
 * map.h - read-only shared mappings of image files for zero-copy reads
 * (block.h blk_node_map_data), and the SIGBUS guard that keeps a file
 * shrinking under such a mapping from killing the process.  Any thread.
 */
#ifndef BLOCK_MAP_H
#define BLOCK_MAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Map len bytes of fd from offset 0 read-only (MAP_SHARED) and register
 * the mapping with the guard: a page of it that faults because the file
 * shrank becomes a page of zeroes and blk_map_faults() grows.  NULL on
 * failure (or when the guard's table is full).
 */
uint8_t *blk_map_file(int fd, size_t len);

/* Unregister and unmap a mapping blk_map_file returned. */
void blk_map_release(uint8_t *map, size_t len);

#endif
