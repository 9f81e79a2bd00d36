/*
 * test-file.c - the file, raw and null drivers through the block API:
 * round trips, end of file, zeroing and holes, truncate and preallocation,
 * O_DIRECT, image locking (two opens in this process, and against the
 * real qemu-io/qemu-img 7.2 when installed).
 *
 * Also a helper for shell tests: `test-file --hold IMG SECONDS` opens IMG
 * (raw) read-write with write unshared, prints "locked", and sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "block/block.h"
#include "keyval/schema.h"
#include "util/xalloc.h"

/* mkdtemp's template; its last six characters become X at startup */
static char dir[] = "/tmp/blk-test-file-______";

static char *
path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static int
create_file(const char *filename, uint64_t size, const char *prealloc,
            struct blk_error *err)
{
    struct kv *o = kv_new_object();
    int r;

    kv_set(o, "driver", kv_new_str("file"));
    kv_set(o, "filename", kv_new_str(filename));
    kv_set(o, "size", kv_new_uint(size));
    if (prealloc != NULL) {
        kv_set(o, "preallocation", kv_new_str(prealloc));
    }
    r = blk_create(o, err);
    kv_free(o);
    return r;
}

static off_t
file_size(const char *filename)
{
    struct stat st;

    return stat(filename, &st) == 0 ? st.st_size : -1;
}

static int64_t
file_alloc(const char *filename)
{
    struct stat st;

    return stat(filename, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

/* ---- file: create, open errors ---------------------------------------- */

static void
test_create(void)
{
    struct blk_error err = BLK_ERROR_INIT;
    char *p = path("c.img");
    char *q;

    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    CHECK_INT(file_size(p), 1 << 20);
    /* only the first block is written, as QEMU does */
    CHECK(file_alloc(p) >= 4096 && file_alloc(p) < 65536);
    /* create truncates an existing file first */
    CHECK_INT(create_file(p, 4096, NULL, &err), 0);
    CHECK_INT(file_size(p), 4096);

    CHECK_INT(create_file(p, 1 << 20, "full", &err), 0);
    CHECK(file_alloc(p) >= 1 << 20);
    CHECK_INT(create_file(p, 1 << 20, "falloc", &err), 0);
    CHECK(file_alloc(p) >= 1 << 20);
    CHECK_INT(file_size(p), 1 << 20);

    CHECK_INT(create_file(p, 1 << 20, "metadata", &err), -ENOTSUP);
    CHECK_STR(err.msg, "Unsupported preallocation mode: metadata");
    blk_error_clear(&err);

    q = xasprintf("%s/nodir/x.img", dir);
    CHECK_INT(create_file(q, 1 << 20, NULL, &err), -ENOENT);
    {
        char *want = xasprintf("Could not create '%s': No such file or "
                               "directory", q);

        CHECK_STR(err.msg, want);
        free(want);
    }
    blk_error_clear(&err);
    free(q);
    free(p);
}

static struct blk_node *
open_opts(struct blk_graph *g, const char *s, unsigned flags,
          struct blk_error *err)
{
    return blk_open_image(g, s, NULL, true, flags, err);
}

static void
test_open_errors(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    char *p = path("missing.img");
    char *s;

    bs = blk_open_image(g, p, "raw", false, 0, &err);
    CHECK(bs == NULL);
    s = xasprintf("Could not open '%s': No such file or directory", p);
    CHECK(strstr(err.msg, s) != NULL);
    free(s);
    blk_error_clear(&err);

    bs = open_opts(g, "driver=file,filename=/dev/null", 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "'file' driver requires '/dev/null' to be a "
                          "regular file") != NULL);
    blk_error_clear(&err);

    bs = open_opts(g, "driver=host_device,filename=/dev/null", 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_get_length(bs), 0);
        blk_node_unref(bs);
    }
    s = xasprintf("driver=host_device,filename=%s/c.img", dir);
    bs = open_opts(g, s, 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "to be either a character or block device") != NULL);
    blk_error_clear(&err);
    free(s);

    s = xasprintf("driver=file,filename=%s/c.img,aio=native", dir);
    bs = open_opts(g, s, 0, &err);
    CHECK(bs == NULL);
    CHECK(strstr(err.msg, "aio=native is not supported") != NULL);
    blk_error_clear(&err);
    free(s);

    blk_graph_free(g);
    free(p);
}

/* ---- file: I/O ----------------------------------------------------------- */

