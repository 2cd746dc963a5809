/* Framing, timeouts and metadata encodings of grpc_frame.h. */
#include "grpc/grpc.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct collected {
    int n;
    size_t lens[16];
    char first[64];
} collected_t;

static int collect(void *ud, const uint8_t *msg, size_t len)
{
    collected_t *c = ud;
    if (c->n == 0)
        snprintf(c->first, sizeof c->first, "%.*s", (int)len, (const char *)msg);
    if (c->n < 16)
        c->lens[c->n] = len;
    c->n++;
    return 0;
}

static void test_roundtrip_byte_by_byte(void)
{
    mk_buf_t wire;
    mk_buf_init(&wire, 0);
    MK_CHECK_INT(mk_grpc_frame_encode(&wire, (const uint8_t *)"hello", 5), 0);
    MK_CHECK_INT(mk_grpc_frame_encode(&wire, NULL, 0), 0);
    MK_CHECK_INT(mk_grpc_frame_encode(&wire, (const uint8_t *)"xyz", 3), 0);
    MK_CHECK_INT(wire.len, 5 + 5 + 5 + 0 + 5 + 3);
    MK_CHECK(memcmp(wire.data, "\0\0\0\0\5hello", 10) == 0);
    mk_grpc_decoder_t d;
    mk_grpc_decoder_init(&d, 0);
    collected_t c = {0};
    for (size_t i = 0; i < wire.len; i++)
        MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)wire.data + i, 1, collect, &c, NULL),
                     0);
    MK_CHECK_INT(c.n, 3);
    MK_CHECK_STR(c.first, "hello");
    MK_CHECK_INT(c.lens[1], 0);
    MK_CHECK_INT(c.lens[2], 3);
    MK_CHECK(!mk_grpc_decoder_partial(&d));
    /* Half a prefix left over: a stream ending now is truncated. */
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\0\0", 2, collect, &c, NULL), 0);
    MK_CHECK(mk_grpc_decoder_partial(&d));
    mk_grpc_decoder_free(&d);
    mk_buf_free(&wire);
}

static void test_limits_and_flags(void)
{
    mk_grpc_decoder_t d;
    mk_err_t err = {0};
    collected_t c = {0};
    /* 4 GiB - 1 announced: refused from the prefix alone, nothing allocated. */
    mk_grpc_decoder_init(&d, 1024);
    MK_CHECK_INT(
        mk_grpc_decoder_feed(&d, (const uint8_t *)"\0\xff\xff\xff\xff", 5, collect, &c, &err),
        MK_ETOOBIG);
    MK_CHECK_INT(d.status, MK_GRPC_RESOURCE_EXHAUSTED);
    MK_CHECK(strstr(err.msg, "4294967295") != NULL);
    /* Refuses everything after a failure. */
    MK_CHECK(mk_grpc_decoder_feed(&d, (const uint8_t *)"\0\0\0\0\0", 5, collect, &c, &err) < 0);
    MK_CHECK_INT(c.n, 0);
    mk_grpc_decoder_free(&d);

    /* Exactly at the limit passes, one over fails. */
    mk_grpc_decoder_init(&d, 3);
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\0\0\0\0\3abc", 8, collect, &c, &err),
                 0);
    MK_CHECK_INT(c.n, 1);
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\0\0\0\0\4", 5, collect, &c, &err),
                 MK_ETOOBIG);
    mk_grpc_decoder_free(&d);

    /* Compressed flag on a stream without grpc-encoding: INTERNAL, as the spec says. */
    mk_grpc_decoder_init(&d, 0);
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\1\0\0\0\1x", 6, collect, &c, &err),
                 MK_EINVAL);
    MK_CHECK_INT(d.status, MK_GRPC_INTERNAL);
    MK_CHECK(strstr(err.msg, "compressed message without a grpc-encoding") != NULL);
    mk_grpc_decoder_free(&d);

    mk_grpc_decoder_init(&d, 0);
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\7\0\0\0\1x", 6, collect, &c, &err),
                 MK_EINVAL);
    MK_CHECK_INT(d.status, MK_GRPC_INTERNAL);
    mk_grpc_decoder_free(&d);
}

