/*
 * file.c - the "file" and "host_device" protocol drivers: a POSIX file (or
 * block/character device) read and written with preadv/pwritev on worker
 * threads, zeroed and discarded with fallocate, mapped with SEEK_DATA and
 * SEEK_HOLE, and locked with OFD byte locks at QEMU 7.2's offsets so that
 * blk and QEMU refuse to open each other's images unsafely.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "block/block.h"
#include "block/driver.h"
#include "block/map.h"
#include "util/iov.h"
#include "util/xalloc.h"

/*
 * Image locking, as QEMU's file-posix does it: for each permission bit i
 * (consistent read 0, write 1, write unchanged 2, resize 3) a holder of
 * the permission takes a shared lock on byte 100 + i, and a user that does
 * NOT share it takes a shared lock on byte 200 + i.  A new user tests with
 * a write lock (F_OFD_GETLK) whether anybody else holds 200 + i for each
 * permission it wants, and 100 + i for each one it refuses to share.
 */
#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200
#define NPERM 4

#define SECTOR 512
#define ZERO_BUF_SIZE 65536

#define EXT4_MAGIC 0xEF53           /* statfs f_type of ext2/3/4 */
#define PREALLOC_MIN (128 * 1024)   /* smallest write preallocated first */

struct file_state {
    int fd;
    bool device;                /* host_device */
    bool is_reg;                /* a regular file */
    bool use_lock;
    char locking[8];            /* the option as given: auto, on, off */
    bool dynamic_ro;            /* auto-read-only: O_RDWR only while written */
    bool fd_rw;                 /* fd is open O_RDWR */
    int base_flags;             /* O_CLOEXEC, O_DIRECT */
    uint32_t align;             /* request alignment (O_DIRECT), else 1 */
    unsigned perm, shared;      /* what set_perm last applied */
    unsigned locked_perm;       /* bytes 100 + i locked on fd */
    unsigned locked_unshared;   /* bytes 200 + i locked on fd */
    atomic_bool no_zero_range;  /* FALLOC_FL_ZERO_RANGE unsupported */
    atomic_bool no_punch;       /* FALLOC_FL_PUNCH_HOLE unsupported */
    atomic_bool prealloc;       /* fallocate big buffered writes first */
    /* map_data: the whole file mapped read-only at the first call */
    pthread_mutex_t map_lock;
    uint8_t *map;
    size_t map_len;
    bool map_tried;
};

/* Zeroes for fallback writes, aligned for O_DIRECT; never written to. */
static const uint8_t zero_buf[ZERO_BUF_SIZE] __attribute__((aligned(4096)));

static const char *const perm_names[NPERM] = {
    "consistent read", "write", "write unchanged", "resize",
};

/* ---- locking ------------------------------------------------------------ */

static int
lock_byte(int fd, int off, bool lock)
{
    struct flock fl = {
        .l_type = lock ? F_RDLCK : F_UNLCK,
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
    };

    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 0 if nobody else holds a lock on byte off, -EAGAIN if somebody does. */
static int
test_byte(int fd, int off)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

/*
 * Change the locks on fd from (*perm, *unshared) to (want_perm,
 * want_unshared), bit by bit; the masks follow each change, so on failure
 * they say what is locked.  Only new locks can fail.
 */
static int
set_lock_bytes(int fd, unsigned *perm, unsigned *unshared, unsigned want_perm,
               unsigned want_unshared, struct blk_error *err)
{
    int i, r;

    for (i = 0; i < 2 * NPERM; i++) {
        unsigned bit = 1u << (i % NPERM);
        unsigned *have = i < NPERM ? perm : unshared;
        unsigned want = i < NPERM ? want_perm : want_unshared;
        int off = (i < NPERM ? LOCK_PERM_BASE : LOCK_SHARED_BASE) + i % NPERM;

        if ((want & bit) && !(*have & bit)) {
            r = lock_byte(fd, off, true);
            if (r == -EAGAIN || r == -EACCES) {
                return blk_error_set(err, r, "Failed to lock byte %d", off);
            }
            if (r < 0) {
                return blk_error_setsys(err, r, "Failed to lock byte %d", off);
            }
            *have |= bit;
        } else if (!(want & bit) && (*have & bit)) {
            if (lock_byte(fd, off, false) == 0) {
                *have &= ~bit;
            }
        }
    }
    return 0;
}

/*
 * Find a process holding an OFD lock on byte off of the file (dev, ino)
 * other than our own open file description (self_fd), by reading the
 * "lock:" lines of /proc/PID/fdinfo/FD (/proc/locks shows -1 as the pid
 * of OFD locks).  Fills comm and returns the pid, or 0 if none is visible.
 */
static pid_t
find_holder(dev_t dev, ino_t ino, int off, int self_fd, char *comm,
            size_t comm_len)
{
    pid_t self = getpid();
    pid_t found = 0;
    DIR *proc = opendir("/proc");
    struct dirent *pe;
    char path[64];

    if (proc == NULL) {
        return 0;
    }
    while (found == 0 && (pe = readdir(proc)) != NULL) {
        pid_t pid = (pid_t)strtol(pe->d_name, NULL, 10);
        DIR *fds;
        struct dirent *fe;

        if (pid <= 0) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
        fds = opendir(path);
        if (fds == NULL) {
            continue;
        }
        while (found == 0 && (fe = readdir(fds)) != NULL) {
            char line[256];
            FILE *f;
            int fdnum = (int)strtol(fe->d_name, NULL, 10);

            if (fe->d_name[0] < '0' || fe->d_name[0] > '9' ||
                (pid == self && fdnum == self_fd)) {
                continue;
            }
            snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fdnum);
            f = fopen(path, "re");
            if (f == NULL) {
                continue;
            }
            while (fgets(line, sizeof(line), f) != NULL) {
                unsigned maj, min;
                unsigned long long lino;
                long long start, end;
                char endstr[24];
                const char *p = strstr(line, "OFDLCK");

                if (strncmp(line, "lock:", 5) != 0 || p == NULL) {
                    continue;
                }
                if (sscanf(p, "OFDLCK %*s %*s %*d %x:%x:%llu %lld %23s",
                           &maj, &min, &lino, &start, endstr) != 5) {
                    continue;
                }
                end = strcmp(endstr, "EOF") == 0 ? LLONG_MAX
                                                 : strtoll(endstr, NULL, 10);
                if (maj == major(dev) && min == minor(dev) &&
                    lino == (unsigned long long)ino && start <= off &&
                    off <= end) {
                    found = pid;
                    break;
                }
            }
            fclose(f);
        }
        closedir(fds);
    }
    closedir(proc);

    if (found != 0) {
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
        comm[0] = '\0';
        f = fopen(path, "re");
        if (f != NULL) {
            if (fgets(comm, (int)comm_len, f) != NULL) {
                comm[strcspn(comm, "\n")] = '\0';
            }
            fclose(f);
        }
    }
    return found;
}

