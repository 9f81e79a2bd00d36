/*
 * test-header.c - qcow2 header parsing and validation on in-memory
 * buffers: good v2/v3 headers, every damaged field refused with QEMU
 * 7.2's wording, extensions kept, and serialisation round trips.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "block/qcow2/qcow2-int.h"
#include "util/xalloc.h"

#define CS 65536

/* A fresh v3 header cluster like `qemu-img create -f qcow2 x 1G`. */
static uint8_t *
good_header(void)
{
    uint8_t *b = xzalloc(CS);

    qcow2_put_be32(b, QCOW2_MAGIC);
    qcow2_put_be32(b + 4, 3);
    qcow2_put_be32(b + 20, 16);
    qcow2_put_be64(b + 24, 1ULL << 30);
    qcow2_put_be32(b + 36, 2);
    qcow2_put_be64(b + 40, 3 * CS);
    qcow2_put_be64(b + 48, CS);
    qcow2_put_be32(b + 56, 1);
    qcow2_put_be32(b + 96, 4);
    qcow2_put_be32(b + 100, 112);
    return b;
}

static int
parse(const uint8_t *b, struct qcow2_header_info *hi, struct blk_error *err)
{
    memset(hi, 0, sizeof(*hi));
    blk_error_clear(err);
    return qcow2_parse_header_cluster(b, CS, hi, err);
}

/* Damage one field, expect the message. */
static void
expect_error(void (*damage)(uint8_t *), const char *msg)
{
    struct qcow2_header_info hi;
    struct blk_error err = BLK_ERROR_INIT;
    uint8_t *b = good_header();
    int r;

    damage(b);
    r = parse(b, &hi, &err);
    CHECK(r < 0);
    CHECK_STR(err.msg, msg);
    qcow2_header_info_release(&hi);
    free(b);
}

static void d_magic(uint8_t *b) { b[0] = 'X'; }
static void d_version4(uint8_t *b) { qcow2_put_be32(b + 4, 4); }
static void d_cbits22(uint8_t *b) { qcow2_put_be32(b + 20, 22); }
static void d_cbits8(uint8_t *b) { qcow2_put_be32(b + 20, 8); }
static void d_hlen(uint8_t *b) { qcow2_put_be32(b + 100, 96); }
static void d_hlen_big(uint8_t *b) { qcow2_put_be32(b + 100, CS + 8); }
static void d_backing_off(uint8_t *b) { qcow2_put_be64(b + 8, CS + 1); }
static void d_comp2(uint8_t *b) { b[104] = 2; }
static void d_comp_bit(uint8_t *b) { b[79] = QCOW2_INCOMPAT_COMPRESSION; }
static void d_comp_nobit(uint8_t *b) { b[104] = 1; }
static void d_unknown(uint8_t *b) { b[79] = 0x20; }
static void d_rorder(uint8_t *b) { qcow2_put_be32(b + 96, 7); }
static void d_crypt3(uint8_t *b) { qcow2_put_be32(b + 32, 3); }
static void d_crypt_aes(uint8_t *b) { qcow2_put_be32(b + 32, 1); }
static void d_reft0(uint8_t *b) { qcow2_put_be32(b + 56, 0); }
static void d_reft_off(uint8_t *b) { qcow2_put_be64(b + 48, CS + 1); }
static void d_reft_big(uint8_t *b) { qcow2_put_be32(b + 56, 0x10000000); }
static void d_l1_off(uint8_t *b) { qcow2_put_be64(b + 40, 3 * CS + 1); }
static void d_l1_big(uint8_t *b) { qcow2_put_be32(b + 36, 0x10000000); }
static void d_l1_small(uint8_t *b) { qcow2_put_be32(b + 36, 1); }
static void d_snap_off(uint8_t *b)
{
    qcow2_put_be32(b + 60, 1);
    qcow2_put_be64(b + 64, 513);
}
static void d_extl2_small(uint8_t *b)
{
    b[79] = QCOW2_INCOMPAT_EXTL2;
    qcow2_put_be32(b + 20, 13);
    qcow2_put_be64(b + 24, 1 << 20);
}
static void d_ext_big(uint8_t *b)
{
    qcow2_put_be32(b + 112, 0x12345678);
    qcow2_put_be32(b + 116, CS);
}
static void d_backing_fmt(uint8_t *b)
{
    qcow2_put_be32(b + 112, QCOW2_EXT_BACKING_FORMAT);
    qcow2_put_be32(b + 116, 16);
}
static void d_backing_long(uint8_t *b)
{
    qcow2_put_be64(b + 8, 1024);
    qcow2_put_be32(b + 16, 2000);
}
static void d_bitmaps_zero(uint8_t *b)
{
    b[95] = QCOW2_AUTOCLEAR_BITMAPS;
    qcow2_put_be32(b + 112, QCOW2_EXT_BITMAPS);
    qcow2_put_be32(b + 116, 24);
}

