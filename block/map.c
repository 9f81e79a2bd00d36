/*
 * map.c - read-only file mappings and their SIGBUS guard (map.h).
 *
 * A shared mapping of a file raises SIGBUS on access to a page past the
 * file's end, which happens when another process truncates the file
 * while we read it (convert -U of an image in use).  The handler looks up
 * the faulting address among the registered mappings; inside one, it
 * maps an anonymous page of zeroes over the faulting page (mmap is a
 * plain system call, safe in a handler), counts the fault and returns, so
 * the access is retried and reads zeroes.  The caller sees the count grow
 * and fails its job with an error instead of the process dying.  Any
 * other SIGBUS goes to the action that was there before.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "block/map.h"

#define MAX_MAPS 64

struct map_slot {
    _Atomic uintptr_t start;    /* 0: free */
    _Atomic size_t len;
};

static struct map_slot maps[MAX_MAPS];
static _Atomic uint64_t faults;
static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction old_bus;
static bool guard_on;
static uintptr_t page_size;     /* set before the handler is installed */

static void
on_bus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;

    for (int i = 0; i < MAX_MAPS; i++) {
        uintptr_t s = atomic_load(&maps[i].start);
        size_t n = atomic_load(&maps[i].len);

        if (s != 0 && a >= s && a - s < n) {
            void *page = (void *)(a & ~(page_size - 1));

            if (mmap(page, page_size, PROT_READ,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
                MAP_FAILED) {
                atomic_fetch_add(&faults, 1);
                return;
            }
            break;
        }
    }
    /* Not ours: put the old action back; the access faults again. */
    sigaction(SIGBUS, &old_bus, NULL);
    (void)sig;
    (void)uc;
}

#define ZEROES_LEN (16u << 20)

static const uint8_t *zeroes;
static pthread_once_t zeroes_once = PTHREAD_ONCE_INIT;

static void
zeroes_init(void)
{
    void *m = mmap(NULL, ZEROES_LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);

    zeroes = m == MAP_FAILED ? NULL : m;
}

const uint8_t *
blk_map_zeroes(size_t len)
{
    if (len > ZEROES_LEN) {
        return NULL;
    }
    pthread_once(&zeroes_once, zeroes_init);
    return zeroes;
}

uint64_t
blk_map_faults(void)
{
    return atomic_load(&faults);
}

uint8_t *
blk_map_file(int fd, size_t len)
{
    void *m;
    int i;

    if (len == 0) {
        return NULL;
    }
    pthread_mutex_lock(&maps_lock);
    for (i = 0; i < MAX_MAPS && atomic_load(&maps[i].start) != 0; i++) {
    }
    if (i == MAX_MAPS) {
        pthread_mutex_unlock(&maps_lock);
        return NULL;
    }
    if (!guard_on) {
        struct sigaction sa;

        page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_bus;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &old_bus) != 0) {
            pthread_mutex_unlock(&maps_lock);
            return NULL;
        }
        guard_on = true;
    }
    m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        pthread_mutex_unlock(&maps_lock);
        return NULL;
    }
    atomic_store(&maps[i].len, len);
    atomic_store(&maps[i].start, (uintptr_t)m);
    pthread_mutex_unlock(&maps_lock);
    return m;
}

void
blk_map_release(uint8_t *map, size_t len)
{
    if (map == NULL) {
        return;
    }
    pthread_mutex_lock(&maps_lock);
    for (int i = 0; i < MAX_MAPS; i++) {
        if (atomic_load(&maps[i].start) == (uintptr_t)map) {
            atomic_store(&maps[i].start, 0);
            atomic_store(&maps[i].len, 0);
        }
    }
    munmap(map, len);
    pthread_mutex_unlock(&maps_lock);
}