static void
test_rw(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs, *file;
    struct blk_status st;
    unsigned char *buf = xmalloc(1 << 20), *rd = xmalloc(1 << 20);
    struct iovec iov[3];
    char *p = path("rw.img");
    int i;

    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    bs = blk_open_image(g, p, "raw", false, BLK_OPEN_RDWR | BLK_OPEN_UNMAP,
                        &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        fprintf(stderr, "    %s\n", err.msg);
        goto out;
    }
    file = blk_node_file(bs);
    CHECK(file != NULL && strcmp(blk_node_driver(file)->name, "file") == 0);
    CHECK_STR(blk_node_get_filename(file), p);
    CHECK_INT(blk_node_get_length(bs), 1 << 20);

    for (i = 0; i < 1 << 20; i++) {
        buf[i] = (unsigned char)(i * 7 + 3);
    }
    /* a scattered write, read back flat */
    iov[0].iov_base = buf;
    iov[0].iov_len = 100;
    iov[1].iov_base = buf + 100;
    iov[1].iov_len = 0;
    iov[2].iov_base = buf + 100;
    iov[2].iov_len = 65436;
    CHECK_INT(blk_node_pwritev(bs, 4096, 65536, iov, 3, 0, &err), 0);
    memset(rd, 0xee, 1 << 20);
    CHECK_INT(blk_node_pread(bs, 0, rd, 1 << 20, &err), 0);
    CHECK(rd[0] == 0 && rd[4095] == 0 && rd[4096 + 65536] == 0);
    CHECK(memcmp(rd + 4096, buf, 65536) == 0);
    /* unaligned, FUA */
    CHECK_INT(blk_node_pwrite(bs, 1000001, buf, 333, BLK_REQ_FUA, &err), 0);
    CHECK_INT(blk_node_pread(bs, 1000000, rd, 335, &err), 0);
    CHECK(rd[0] == 0 && memcmp(rd + 1, buf, 333) == 0 && rd[334] == 0);
    CHECK_INT(blk_node_flush(bs, &err), 0);

    /* a new file: the first 4 KiB are written (QEMU's first block) */
    CHECK_INT(blk_node_block_status(file, 0, 1 << 20, &st, &err), 0);
    CHECK(st.flags == (BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID));
    CHECK(st.pnum == 4096 + 65536);

    /* block status on the file node: data, then a hole, then zero to EOF */
    CHECK_INT(blk_node_block_status(file, 4096, 1 << 20, &st, &err), 0);
    CHECK(st.flags == (BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID));
    CHECK(st.map == 4096 && st.file == file);
    CHECK(st.pnum >= 65536 && st.pnum <= (1 << 20) - 4096);
    CHECK_INT(blk_node_block_status(file, 256 * 1024, 4096, &st, &err), 0);
    CHECK(st.flags == (BLK_STATUS_ZERO | BLK_STATUS_OFFSET_VALID));
    CHECK(st.pnum == 4096);

    /* zero with unmap punches a hole; without unmap still reads zeroes */
    CHECK_INT(blk_node_zero(bs, 4096, 8192, BLK_REQ_MAY_UNMAP, &err), 0);
    CHECK_INT(blk_node_pread(bs, 4096, rd, 8192, &err), 0);
    CHECK(rd[0] == 0 && rd[8191] == 0 && rd[4000] == 0);
    CHECK_INT(blk_node_block_status(file, 4096, 8192, &st, &err), 0);
    CHECK(st.flags & BLK_STATUS_ZERO);
    CHECK_INT(blk_node_zero(bs, 20000, 100, 0, &err), 0);
    CHECK_INT(blk_node_pread(bs, 19999, rd, 102, &err), 0);
    CHECK(rd[0] == buf[19999 - 4096] && rd[1] == 0 && rd[100] == 0);
    CHECK(rd[101] == buf[20100 - 4096]);
    CHECK_INT(blk_node_zero(bs, 32768, 8192, BLK_REQ_NO_FALLBACK, &err), 0);
    CHECK_INT(blk_node_pread(bs, 32768, rd, 8192, &err), 0);
    CHECK(rd[0] == 0 && rd[8191] == 0);

    /* discard (discard=unmap) deallocates */
    CHECK_INT(blk_node_discard(bs, 65536, 4096, &err), 0);
    CHECK_INT(blk_node_block_status(file, 65536, 4096, &st, &err), 0);
    CHECK(st.flags & BLK_STATUS_ZERO);

    /* raw passes status down */
    CHECK_INT(blk_node_block_status(bs, 4096, 4096, &st, &err), 0);
    CHECK(st.map == 4096);
    if (err.code < 0) {
        fprintf(stderr, "    %s\n", err.msg);
    }
    CHECK(blk_node_get_allocated_size(file) > 0);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(buf);
    free(rd);
    free(p);
}

/* A file whose size is not a multiple of 512: QEMU shows it rounded up. */
static void
test_eof(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    struct blk_status st;
    unsigned char rd[4097];
    char *p = path("odd.img");
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);

    memset(rd, 0x5a, sizeof(rd));
    CHECK(fd >= 0 && pwrite(fd, rd, 4097, 0) == 4097);
    close(fd);
    bs = blk_open_image(g, p, "raw", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    CHECK_INT(blk_node_get_length(bs), 4608);
    memset(rd, 0xee, sizeof(rd));
    CHECK_INT(blk_node_pread(bs, 4096, rd, 512, &err), 0);
    CHECK(rd[0] == 0x5a && rd[1] == 0 && rd[511] == 0);
    CHECK_INT(blk_node_block_status(blk_node_file(bs), 4096, 512, &st, &err),
              0);
    CHECK(st.flags & BLK_STATUS_DATA);
    CHECK_INT(blk_node_pread(bs, 4608, rd, 1, &err), -EIO);
    blk_error_clear(&err);
    {
        /* the same through O_DIRECT, which stops mid-block at EOF */
        struct blk_graph *g2 = blk_graph_new();
        unsigned fl = BLK_OPEN_NOCACHE | BLK_OPEN_FORCE_SHARE;
        struct blk_node *d = blk_open_image(g2, p, "raw", false, fl, &err);

        if (d == NULL) {
            printf("note: O_DIRECT open failed (%s), skipped\n", err.msg);
            blk_error_clear(&err);
        } else {
            memset(rd, 0xee, sizeof(rd));
            CHECK_INT(blk_node_pread(d, 3584, rd, 1024, &err), 0);
            CHECK(rd[0] == 0x5a && rd[512] == 0x5a && rd[513] == 0);
            CHECK(rd[1023] == 0);
            blk_node_unref(d);
        }
        blk_graph_free(g2);
    }
    /* writing the tail extends the file */
    CHECK_INT(blk_node_pwrite(bs, 4600, rd, 8, 0, &err), 0);
    CHECK_INT(file_size(p), 4608);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(p);
}

