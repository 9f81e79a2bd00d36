/*
 * progress.c - blk-img's progress reports (util/progress.h): qemu-img's
 * threshold rule and its non-terminal line format for scripts and tests,
 * a redrawn bar for people at a terminal, JSON lines for programs, and
 * the SIGUSR1 report when progress is off.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/progress.h"
#include "util/xalloc.h"

struct blk_progress {
    enum blk_progress_mode mode;
    bool bar;                   /* ON and out is a terminal */
    FILE *out;
    float current, last_print, min_skip;    /* percent */
    uint64_t done, total;       /* bytes, when the command tells */
    double start;               /* seconds, monotonic */
    double last_draw;           /* bar: time of the last redraw */
    int drawn;                  /* bar: width of the last line drawn */
};

static volatile sig_atomic_t usr1_pending;

static void
on_usr1(int sig)
{
    (void)sig;
    usr1_pending = 1;
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct blk_progress *
blk_progress_new(enum blk_progress_mode mode, float min_skip, FILE *out)
{
    struct blk_progress *p = xzalloc(sizeof(*p));

    p->mode = mode;
    p->out = out;
    p->min_skip = min_skip;
    p->start = now();
    p->bar = mode == BLK_PROGRESS_ON && isatty(fileno(out));
    if (mode == BLK_PROGRESS_OFF) {
        struct sigaction sa;
        sigset_t set;

        memset(&sa, 0, sizeof(sa));
        sigfillset(&sa.sa_mask);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    return p;
}

int
blk_progress_parse_mode(const char *s, enum blk_progress_mode *mode)
{
    if (strcmp(s, "json") == 0) {
        *mode = BLK_PROGRESS_JSON;
    } else if (strcmp(s, "plain") == 0) {
        *mode = BLK_PROGRESS_PLAIN;
    } else if (strcmp(s, "bar") == 0 || strcmp(s, "auto") == 0) {
        *mode = BLK_PROGRESS_ON;
    } else {
        return -EINVAL;
    }
    return 0;
}

void
blk_progress_set_bytes(struct blk_progress *p, uint64_t done, uint64_t total)
{
    if (p != NULL) {
        p->done = done;
        p->total = total;
    }
}

static double
rate(const struct blk_progress *p)
{
    double t = now() - p->start;

    return t > 0 ? (double)p->done / t : 0;
}

static void
human_bytes(double b, char *buf, size_t len)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;

    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, "%.1f %s", b, unit[i]);
}

static void
draw_bar(struct blk_progress *p, bool final)
{
    char line[160], r[32], eta[32];
    int width = 30, fill = (int)(p->current * width / 100), n;
    double bps = rate(p);

    if (!final && now() - p->last_draw < 0.1 && p->current < 100) {
        return;                 /* redraw at most ten times a second */
    }
    p->last_draw = now();
    human_bytes(bps, r, sizeof(r));
    if (p->total > p->done && bps > 0) {
        unsigned s = (unsigned)((double)(p->total - p->done) / bps);

        snprintf(eta, sizeof(eta), "ETA %u:%02u:%02u", s / 3600, s / 60 % 60,
                 s % 60);
    } else {
        snprintf(eta, sizeof(eta), "%s", p->current >= 100 ? "done" : "");
    }
    n = snprintf(line, sizeof(line), "[%.*s%*s] %6.2f%%  %s/s  %s",
                 fill, "==============================", width - fill, "",
                 p->current, r, eta);
    /* Pad over a longer previous line. */
    fprintf(p->out, "\r%s%*s", line, p->drawn > n ? p->drawn - n : 0, "");
    p->drawn = n;
    fflush(p->out);
}

static void
report(struct blk_progress *p)
{
    switch (p->mode) {
    case BLK_PROGRESS_OFF:
        if (usr1_pending) {
            fprintf(stderr, "    (%3.2f/100%%)\n", p->current);
            usr1_pending = 0;
        }
        break;
    case BLK_PROGRESS_ON:
    case BLK_PROGRESS_PLAIN:
        if (p->bar) {
            draw_bar(p, false);
        } else {
            fprintf(p->out, "    (%3.2f/100%%)\r", p->current);
            fflush(p->out);
        }
        break;
    case BLK_PROGRESS_JSON:
        fprintf(p->out, "{\"done\":%llu,\"total\":%llu,\"rate\":%.0f}\n",
                (unsigned long long)p->done, (unsigned long long)p->total,
                rate(p));
        fflush(p->out);
        break;
    }
}

void
blk_progress_print(struct blk_progress *p, float delta, int max)
{
    float current;

    if (p == NULL) {
        return;
    }
    current = max == 0 ? delta : p->current + delta / 100 * (float)max;
    if (current > 100) {
        current = 100;
    }
    p->current = current;
    /* qemu-img's rule: past the threshold, or exactly at 0 or 100. */
    if (current > p->last_print + p->min_skip || current == 100 ||
        current == 0) {
        p->last_print = current;
        report(p);
    }
}

void
blk_progress_end(struct blk_progress *p)
{
    if (p == NULL) {
        return;
    }
    if (p->mode == BLK_PROGRESS_ON || p->mode == BLK_PROGRESS_PLAIN) {
        if (p->bar) {
            draw_bar(p, true);
        }
        fputc('\n', p->out);
        fflush(p->out);
    }
    if (p->mode == BLK_PROGRESS_OFF) {
        signal(SIGUSR1, SIG_DFL);
    }
    free(p);
}