/* The one-line conflict message, naming the holder when we can see it. */
static int
lock_conflict(int fd, const char *filename, int off, bool shared,
              const char *perm_name, struct blk_error *err)
{
    struct stat st;
    char comm[64] = "";
    char holder[128] = "";
    pid_t pid = 0;

    if (fstat(fd, &st) == 0) {
        pid = find_holder(st.st_dev, st.st_ino, off, fd, comm, sizeof(comm));
    }
    if (pid > 0) {
        snprintf(holder, sizeof(holder), " (held by pid %d '%s')", (int)pid,
                 comm);
    }
    return blk_error_set(err, -EAGAIN,
                         "Failed to get %s\"%s\" lock: Is another process "
                         "using the image [%s]?%s",
                         shared ? "shared " : "", perm_name, filename, holder);
}

/*
 * Is anybody else using the file in a way that conflicts with taking perm
 * and sharing only shared?  (Our own locks never conflict: F_OFD_GETLK
 * ignores the caller's open file description.)
 */
static int
check_lock_bytes(int fd, const char *filename, unsigned perm, unsigned shared,
                 struct blk_error *err)
{
    int i, r;

    for (i = 0; i < NPERM; i++) {
        if (perm & (1u << i)) {
            r = test_byte(fd, LOCK_SHARED_BASE + i);
            if (r == -EAGAIN) {
                return lock_conflict(fd, filename, LOCK_SHARED_BASE + i,
                                     false, perm_names[i], err);
            }
            if (r < 0) {
                return blk_error_setsys(err, r, "Failed to get \"%s\" lock",
                                        perm_names[i]);
            }
        }
    }
    for (i = 0; i < NPERM; i++) {
        if (!(shared & (1u << i))) {
            r = test_byte(fd, LOCK_PERM_BASE + i);
            if (r == -EAGAIN) {
                return lock_conflict(fd, filename, LOCK_PERM_BASE + i, true,
                                     perm_names[i], err);
            }
            if (r < 0) {
                return blk_error_setsys(err, r,
                                        "Failed to get shared \"%s\" lock",
                                        perm_names[i]);
            }
        }
    }
    return 0;
}

/*
 * Take perm/shared on a freshly opened fd that holds no locks yet (create);
 * on failure the fd holds none either.
 */
static int
lock_new_fd(int fd, const char *filename, unsigned perm, unsigned shared,
            struct blk_error *err)
{
    unsigned lp = 0, lu = 0;
    int r;

    r = set_lock_bytes(fd, &lp, &lu, perm, ~shared & BLK_PERM_ALL, err);
    if (r == 0) {
        r = check_lock_bytes(fd, filename, perm, shared, err);
    }
    if (r < 0) {
        set_lock_bytes(fd, &lp, &lu, 0, 0, NULL);
    }
    return r;
}

static int
file_set_perm(struct blk_node *bs, unsigned perm, unsigned shared,
              struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    const char *filename = blk_node_get_filename(bs);
    unsigned unshared;
    bool need_rw;
    int newfd = -1;
    int r;

    if (blk_node_force_share(bs)) {
        shared = BLK_PERM_ALL;
    }
    shared &= BLK_PERM_ALL;
    unshared = ~shared & BLK_PERM_ALL;

    /* Dynamic auto-read-only: read-write exactly while somebody writes. */
    need_rw = perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED |
                      BLK_PERM_RESIZE);
    if (s->dynamic_ro && need_rw != s->fd_rw) {
        newfd = open(filename, (need_rw ? O_RDWR : O_RDONLY) | s->base_flags);
        if (newfd < 0) {
            return blk_error_setsys(err, -errno, "Could not reopen '%s'",
                                    filename);
        }
    }

    if (s->use_lock) {
        bool grows = (s->perm | perm) != s->perm ||
                     (s->shared & shared) != s->shared;

        /* Take the new locks before testing, as QEMU does, so two openers
         * racing each other cannot both succeed. */
        r = set_lock_bytes(s->fd, &s->locked_perm, &s->locked_unshared,
                           s->locked_perm | perm,
                           s->locked_unshared | unshared, err);
        if (r == 0 && grows) {
            r = check_lock_bytes(s->fd, filename, perm, shared, err);
        }
        if (r == 0 && newfd >= 0) {
            /* Checked through the old description above; checking through
             * the new one would find our own old locks. */
            unsigned lp = 0, lu = 0;

            r = set_lock_bytes(newfd, &lp, &lu, perm, unshared, err);
        }
        if (r < 0) {
            set_lock_bytes(s->fd, &s->locked_perm, &s->locked_unshared,
                           s->perm, ~s->shared & BLK_PERM_ALL, NULL);
            if (newfd >= 0) {
                close(newfd);
            }
            return r;
        }
        set_lock_bytes(s->fd, &s->locked_perm, &s->locked_unshared, perm,
                       unshared, NULL);
    }
    if (newfd >= 0) {
        close(s->fd);               /* drops the old description's locks */
        s->fd = newfd;
        s->fd_rw = need_rw;
        if (s->use_lock) {
            s->locked_perm = perm;
            s->locked_unshared = unshared;
        }
    }
    s->perm = perm;
    s->shared = shared;
    return 0;
}