static void
test_truncate(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    char *p = path("t.img");

    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    bs = blk_open_image(g, p, "file", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    CHECK_INT(blk_node_truncate(bs, 2 << 20, true, BLK_PREALLOC_OFF, &err), 0);
    CHECK_INT(file_size(p), 2 << 20);
    CHECK_INT(blk_node_get_length(bs), 2 << 20);
    CHECK(file_alloc(p) < 65536);
    /* Regular files always take the exact size (QEMU's file-posix). */
    CHECK_INT(blk_node_truncate(bs, 1536 << 10, false, BLK_PREALLOC_OFF, &err),
              0);
    CHECK_INT(file_size(p), 1536 << 10);
    CHECK_INT(blk_node_truncate(bs, 1 << 20, true, BLK_PREALLOC_OFF, &err), 0);
    CHECK_INT(file_size(p), 1 << 20);
    CHECK_INT(blk_node_truncate(bs, 2 << 20, true, BLK_PREALLOC_FALLOC, &err),
              0);
    CHECK_INT(file_size(p), 2 << 20);
    CHECK(file_alloc(p) >= 1 << 20);
    CHECK_INT(blk_node_truncate(bs, 3 << 20, true, BLK_PREALLOC_FULL, &err), 0);
    CHECK_INT(file_size(p), 3 << 20);
    CHECK(file_alloc(p) >= 2 << 20);
    CHECK_INT(blk_node_truncate(bs, 1 << 20, true, BLK_PREALLOC_FULL, &err),
              -ENOTSUP);
    CHECK_STR(err.msg, "Cannot use preallocation for shrinking files");
    blk_error_clear(&err);
    CHECK_INT(blk_node_truncate(bs, 4 << 20, true, BLK_PREALLOC_METADATA,
                                &err), -ENOTSUP);
    CHECK_STR(err.msg, "Unsupported preallocation mode: metadata");
    blk_error_clear(&err);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(p);
}

/* cache.direct=on: O_DIRECT with the probed alignment and core RMW. */
static void
test_direct(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    unsigned char *buf = xmalloc(10000), *rd = xmalloc(10000);
    char *p = path("d.img");
    int fd;
    int i;

    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    fd = open(p, O_RDONLY | O_DIRECT);
    if (fd < 0) {
        printf("note: O_DIRECT not supported in %s, direct I/O checks "
               "skipped\n", dir);
        goto out;
    }
    close(fd);
    bs = blk_open_image(g, p, "raw", false, BLK_OPEN_RDWR | BLK_OPEN_NOCACHE,
                        &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        fprintf(stderr, "    %s\n", err.msg);
        goto out;
    }
    CHECK(blk_node_get_limits(blk_node_file(bs))->request_alignment >= 512);
    for (i = 0; i < 10000; i++) {
        buf[i] = (unsigned char)(i % 251);
    }
    CHECK_INT(blk_node_pwrite(bs, 777, buf + 1, 9000, 0, &err), 0);
    if (err.code < 0) {
        fprintf(stderr, "    %s\n", err.msg);
        blk_error_clear(&err);
    }
    memset(rd, 0, 10000);
    CHECK_INT(blk_node_pread(bs, 777, rd + 3, 9000, &err), 0);
    CHECK(memcmp(rd + 3, buf + 1, 9000) == 0);
    CHECK_INT(blk_node_zero(bs, 4096, 4096, 0, &err), 0);
    CHECK_INT(blk_node_pread(bs, 4000, rd, 4200, &err), 0);
    CHECK(rd[95] == buf[1 + 4095 - 777] && rd[96] == 0 && rd[4191] == 0);
    CHECK_INT(blk_node_truncate(blk_node_file(bs), (1 << 20) + 1000, true,
                                BLK_PREALLOC_FULL, &err), 0);
    CHECK_INT(file_size(p), (1 << 20) + 1000);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(buf);
    free(rd);
    free(p);
}

/* ---- locking ------------------------------------------------------------- */

/* Open fn as raw with a backend taking perm and sharing shared. */
static struct blk_backend *
hold(struct blk_graph *g, const char *fn, unsigned flags, unsigned perm,
     unsigned shared, struct blk_error *err)
{
    struct blk_node *bs = blk_open_image(g, fn, "raw", false, flags, err);
    struct blk_backend *be;

    if (bs == NULL) {
        return NULL;
    }
    be = blk_backend_new(g, NULL, bs, perm, shared, err);
    blk_node_unref(bs);
    return be;
}

#define RW (BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE)
#define SHARE_RO (BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED)

static char self_comm[64];

static void
read_self_comm(void)
{
    FILE *f = fopen("/proc/self/comm", "r");

    if (f != NULL) {
        if (fgets(self_comm, sizeof(self_comm), f) != NULL) {
            self_comm[strcspn(self_comm, "\n")] = '\0';
        }
        fclose(f);
    }
}

static void
test_lock_in_process(void)
{
    struct blk_graph *g1 = blk_graph_new(), *g2 = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_backend *a, *b;
    char *p = path("lock.img");
    char *want;
    struct blk_node *bs;

    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    a = hold(g1, p, BLK_OPEN_RDWR, RW, SHARE_RO, &err);
    CHECK(a != NULL);
    if (a == NULL) {
        fprintf(stderr, "    %s\n", err.msg);
        goto out;
    }

    /* a second writer */
    b = hold(g2, p, BLK_OPEN_RDWR, RW, SHARE_RO, &err);
    CHECK(b == NULL);
    want = xasprintf("Failed to get \"write\" lock: Is another process using "
                     "the image [%s]? (held by pid %d '%s')", p, (int)getpid(),
                     self_comm);
    CHECK(strstr(err.msg, want) != NULL);
    if (strstr(err.msg, want) == NULL) {
        fprintf(stderr, "    got:  %s\n    want: %s\n", err.msg, want);
    }
    free(want);
    blk_error_clear(&err);

    /* a reader that does not share write, like qemu-img info */
    b = hold(g2, p, 0, BLK_PERM_CONSISTENT_READ, SHARE_RO, &err);
    CHECK(b == NULL);
    CHECK(strstr(err.msg, "Failed to get shared \"write\" lock: Is another "
                          "process using the image") != NULL);
    blk_error_clear(&err);

    /* -U: force-share */
    b = hold(g2, p, BLK_OPEN_FORCE_SHARE, BLK_PERM_CONSISTENT_READ,
             BLK_PERM_ALL, &err);
    CHECK(b != NULL);
    blk_backend_free(b);

    /* locking=off takes and tests nothing */
    want = xasprintf("driver=raw,file.driver=file,file.filename=%s,"
                     "file.locking=off", p);
    bs = open_opts(g2, want, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        b = blk_backend_new(g2, NULL, bs, RW, SHARE_RO, &err);
        CHECK(b != NULL);
        blk_backend_free(b);
        blk_node_unref(bs);
    }
    blk_error_clear(&err);
    free(want);

    /* after the holder leaves, the writer gets in */
    blk_backend_free(a);
    b = hold(g2, p, BLK_OPEN_RDWR, RW, SHARE_RO, &err);
    CHECK(b != NULL);
    blk_backend_free(b);
out:
    blk_graph_free(g1);
    blk_graph_free(g2);
    free(p);
}

/* Run a shell command; returns its exit status, output in out. */
static int
run(const char *cmd, char *out, size_t len)
{
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    int st;

    out[0] = '\0';
    if (f == NULL) {
        return -1;
    }
    while (n + 1 < len && fgets(out + n, (int)(len - n), f) != NULL) {
        n = strlen(out);
    }
    st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool
have(const char *tool)
{
    char *c = xasprintf("command -v %s >/dev/null 2>&1", tool);
    int r = system(c);

    free(c);
    return r == 0;
}

/* blk against the real qemu-io / qemu-img 7.2, both ways. */
static void
test_lock_vs_qemu(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_backend *b;
    char *p = path("q.img");
    char out[2048];
    char *cmd;
    pid_t pid;
    int i;

    if (!have("qemu-io") || !have("qemu-img")) {
        printf("note: qemu-io/qemu-img not installed, QEMU locking checks "
               "skipped\n");
        goto out;
    }
    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);

    /* QEMU holds it (qcow2-like: write not shared): blk is refused */
    pid = fork();
    if (pid == 0) {
        execlp("qemu-io", "qemu-io", "-f", "raw", "-c", "sleep 3000", p,
               (char *)NULL);
        _exit(127);
    }
    b = NULL;
    for (i = 0; i < 100; i++) {         /* until qemu-io holds its locks */
        usleep(20000);
        b = hold(g, p, BLK_OPEN_RDWR, RW, SHARE_RO, &err);
        if (b == NULL) {
            break;
        }
        blk_backend_free(b);
        b = NULL;
    }
    CHECK(b == NULL);
    cmd = xasprintf("(held by pid %d 'qemu-io')", (int)pid);
    CHECK(strstr(err.msg, "Failed to get shared \"write\" lock") != NULL);
    CHECK(strstr(err.msg, cmd) != NULL);
    if (strstr(err.msg, cmd) == NULL) {
        fprintf(stderr, "    got: %s\n", err.msg);
    }
    free(cmd);
    blk_error_clear(&err);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    /* blk holds it read-write, sharing only reads: QEMU is refused */
    b = hold(g, p, BLK_OPEN_RDWR, RW, SHARE_RO, &err);
    CHECK(b != NULL);
    /* a qcow2 reader does not share write (a raw one shares everything) */
    cmd = xasprintf("qemu-img info -f qcow2 %s 2>&1", p);
    CHECK_INT(run(cmd, out, sizeof(out)), 1);
    CHECK(strstr(out, "Failed to get shared \"write\" lock") != NULL);
    free(cmd);
    cmd = xasprintf("qemu-io -f raw -c 'write 0 512' %s 2>&1", p);
    CHECK(run(cmd, out, sizeof(out)) != 0 || strstr(out, "lock") != NULL);
    CHECK(strstr(out, "Failed to get \"write\" lock") != NULL);
    free(cmd);
    /* QEMU's -U still reads */
    cmd = xasprintf("qemu-img info -U -f raw %s 2>&1", p);
    CHECK_INT(run(cmd, out, sizeof(out)), 0);
    free(cmd);
    blk_backend_free(b);
    /* released: QEMU gets in */
    cmd = xasprintf("qemu-img info -f raw %s 2>&1", p);
    CHECK_INT(run(cmd, out, sizeof(out)), 0);
    free(cmd);
out:
    blk_graph_free(g);
    free(p);
}

/* auto-read-only=on: read-write exactly while a writer is attached. */
static void
test_dynamic_ro(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_backend *b;
    struct blk_node *bs;
    char buf[512];
    char *p = path("dyn.img");
    char *s;

    memset(buf, 0x11, sizeof(buf));
    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    s = xasprintf("driver=file,filename=%s,auto-read-only=on", p);
    bs = open_opts(g, s, BLK_OPEN_RDWR, &err);
    free(s);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    /* nobody writes: the file is open read-only */
    CHECK_INT(blk_node_pwrite(bs, 0, buf, 512, 0, &err), -EACCES);
    CHECK(strstr(err.msg, "is open read-only") != NULL);
    blk_error_clear(&err);
    b = blk_backend_new(g, NULL, bs, RW, SHARE_RO, &err);
    CHECK(b != NULL);
    if (b == NULL) {
        fprintf(stderr, "    %s\n", err.msg);
    }
    CHECK_INT(blk_node_pwrite(bs, 0, buf, 512, 0, &err), 0);
    {
        /* the locks moved to the reopened file */
        struct blk_graph *g2 = blk_graph_new();
        struct blk_backend *b2 = hold(g2, p, 0, BLK_PERM_CONSISTENT_READ,
                                      SHARE_RO, &err);

        CHECK(b2 == NULL);
        CHECK(strstr(err.msg, "Failed to get shared \"write\" lock") != NULL);
        blk_error_clear(&err);
        blk_graph_free(g2);
    }
    blk_backend_free(b);
    CHECK_INT(blk_node_pwrite(bs, 0, buf, 512, 0, &err), -EACCES);
    blk_error_clear(&err);
    /* a reader still reads what was written */
    b = blk_backend_new(g, NULL, bs, BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                        &err);
    CHECK(b != NULL);
    memset(buf, 0, sizeof(buf));
    CHECK_INT(blk_node_pread(bs, 0, buf, 512, &err), 0);
    CHECK(buf[0] == 0x11 && buf[511] == 0x11);
    blk_backend_free(b);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(p);
}

/*
 * The reopen ops, driven directly (the core's blockdev-reopen calls
 * them the same way): read-write to read-only and back keeps the locks.
 */
static void
test_reopen(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    const struct blk_driver *d;
    struct kv *o;
    void *st = NULL;
    char buf[512];
    char *p = path("reopen.img");
    char *s;

    memset(buf, 0x22, sizeof(buf));
    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    s = xasprintf("driver=file,filename=%s", p);
    bs = open_opts(g, s, BLK_OPEN_RDWR, &err);
    free(s);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    d = blk_node_driver(bs);
    o = kv_new_object();
    kv_set(o, "driver", kv_new_str("file"));
    kv_set(o, "filename", kv_new_str(p));

    /* the read-only description refuses writes */
    CHECK_INT(d->reopen_prepare(bs, o, true, &st, &err), 0);
    d->reopen_commit(bs, st);
    CHECK_INT(blk_node_pwrite(bs, 0, buf, 512, 0, &err), -EACCES);
    blk_error_clear(&err);
    /* abort keeps the old state */
    CHECK_INT(d->reopen_prepare(bs, o, false, &st, &err), 0);
    d->reopen_abort(bs, st);
    CHECK_INT(blk_node_pwrite(bs, 0, buf, 512, 0, &err), -EACCES);
    blk_error_clear(&err);
    CHECK_INT(d->reopen_prepare(bs, o, false, &st, &err), 0);
    d->reopen_commit(bs, st);
    CHECK_INT(blk_node_pwrite(bs, 0, buf, 512, 0, &err), 0);

    /* locks survive a change of description */
    {
        struct blk_backend *b = blk_backend_new(g, NULL, bs, RW, SHARE_RO,
                                                &err);
        struct blk_graph *g2 = blk_graph_new();

        CHECK(b != NULL);
        CHECK_INT(d->reopen_prepare(bs, o, true, &st, &err), 0);
        d->reopen_commit(bs, st);
        CHECK(hold(g2, p, 0, BLK_PERM_CONSISTENT_READ, SHARE_RO, &err) == NULL);
        CHECK(strstr(err.msg, "Failed to get shared \"write\" lock") != NULL);
        blk_error_clear(&err);
        blk_graph_free(g2);
        blk_backend_free(b);
    }

    /* options that cannot change */
    kv_set(o, "locking", kv_new_str("off"));
    CHECK_INT(d->reopen_prepare(bs, o, false, &st, &err), -EINVAL);
    CHECK_STR(err.msg, "Cannot change the option 'locking'");
    blk_error_clear(&err);
    kv_set(o, "locking", kv_new_str("auto"));
    kv_set(o, "filename", kv_new_str("other.img"));
    CHECK_INT(d->reopen_prepare(bs, o, false, &st, &err), -EINVAL);
    CHECK_STR(err.msg, "Cannot change the option 'filename'");
    blk_error_clear(&err);
    kv_free(o);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(p);
}

/* ---- raw ----------------------------------------------------------------- */

static void
test_raw_window(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    struct blk_status st;
    unsigned char buf[8192], rd[8192];
    char *p = path("w.img");
    char *s;
    int fd, i;

    CHECK_INT(create_file(p, 1 << 20, NULL, &err), 0);
    for (i = 0; i < 8192; i++) {
        buf[i] = (unsigned char)(i / 3);
    }
    fd = open(p, O_WRONLY);
    CHECK(pwrite(fd, buf, 8192, 4096) == 8192);
    close(fd);

    s = xasprintf("driver=raw,file.driver=file,file.filename=%s,offset=4096,"
                  "size=8192", p);
    bs = open_opts(g, s, BLK_OPEN_RDWR, &err);
    free(s);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_get_length(bs), 8192);
        CHECK_INT(blk_node_pread(bs, 0, rd, 8192, &err), 0);
        CHECK(memcmp(rd, buf, 8192) == 0);
        CHECK_INT(blk_node_pwrite(bs, 8000, buf, 192, 0, &err), 0);
        CHECK_INT(blk_node_pwrite(bs, 8000, buf, 193, 0, &err), -EIO);
        blk_error_clear(&err);
        CHECK_INT(blk_node_block_status(bs, 100, 1000, &st, &err), 0);
        CHECK(st.map == 4196);
        CHECK_INT(blk_node_truncate(bs, 16384, true, BLK_PREALLOC_OFF, &err),
                  -ENOTSUP);
        CHECK_STR(err.msg, "Cannot resize fixed-size raw disks");
        blk_error_clear(&err);
        {
            /* reopen moves the window (driver ops driven directly) */
            const struct blk_driver *d = blk_node_driver(bs);
            struct kv *o = kv_new_object();
            void *rs = NULL;

            kv_set(o, "offset", kv_new_int(8192));
            kv_set(o, "size", kv_new_int(1000));
            CHECK_INT(d->reopen_prepare(bs, o, false, &rs, &err), -EINVAL);
            CHECK_STR(err.msg, "Specified size is not multiple of 512");
            blk_error_clear(&err);
            kv_set(o, "size", kv_new_int(4096));
            CHECK_INT(d->reopen_prepare(bs, o, false, &rs, &err), 0);
            d->reopen_commit(bs, rs);
            CHECK_INT(blk_node_get_length(bs), 4096);
            CHECK_INT(blk_node_pread(bs, 0, rd, 4096, &err), 0);
            CHECK(memcmp(rd, buf + 4096, 3904) == 0);   /* then the write */
            CHECK(memcmp(rd + 3904, buf, 192) == 0);
            kv_free(o);
        }
        blk_node_unref(bs);
    }

    s = xasprintf("driver=raw,file.driver=file,file.filename=%s,"
                  "offset=2097152", p);
    CHECK(open_opts(g, s, 0, &err) == NULL);
    CHECK(strstr(err.msg, "Offset (2097152) cannot be greater than size of "
                          "the containing file (1048576)") != NULL);
    blk_error_clear(&err);
    free(s);
    s = xasprintf("driver=raw,file.driver=file,file.filename=%s,offset=524288,"
                  "size=1048576", p);
    CHECK(open_opts(g, s, 0, &err) == NULL);
    CHECK(strstr(err.msg, "The sum of offset (524288) and size (1048576) has "
                          "to be smaller or equal to the  actual size of the "
                          "containing file (1048576)") != NULL);
    blk_error_clear(&err);
    free(s);
    s = xasprintf("driver=raw,file.driver=file,file.filename=%s,offset=1,"
                  "size=1000", p);
    CHECK(open_opts(g, s, 0, &err) == NULL);
    CHECK(strstr(err.msg, "Specified size is not multiple of 512") != NULL);
    blk_error_clear(&err);
    free(s);

    /* without size: the rest of the file, resizable */
    s = xasprintf("driver=raw,file.driver=file,file.filename=%s,"
                  "offset=4096", p);
    bs = open_opts(g, s, BLK_OPEN_RDWR, &err);
    free(s);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_get_length(bs), (1 << 20) - 4096);
        CHECK_INT(blk_node_truncate(bs, 1 << 20, true, BLK_PREALLOC_OFF, &err),
                  0);
        CHECK_INT(file_size(p), (1 << 20) + 4096);
        CHECK_INT(blk_node_get_length(bs), 1 << 20);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
    free(p);
}

