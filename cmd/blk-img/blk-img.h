/*
 * blk-img.h - the subcommands of blk-img.  Each lives in its own file,
 * takes argv from the subcommand name on, returns the exit status, and
 * is listed once in the command table of main.c (which --help prints).
 */
#ifndef CMD_BLK_IMG_H
#define CMD_BLK_IMG_H

#include <stdio.h>

struct blk_img_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis;       /* the argument synopsis, as in qemu-img --help */
    const char *help;           /* one line */
};

/* Print "blk-img: <msg>" to stderr (one line). */
void blk_img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_keyval(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_amend(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_dd(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
int cmd_bitmap(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