/*
 * Whether big buffered writes into this file are worth preallocating:
 * on ext4, a buffered write into a hole reserves delayed-allocation space
 * page by page, while a write into a range fallocate() has just made an
 * unwritten extent only fills the page cache.  Measured on Linux 6.18
 * (bench/README.md): 2 MiB writes of a sparse copy take 0.65-0.75 of the
 * time with a fallocate() before each, about the same with 128 KiB
 * pieces; on tmpfs it makes no difference, so only ext4 gets it.
 * BLK_FALLOCATE=0 turns it off.
 */
static bool
prealloc_wanted(int fd)
{
    const char *env = getenv("BLK_FALLOCATE");
    struct statfs fs;

    if (env != NULL && strcmp(env, "0") == 0) {
        return false;
    }
    return fstatfs(fd, &fs) == 0 && fs.f_type == EXT4_MAGIC;
}

/*
 * Before a buffered write of at least PREALLOC_MIN bytes: allocate its
 * range, which the write then fills completely, so the file ends up with
 * the same blocks allocated as without it (a range that is allocated
 * already costs one extent lookup).  Failures are left to the write
 * itself to report (ENOSPC from fallocate means the write would need the
 * same blocks); a file system that cannot fallocate stops being asked.
 */
static void
prealloc_for_write(struct file_state *s, uint64_t off, uint64_t len)
{
    if (len < PREALLOC_MIN || !atomic_load_explicit(&s->prealloc,
                                                    memory_order_relaxed) ||
        (s->base_flags & O_DIRECT) || !s->fd_rw) {
        return;
    }
    if (fallocate(s->fd, 0, (off_t)off, (off_t)len) < 0 &&
        (errno == EOPNOTSUPP || errno == ENOSYS)) {
        atomic_store(&s->prealloc, false);
    }
}

/* ---- open and close ------------------------------------------------------ */

static bool
io_aligned(int fd, void *buf, size_t len)
{
    ssize_t r = pread(fd, buf, len, 0);

    /* Linux refuses misaligned O_DIRECT reads with EINVAL; any other
     * outcome (even another error) says nothing about alignment. */
    return r >= 0 || errno != EINVAL;
}

/*
 * O_DIRECT limits: the logical block size from the device, else the
 * smallest read size that works (QEMU's probe, same fallback to 4096 when
 * even 1-byte reads succeed, e.g. on an empty file).
 */
static void
probe_alignment(struct file_state *s, struct blk_limits *l)
{
    static const uint32_t sizes[] = { 1, 512, 1024, 2048, 4096 };
    const uint32_t max_align = 4096;
    unsigned int ssz = 0;
    uint32_t req = 0, mem = 0;
    uint8_t *buf;
    size_t i;

    if (ioctl(s->fd, BLKSSZGET, &ssz) == 0 && ssz > 0) {
        req = ssz;
    }
    buf = blk_try_memalign(max_align, 2 * max_align);
    if (buf != NULL) {
        for (i = 0; req == 0 && i < ARRAY_SIZE(sizes); i++) {
            if (io_aligned(s->fd, buf, sizes[i])) {
                req = sizes[i] != 1 ? sizes[i] : max_align;
            }
        }
        for (i = 0; mem == 0 && i < ARRAY_SIZE(sizes); i++) {
            if (io_aligned(s->fd, buf + sizes[i], max_align)) {
                mem = sizes[i] != 1 ? sizes[i] : req;
            }
        }
        free(buf);
    }
    l->request_alignment = req ? req : max_align;
    l->min_mem_alignment = mem ? mem : l->request_alignment;
}

static int
file_open_common(struct blk_node *bs, const struct kv *opts, bool device,
                 struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    const char *drvname = device ? "host_device" : "file";
    const char *filename = kv_get_str(opts, "filename", NULL);
    const char *locking = kv_get_str(opts, "locking", "auto");
    const char *aio = kv_get_str(opts, "aio", "threads");
    const char *pr = kv_get_str(opts, "pr-manager", NULL);
    bool read_only = blk_node_is_read_only(bs);
    struct blk_limits limits = { .request_alignment = 1 };
    struct stat st;
    int r;

    s->fd = -1;
    pthread_mutex_init(&s->map_lock, NULL);
    if (filename == NULL) {
        return blk_error_set(err, -EINVAL, "Parameter 'filename' is missing");
    }
    if (strcmp(aio, "threads") != 0) {
        return blk_error_set(err, -EINVAL,
                             "aio=%s is not supported: blk runs file I/O on "
                             "worker threads (aio=threads)", aio);
    }
    if (pr != NULL) {
        return blk_error_set(err, -EINVAL,
                             "No persistent reservation manager with id '%s'",
                             pr);
    }
    s->device = device;
    s->use_lock = strcmp(locking, "off") != 0;
    snprintf(s->locking, sizeof(s->locking), "%s", locking);
    s->base_flags = O_CLOEXEC | (blk_node_cache_direct(bs) ? O_DIRECT : 0);
    s->dynamic_ro = !read_only && kv_get_bool(opts, "auto-read-only", false);
    s->fd_rw = !read_only && !s->dynamic_ro;
    blk_node_set_filename(bs, filename);

    s->fd = open(filename, (s->fd_rw ? O_RDWR : O_RDONLY) | s->base_flags);
    if (s->fd < 0) {
        return blk_error_setsys(err, -errno, "Could not open '%s'", filename);
    }
    if (fstat(s->fd, &st) < 0) {
        r = blk_error_setsys(err, -errno, "Could not stat file");
        goto out_close;
    }
    s->is_reg = S_ISREG(st.st_mode);
    if (!device && !s->is_reg) {
        r = blk_error_set(err, -EINVAL,
                          "'%s' driver requires '%s' to be a regular file",
                          drvname, filename);
        goto out_close;
    }
    if (device && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
        r = blk_error_set(err, -EINVAL,
                          "'%s' driver requires '%s' to be either a "
                          "character or block device", drvname, filename);
        goto out_close;
    }
    if (s->fd_rw && S_ISBLK(st.st_mode)) {
        int ro = 0;

        if (ioctl(s->fd, BLKROGET, &ro) == 0 && ro) {
            r = blk_error_setsys(err, -EACCES, "The device is not writable");
            goto out_close;
        }
    }
    if (s->base_flags & O_DIRECT) {
        probe_alignment(s, &limits);
    }
    atomic_store(&s->prealloc, s->is_reg && prealloc_wanted(s->fd));
    s->align = limits.request_alignment;
    blk_node_set_limits(bs, &limits);
    s->perm = 0;
    s->shared = BLK_PERM_ALL;
    return 0;

out_close:
    close(s->fd);
    s->fd = -1;
    return r;
}