/* ---- null ---------------------------------------------------------------- */

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
test_null(void)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    struct blk_status st;
    unsigned char rd[4096];
    uint64_t t0;

    bs = open_opts(g, "driver=null-co", BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_get_length(bs), 1 << 30);
        CHECK_STR(blk_node_get_filename(bs), "null-co://");
        memset(rd, 0xab, sizeof(rd));
        CHECK_INT(blk_node_pread(bs, 0, rd, 4096, &err), 0);
        CHECK(rd[0] == 0xab && rd[4095] == 0xab);     /* left alone */
        CHECK_INT(blk_node_pwrite(bs, 0, rd, 4096, 0, &err), 0);
        CHECK_INT(blk_node_zero(bs, 0, 1 << 20, 0, &err), 0);
        CHECK_INT(blk_node_discard(bs, 0, 1 << 20, &err), 0);
        CHECK_INT(blk_node_flush(bs, &err), 0);
        CHECK_INT(blk_node_block_status(bs, 512, 4096, &st, &err), 0);
        CHECK(st.flags == BLK_STATUS_OFFSET_VALID && st.map == 512);
        CHECK_INT(blk_node_get_allocated_size(bs), 0);
        blk_node_unref(bs);
    }
    bs = open_opts(g, "driver=null-aio,size=1000,read-zeroes=on", 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        CHECK_INT(blk_node_get_length(bs), 1024);
        CHECK(blk_node_get_filename(bs) == NULL ||
              strcmp(blk_node_get_filename(bs), "null-aio://") != 0);
        memset(rd, 0xab, sizeof(rd));
        CHECK_INT(blk_node_pread(bs, 0, rd, 1024, &err), 0);
        CHECK(rd[0] == 0 && rd[1023] == 0 && rd[1024] == 0xab);
        CHECK_INT(blk_node_block_status(bs, 0, 1024, &st, &err), 0);
        CHECK(st.flags == (BLK_STATUS_OFFSET_VALID | BLK_STATUS_ZERO));
        blk_node_unref(bs);
    }
    bs = open_opts(g, "driver=null-co,latency-ns=3000000", 0, &err);
    CHECK(bs != NULL);
    if (bs != NULL) {
        t0 = now_ns();
        CHECK_INT(blk_node_pread(bs, 0, rd, 512, &err), 0);
        CHECK(now_ns() - t0 >= 3000000);
        blk_node_unref(bs);
    }
    blk_graph_free(g);
}