/* gzip-compresses src into a framed message (flag 1) appended to out. */
static void gzip_frame(mk_buf_t *out, const uint8_t *src, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    uLong cap = deflateBound(&z, n);
    uint8_t *buf = malloc(cap);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    mk_grpc_frame_encode(out, buf, len);
    out->data[out->len - len - 5] = 1;
    free(buf);
}

static void test_gzip(void)
{
    mk_buf_t wire;
    mk_buf_init(&wire, 0);
    gzip_frame(&wire, (const uint8_t *)"hello gzip", 10);
    mk_grpc_decoder_t d;
    mk_err_t err = {0};
    collected_t c = {0};
    mk_grpc_decoder_init(&d, 1024);
    d.gzip = true;
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)wire.data, wire.len, collect, &c, &err),
                 0);
    MK_CHECK_INT(c.n, 1);
    MK_CHECK_STR(c.first, "hello gzip");
    mk_grpc_decoder_free(&d);

    /* A bomb: 4 MiB of zeros compress to a few KiB; inflating stops at the 64 KiB limit. */
    size_t big = 4u << 20;
    uint8_t *zeros = calloc(1, big);
    mk_buf_reset(&wire);
    gzip_frame(&wire, zeros, big);
    free(zeros);
    MK_CHECK(wire.len < 64 * 1024);
    mk_grpc_decoder_init(&d, 64 * 1024);
    d.gzip = true;
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)wire.data, wire.len, collect, &c, &err),
                 MK_ETOOBIG);
    MK_CHECK_INT(d.status, MK_GRPC_RESOURCE_EXHAUSTED);
    MK_CHECK(strstr(err.msg, "inflates past the limit") != NULL);
    mk_grpc_decoder_free(&d);

    /* Not gzip at all, and gzip cut short. */
    mk_grpc_decoder_init(&d, 0);
    d.gzip = true;
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\1\0\0\0\3abc", 8, collect, &c, &err),
                 MK_EINVAL);
    MK_CHECK_INT(d.status, MK_GRPC_INTERNAL);
    mk_grpc_decoder_free(&d);
    mk_buf_reset(&wire);
    gzip_frame(&wire, (const uint8_t *)"hello gzip", 10);
    wire.data[4] = (char)(wire.data[4] - 4); /* claim 4 bytes fewer: a truncated stream */
    mk_grpc_decoder_init(&d, 0);
    d.gzip = true;
    MK_CHECK_INT(
        mk_grpc_decoder_feed(&d, (const uint8_t *)wire.data, wire.len - 4, collect, &c, &err),
        MK_EINVAL);
    MK_CHECK(strstr(err.msg, "not valid gzip") != NULL);
    mk_grpc_decoder_free(&d);
    mk_buf_free(&wire);
}

static int stop_at_second(void *ud, const uint8_t *msg, size_t len)
{
    (void)msg;
    (void)len;
    return ++*(int *)ud == 2 ? MK_EINTERNAL : 0;
}