static int
file_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    return file_open_common(bs, opts, false, err);
}

static int
hdev_open(struct blk_node *bs, const struct kv *opts, struct blk_error *err)
{
    return file_open_common(bs, opts, true, err);
}

static void
file_close(struct blk_node *bs)
{
    struct file_state *s = blk_node_state(bs);

    blk_map_release(s->map, s->map_len);
    s->map = NULL;
    pthread_mutex_destroy(&s->map_lock);
    if (s->fd >= 0) {
        close(s->fd);               /* releases every lock of the description */
        s->fd = -1;
    }
}

/* ---- reopen -------------------------------------------------------------- */

struct file_reopen {
    int fd;                     /* the new description, or -1 to keep ours */
    bool fd_rw, dynamic_ro;
    unsigned locked_perm, locked_unshared;
};

static bool
same_opt(const struct kv *opts, const char *key, const char *now,
         const char *dflt)
{
    return strcmp(kv_get_str(opts, key, dflt), now) == 0;
}

/*
 * Reopen with new options and read-only state.  filename, locking and
 * aio cannot change; read-only and auto-read-only can.  A new mode means
 * a new open file description, which gets our locks before the old one
 * is closed at commit, so the image is never unlocked in between.
 */
static int
file_reopen_prepare(struct blk_node *bs, const struct kv *opts,
                    bool read_only, void **state, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    const char *filename = blk_node_get_filename(bs);
    struct file_reopen *rs;
    static const char *const fixed[] = { "filename", "locking", "aio" };
    const char *now[3];
    const char *dflt[3] = { filename, "auto", "threads" };
    bool writers = s->perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED |
                              BLK_PERM_RESIZE);
    size_t i;
    int r;

    now[0] = filename;
    now[1] = s->locking;
    now[2] = "threads";
    for (i = 0; i < ARRAY_SIZE(fixed); i++) {
        if (kv_get(opts, fixed[i]) != NULL &&
            !same_opt(opts, fixed[i], now[i], dflt[i])) {
            return blk_error_set(err, -EINVAL, "Cannot change the option '%s'",
                                 fixed[i]);
        }
    }
    rs = xzalloc(sizeof(*rs));
    rs->fd = -1;
    rs->dynamic_ro = !read_only && kv_get_bool(opts, "auto-read-only", false);
    rs->fd_rw = !read_only && (!rs->dynamic_ro || writers);
    if (rs->fd_rw != s->fd_rw) {
        rs->fd = open(filename,
                      (rs->fd_rw ? O_RDWR : O_RDONLY) | s->base_flags);
        if (rs->fd < 0) {
            r = blk_error_setsys(err, -errno, "Could not reopen '%s'",
                                 filename);
            free(rs);
            return r;
        }
        if (s->use_lock) {
            r = set_lock_bytes(rs->fd, &rs->locked_perm, &rs->locked_unshared,
                               s->locked_perm, s->locked_unshared, err);
            if (r < 0) {
                close(rs->fd);
                free(rs);
                return r;
            }
        }
    }
    *state = rs;
    return 0;
}

static void
file_reopen_commit(struct blk_node *bs, void *state)
{
    struct file_state *s = blk_node_state(bs);
    struct file_reopen *rs = state;

    if (rs->fd >= 0) {
        close(s->fd);
        s->fd = rs->fd;
        s->fd_rw = rs->fd_rw;
        s->locked_perm = rs->locked_perm;
        s->locked_unshared = rs->locked_unshared;
    }
    s->dynamic_ro = rs->dynamic_ro;
    free(rs);
}

static void
file_reopen_abort(struct blk_node *bs, void *state)
{
    struct file_reopen *rs = state;

    if (rs->fd >= 0) {
        close(rs->fd);              /* and its copies of our locks */
    }
    free(rs);
}

/* ---- I/O ----------------------------------------------------------------- */

static int
rw_error(struct blk_node *bs, int r, bool write, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);

    if (r == -EBADF && write && !s->fd_rw) {
        return blk_error_set(err, -EACCES, "'%s' is open read-only",
                             blk_node_get_filename(bs));
    }
    return blk_error_setsys(err, r, "%s '%s' failed",
                            write ? "writing" : "reading",
                            blk_node_get_filename(bs));
}

static bool
at_eof(int fd, uint64_t pos)
{
    struct stat st;

    return fstat(fd, &st) == 0 && pos >= (uint64_t)st.st_size;
}

/*
 * preadv/pwritev all len bytes of iov at off: loops over short transfers
 * and IOV_MAX-sized pieces; a read at end of file fills the rest with
 * zeroes.
 */