/* ---- many requests in flight on the thread pool ------------------------ */

#define NREQ 512
#define BLOCK 4096

struct freq {
    struct blk_req req;
    struct iovec iov[2];
    unsigned char *buf;
};

static unsigned freq_done, freq_fail, freq_want;
static bool freq_all;

static void
freq_cb(struct blk_req *r)
{
    if (r->ret != 0) {
        freq_fail++;
    }
    if (++freq_done == freq_want) {
        freq_all = true;
    }
}

static void
run_batch(struct blk_node *bs, struct freq *q, enum blk_op op, bool direct)
{
    int i;

    freq_done = 0;
    freq_all = false;
    freq_want = NREQ;
    for (i = 0; i < NREQ; i++) {
        /* every other request in two pieces, to exercise vectors */
        size_t cut = direct ? 512 : (size_t)(i % 7) * 100 + 1;

        memset(&q[i].req, 0, sizeof(q[i].req));
        q[i].req.op = op;
        q[i].req.offset = (uint64_t)((i * 37) % NREQ) * BLOCK;
        q[i].req.length = BLOCK;
        q[i].iov[0].iov_base = q[i].buf;
        q[i].iov[0].iov_len = i % 2 ? cut : BLOCK;
        q[i].iov[1].iov_base = q[i].buf + cut;
        q[i].iov[1].iov_len = BLOCK - cut;
        q[i].req.iov = q[i].iov;
        q[i].req.iovcnt = i % 2 ? 2 : 1;
        q[i].req.cb = freq_cb;
        blk_req_submit(bs, &q[i].req);
    }
    blk_loop_run_until(&freq_all);
}

