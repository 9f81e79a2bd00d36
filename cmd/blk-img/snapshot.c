/*
 * snapshot.c - `blk-img snapshot`: list (-l), create (-c), apply (-a) and
 * delete (-d) internal snapshots through the format driver's snapshot
 * ops, with qemu-img 7.2's table and messages.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "cmd/blk-img/img-common.h"

enum action { ACT_NONE, ACT_LIST, ACT_APPLY, ACT_CREATE, ACT_DELETE };

static int
do_list(struct blk_node *bs)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    struct blk_error err = BLK_ERROR_INIT;
    struct blk_snapshot_info *sn = NULL;
    struct sbuf sb = SBUF_INIT;
    size_t n = 0;

    if (drv->snapshot_list == NULL) {
        return 0;
    }
    if (drv->snapshot_list(bs, &sn, &n, &err) < 0) {
        blk_img_error("%s", err.msg);
        return 1;
    }
    if (n > 0) {
        sbuf_adds(&sb, "Snapshot list:\n");
        img_dump_snapshots(sn, n, &sb);
        fputs(sb.buf, stdout);
    }
    sbuf_release(&sb);
    img_snapshots_free(sn, n);
    return 0;
}

static int
do_action(struct blk_node *bs, enum action act, const char *name)
{
    const struct blk_driver *drv = blk_node_driver(bs);
    struct blk_error err = BLK_ERROR_INIT;
    int r;

    switch (act) {
    case ACT_CREATE:
        r = drv->snapshot_create != NULL ? drv->snapshot_create(bs, name, &err)
                                         : -ENOTSUP;
        if (r < 0) {
            blk_img_error("Could not create snapshot '%s': %d (%s)", name, r,
                          strerror(-r));
            return 1;
        }
        return 0;
    case ACT_APPLY:
        if (drv->snapshot_goto == NULL) {
            blk_img_error("Could not apply snapshot '%s': Block format '%s' does "
                          "not support internal snapshots", name, drv->name);
            return 1;
        }
        if (drv->snapshot_goto(bs, name, &err) < 0) {
            blk_img_error("Could not apply snapshot '%s': %s", name, err.msg);
            return 1;
        }
        return 0;
    case ACT_DELETE:
        if (drv->snapshot_delete == NULL) {
            blk_img_error("Could not delete snapshot '%s': Block format '%s' does "
                          "not support internal snapshots", name, drv->name);
            return 1;
        }
        if (drv->snapshot_delete(bs, name, &err) < 0) {
            blk_img_error("Could not delete snapshot '%s': %s", name, err.msg);
            return 1;
        }
        return 0;
    default:
        return do_list(bs);
    }
}

int
cmd_snapshot(int argc, char **argv)
{
    enum { OPT_IMAGE_OPTS = 256 };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    enum action act = ACT_NONE;
    const char *name = NULL;
    bool image_opts = false;
    unsigned flags = BLK_OPEN_RDWR;
    struct blk_graph *g;
    struct blk_node *bs;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", longopts, NULL)) != -1) {
        enum action a = ACT_NONE;

        switch (c) {
        case 'l':
            a = ACT_LIST;
            break;
        case 'a':
            a = ACT_APPLY;
            break;
        case 'c':
            a = ACT_CREATE;
            break;
        case 'd':
            a = ACT_DELETE;
            break;
        case 'q':
            break;              /* nothing is printed on success anyway */
        case 'U':
            flags |= BLK_OPEN_FORCE_SHARE;
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case 'h':
            printf("usage: blk-img snapshot [--image-opts] [-U] [-q] "
                   "[-l | -a snapshot | -c snapshot | -d snapshot] filename\n");
            return 0;
        default:
            return img_getopt_error(c, argv);
        }
        if (a != ACT_NONE) {
            if (act != ACT_NONE) {
                img_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
                return 1;
            }
            act = a;
            name = a == ACT_LIST ? NULL : optarg;
        }
    }
    if (optind != argc - 1) {
        img_usage_error("Expecting one image file name");
        return 1;
    }
    if (act == ACT_LIST || act == ACT_NONE) {
        flags = (flags & BLK_OPEN_FORCE_SHARE) | BLK_OPEN_NO_BACKING;
    }
    g = blk_graph_new();
    bs = img_open(g, argv[optind], NULL, image_opts, flags);
    if (bs == NULL) {
        blk_graph_free(g);
        return 1;
    }
    ret = act == ACT_NONE ? 0 : do_action(bs, act, name);
    blk_node_unref(bs);
    blk_graph_free(g);
    return ret;
}