static void
test_damaged(void)
{
    expect_error(d_magic, "Image is not in qcow2 format");
    expect_error(d_version4, "Unsupported qcow2 version 4");
    expect_error(d_cbits22, "Unsupported cluster size: 2^22");
    expect_error(d_cbits8, "Unsupported cluster size: 2^8");
    expect_error(d_hlen, "qcow2 header too short");
    expect_error(d_hlen_big, "qcow2 header exceeds cluster size");
    expect_error(d_backing_off, "Invalid backing file offset");
    expect_error(d_comp2, "qcow2: unknown compression type: 2");
    expect_error(d_comp_bit, "qcow2: Compression type incompatible feature "
                 "bit must not be set");
    expect_error(d_comp_nobit, "qcow2: Compression type incompatible feature "
                 "bit must be set");
    expect_error(d_unknown, "Unsupported qcow2 feature(s): Unknown "
                 "incompatible feature: 20");
    expect_error(d_rorder, "Reference count entry width too large; may not "
                 "exceed 64 bits");
    expect_error(d_crypt3, "Unsupported encryption method 3");
    expect_error(d_crypt_aes, "encrypted qcow2 images are not supported");
    expect_error(d_reft0, "Image does not contain a reference count table");
    expect_error(d_reft_off, "Reference count table offset invalid");
    expect_error(d_reft_big, "Reference count table too large");
    expect_error(d_l1_off, "Active L1 table offset invalid");
    expect_error(d_l1_big, "Active L1 table too large");
    expect_error(d_l1_small, "L1 table is too small");
    expect_error(d_snap_off, "Snapshot table offset invalid");
    expect_error(d_extl2_small, "Extended L2 entries are only supported with "
                 "cluster sizes of at least 16384 bytes");
    expect_error(d_ext_big, "Header extension too large");
    expect_error(d_backing_fmt, "ERROR: ext_backing_format: len=16 too large "
                 "(>=16)");
    expect_error(d_backing_long, "Backing file name too long");
    expect_error(d_bitmaps_zero, "found bitmaps extension with zero bitmaps");
}

/* Named unknown incompatible bits come from the image's feature table. */
static void
test_unknown_feature_named(void)
{
    struct qcow2_header_info hi;
    struct blk_error err = BLK_ERROR_INIT;
    uint8_t *b = good_header();

    b[79] = 0x60;                       /* bits 5 and 6 */
    qcow2_put_be32(b + 112, QCOW2_EXT_FEATURE_TABLE);
    qcow2_put_be32(b + 116, 48);
    b[120] = QCOW2_FEAT_INCOMPAT;
    b[121] = 5;
    memcpy(b + 122, "future thing", 12);
    CHECK(parse(b, &hi, &err) == -ENOTSUP);
    CHECK_STR(err.msg, "Unsupported qcow2 feature(s): future thing, Unknown "
              "incompatible feature: 40");
    qcow2_header_info_release(&hi);
    free(b);
}

static void
test_good_v2_v3(void)
{
    struct qcow2_header_info hi;
    struct blk_error err = BLK_ERROR_INIT;
    uint8_t *b = good_header();

    CHECK_INT(parse(b, &hi, &err), 0);
    CHECK_INT(hi.h.version, 3);
    CHECK_INT(hi.h.cluster_bits, 16);
    CHECK_INT(hi.h.size, 1ULL << 30);
    CHECK_INT(hi.h.l1_size, 2);
    CHECK_INT(hi.h.refcount_order, 4);
    CHECK(hi.backing_file == NULL);
    qcow2_header_info_release(&hi);

    /* v2: fields past 72 are ignored, refcount order is 16 bits. */
    qcow2_put_be32(b + 4, 2);
    qcow2_put_be32(b + 96, 9);
    CHECK_INT(parse(b, &hi, &err), 0);
    CHECK_INT(hi.h.refcount_order, 4);
    CHECK_INT(hi.h.header_length, 72);
    qcow2_header_info_release(&hi);
    free(b);

    CHECK_INT(qcow2_l1_entries_for(1ULL << 30, 16, false), 2);
    CHECK_INT(qcow2_l1_entries_for(1ULL << 30, 16, true), 4);
    CHECK_INT(qcow2_l1_entries_for(0, 16, false), 0);
    CHECK_INT(qcow2_l1_entries_for(1, 9, false), 1);
}