static void
parallel_io(bool direct)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    struct freq *q = xcalloc(NREQ, sizeof(*q));
    char *p = path("par.img");
    unsigned bad = 0;
    int i;

    CHECK_INT(create_file(p, NREQ * BLOCK, NULL, &err), 0);
    bs = blk_open_image(g, p, "raw", false,
                        BLK_OPEN_RDWR | (direct ? BLK_OPEN_NOCACHE : 0), &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    for (i = 0; i < NREQ; i++) {
        q[i].buf = blk_try_memalign(4096, BLOCK);
        memset(q[i].buf, (i * 37) % NREQ % 251 + 1, BLOCK);
    }
    run_batch(bs, q, BLK_OP_WRITE, direct);
    CHECK_INT(freq_fail, 0);
    for (i = 0; i < NREQ; i++) {
        memset(q[i].buf, 0, BLOCK);
    }
    run_batch(bs, q, BLK_OP_READ, direct);
    CHECK_INT(freq_fail, 0);
    for (i = 0; i < NREQ; i++) {
        unsigned char want = (unsigned char)((i * 37) % NREQ % 251 + 1);

        if (q[i].buf[0] != want || q[i].buf[BLOCK - 1] != want ||
            memchr(q[i].buf, 0, BLOCK) != NULL) {
            bad++;
        }
        free(q[i].buf);
    }
    CHECK_INT(bad, 0);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(q);
    free(p);
}

