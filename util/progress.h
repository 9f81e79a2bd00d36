/*
 * progress.h - progress output for long-running blk-img commands (-p):
 * qemu-img's exact "    (12.00/100%)\r" lines when stdout is not a
 * terminal, a redrawn one-line bar with rate and ETA when it is, or one
 * JSON object per line (--progress=json).  Without -p, SIGUSR1 prints the
 * current state to stderr, as qemu-img does.  One per process; the
 * calling thread only (the loop thread in blk-img).
 */
#ifndef UTIL_PROGRESS_H
#define UTIL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum blk_progress_mode {
    BLK_PROGRESS_OFF,       /* quiet; SIGUSR1 prints to stderr */
    BLK_PROGRESS_ON,        /* -p: qemu-img lines, or a bar on a terminal */
    BLK_PROGRESS_PLAIN,     /* -p forced to qemu-img's lines (tests) */
    BLK_PROGRESS_JSON,      /* --progress=json */
};

struct blk_progress;

/*
 * Start reporting to out (stdout normally; stderr for SIGUSR1 reports).
 * min_skip is qemu-img's per-command threshold in percent: a report is
 * printed only after more than min_skip percent since the last one (and
 * always at 0 and 100).  Caller frees with blk_progress_end.
 */
struct blk_progress *blk_progress_new(enum blk_progress_mode mode,
                                      float min_skip, FILE *out);

/*
 * Parse a --progress=MODE value ("json", "plain", "bar", "auto");
 * returns 0 and sets *mode, or -EINVAL.
 */
int blk_progress_parse_mode(const char *s, enum blk_progress_mode *mode);

/*
 * qemu-img's qemu_progress_print: with max == 0, delta is the absolute
 * percentage done; otherwise delta percent of a part worth max percent
 * is added.  Prints when the threshold says so.
 */
void blk_progress_print(struct blk_progress *p, float delta, int max);

/*
 * Bytes done out of total, for the bar's rate/ETA and the JSON lines
 * (does not print by itself; the next blk_progress_print uses it).
 */
void blk_progress_set_bytes(struct blk_progress *p, uint64_t done,
                            uint64_t total);

/* Finish the line ("\n" in qemu-img's mode) and free p.  NULL is a no-op. */
void blk_progress_end(struct blk_progress *p);

#endif