/* Extensions: backing format, data file, unknown kept; round trip. */
static void
test_extensions_round_trip(void)
{
    struct qcow2_header_info hi;
    struct blk_error err = BLK_ERROR_INIT;
    uint8_t *b = good_header(), *out = xzalloc(CS);
    struct qcow2 q;
    size_t pos = 112;

    qcow2_put_be32(b + pos, QCOW2_EXT_BACKING_FORMAT);
    qcow2_put_be32(b + pos + 4, 5);
    memcpy(b + pos + 8, "qcow2", 5);
    pos += 16;
    qcow2_put_be32(b + pos, 0xdeadbeef);
    qcow2_put_be32(b + pos + 4, 3);
    memcpy(b + pos + 8, "abc", 3);
    pos += 16;
    qcow2_put_be32(b + pos, 0xfeedf00d);
    qcow2_put_be32(b + pos + 4, 0);
    pos += 8;
    pos += 8;                           /* end marker */
    memcpy(b + pos, "base.img", 8);
    qcow2_put_be64(b + 8, pos);
    qcow2_put_be32(b + 16, 8);

    CHECK_INT(parse(b, &hi, &err), 0);
    CHECK_STR(hi.backing_format, "qcow2");
    CHECK_STR(hi.backing_file, "base.img");
    CHECK(hi.exts != NULL && hi.exts->magic == 0xdeadbeef &&
          hi.exts->len == 3 && memcmp(hi.exts->data, "abc", 3) == 0);
    CHECK(hi.exts != NULL && hi.exts->next != NULL &&
          hi.exts->next->magic == 0xfeedf00d);

    memset(&q, 0, sizeof(q));
    q.h = hi.h;
    q.exts = hi.exts;
    q.backing_file = hi.backing_file;
    q.backing_format = hi.backing_format;
    CHECK_INT(qcow2_build_header_cluster(&q, out, CS, &err), 0);
    /* Same fixed fields, format ext first, feature table, unknown ones
     * newest-read first (as QEMU writes them), then the name. */
    CHECK(memcmp(out, b, 72) == 0 || qcow2_be64(out + 8) != pos);
    CHECK_INT(qcow2_be32(out + 112), QCOW2_EXT_BACKING_FORMAT);
    CHECK_INT(qcow2_be32(out + 128), QCOW2_EXT_FEATURE_TABLE);
    CHECK_INT(qcow2_be32(out + 128 + 8 + 384), 0xfeedf00d);
    CHECK_INT(qcow2_be32(out + 128 + 8 + 384 + 8), 0xdeadbeef);
    {
        struct qcow2_header_info hi2;

        CHECK_INT(parse(out, &hi2, &err), 0);
        CHECK_STR(hi2.backing_file, "base.img");
        CHECK_STR(hi2.backing_format, "qcow2");
        CHECK_INT(hi2.n_features, 8);
        CHECK_STR(hi2.features[4].name, "extended L2 entries");
        qcow2_header_info_release(&hi2);
    }
    /* The small-cluster form leaves the feature table out. */
    q.h.cluster_bits = 12;
    CHECK_INT(qcow2_build_header_cluster(&q, out, 4096, &err), 0);
    CHECK_INT(qcow2_be32(out + 128), 0xfeedf00d);
    /* Too many extensions for a 512-byte cluster. */
    {
        uint8_t small[512];
        struct qcow2_ext big = { 0x11112222, 400, xzalloc(400), NULL };

        q.exts = &big;
        q.h.cluster_bits = 9;
        CHECK_INT(qcow2_build_header_cluster(&q, small, sizeof(small), &err),
                  -ENOSPC);
        free(big.data);
    }
    q.exts = NULL;
    qcow2_header_info_release(&hi);
    free(b);
    free(out);
}

int
main(void)
{
    test_damaged();
    test_unknown_feature_named();
    test_good_v2_v3();
    test_extensions_round_trip();
    return unit_done();
}