static void
test_parallel(void)
{
    int fd;
    char *p = path("probe-direct");

    parallel_io(false);
    fd = open(p, O_CREAT | O_RDWR | O_DIRECT, 0644);
    if (fd < 0) {
        printf("note: O_DIRECT not supported in %s, parallel direct I/O "
               "skipped\n", dir);
    } else {
        close(fd);
        parallel_io(true);
    }
    free(p);
}

/* ---- preallocation of big writes (ext4) ------------------------------------ */

/*
 * FIEMAP flags of the extent holding byte off of fd (without syncing), or
 * -1 when no extent holds it.  Before writeback, ext4 reports a range
 * written into a hole as DELALLOC, and one written into a range that was
 * fallocated first as UNWRITTEN.
 */
static long
extent_flags(int fd, uint64_t off)
{
    struct {
        struct fiemap fm;
        struct fiemap_extent ext[1];
    } q;

    memset(&q, 0, sizeof(q));
    q.fm.fm_start = off;
    q.fm.fm_length = 1;
    q.fm.fm_extent_count = 1;
    if (ioctl(fd, FS_IOC_FIEMAP, &q.fm) < 0 || q.fm.fm_mapped_extents == 0) {
        return -1;
    }
    return (long)q.ext[0].fe_flags;
}

static bool prq_all;

static void
prq_cb(struct blk_req *r)
{
    prq_all = true;
}

/*
 * One raw image, written with a 1 MiB write through the pool (unaligned,
 * two vectors), one through the loop (the ring), and writes below the
 * threshold: contents and the allocated ranges (SEEK_DATA/SEEK_HOLE) are
 * the same with and without BLK_FALLOCATE=0; on ext4 the big writes went
 * into fallocated (UNWRITTEN) extents and the small ones did not; the
 * ring's only where the loop may block (blk_loop_may_block, blk-img).
 */
static void
prealloc_case(bool on, bool may_block, bool ext4)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    unsigned char *buf = xmalloc(1 << 20), *rd = xmalloc(1 << 20);
    char *p = xasprintf("%s/pre-%d%d.img", dir, on, may_block);
    struct iovec iov[2];
    struct blk_req req;
    int fd, i;

    if (on) {
        unsetenv("BLK_FALLOCATE");
    } else {
        setenv("BLK_FALLOCATE", "0", 1);
    }
    blk_loop_set_inline_writes(may_block);
    CHECK_INT(create_file(p, 16 << 20, NULL, &err), 0);
    bs = blk_open_image(g, p, "raw", false, BLK_OPEN_RDWR, &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    for (i = 0; i < 1 << 20; i++) {
        buf[i] = (unsigned char)(i * 13 + 1);
    }
    /* the pool: 1 MiB at 2 MiB + 4 KiB in two vectors */
    iov[0].iov_base = buf;
    iov[0].iov_len = 5000;
    iov[1].iov_base = buf + 5000;
    iov[1].iov_len = (1 << 20) - 5000;
    CHECK_INT(blk_node_pwritev(bs, (2 << 20) + 4096, 1 << 20, iov, 2, 0,
                               &err), 0);
    /* the loop: 512 KiB at 8 MiB */
    memset(&req, 0, sizeof(req));
    iov[0].iov_base = buf;
    iov[0].iov_len = 512 << 10;
    req.op = BLK_OP_WRITE;
    req.offset = 8 << 20;
    req.length = 512 << 10;
    req.iov = iov;
    req.iovcnt = 1;
    req.cb = prq_cb;
    prq_all = false;
    blk_req_submit(bs, &req);
    blk_loop_run_until(&prq_all);
    CHECK_INT(req.ret, 0);
    /* below the threshold: 64 KiB at 12 MiB */
    CHECK_INT(blk_node_pwrite(bs, 12 << 20, buf, 65536, 0, &err), 0);

    CHECK_INT(blk_node_pread(bs, (2 << 20) + 4096, rd, 1 << 20, &err), 0);
    CHECK(memcmp(rd, buf, 1 << 20) == 0);
    CHECK_INT(blk_node_pread(bs, 8 << 20, rd, 512 << 10, &err), 0);
    CHECK(memcmp(rd, buf, 512 << 10) == 0);
    CHECK_INT(blk_node_pread(bs, 12 << 20, rd, 65536, &err), 0);
    CHECK(memcmp(rd, buf, 65536) == 0);

    fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    /* allocated exactly where written (the first 4 KiB: QEMU's probe) */
    CHECK_INT(lseek(fd, 4096, SEEK_DATA), (2 << 20) + 4096);
    CHECK_INT(lseek(fd, (2 << 20) + 4096, SEEK_HOLE), (3 << 20) + 4096);
    CHECK_INT(lseek(fd, (3 << 20) + 4096, SEEK_DATA), 8 << 20);
    CHECK_INT(lseek(fd, 8 << 20, SEEK_HOLE), (8 << 20) + (512 << 10));
    CHECK_INT(lseek(fd, (8 << 20) + (512 << 10), SEEK_DATA), 12 << 20);
    CHECK_INT(lseek(fd, 12 << 20, SEEK_HOLE), (12 << 20) + 65536);
    if (ext4) {
        long big = extent_flags(fd, 2 << 20 | 4096);
        long ring = extent_flags(fd, 8 << 20);
        long small = extent_flags(fd, 12 << 20);

        CHECK(big >= 0 && ring >= 0 && small >= 0);
        CHECK(!!(big & FIEMAP_EXTENT_UNWRITTEN) == on);
        /* the ring's fallocate runs on the loop: only where it may block */
        CHECK(!!(ring & FIEMAP_EXTENT_UNWRITTEN) == (on && may_block));
        CHECK(!(small & FIEMAP_EXTENT_UNWRITTEN));
    }
    close(fd);
    blk_node_unref(bs);
out:
    blk_loop_set_inline_writes(false);
    unsetenv("BLK_FALLOCATE");
    blk_graph_free(g);
    free(buf);
    free(rd);
    free(p);
}