static int
do_rw(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
      int iovcnt, bool write, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    struct iov_vec v = IOV_VEC_INIT;
    uint64_t done = 0;
    int r = 0;

    if (write) {
        prealloc_for_write(s, off, len);
    }
    while (done < len) {
        struct iovec *cur = iov;
        int cnt = iovcnt;
        ssize_t n;

        if (done > 0 || iovcnt > IOV_MAX || iov_size(iov, iovcnt) != len) {
            iov_vec_reset(&v);
            iov_vec_add_slice(&v, iov, iovcnt, done, len - done);
            cur = v.iov;
            cnt = v.cnt < IOV_MAX ? v.cnt : IOV_MAX;
        }
        n = write ? pwritev(s->fd, cur, cnt, (off_t)(off + done))
                  : preadv(s->fd, cur, cnt, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = rw_error(bs, -errno, write, err);
            break;
        }
        if (n == 0) {
            if (write) {
                r = rw_error(bs, -ENOSPC, write, err);
            } else {
                iov_memset(iov, iovcnt, done, 0, len - done);
            }
            break;
        }
        done += (uint64_t)n;
        if (!write && done < len && (s->base_flags & O_DIRECT) &&
            at_eof(s->fd, off + done)) {
            /* O_DIRECT stops mid-block at EOF; the next read would be
             * misaligned, so fill the rest here. */
            iov_memset(iov, iovcnt, done, 0, len - done);
            break;
        }
    }
    iov_vec_release(&v);
    return r;
}

/*
 * The loop's fast path: one preadv2/pwritev2 with RWF_NOWAIT, which fails
 * with EAGAIN instead of waiting for the disk (page-cache misses, or
 * writes that would block).  Anything short of a complete transfer goes
 * to the pool, which redoes the whole request (both are idempotent).
 */
static int
try_rw(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
       int iovcnt, bool write, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    ssize_t n;

    /*
     * O_DIRECT never qualifies: RWF_NOWAIT only avoids lock waits there,
     * the syscall still waits for the device.
     */
    if (iovcnt > IOV_MAX || (write && !s->fd_rw) || !s->is_reg ||
        (s->base_flags & O_DIRECT)) {
        return -EAGAIN;
    }
    n = write ? pwritev2(s->fd, iov, iovcnt, (off_t)off, RWF_NOWAIT)
              : preadv2(s->fd, iov, iovcnt, (off_t)off, RWF_NOWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINTR ||
            errno == ENOSYS || errno == EINVAL) {
            return -EAGAIN;
        }
        return rw_error(bs, -errno, write, err);
    }
    return (uint64_t)n == len ? 0 : -EAGAIN;
}

static int
file_try_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_error *err)
{
    return try_rw(bs, off, len, iov, iovcnt, false, err);
}

static int
file_try_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_error *err)
{
    if (flags & BLK_REQ_FUA) {
        return -EAGAIN;
    }
    return try_rw(bs, off, len, iov, iovcnt, true, err);
}

/*
 * The ring path: the same transfer on the loop's io_uring, which waits
 * for the disk (O_DIRECT) or for the page cache (a buffered write the
 * kernel cannot do at once goes to its own workers) without a thread of
 * ours.  FUA becomes RWF_DSYNC: this write's data is stable when it
 * completes, as pwritev + fdatasync makes it on the pool.
 */
static int
aio_rw(struct blk_node *bs, uint64_t off, uint64_t len, struct iovec *iov,
       int iovcnt, unsigned flags, bool write, struct blk_aio *aio)
{
    struct file_state *s = blk_node_state(bs);
    int rw_flags = 0;

    if (iovcnt > IOV_MAX || (write && !s->fd_rw) || !s->is_reg) {
        return -EAGAIN;
    }
    /* fallocate may wait for the inode lock: only where the loop may block */
    if (write && blk_loop_may_block()) {
        prealloc_for_write(s, off, len);
    }
    if (write && (flags & BLK_REQ_FUA)) {
        rw_flags = RWF_DSYNC;
    }
    return blk_aio_fd_rw(aio, bs, s->fd, write,
                         (s->base_flags & O_DIRECT) != 0, off, len, iov,
                         iovcnt, rw_flags);
}

static int
file_aio_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
                struct iovec *iov, int iovcnt, unsigned flags,
                struct blk_aio *aio, struct blk_error *err)
{
    return aio_rw(bs, off, len, iov, iovcnt, flags, false, aio);
}

static int
file_aio_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
                 struct iovec *iov, int iovcnt, unsigned flags,
                 struct blk_aio *aio, struct blk_error *err)
{
    return aio_rw(bs, off, len, iov, iovcnt, flags, true, aio);
}

static int
file_preadv(struct blk_node *bs, uint64_t off, uint64_t len,
            struct iovec *iov, int iovcnt, unsigned flags,
            struct blk_error *err)
{
    return do_rw(bs, off, len, iov, iovcnt, false, err);
}

static int
sync_data(struct blk_node *bs, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);

    if (fdatasync(s->fd) < 0) {
        return blk_error_setsys(err, -errno, "flushing '%s' failed",
                                blk_node_get_filename(bs));
    }
    return 0;
}

static int
file_pwritev(struct blk_node *bs, uint64_t off, uint64_t len,
             struct iovec *iov, int iovcnt, unsigned flags,
             struct blk_error *err)
{
    int r = do_rw(bs, off, len, iov, iovcnt, true, err);

    if (r == 0 && (flags & BLK_REQ_FUA)) {
        r = sync_data(bs, err);
    }
    return r;
}

static int
falloc(int fd, int mode, uint64_t off, uint64_t len)
{
    int r;

    do {
        r = fallocate(fd, mode, (off_t)off, (off_t)len);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return 0;
    }
    return errno == EOPNOTSUPP || errno == ENOSYS || errno == ENOTTY
               ? -ENOTSUP : -errno;
}