static void test_callback_stops(void)
{
    mk_grpc_decoder_t d;
    mk_grpc_decoder_init(&d, 0);
    int n = 0;
    MK_CHECK_INT(mk_grpc_decoder_feed(&d, (const uint8_t *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15,
                                      stop_at_second, &n, NULL),
                 MK_EINTERNAL);
    MK_CHECK_INT(n, 2);
    mk_grpc_decoder_free(&d);
}

static void test_timeout(void)
{
    int64_t ms = -1;
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("100m"), &ms), 0);
    MK_CHECK_INT(ms, 100);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("2S"), &ms), 0);
    MK_CHECK_INT(ms, 2000);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("1H"), &ms), 0);
    MK_CHECK_INT(ms, 3600000);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("1500u"), &ms), 0);
    MK_CHECK_INT(ms, 2);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("1n"), &ms), 0);
    MK_CHECK_INT(ms, 1);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("99999999M"), &ms), 0);
    MK_CHECK_INT(ms, 99999999LL * 60000);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("123456789S"), &ms), MK_EINVAL); /* 9 digits */
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("10x"), &ms), MK_EINVAL);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("m"), &ms), MK_EINVAL);
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of("-1m"), &ms), MK_EINVAL);
    char buf[16];
    mk_grpc_timeout_format(250, buf, sizeof buf);
    MK_CHECK_STR(buf, "250m");
    mk_grpc_timeout_format(1000LL * 100000000, buf, sizeof buf);
    /* Over 8 digits of any finer unit: hours, rounded to within one. */
    MK_CHECK_STR(buf, "27777H");
    MK_CHECK_INT(mk_grpc_timeout_parse(mk_str_of(buf), &ms), 0);
    MK_CHECK(ms <= 1000LL * 100000000 && ms > 1000LL * 100000000 - 3600000);
}

static void test_message_and_base64(void)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK_INT(mk_grpc_message_encode(&b, "a%b\n\xc3\xa9", 6), 0);
    MK_CHECK_STR(b.data, "a%25b%0A%C3%A9");
    mk_buf_t d;
    mk_buf_init(&d, 0);
    MK_CHECK_INT(mk_grpc_message_decode(&d, b.data, b.len), 0);
    MK_CHECK_STR(d.data, "a%b\n\xc3\xa9");
    mk_buf_reset(&d);
    MK_CHECK_INT(mk_grpc_message_decode(&d, "50%", 3), 0); /* malformed escape kept */
    MK_CHECK_STR(d.data, "50%");
    mk_buf_reset(&b);
    mk_buf_reset(&d);
    MK_CHECK_INT(mk_grpc_base64_encode(&b, (const uint8_t *)"\0\1\xff\x10", 4), 0);
    MK_CHECK_STR(b.data, "AAH/EA"); /* unpadded, as gRPC sends -bin values */
    MK_CHECK_INT(mk_grpc_base64_decode(&d, "AAH/EA==", 8), 0);
    MK_CHECK_INT(d.len, 4);
    MK_CHECK(memcmp(d.data, "\0\1\xff\x10", 4) == 0);
    MK_CHECK_INT(mk_grpc_base64_decode(&d, "a*b", 3), MK_EINVAL);
    mk_buf_free(&b);
    mk_buf_free(&d);
}

static void test_metadata(void)
{
    mk_grpc_mdlist_t l = {0};
    MK_CHECK_INT(mk_grpc_md_add(&l, "X-Trace", "abc", 3), 0);
    MK_CHECK_INT(mk_grpc_md_add(&l, ":path", "x", 1), MK_EINVAL);
    MK_CHECK_INT(mk_grpc_md_add(&l, "bad key", "x", 1), MK_EINVAL);
    const mk_grpc_md_t *m = mk_grpc_md_get(&l, "x-trace");
    MK_CHECK(m != NULL && strcmp(m->key, "x-trace") == 0 && m->len == 3);
    MK_CHECK(mk_grpc_md_get(&l, "other") == NULL);
    mk_grpc_md_clear(&l);
    MK_CHECK_INT(mk_grpc_code_from_err(MK_ENOTFOUND), MK_GRPC_NOT_FOUND);
    MK_CHECK_STR(mk_grpc_code_name(MK_GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    MK_CHECK_STR(mk_grpc_code_name(99), "UNKNOWN");
}

int main(void)
{
    MK_RUN(test_roundtrip_byte_by_byte);
    MK_RUN(test_limits_and_flags);
    MK_RUN(test_callback_stops);
    MK_RUN(test_gzip);
    MK_RUN(test_timeout);
    MK_RUN(test_message_and_base64);
    MK_RUN(test_metadata);
    return mk_testing_done();
}
