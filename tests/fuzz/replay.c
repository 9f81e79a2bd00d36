/*
 * replay.c - runs every file of a corpus directory through the fuzz entry
 * point once, without libFuzzer, so that `make check` can replay the seed
 * corpus and past crashers under ASan/UBSan.  Prints "N passed, N failed"
 * (a crash aborts the whole run, which the caller counts as a failure).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    do {
        if (cap - len < 4096) {
            cap = cap * 2 + 4096;
            buf = realloc(buf, cap);
            if (buf == NULL) {
                fclose(f);
                return -1;
            }
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    unsigned passed = 0, failed = 0;
    struct dirent **names;
    char path[4096];
    int i, n;

    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        perror(dir);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            if (replay_file(path) == 0) {
                passed++;
            } else {
                failed++;
            }
        }
        free(names[i]);
    }
    free(names);
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