/* Write zeroes from zero_buf over [off, off + len). */
static int
write_zeroes(struct blk_node *bs, uint64_t off, uint64_t len,
             struct blk_error *err)
{
    while (len > 0) {
        uint64_t n = len < ZERO_BUF_SIZE ? len : ZERO_BUF_SIZE;
        struct iovec iov = { (void *)zero_buf, (size_t)n };
        int r = do_rw(bs, off, n, &iov, 1, true, err);

        if (r < 0) {
            return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

/*
 * After zeroing [off, end) with KEEP_SIZE, make sure the file reaches end:
 * rewrite the last (aligned) piece of the range, which never shrinks the
 * file even if another request extends it at the same time.
 */
static int
extend_to(struct blk_node *bs, uint64_t off, uint64_t end,
          struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    uint64_t tail = s->align > 1 ? s->align : 1;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return blk_error_setsys(err, -errno, "Could not stat file");
    }
    if ((uint64_t)st.st_size >= end) {
        return 0;
    }
    if (end - off < tail) {
        tail = end - off;
    }
    return write_zeroes(bs, end - tail, tail, err);
}

static int
hdev_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
          struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    uint64_t range[2] = { off, len };

    if (ioctl(s->fd, BLKZEROOUT, range) == 0) {
        return 0;
    }
    if (flags & BLK_REQ_NO_FALLBACK) {
        return blk_error_set(err, -ENOTSUP, "zeroing is not supported");
    }
    return write_zeroes(bs, off, len, err);
}

static int
file_zero(struct blk_node *bs, uint64_t off, uint64_t len, unsigned flags,
          struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    int r;

    if (!s->is_reg) {
        return hdev_zero(bs, off, len, flags, err);
    }
    if ((flags & BLK_REQ_MAY_UNMAP) && !atomic_load(&s->no_punch)) {
        r = falloc(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
        if (r == 0) {
            return extend_to(bs, off, off + len, err);
        }
        if (r == -ENOTSUP) {
            atomic_store(&s->no_punch, true);
        } else if (r != -EINVAL) {
            return rw_error(bs, r, true, err);
        }
    }
    if (!atomic_load(&s->no_zero_range)) {
        /* Without KEEP_SIZE this also extends the file as needed. */
        r = falloc(s->fd, FALLOC_FL_ZERO_RANGE, off, len);
        if (r == 0) {
            return 0;
        }
        if (r == -ENOTSUP) {
            atomic_store(&s->no_zero_range, true);
        } else if (r != -EINVAL) {
            return rw_error(bs, r, true, err);
        }
    }
    if (!atomic_load(&s->no_punch)) {
        /* Punch, then allocate again: zeroes that stay allocated (tmpfs). */
        r = falloc(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
        if (r == 0) {
            r = falloc(s->fd, 0, off, len);
            if (r == 0 || r == -ENOTSUP) {
                return extend_to(bs, off, off + len, err);
            }
            return rw_error(bs, r, true, err);
        }
        if (r == -ENOTSUP) {
            atomic_store(&s->no_punch, true);
        } else if (r != -EINVAL) {
            return rw_error(bs, r, true, err);
        }
    }
    if (flags & BLK_REQ_NO_FALLBACK) {
        return blk_error_set(err, -ENOTSUP,
                             "efficient zeroing is not supported on '%s'",
                             blk_node_get_filename(bs));
    }
    return write_zeroes(bs, off, len, err);
}

static int
file_discard(struct blk_node *bs, uint64_t off, uint64_t len,
             struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    int r;

    if (!s->is_reg) {
        uint64_t range[2] = { off, len };

        /* Advisory: devices that cannot discard just keep the data. */
        if (ioctl(s->fd, BLKDISCARD, range) < 0 && errno != EOPNOTSUPP &&
            errno != ENOTTY && errno != EINVAL) {
            return rw_error(bs, -errno, true, err);
        }
        return 0;
    }
    if (atomic_load(&s->no_punch)) {
        return 0;
    }
    r = falloc(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
    if (r == -ENOTSUP) {
        atomic_store(&s->no_punch, true);
        return 0;
    }
    if (r == -EINVAL) {
        return 0;
    }
    return r < 0 ? rw_error(bs, r, true, err) : 0;
}

static int
file_flush(struct blk_node *bs, struct blk_error *err)
{
    if (blk_node_cache_no_flush(bs)) {
        return 0;
    }
    return sync_data(bs, err);
}

/*
 * Zero-copy reads: the file as it was long at the first call, mapped
 * read-only and shared, so spans point into the page cache.  Not with
 * O_DIRECT (the user asked to bypass the page cache) or for devices.
 */
static int
file_map_data(struct blk_node *bs, uint64_t off, uint64_t len,
              const uint8_t **ptr)
{
    struct file_state *s = blk_node_state(bs);
    int r = 0;

    pthread_mutex_lock(&s->map_lock);
    if (s->map == NULL) {
        struct stat st;

        if (s->map_tried || !s->is_reg || (s->base_flags & O_DIRECT)) {
            r = -EAGAIN;
            goto out;
        }
        s->map_tried = true;
        if (fstat(s->fd, &st) < 0 || st.st_size <= 0 ||
            (uint64_t)st.st_size > SIZE_MAX) {
            r = -EAGAIN;
            goto out;
        }
        s->map = blk_map_file(s->fd, (size_t)st.st_size);
        if (s->map == NULL) {
            r = -EAGAIN;
            goto out;
        }
        s->map_len = (size_t)st.st_size;
    }
    if (off > s->map_len || len > s->map_len - off) {
        r = -EAGAIN;
        goto out;
    }
    *ptr = s->map + off;
out:
    pthread_mutex_unlock(&s->map_lock);
    return r;
}

/*
 * Start writeback of the whole file's dirty pages; waits only where the
 * device's queue is full.  A flush that follows has less left to write.
 */
static int
file_writeback(struct blk_node *bs, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);

    if (blk_node_cache_no_flush(bs) || !s->is_reg || !s->fd_rw ||
        (s->base_flags & O_DIRECT)) {
        return 0;
    }
    if (sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0 &&
        errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL &&
        errno != ESPIPE) {
        return blk_error_setsys(err, -errno, "writing back '%s' failed",
                                blk_node_get_filename(bs));
    }
    return 0;
}

static int
file_block_status(struct blk_node *bs, uint64_t off, uint64_t len,
                  struct blk_status *st, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    uint64_t a = s->align > 1 ? s->align : 1;
    off_t data, hole;
    uint64_t pnum = len;
    unsigned flags = BLK_STATUS_DATA;

    data = lseek(s->fd, (off_t)off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {
            flags = BLK_STATUS_ZERO;        /* a trailing hole, or past EOF */
        }
        /* Otherwise SEEK_DATA is unsupported: everything is data. */
    } else if ((uint64_t)data > off) {
        flags = BLK_STATUS_ZERO;
        pnum = (uint64_t)data - off;
        /* An unaligned start of data counts as data from the block start. */
        pnum -= pnum % a;
        if (pnum == 0) {
            flags = BLK_STATUS_DATA;
            pnum = a;
        }
    } else {
        hole = lseek(s->fd, (off_t)off, SEEK_HOLE);
        if (hole > (off_t)off) {
            pnum = (uint64_t)hole - off;
            /* Data ending mid-block (at EOF) covers the whole block. */
            pnum += (a - pnum % a) % a;
        }
    }
    if (pnum > len) {
        pnum = len;
    }
    st->pnum = pnum;
    st->flags = flags | BLK_STATUS_OFFSET_VALID;
    st->map = off;
    st->file = bs;
    return 0;
}

/* Bytes of the file or device, exact. */
static int64_t
raw_length(struct file_state *s)
{
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t n;

        if (ioctl(s->fd, BLKGETSIZE64, &n) == 0) {
            return (int64_t)n;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        off_t end = lseek(s->fd, 0, SEEK_END);

        return end < 0 ? -errno : end;
    }
    return st.st_size;
}

/*
 * The length rounded up to 512 bytes, as QEMU 7.2 reports it (its lengths
 * are whole sectors); the bytes past the real end of file read as zeroes.
 */
static int64_t
file_get_length(struct blk_node *bs)
{
    int64_t n = raw_length(blk_node_state(bs));

    if (n < 0) {
        return n;
    }
    if (n > INT64_MAX - (SECTOR - 1)) {
        return n;
    }
    return (n + SECTOR - 1) / SECTOR * SECTOR;
}

static int64_t
file_get_allocated_size(struct blk_node *bs)
{
    struct file_state *s = blk_node_state(bs);
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

static const char *
prealloc_name(enum blk_prealloc p)
{
    switch (p) {
    case BLK_PREALLOC_OFF: return "off";
    case BLK_PREALLOC_METADATA: return "metadata";
    case BLK_PREALLOC_FALLOC: return "falloc";
    case BLK_PREALLOC_FULL: return "full";
    }
    return "?";
}

/*
 * A file that grows from empty gets its first block written with zeroes,
 * as QEMU does (so O_DIRECT alignment probing finds allocated blocks):
 * 512 bytes for files under 4 KiB, else 4 KiB.  This is why a new raw
 * image maps as 4 KiB of data and then zeroes.  Failures are ignored.
 */
static void
allocate_first_block(int fd, uint64_t len)
{
    size_t n = len < 4096 ? 512 : 4096;
    ssize_t w;

    if (n > len) {
        n = (size_t)len;            /* never change the size (blk) */
    }
    do {
        w = pwrite(fd, zero_buf, n, 0);
    } while (w < 0 && errno == EINTR);
}

/*
 * Resize a regular file from cur to len bytes with prealloc (QEMU's
 * rules and messages).  fd must not be O_DIRECT for BLK_PREALLOC_FULL.
 */
static int
regular_truncate(int fd, uint64_t cur, uint64_t len, enum blk_prealloc prealloc,
                 struct blk_error *err)
{
    int r;

    if (cur > len && prealloc != BLK_PREALLOC_OFF) {
        return blk_error_set(err, -ENOTSUP,
                             "Cannot use preallocation for shrinking files");
    }
    switch (prealloc) {
    case BLK_PREALLOC_OFF:
        break;
    case BLK_PREALLOC_FALLOC:
        if (len > cur) {
            r = posix_fallocate(fd, (off_t)cur, (off_t)(len - cur));
            if (r != 0) {
                return blk_error_setsys(err, -r,
                                        "Could not preallocate new data");
            }
            if (cur == 0) {
                allocate_first_block(fd, len);
            }
        }
        return 0;
    case BLK_PREALLOC_FULL:
        break;
    default:
        return blk_error_set(err, -ENOTSUP,
                             "Unsupported preallocation mode: %s",
                             prealloc_name(prealloc));
    }
    if (ftruncate(fd, (off_t)len) < 0) {
        return blk_error_setsys(err, -errno, "Could not resize file");
    }
    if (prealloc == BLK_PREALLOC_OFF && cur == 0 && len > 0) {
        allocate_first_block(fd, len);
    }
    if (prealloc == BLK_PREALLOC_FULL && len > cur) {
        uint64_t pos = cur;

        while (pos < len) {
            uint64_t n = len - pos < ZERO_BUF_SIZE ? len - pos : ZERO_BUF_SIZE;
            ssize_t w = pwrite(fd, zero_buf, (size_t)n, (off_t)pos);

            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                return blk_error_setsys(err, w < 0 ? -errno : -ENOSPC,
                                        "Could not write zeros for "
                                        "preallocation");
            }
            pos += (uint64_t)w;
        }
        if (fsync(fd) < 0) {
            return blk_error_setsys(err, -errno,
                                    "Could not flush file to disk");
        }
    }
    return 0;
}

static int
file_truncate(struct blk_node *bs, uint64_t len, bool exact,
              enum blk_prealloc prealloc, struct blk_error *err)
{
    struct file_state *s = blk_node_state(bs);
    int64_t cur = raw_length(s);

    if (cur < 0) {
        return blk_error_setsys(err, (int)cur, "Could not stat file");
    }
    if (!s->is_reg) {
        if (prealloc != BLK_PREALLOC_OFF) {
            return blk_error_set(err, -ENOTSUP,
                                 "Preallocation mode '%s' unsupported for "
                                 "this non-regular file",
                                 prealloc_name(prealloc));
        }
        if (len != (uint64_t)cur && exact) {
            return blk_error_set(err, -ENOTSUP, "Cannot resize device files");
        }
        if (len > (uint64_t)cur) {
            return blk_error_set(err, -EINVAL, "Cannot grow device files");
        }
        return 0;
    }
    /* Regular files always take the exact size, as in QEMU. */
    if (prealloc == BLK_PREALLOC_FULL && (s->base_flags & O_DIRECT)) {
        /* Unaligned zero writes need the page cache: a buffered twin. */
        int fd = open(blk_node_get_filename(bs), O_RDWR | O_CLOEXEC);
        int r;

        if (fd < 0) {
            return blk_error_setsys(err, -errno, "Could not open '%s'",
                                    blk_node_get_filename(bs));
        }
        r = regular_truncate(fd, (uint64_t)cur, len, prealloc, err);
        close(fd);                  /* OFD locks of s->fd stay */
        return r;
    }
    return regular_truncate(s->fd, (uint64_t)cur, len, prealloc, err);
}

/* ---- create -------------------------------------------------------------- */

static int
parse_prealloc(const char *s, enum blk_prealloc *p)
{
    static const char *const names[] = { "off", "metadata", "falloc", "full" };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *p = (enum blk_prealloc)i;
            return 0;
        }
    }
    return -EINVAL;
}

static void
set_extent_size_hint(int fd, uint64_t hint, bool given)
{
#ifdef FS_IOC_FSSETXATTR
    struct fsxattr attr;
    int r = ioctl(fd, FS_IOC_FSGETXATTR, &attr);

    if (r == 0) {
        attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
        attr.fsx_extsize = (uint32_t)hint;
        r = ioctl(fd, FS_IOC_FSSETXATTR, &attr);
    }
    /* Not fatal; worth a word only when the user asked for a hint. */
    if (r < 0 && given && hint != 0) {
        fprintf(stderr, "%s: warning: Failed to set extent size hint: %s\n",
                program_invocation_short_name, strerror(errno));
    }
#endif
}

static int
file_create(const struct kv *opts, struct blk_error *err)
{
    const char *filename = kv_get_str(opts, "filename", NULL);
    uint64_t size = kv_get_uint(opts, "size", 0);
    const char *pstr = kv_get_str(opts, "preallocation", "off");
    bool nocow = kv_get_bool(opts, "nocow", false);
    bool has_hint = kv_get(opts, "extent-size-hint") != NULL;
    uint64_t hint = kv_get_uint(opts, "extent-size-hint", 1 << 20);
    enum blk_prealloc prealloc;
    int fd, r;

    if (filename == NULL) {
        return blk_error_set(err, -EINVAL, "Parameter 'filename' is missing");
    }
    if (parse_prealloc(pstr, &prealloc) < 0) {
        return blk_error_set(err, -EINVAL,
                             "Parameter 'preallocation' does not accept "
                             "value '%s'", pstr);
    }
    if (hint > UINT32_MAX) {
        return blk_error_set(err, -EINVAL, "Extent size hint is too large");
    }
    if (size > INT64_MAX) {
        return blk_error_set(err, -EFBIG, "Image size is too large");
    }
    fd = open(filename, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return blk_error_setsys(err, -errno, "Could not create '%s'",
                                filename);
    }
    /* Write and resize, sharing everything but resize (QEMU's choice: the
     * size we set must hold when we return). */
    r = lock_new_fd(fd, filename, BLK_PERM_WRITE | BLK_PERM_RESIZE,
                    BLK_PERM_ALL & ~BLK_PERM_RESIZE, err);
    if (r < 0) {
        goto out_close;
    }
    r = regular_truncate(fd, 0, 0, BLK_PREALLOC_OFF, err);
    if (r < 0) {
        goto out_close;
    }
    if (nocow) {
        int attr;

        /* An optimisation for btrfs; only possible on an empty file. */
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            ioctl(fd, FS_IOC_SETFLAGS, &attr);
        }
    }
    set_extent_size_hint(fd, hint, has_hint);
    r = regular_truncate(fd, 0, size, prealloc, err);

out_close:
    if (close(fd) < 0 && r == 0) {
        r = blk_error_setsys(err, -errno, "Could not close the new file");
    }
    return r;
}