/*
 * A flush with BLK_REQ_WRITEBACK starts writing the file's dirty pages
 * back: on ext4 the delayed-allocation extent of a small write gets its
 * blocks (no longer DELALLOC) when it returns; with cache.no-flush it
 * does nothing.  Contents stay as written either way.
 */
static void
writeback_case(bool no_flush, bool ext4)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_node *bs;
    unsigned char buf[65536], rd[65536];
    char *p = path(no_flush ? "wb-nf.img" : "wb.img");
    struct blk_req req;
    int fd;

    memset(buf, 0x5a, sizeof(buf));
    CHECK_INT(create_file(p, 4 << 20, NULL, &err), 0);
    bs = blk_open_image(g, p, "raw", false,
                        BLK_OPEN_RDWR | (no_flush ? BLK_OPEN_NO_FLUSH : 0),
                        &err);
    CHECK(bs != NULL);
    if (bs == NULL) {
        goto out;
    }
    CHECK_INT(blk_node_pwrite(bs, 1 << 20, buf, sizeof(buf), 0, &err), 0);
    fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    if (ext4) {
        CHECK(extent_flags(fd, 1 << 20) & FIEMAP_EXTENT_DELALLOC);
    }
    memset(&req, 0, sizeof(req));
    req.op = BLK_OP_FLUSH;
    req.flags = BLK_REQ_WRITEBACK;
    req.cb = prq_cb;
    prq_all = false;
    blk_req_submit(bs, &req);
    blk_loop_run_until(&prq_all);
    CHECK_INT(req.ret, 0);
    if (ext4) {
        long f = extent_flags(fd, 1 << 20);

        CHECK(f >= 0 && !!(f & FIEMAP_EXTENT_DELALLOC) == no_flush);
    }
    CHECK_INT(blk_node_pread(bs, 1 << 20, rd, sizeof(rd), &err), 0);
    CHECK(memcmp(rd, buf, sizeof(rd)) == 0);
    close(fd);
    blk_node_unref(bs);
out:
    blk_graph_free(g);
    free(p);
}

static void
test_prealloc(void)
{
    struct statfs fs;
    bool ext4 = statfs(dir, &fs) == 0 && fs.f_type == 0xEF53;

    if (!ext4) {
        printf("note: %s is not on ext4: preallocation not expected, "
               "contents and holes still checked\n", dir);
    }
    prealloc_case(true, true, ext4);
    prealloc_case(true, false, ext4);
    prealloc_case(false, true, ext4);
    writeback_case(false, ext4);
    writeback_case(true, ext4);
}

/* ---- the --hold helper --------------------------------------------------- */

static int
hold_main(const char *img, const char *secs)
{
    struct blk_graph *g = blk_graph_new();
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_backend *b = hold(g, img, BLK_OPEN_RDWR, RW, SHARE_RO, &err);

    if (b == NULL) {
        fprintf(stderr, "test-file: %s\n", err.msg);
        blk_graph_free(g);
        return 1;
    }
    printf("locked\n");
    fflush(stdout);
    sleep((unsigned)atoi(secs));
    blk_backend_free(b);
    blk_graph_free(g);
    return 0;
}

static void
cleanup(void)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);

    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    free(cmd);
}

int
main(int argc, char **argv)
{
    kv_schema_init();
    if (argc == 4 && strcmp(argv[1], "--hold") == 0) {
        return hold_main(argv[2], argv[3]);
    }
    memset(dir + strlen(dir) - 6, 'X', 6);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    read_self_comm();
    test_create();
    test_open_errors();
    test_rw();
    test_eof();
    test_truncate();
    test_direct();
    test_lock_in_process();
    test_lock_vs_qemu();
    test_dynamic_ro();
    test_reopen();
    test_raw_window();
    test_null();
    blk_loop_init(8);
    test_parallel();
    test_prealloc();
    uv_loop_close(blk_loop());
    cleanup();
    return unit_done();
}
