/*
 * keyval.c - `blk-img keyval`: parse an option string (keyval or JSON),
 * optionally type it against a schema type, and print the tree as one
 * line of JSON; or print it back as keyval (--to-keyval); or print the
 * whole schema in query-qmp-schema form (--introspect).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/blk-img/blk-img.h"
#include "keyval/kv.h"
#include "keyval/schema.h"
#include "util/sbuf.h"
#include "util/xalloc.h"

/* The whole of stdin, minus one trailing newline (what `echo` adds). */
static char *
read_stdin(void)
{
    struct sbuf sb = SBUF_INIT;
    char buf[4096];
    size_t n;

    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        sbuf_add(&sb, buf, n);
    }
    if (sb.len > 0 && sb.buf[sb.len - 1] == '\n') {
        sbuf_setlen(&sb, sb.len - 1);
    }
    return sbuf_detach(&sb);
}

static void
print_json(const struct kv *tree)
{
    struct sbuf out = SBUF_INIT;

    kv_to_json(tree, &out);
    printf("%s\n", out.buf);
    sbuf_release(&out);
}

static int
introspect(void)
{
    struct kv *schema = kv_schema_introspect();

    print_json(schema);
    kv_free(schema);
    return 0;
}

static struct kv *
parse(const char *s, const char *type_name, bool *help, struct sbuf *help_text,
      struct blk_error *err)
{
    if (type_name == NULL) {
        /* No schema: no implied key, and no help to offer. */
        return kv_parse(s, NULL, NULL, NULL, err);
    }
    return kv_parse_typed(s, type_name, help, help_text, err);
}

int
cmd_keyval(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "schema", required_argument, NULL, 's' },
        { "to-keyval", no_argument, NULL, 'k' },
        { "introspect", no_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct blk_error err = BLK_ERROR_INIT;
    struct sbuf help_text = SBUF_INIT;
    const char *type_name = NULL;
    bool to_keyval = false, want_introspect = false, help = false;
    char *input = NULL, *kvstr;
    struct kv *tree;
    int c, ret = 1;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            type_name = optarg;
            break;
        case 'k':
            to_keyval = true;
            break;
        case 'i':
            want_introspect = true;
            break;
        case 'h':
            printf("usage: blk-img keyval [--schema blockdev|TYPE] [--to-keyval] "
                   "STRING|-\n"
                   "       blk-img keyval --introspect\n");
            return 0;
        case ':':
            blk_img_error("keyval: option '%s' requires an argument",
                          argv[optind - 1]);
            return 1;
        default:
            blk_img_error("keyval: unrecognized option '%s'", argv[optind - 1]);
            return 1;
        }
    }
    if (want_introspect) {
        if (optind != argc || type_name != NULL || to_keyval) {
            blk_img_error("--introspect takes no other arguments");
            return 1;
        }
        return introspect();
    }
    if (optind != argc - 1) {
        blk_img_error("Expecting one option string (or '-' for stdin)");
        return 1;
    }
    if (type_name != NULL && kv_schema_lookup(type_name) == NULL) {
        blk_img_error("unknown schema type '%s'", type_name);
        return 1;
    }
    if (strcmp(argv[optind], "-") == 0) {
        input = read_stdin();
    }
    tree = parse(input != NULL ? input : argv[optind], type_name, &help,
                 &help_text, &err);
    if (tree == NULL) {
        blk_img_error("%s", err.msg);
        goto out;
    }
    if (help) {
        fputs(help_text.buf, stdout);
        ret = 0;
        goto out_free_tree;
    }
    if (to_keyval) {
        kvstr = kv_to_keyval(tree, &err);
        if (kvstr == NULL) {
            blk_img_error("%s", err.msg);
            goto out_free_tree;
        }
        printf("%s\n", kvstr);
        free(kvstr);
    } else {
        print_json(tree);
    }
    ret = 0;

out_free_tree:
    kv_free(tree);
out:
    sbuf_release(&help_text);
    free(input);
    return ret;
}