const struct blk_driver blk_driver_file = {
    .name = "file",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct file_state),
    .create_type = "BlockdevCreateOptionsFile",
    .open = file_open,
    .close = file_close,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .writeback = file_writeback,
    .map_data = file_map_data,
    .zero = file_zero,
    .discard = file_discard,
    .flush = file_flush,
    .block_status = file_block_status,
    .get_length = file_get_length,
    .get_allocated_size = file_get_allocated_size,
    .truncate = file_truncate,
    .create = file_create,
    .reopen_prepare = file_reopen_prepare,
    .reopen_commit = file_reopen_commit,
    .reopen_abort = file_reopen_abort,
    .set_perm = file_set_perm,
    .try_preadv = file_try_preadv,
    .try_pwritev = file_try_pwritev,
    .aio_preadv = file_aio_preadv,
    .aio_pwritev = file_aio_pwritev,
};

const struct blk_driver blk_driver_host_device = {
    .name = "host_device",
    .threads = BLK_THREADS_PARALLEL,
    .state_size = sizeof(struct file_state),
    .open = hdev_open,
    .close = file_close,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .writeback = file_writeback,
    .map_data = file_map_data,
    .zero = file_zero,
    .discard = file_discard,
    .flush = file_flush,
    .block_status = file_block_status,
    .get_length = file_get_length,
    .get_allocated_size = file_get_allocated_size,
    .truncate = file_truncate,
    .reopen_prepare = file_reopen_prepare,
    .reopen_commit = file_reopen_commit,
    .reopen_abort = file_reopen_abort,
    .set_perm = file_set_perm,
    .try_preadv = file_try_preadv,
    .try_pwritev = file_try_pwritev,
    .aio_preadv = file_aio_preadv,
    .aio_pwritev = file_aio_pwritev,
};
